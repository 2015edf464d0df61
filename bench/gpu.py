"""The device check: assay's fine-tune loop on a GPU, against a tuned Hugging Face Trainer
on the same GPU, and the low-resource ablation (8 arms x 10 seeds, SST-2, 500 train rows,
MiniLM, 300 optimiser steps per cell) trained as stacks.

Three stages, run by `scripts/device_check.sh`:

- `prepare` (here, on CPU): builds every cell's corpus with the real augmentation steps
  and exports the cells (`assay.train.cells_io`); packs the MiniLM in fp16 keeping only
  the embedding rows of the word pieces these texts use, and the wheels the device image
  lacks (pydantic, assay); prints the bytes that will travel.
- `run` (on the device): restores the model to fp32, trains the exported cells, runs the
  peer comparison (one cell and 10 seeds, assay against `Trainer` with bf16,
  length-grouped batches, dataloader workers and fused AdamW; same model, rows, steps,
  batch, schedule) and a torch-profiler breakdown; writes `gpu.json` (after every stage,
  so a timeout still returns what finished) and `results.npz` under --out.
- `report` (here): reads those back, stores the cells in the ablation's run folder and
  builds its table with the usual statistics, checks the targets, writes the JSON.

`--dry-run` does the same on CPU with a tiny random BERT, 2 arms x 2 seeds and a few steps.

    python bench/gpu.py prepare --dir .device
    python bench/gpu.py run --dir .device --model-dir /tmp/minilm --out $OUT
    python bench/gpu.py report --dir .device --results DIR --json bench/results/gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEEDS = 10
ROWS = 500
STEPS = 300
SKIP = ("+label_noise drop", "+paraphrase")  # 8 arms: baseline, 3 augmenters + controls, reweight
TRAINER_SEEDS = 3
PROFILE_STEPS = 20
# The wheels the device image lacks, for its Python (3.12 on x86-64).
WHEELS = ("pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0",
          "typing-inspection==0.4.5")  # fmt: skip


# -- prepare (CPU) --------------------------------------------------------------------------


def prepare(folder: Path, dry_run: bool) -> int:
    import subprocess

    from assay.train.cells_io import CellsElsewhere, CellsExported

    folder.mkdir(parents=True, exist_ok=True)
    recipe, model_path = _recipe(folder, dry_run)
    from assay.recipes.ablation import run_ablation

    try:
        run_ablation(recipe, folder / "ablation", device="cuda" if not dry_run else "cpu",
                     train=CellsElsewhere(folder / "cells"))  # fmt: skip
    except CellsExported as exc:
        print(exc)
    _pack_model(folder, model_path)
    wheels = folder / "pack" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(REPO)], check=True)  # fmt: skip
    if not dry_run:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--only-binary=:all:",
             "--python-version", "3.12", "--implementation", "cp",
             "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
             "-d", str(wheels), *WHEELS],
            check=True,
        )  # fmt: skip
    with tarfile.open(folder / "pack.tar.xz", "w:xz") as tar:
        tar.add(folder / "pack", arcname=".")
    (folder / "settings.json").write_text(json.dumps({"dry_run": dry_run}))
    sizes = {
        p.name: p.stat().st_size for p in [folder / "pack.tar.xz", *(folder / "cells").iterdir()]
    }
    print(json.dumps({"bytes_that_travel": sum(sizes.values()), "files": sizes}))
    return 0


def _recipe(folder: Path, dry_run: bool):
    sys.path.insert(0, str(REPO / "bench"))
    from study import study_recipe, write_dataset

    if dry_run:
        from assay.testing import tiny_bert

        source = _tiny_dataset(folder)
        words = sorted({w for line in source.read_text().splitlines() for w in line.split()})
        model = tiny_bert(folder / "tiny-bert", words)
        recipe = study_recipe(
            source, (*SKIP, "+synonyms", "+back_translation"), model=str(model), train_rows=40,
            seeds=2, budget={"steps": 6},
        )  # fmt: skip
        return recipe, model
    data = REPO.parent / "shared" / "data" / "sst2"
    if not data.is_dir():
        raise SystemExit(f"SST-2 not found at {data}")
    source = write_dataset("sst2", folder)
    recipe = study_recipe(source, SKIP, model="minilm", train_rows=ROWS, seeds=SEEDS,
                          budget={"steps": STEPS})  # fmt: skip
    from assay.resources import encoder

    return recipe, Path(encoder(None))


def _tiny_dataset(folder: Path) -> Path:
    import random

    rng = random.Random(0)
    good, bad = ["good", "great", "fine", "lovely"], ["bad", "awful", "poor", "dull"]
    filler = ["the", "film", "movie", "was", "a", "plot", "very", "and", "it", "is"]
    lines = ["text,label,split"]
    for split, n in (("train", 80), ("dev", 20), ("test", 30)):
        for _ in range(n):
            pos = rng.random() < 0.5
            words = [*rng.sample(filler, 5), rng.choice(good if pos else bad)]
            rng.shuffle(words)
            lines.append(f"{' '.join(words)},{'pos' if pos else 'neg'},{split}")
    path = folder / "tiny.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pack_model(folder: Path, model_path: Path) -> None:
    """The encoder in fp16 with only the embedding rows the exported texts use (the
    others are never read); `_restore_model` gives it back in fp32 on the device."""
    import shutil

    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    out = folder / "pack" / "model"
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    # Every text that will be tokenised there: the ablation's cells and the judge study's.
    texts: list[str] = []
    for cells in [folder / "cells", *sorted((folder / "judges").glob("*"))]:
        for name in ("jobs.parquet", "eval.parquet"):
            if (cells / name).exists():
                texts += pq.read_table(cells / name, columns=["text"])["text"].to_pylist()
    texts = list(dict.fromkeys(texts))
    ids = tokenizer(texts, truncation=True, max_length=512)["input_ids"]
    used = np.unique(np.concatenate([np.asarray(x) for x in ids] + [np.arange(5)]))
    name = "model.safetensors"
    state = load_file(str(model_path / name))
    word = next(k for k in state if k.endswith("word_embeddings.weight"))
    packed = {k: v.to(torch.float16).contiguous() for k, v in state.items() if k != word}
    packed["used_rows"] = torch.as_tensor(used)
    packed["used_embeddings"] = state[word][torch.as_tensor(used)].to(torch.float16).contiguous()
    packed["vocab_shape"] = torch.as_tensor(state[word].shape)
    save_file(packed, str(out / "packed.safetensors"), metadata={"word": word})
    for f in model_path.iterdir():
        if f.is_file() and f.name != name and f.suffix in (".json", ".txt"):
            shutil.copy(f, out / f.name)


def _restore_model(packed_dir: Path, target: Path) -> Path:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    target.mkdir(parents=True, exist_ok=True)
    with safe_open(str(packed_dir / "packed.safetensors"), "pt") as f:
        word = f.metadata()["word"]
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    shape = tuple(tensors.pop("vocab_shape").tolist())
    table = torch.zeros(shape, dtype=torch.float32)
    table[tensors.pop("used_rows")] = tensors.pop("used_embeddings").float()
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    state[word] = table
    save_file(state, str(target / "model.safetensors"))
    for f in packed_dir.iterdir():
        if f.suffix in (".json", ".txt"):
            (target / f.name).write_bytes(f.read_bytes())
    return target


# -- run (device) ---------------------------------------------------------------------------


STAGES = ("ablation", "peer", "sync_check", "profile", "profile_80", "judges")


def run(folder: Path, model_dir: Path, out: Path, quick: bool, stages=STAGES) -> int:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report: dict = {"bench": "gpu", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def save() -> None:
        (out / "gpu.json").write_text(json.dumps(report, indent=1, default=str))

    cuda = torch.cuda.is_available()
    import transformers

    report["env"] = {
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    save()
    t0 = time.perf_counter()
    model = _restore_model(folder / "pack" / "model", model_dir)
    report["env"]["restore_seconds"] = round(time.perf_counter() - t0, 2)
    save()

    def stage(name: str, fn) -> None:
        """Run one stage; a failure is written down and the next stage still runs."""
        if name not in stages:
            return
        t0 = time.perf_counter()
        try:
            report[name] = fn()
        except Exception as exc:  # the JSON must come back whatever broke
            import traceback

            report[name] = {"error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc().splitlines()[-12:]}  # fmt: skip
        report.setdefault("stage_seconds", {})[name] = round(time.perf_counter() - t0, 2)
        save()

    stage("ablation", lambda: ablation(folder, model, out))  # as the ablation runner would
    stage("peer", lambda: peer(folder, model, quick))  # one cell, then 10 seeds
    if cuda:
        stage("sync_check", lambda: sync_check(folder, model))
        stage("profile", lambda: profile(folder, model))  # where the time goes
        stage("profile_80", lambda: profile_all(folder, model))
    if (folder / "judges").is_dir():  # the judge study's reference cells (bench/judges.py)
        stage("judges", lambda: judges(folder, model, out))
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    print(json.dumps(report, indent=1, default=str))
    return 0


def ablation(folder: Path, model: Path, out: Path) -> dict:
    import torch

    from assay.train.cells_io import RESULTS, train_cells

    cuda = torch.cuda.is_available()
    _sync()
    t0 = time.perf_counter()
    summary = train_cells(folder / "cells", model=str(model))
    wall = time.perf_counter() - t0
    (out / RESULTS).write_bytes((folder / "cells" / RESULTS).read_bytes())
    cells = summary["cells"].values()
    return {
        "cells": len(summary["cells"]),
        "wall_seconds": round(wall, 2),
        "train_seconds": round(summary["seconds"], 2),
        "examples": int(sum(c["examples_per_s"] * c["seconds"] for c in cells)),
        "steps": sorted({c["steps"] for c in cells}),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }


def judges(folder: Path, model: Path, out: Path) -> dict:
    """Train every exported folder of the judge study; their answers travel back as one tar
    (a call returns few files)."""
    import tarfile

    from assay.train.cells_io import RESULTS, train_cells

    done = {}
    for cells in sorted(p for p in (folder / "judges").iterdir() if p.is_dir()):
        _sync()
        t0 = time.perf_counter()
        summary = train_cells(cells, model=str(model))
        done[cells.name] = {"cells": len(summary["cells"]),
                            "wall_seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
        with tarfile.open(out / "judges.tar", "w") as tar:  # rewritten after each folder
            for name in done:
                tar.add(folder / "judges" / name / RESULTS, arcname=f"{name}/{RESULTS}")
    return done


def sync_check(folder: Path, model: Path) -> dict:
    """A few steps of a 10-seed stack with CUDA's sync debug mode at "error"."""
    from assay.train.finetune import FineTuneConfig
    from assay.train.stacked import Cell, train_stack

    options, seeds, draws, dev, test = _peer_data(folder)
    config = FineTuneConfig(model=str(model), **{**options, "max_steps": 40})
    cells = [Cell(s, *draws[i]) for i, s in enumerate(seeds[:10])]
    train_stack(cells, config, test[0][:32], dev, check_syncs=True)
    return {"steps": 40, "cells": len(cells), "host_syncs_in_training_steps": 0}


