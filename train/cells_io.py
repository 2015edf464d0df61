"""Ablation cells trained on another machine.

An ablation builds every cell's corpus where its steps' resources are (WordNet, Apertium,
the step cache); the encoder training can run where the GPU is. `CellsElsewhere` stands in
for `train_and_evaluate_many`: the first run writes the cells still to train to a folder
and stops with `CellsExported`; `train_cells(folder)` trains them there (it needs numpy,
pyarrow, torch, transformers and pydantic, not polars) and writes `results.npz` beside
them; the next run of the same ablation reads the answers back as outcomes, and the cells
are stored like any other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assay.errors import AssayError, InputError

if TYPE_CHECKING:
    import polars as pl

    from assay.progress import Progress
    from assay.train.evaluate import Job, TrainOutcome

META = "cells.json"
JOBS = "jobs.parquet"
EVAL = "eval.parquet"
RESULTS = "results.npz"


class CellsExported(AssayError):
    """The cells to train were written to a folder for another machine."""


def export_jobs(jobs: Sequence[Job], model: str, eval_corpus: pl.DataFrame, folder: Path) -> None:
    import polars as pl

    from assay import atomic
    from assay.train.evaluate import evaluation_rows, training_rows

    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for index, job in enumerate(jobs):
        if job.key is None:
            raise InputError("cells trained elsewhere need a key each")
        train = training_rows(job.corpus)
        frames.append(
            train.select(
                pl.lit(index, pl.Int32).alias("cell"),
                "text",
                pl.col("label").cast(pl.String),
                pl.col("weight").fill_null(1.0).cast(pl.Float32),
            )
        )
    atomic.write_parquet(folder / JOBS, pl.concat(frames))
    evals = evaluation_rows(eval_corpus)
    atomic.write_parquet(folder / EVAL, evals.select("id", "split", "text", "label"))
    meta = {
        "model": model,
        "cells": [{"key": j.key, "seed": j.seed, "options": j.options} for j in jobs],
    }
    atomic.write_json(folder / META, meta)


def train_cells(
    folder: Path, model: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Train the cells of an exported folder (stacks where they can share one, else one by
    one) and write `results.npz`; returns the timing summary also stored there. `model`
    points at the encoder's files on this machine (default: the name they were exported
    with)."""
    from assay.train.finetune import EncoderModel, FineTuneConfig
    from assay.train.stacked import train_stack, unstackable

    meta = json.loads((folder / META).read_text())
    cells, evals, dev = read_jobs(folder)
    groups: dict[str, list[int]] = {}
    for index, (spec, cell) in enumerate(zip(meta["cells"], cells, strict=True)):
        key = json.dumps([spec["options"], sorted(set(cell.labels))], sort_keys=True)
        groups.setdefault(key, []).append(index)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    for members in groups.values():
        config = FineTuneConfig(
            model=model or meta["model"], **meta["cells"][members[0]]["options"]
        )
        if unstackable(config) is None:
            results = train_stack([cells[i] for i in members], config, evals["text"],
                                  dev if dev[0] else None, progress=progress)  # fmt: skip
            for i, r in zip(members, results, strict=True):
                out[meta["cells"][i]["key"]] = {
                    "proba": r.proba, "classes": r.classes, "steps": r.steps,
                    "history": r.history, "examples_per_s": r.examples_per_s,
                    "seconds": r.train_seconds / len(members),
                }  # fmt: skip
            continue
        for i in members:
            t0 = time.perf_counter()
            model = EncoderModel(seed=cells[i].seed, config=config, progress=progress)
            model.fit(cells[i].texts, cells[i].labels, cells[i].weights, *dev)
            out[meta["cells"][i]["key"]] = {
                "proba": model.predict_proba(evals["text"]), "classes": list(model.classes_),
                "steps": model.steps, "history": model.history,
                "examples_per_s": model.examples_per_s, "seconds": time.perf_counter() - t0,
            }  # fmt: skip
    seconds = time.perf_counter() - started
    arrays = {f"proba_{k}": v.pop("proba") for k, v in out.items()}
    summary = {"seconds": seconds, "cells": out}
    np.savez_compressed(folder / RESULTS, summary=np.array(json.dumps(summary)), **arrays)
    return summary


def read_jobs(folder: Path):
    """(cells, eval columns, dev texts and labels) of an exported folder, read with pyarrow."""
    import pyarrow.parquet as pq

    from assay.train.stacked import Cell

    meta = json.loads((folder / META).read_text())
    rows = pq.read_table(folder / JOBS).to_pydict()
    evals = pq.read_table(folder / EVAL).to_pydict()
    cell_of = np.asarray(rows["cell"])
    texts, labels = np.asarray(rows["text"], dtype=object), np.asarray(rows["label"], dtype=object)
    weights = np.asarray(rows["weight"], dtype=np.float32)
    cells = []
    for index, spec in enumerate(meta["cells"]):
        mine = cell_of == index
        w = weights[mine]
        cells.append(Cell(spec["seed"], list(texts[mine]), list(labels[mine]),
                          None if np.allclose(w, 1.0) else w))  # fmt: skip
    dev_rows = [i for i, s in enumerate(evals["split"]) if s == "dev"]
    dev = ([evals["text"][i] for i in dev_rows], [evals["label"][i] for i in dev_rows])
    return cells, evals, dev


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """Each trained cell's answers by key (`proba` added back), from a `results.npz`."""
    with np.load(path) as npz:
        summary = json.loads(str(npz["summary"]))
        for key, cell in summary["cells"].items():
            cell["proba"] = npz[f"proba_{key}"]
    return summary["cells"]


class CellsElsewhere:
    """A `TrainMany` that trains nothing here: it exports the cells to `folder` the first
    time, and turns the answers in `results` (default `folder/results.npz`) into outcomes
    once they exist."""

    def __init__(self, folder: str | Path, results: str | Path | None = None) -> None:
        self.folder = Path(folder)
        self.results = Path(results) if results is not None else self.folder / RESULTS

    def __call__(
        self,
        jobs: Sequence[Job],
        *,
        model: str,
        eval_corpus: pl.DataFrame,
        progress: Progress | None = None,
        on_outcome: Callable[[int, TrainOutcome], None] | None = None,
    ) -> list[TrainOutcome]:
        from assay.train.evaluate import evaluation_rows, outcome_from_proba, training_rows

        if not jobs:
            return []
        answers = read_results(self.results) if self.results.exists() else {}
        missing = [j for j in jobs if j.key not in answers]
        if missing:
            export_jobs(jobs, model, eval_corpus, self.folder)
            raise CellsExported(
                f"{len(missing)} of {len(jobs)} cells are still to train: they are in "
                f"{self.folder}; train them with assay.train.cells_io.train_cells there and "
                f"put {RESULTS} in {self.results.parent}, then run the ablation again"
            )
        evals = evaluation_rows(eval_corpus)
        outcomes = []
        for i, job in enumerate(jobs):
            a = answers[job.key]
            outcomes.append(
                outcome_from_proba(
                    model,
                    job.seed,
                    training_rows(job.corpus).height,
                    evals,
                    a["proba"],
                    a["classes"],
                    None,
                    (),
                    seconds=a["seconds"],
                    steps=a["steps"],
                    examples_per_s=a["examples_per_s"],
                    history=a["history"],
                )
            )
            if on_outcome is not None:
                on_outcome(i, outcomes[-1])
        return outcomes
