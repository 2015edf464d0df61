"""Benchmark: assay's fine-tune loop against a Hugging Face Trainer, in one process.

Same model (the packaged all-MiniLM-L6-v2 + a fresh classification head), same data
(SST-2: the first 2,000 train sentences, the 1,821 test sentences), batch 16, max length
64, learning rate 5e-5, weight decay 0.01, no warmup, linear decay, 1 epoch, seed 0:

- `assay`: `EncoderModel` (length-bucketed batches, fused AdamW, only the embedding rows
  of tokens in the training set trained, thread count chosen by timing training steps).
- `trainer_tutorial`: `Trainer` as the Transformers text-classification tutorial sets it
  up (`DataCollatorWithPadding`, random batches), torch's default thread count.
- `trainer_grouped`: the same with `train_sampling_strategy="group_by_length"`. That
  strategy also length-groups prediction batches (in a shuffled order), so test accuracy
  is scored against the label ids `Trainer.predict` returns in its own order.

Attribution arms (skip with `--no-attribution`): `assay_random_batches` (no length
buckets), `assay_all_embedding_rows` (every embedding row trained, as the Trainer does)
and `trainer_grouped_same_threads` (the Trainer at assay's thread count).

Also: the fast-model ablation of `recipes/ablation.yaml` (baseline + 5 arms x 3 seeds,
cold step cache, no finished cells), timed in this process (needs `assay data get
vader-movies`; skip with `--no-ablation`).

Throughput is training examples per second of the training loop only (model loading,
tokenisation and evaluation excluded for every arm). The machine may be shared: quote the
ratios of one run, not absolute numbers.

The three main arms run `--repeats` times, interleaved (median throughput).

    .venv/bin/python bench/train.py [--rows 2000] [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sst2"
MAX_LEN = 64
BATCH = 16
LR = 5e-5  # the Trainer's default
WEIGHT_DECAY = 0.01
EPOCHS = 1
SEED = 0


def load(rows: int):
    import polars as pl

    train = pl.read_csv(DATA / "train.csv").head(rows)
    test = pl.read_csv(DATA / "test.csv")
    return (
        train["text"].to_list(),
        train["label"].to_list(),
        test["text"].to_list(),
        test["label"].to_list(),
    )


def run_assay(data, threads: int | None, bucket: bool = True, sliced: bool = True) -> dict:
    from assay.train.finetune import EncoderModel

    texts, labels, test_texts, test_labels = data
    model = EncoderModel(
        seed=SEED,
        max_length=MAX_LEN,
        batch_size=BATCH,
        epochs=EPOCHS,
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        warmup_ratio=0.0,
        early_stopping_patience=None,
        bucket_by_length=bucket,
        slice_embeddings=sliced,
        threads=threads,
    )
    model.fit(texts, labels)
    pred = model.predict(test_texts)
    acc = sum(p == t for p, t in zip(pred, test_labels, strict=True)) / len(test_labels)
    return {
        "examples_per_s": round(model.examples_per_s, 2),
        "train_seconds": round(model.train_seconds, 2),
        "steps": model.steps,
        # The thread count the tuner settled on most often (or the one given).
        "threads": _mode([t for _, t in model.thread_history]) or model.setup.threads,
        "thread_choices": model.thread_history,
        "test_accuracy": round(acc, 4),
    }


def _mode(values: list[int]) -> int | None:
    return max(set(values), key=values.count) if values else None


def run_trainer(data, threads: int, grouped: bool) -> dict:
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from assay.resources import encoder

    torch.set_num_threads(threads)
    texts, labels, test_texts, test_labels = data
    classes = sorted(set(labels))
    path = encoder(None)
    tokenizer = AutoTokenizer.from_pretrained(path)
    set_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
    )

    def dataset(t, y):
        ds = Dataset.from_dict({"text": t, "label": [classes.index(v) for v in y]})
        return ds.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LEN),
            batched=True,
            remove_columns=["text"],
        )

    train_ds, test_ds = dataset(texts, labels), dataset(test_texts, test_labels)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=64,
            learning_rate=LR,
            weight_decay=WEIGHT_DECAY,
            num_train_epochs=EPOCHS,
            seed=SEED,
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            train_sampling_strategy="group_by_length" if grouped else "random",
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.remove_callback(PrinterCallback)  # keep the table readable
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
        # With group_by_length the Trainer also length-groups (and shuffles) prediction
        # batches, so predictions come back in the sampler's order, not the dataset's: score
        # them against the label ids returned alongside, which are in that same order.
        out = trainer.predict(test_ds)
    acc = float((np.argmax(out.predictions, axis=1) == np.asarray(out.label_ids)).mean())
    return {
        "examples_per_s": round(len(texts) * EPOCHS / seconds, 2),
        "train_seconds": round(seconds, 2),
        "steps": int(result.global_step),
        "threads": threads,
        "test_accuracy": round(acc, 4),
    }


def run_fast_ablation() -> dict:
    """Time `assay ablate recipes/ablation.yaml` with the fast model, from a cold cache."""
    from assay.cache import StepCache
    from assay.recipes.ablation import run_ablation

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run_ablation(
            REPO / "recipes" / "ablation.yaml",
            Path(tmp) / "out",
            cache=StepCache(Path(tmp) / "cache"),
        )
        seconds = time.perf_counter() - started
    arms = result.report["arms"]
    return {
        "seconds": round(seconds, 2),
        "arms": len(arms),
        "variants": len(arms) - 1,
        "seeds": len(result.report["seeds"]),
        "table": [
            {
                "arm": r["arm"],
                "train_rows": round(r["train_rows"]),
                "macro_f1": round(100 * r["score"], 2),
                "delta": None if "delta" not in r else round(100 * r["delta"], 2),
                "ci": None
                if "delta" not in r
                else [round(100 * r["delta_low"], 2), round(100 * r["delta_high"], 2)],
                "p": r.get("p_value"),
                "vs_control": None
                if "vs_control_delta" not in r
                else round(100 * r["vs_control_delta"], 2),
                "seconds_per_seed": round(r["seconds"], 2),
            }
            for r in arms
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="training rows (SST-2 train head)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument(
        "--no-attribution", action="store_true", help="skip the two attribution arms"
    )
    parser.add_argument(
        "--no-ablation", action="store_true", help="skip the fast-model ablation timing"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="interleaved runs of the three main arms"
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"SST-2 not found at {DATA}", file=sys.stderr)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    import torch
    import transformers

    from assay.train.device import free_cores

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    default_threads = torch.get_num_threads()
    data = load(args.rows)

    results: dict[str, dict] = {}
    ablation = None
    if not args.no_ablation:
        ablation = run_fast_ablation()
    free = free_cores()
    main_arms = {
        "assay": lambda: run_assay(data, threads=None),
        "trainer_tutorial": lambda: run_trainer(data, default_threads, grouped=False),
        "trainer_grouped": lambda: run_trainer(data, default_threads, grouped=True),
    }
    runs: dict[str, list[dict]] = {name: [] for name in main_arms}
    for _ in range(args.repeats):  # interleaved, so load changes hit every arm alike
        for name, fn in main_arms.items():
            runs[name].append(fn())
    for name, arm_runs in runs.items():
        results[name] = _median_run(arm_runs)
    assay_threads = results["assay"]["threads"]
    if not args.no_attribution:
        results["assay_random_batches"] = run_assay(data, threads=assay_threads, bucket=False)
        results["assay_all_embedding_rows"] = run_assay(data, threads=assay_threads, sliced=False)
        results["trainer_grouped_same_threads"] = run_trainer(data, assay_threads, grouped=True)

    a = results["assay"]
    tut = results["trainer_tutorial"]
    grp = results["trainer_grouped"]
    targets = [
        _target("speedup_vs_trainer_tutorial", a["examples_per_s"] / tut["examples_per_s"], 1.5),
        _target("speedup_vs_trainer_grouped", a["examples_per_s"] / grp["examples_per_s"], 1.0),
        _target("accuracy_minus_trainer_tutorial", a["test_accuracy"] - tut["test_accuracy"], 0.0),
        _target("accuracy_minus_trainer_grouped", a["test_accuracy"] - grp["test_accuracy"], 0.0),
    ]
    if ablation is not None:
        targets.append(
            {
                "name": "fast_ablation_seconds",
                "value": ablation["seconds"],
                "target": "<= 60",
                "met": ablation["seconds"] <= 60,
            }
        )
        results["fast_ablation"] = ablation
    params = {
        "rows": args.rows,
        "max_length": MAX_LEN,
        "batch_size": BATCH,
        "learning_rate": LR,
        "epochs": EPOCHS,
        "cores": os.cpu_count(),
        "free_cores_at_start": free,
        "torch_default_threads": default_threads,
    }
    _print_table(results, targets, params)
    if args.json:
        print(
            json.dumps({"bench": "train", "params": params, "results": results, "targets": targets})
        )
    return 0


def _median_run(runs: list[dict]) -> dict:
    """Median throughput over repeats; accuracy and steps from the first run."""
    import statistics

    out = dict(runs[0])
    out["examples_per_s"] = round(statistics.median(r["examples_per_s"] for r in runs), 2)
    out["examples_per_s_runs"] = [r["examples_per_s"] for r in runs]
    return out


def _target(name: str, value: float, floor: float) -> dict:
    return {
        "name": name,
        "value": round(value, 4),
        "target": f">= {floor:g}",
        "met": value >= floor,
    }


def _print_table(results: dict, targets: list, params: dict) -> None:
    base = results["trainer_tutorial"]["examples_per_s"]
    ablation = results.pop("fast_ablation", None)
    if ablation is not None:
        print(
            f"\nfast-model ablation of recipes/ablation.yaml: {ablation['variants']} arms + "
            f"baseline x {ablation['seeds']} seeds in {ablation['seconds']:.1f} s"
        )
        print(f"{'arm':<32}{'rows':>7}{'macro-F1':>10}{'delta [95% CI]':>24}{'p':>8}{'vs ctrl':>9}")
        for r in ablation["table"]:
            ci = (
                ""
                if r["ci"] is None
                else f"{r['delta']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]"
            )
            p = "" if r["p"] is None else f"{r['p']:.2g}"
            ctrl = "" if r["vs_control"] is None else f"{r['vs_control']:+.2f}"
            print(
                f"{r['arm']:<32}{r['train_rows']:>7}{r['macro_f1']:>10.2f}{ci:>24}{p:>8}{ctrl:>9}"
            )
    print(f"\ntraining throughput, same process ({params})")
    print(f"{'arm':<30}{'threads':>8}{'steps':>7}{'ex/s':>9}{'x tutorial':>12}{'test acc':>10}")
    for name, r in results.items():
        print(
            f"{name:<30}{r['threads']:>8}{r['steps']:>7}{r['examples_per_s']:>9.1f}"
            f"{r['examples_per_s'] / base:>12.2f}{r['test_accuracy']:>10.4f}"
        )
    print()
    if ablation is not None:
        results["fast_ablation"] = ablation
    for t in targets:
        print(
            f"{t['name']:<36}{t['value']:>9.3f}  target {t['target']:<7} {'met' if t['met'] else 'NOT met'}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