def _peer_data(folder: Path):
    import pyarrow.parquet as pq

    meta = json.loads((folder / "cells" / "cells.json").read_text())
    jobs = pq.read_table(folder / "cells" / "jobs.parquet").to_pydict()
    evals = pq.read_table(folder / "cells" / "eval.parquet").to_pydict()
    # The baseline arm's cells come first, one per seed (each seed its own train draw).
    seeds = sorted({c["seed"] for c in meta["cells"]})
    draws = []
    for index in range(len(seeds)):
        rows = [i for i, c in enumerate(jobs["cell"]) if c == index]
        draws.append(([jobs["text"][i] for i in rows], [jobs["label"][i] for i in rows]))
    test = [i for i, s in enumerate(evals["split"]) if s == "test"]
    dev = [i for i, s in enumerate(evals["split"]) if s == "dev"]
    return (
        meta["cells"][0]["options"],
        seeds,
        draws,
        ([evals["text"][i] for i in dev], [evals["label"][i] for i in dev]),
        ([evals["text"][i] for i in test], [evals["label"][i] for i in test]),
    )


def peer(folder: Path, model: Path, quick: bool) -> dict:
    import numpy as np

    from assay.train.finetune import FineTuneConfig
    from assay.train.stacked import Cell, train_stack

    options, seeds, draws, dev, test = _peer_data(folder)
    config = FineTuneConfig(model=str(model), **options)
    out: dict = {"options": options, "rows": len(draws[0][0]), "test_rows": len(test[0])}

    def accuracy(proba, classes) -> float:
        pred = [classes[i] for i in proba.argmax(1)]
        return float(np.mean([p == t for p, t in zip(pred, test[1], strict=True)]))

    def assay_run(n: int) -> dict:
        cells = [Cell(s, *draws[i]) for i, s in enumerate(seeds[:n])]
        _sync()
        t0 = time.perf_counter()
        results = train_stack(cells, config, test[0], dev)
        _sync()
        wall = time.perf_counter() - t0
        examples = sum(r.train_examples for r in results)
        accs = [accuracy(r.proba, r.classes) for r in results]
        return {
            "seeds": n,
            "examples": examples,
            "train_seconds": round(results[0].train_seconds, 3),
            "wall_seconds": round(wall, 3),
            "examples_per_s": round(examples / results[0].train_seconds, 1),
            "test_accuracy": accs,
            "test_accuracy_mean": float(np.mean(accs)),
        }

    out["assay_1_seed"] = assay_run(1)
    out["assay_10_seeds"] = assay_run(min(10, len(seeds)))
    runs = [trainer_run(model, config, draws[i], test, seeds[i], quick)
            for i in range(min(TRAINER_SEEDS, len(seeds)))]  # fmt: skip
    out["trainer"] = {
        "seeds": len(runs),
        "runs": runs,
        # Seeds run one after another: the aggregate rate is the per-run rate.
        "examples_per_s": round(
            sum(r["examples"] for r in runs) / sum(r["train_seconds"] for r in runs), 1
        ),
        "test_accuracy_mean": float(np.mean([r["test_accuracy"] for r in runs])),
    }
    out["speedup_10_seeds_vs_trainer"] = round(
        out["assay_10_seeds"]["examples_per_s"] / out["trainer"]["examples_per_s"], 2
    )
    out["speedup_1_seed_vs_trainer"] = round(
        out["assay_1_seed"]["examples_per_s"] / out["trainer"]["examples_per_s"], 2
    )
    return out


def trainer_run(model: Path, config, draw, test, seed: int, quick: bool, steps=None) -> dict:
    """Hugging Face `Trainer` as an expert sets it up for this job on a GPU."""
    import tempfile

    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    texts, labels = draw
    classes = sorted(set(labels))
    tokenizer = AutoTokenizer.from_pretrained(model)
    set_seed(seed)
    net = AutoModelForSequenceClassification.from_pretrained(
        model, num_labels=len(classes), dtype=torch.float32
    )

    def rows(t, y):
        enc = tokenizer(t, truncation=True, max_length=config.max_length)
        return [{"input_ids": i, "attention_mask": m, "labels": classes.index(v)}
                for i, m, v in zip(enc["input_ids"], enc["attention_mask"], y, strict=True)]  # fmt: skip

    cuda = torch.cuda.is_available()
    steps = steps or config.max_steps
    import dataclasses

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    # Length-grouped batches: named train_sampling_strategy in newer releases.
    grouping = (
        {"train_sampling_strategy": "group_by_length"}
        if "train_sampling_strategy" in fields
        else {"group_by_length": True}
    )
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            **grouping,
            output_dir=tmp,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=256,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            warmup_steps=int(steps * config.warmup_ratio),
            max_steps=steps,
            lr_scheduler_type="linear",
            max_grad_norm=config.max_grad_norm or 0.0,
            seed=seed,
            bf16=cuda,
            optim="adamw_torch_fused" if cuda else "adamw_torch",
            dataloader_num_workers=0 if quick or not cuda else 4,
            dataloader_pin_memory=cuda,
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=not cuda,
        )
        trainer = Trainer(model=net, args=args, train_dataset=rows(texts, labels),
                          processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer))  # fmt: skip
        _sync()
        t0 = time.perf_counter()
        trainer.train()
        _sync()
        seconds = time.perf_counter() - t0
        pred = trainer.predict(rows(*test))
    acc = float((np.argmax(pred.predictions, 1) == np.asarray(pred.label_ids)).mean())
    examples = steps * config.batch_size
    return {"seed": seed, "examples": examples, "train_seconds": round(seconds, 3),
            "examples_per_s": round(examples / seconds, 1), "test_accuracy": acc}  # fmt: skip


def profile(folder: Path, model: Path) -> dict:
    """Kernels per optimiser step and GPU-busy share of wall time, 20 steps each."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from assay.train.finetune import FineTuneConfig
    from assay.train.stacked import Cell, train_stack

    options, seeds, draws, _dev, test = _peer_data(folder)
    short = {**options, "max_steps": PROFILE_STEPS}
    config = FineTuneConfig(model=str(model), **short)
    out = {}
    cases = {
        "assay_10_seeds": lambda: train_stack(
            [Cell(s, *draws[i]) for i, s in enumerate(seeds[:10])], config, test[0][:64]
        ),
        "trainer_1_seed": lambda: trainer_run(model, config, draws[0], (test[0][:64],
                                              test[1][:64]), seeds[0], False, PROFILE_STEPS),
    }  # fmt: skip
    for name, fn in cases.items():
        fn()  # warm: the first call loads and compiles what it needs
        _sync()
        t0 = time.perf_counter()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            _sync()
        wall = time.perf_counter() - t0
        kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
        busy = sum(e.device_time for e in kernels) / 1e6
        try:
            top = prof.key_averages().table(sort_by="self_device_time_total", row_limit=8)
        except (KeyError, AttributeError, ValueError):
            top = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=8)
        out[name] = {
            "steps": PROFILE_STEPS,
            "kernels": len(kernels),
            "kernels_per_step": round(len(kernels) / PROFILE_STEPS, 1),
            "gpu_busy_seconds": round(busy, 4),
            "wall_seconds": round(wall, 3),
            "gpu_busy_share": round(busy / wall, 4),
            "top": top.splitlines()[:14],
        }
    return out


def profile_all(folder: Path, model: Path, steps: int = 10) -> dict:
    """The ablation's 80 cells as one stack for a few steps: the top device and host ops."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from assay.train.cells_io import META, read_jobs
    from assay.train.finetune import FineTuneConfig
    from assay.train.stacked import train_stack

    meta = json.loads((folder / "cells" / META).read_text())
    cells, evals, _dev = read_jobs(folder / "cells")
    options = {**meta["cells"][0]["options"], "max_steps": steps}
    config = FineTuneConfig(model=str(model), **options)
    torch.cuda.reset_peak_memory_stats()
    _sync()
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        train_stack(cells, config, evals["text"][:64], None)
        _sync()
    wall = time.perf_counter() - t0
    averages = prof.key_averages()
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    stats = torch.cuda.memory_stats()
    return {
        "cells": len(cells),
        "steps": steps,
        "wall_seconds": round(wall, 3),
        "gpu_busy_seconds": round(sum(e.device_time for e in kernels) / 1e6, 4),
        "kernels_per_step": round(len(kernels) / steps, 1),
        "alloc_retries": stats.get("num_alloc_retries"),
        "cuda_mallocs": stats.get("segment.all.allocated"),
        "top_device": [
            [a.key, round(a.self_device_time_total / 1e3, 2), a.count]
            for a in sorted(averages, key=lambda a: -a.self_device_time_total)[:15]
        ],
        "top_host": [
            [a.key, round(a.self_cpu_time_total / 1e3, 2), a.count]
            for a in sorted(averages, key=lambda a: -a.self_cpu_time_total)[:15]
        ],
    }


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# -- report (CPU) ---------------------------------------------------------------------------


def report(folder: Path, results: Path, json_out: Path | None) -> int:
    from assay.recipes.ablation import run_ablation
    from assay.train.cells_io import CellsElsewhere

    settings = json.loads((folder / "settings.json").read_text())
    device = json.loads((results / "gpu.json").read_text())
    recipe, _ = _recipe(folder, settings["dry_run"])
    result = run_ablation(recipe, folder / "ablation", device="cpu" if settings["dry_run"]
                          else "cuda", train=CellsElsewhere(folder / "cells", results /
                          "results.npz"))  # fmt: skip
    table = [
        {k: r.get(k) for k in ("arm", "train_rows", "score", "delta", "delta_low",
                               "delta_high", "p_value", "verdict")}
        for r in result.report["arms"]
    ]  # fmt: skip
    peer_ = device.get("peer", {})
    targets = []
    if "assay_10_seeds" in peer_:
        assay10, trainer = peer_["assay_10_seeds"], peer_["trainer"]
        # Against the Trainer's fastest run: its first run also pays the process's warm-up.
        best = max(r["examples_per_s"] for r in trainer["runs"])
        ratio = assay10["examples_per_s"] / best
        targets.append({"name": "examples_per_s_10_seeds_vs_fastest_trainer_run",
                        "value": round(ratio, 2),
                        "target": ">= 3", "met": ratio >= 3})  # fmt: skip
        gap = assay10["test_accuracy_mean"] - trainer["test_accuracy_mean"]
        spread = _ci_half_width(assay10["test_accuracy"])
        targets.append({"name": "test_accuracy_minus_trainer", "value": round(gap, 4),
                        "target": f">= -{spread:.4f} (the 10 seeds' 95% CI half-width)",
                        "met": gap >= -spread})  # fmt: skip
    if "wall_seconds" in device.get("ablation", {}):
        wall = device["ablation"]["wall_seconds"]
        targets.append({"name": "ablation_8x10_wall_seconds", "value": wall,
                        "target": "<= 60", "met": wall <= 60})  # fmt: skip
    out = {
        "bench": "gpu",
        "date": device.get("started"),
        "env": device.get("env"),
        "ablation": {**device.get("ablation", {}), "judge": result.report.get("judge"),
                     "seeds": result.report["seeds"], "table": table},
        "peer": peer_,
        "profile": device.get("profile"),
        "targets": targets,
    }  # fmt: skip
    for t in targets:
        print(f"{t['name']:<40}{t['value']!s:>10}  target {t['target']:<10} "
              f"{'met' if t['met'] else 'NOT met'}")  # fmt: skip
    for row in table:
        delta = "" if row["delta"] is None else (
            f"{100 * row['delta']:+.2f} [{100 * row['delta_low']:+.2f}, "
            f"{100 * row['delta_high']:+.2f}]")  # fmt: skip
        print(f"{row['arm']:<36}{100 * row['score']:8.2f}  {delta}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0


def _ci_half_width(values: list[float]) -> float:
    import numpy as np
    from scipy import stats

    if len(values) < 2:
        return 0.0
    return float(
        stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["prepare", "run", "report"])
    parser.add_argument("--dir", type=Path, default=REPO / ".device")
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/assay-device-model"))
    parser.add_argument("--out", type=Path, default=None, help="run: where results go")
    parser.add_argument("--results", type=Path, default=None, help="report: the run's --out")
    parser.add_argument("--json", type=Path, default=None, help="report: write the JSON here")
    parser.add_argument("--dry-run", action="store_true", help="prepare: tiny model and data")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=STAGES, help="run: which")
    args = parser.parse_args(argv)
    if args.stage == "prepare":
        return prepare(args.dir, args.dry_run)
    if args.stage == "run":
        quick = json.loads((args.dir / "settings.json").read_text())["dry_run"]
        return run(args.dir, args.model_dir, args.out or args.dir / "out", quick, args.stages)
    return report(args.dir, args.results or args.dir / "out", args.json)


if __name__ == "__main__":
    raise SystemExit(main())
