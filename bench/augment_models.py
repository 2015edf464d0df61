"""Benchmark: back-translation and the translators behind it.

- Apertium back-translation (eng -> spa -> eng) of `--rows` MR sentences through assay's
  `back_translation` step, end to end (`run_steps`: ids, duplicate checks, books), with an
  empty translation cache, against two raw batched `apertium` calls on the same sentences
  (one process each way, newline-separated). Paired, alternating which goes first; the
  target is the median of the per-pair time ratios over `--repeats`; the same pairs' CPU
  time ratio (this process and its children) is reported beside it, as the machine's other
  load changes wall times, not CPU times. Then the same step again on a warm translation
  cache (a second run), against the first.
  Batch dependence: the same sentences translated eng -> spa in two batch orders (given
  and reversed), raw `apertium` and assay's translator (no cache): the share of sentences
  whose translation differs. Raw Apertium's HMM tagger carries state through a stream, so
  its output depends on the batch; assay tags each sentence alone, which is what makes it
  slower than the raw call.
- CTranslate2 against Hugging Face transformers on the same tiny randomly initialised
  Marian model (built and converted here, offline; greedy, CPU, batches of 32), on the
  same sentences: sentences per second each (no cache).
- With `--guard`: the label guard on 500 SST-2 test sentences. Each gets a faithful child
  (its own Apertium round trip) and a label-flipped child (a test sentence of the other
  class presented as its child); the guard (defaults: fast model trained on SST-2 train,
  min_confidence 0.5) should reject the flipped ones and keep the faithful ones.
- With `--generate`: the packaged SmolLM2-135M-Instruct writing paraphrases of
  `--prompts` MR sentences (the `generate` step's prompt, sampling at its defaults,
  `--new-tokens` new tokens at most), one prompt at a time and in batches of
  `--batch-size` (left-padded), in the same run: paired per group of one batch's prompts,
  alternating which goes first; generated tokens per second (wall and CPU) each. The
  target is batched at least 3x unbatched. `--no-translation` runs this part alone.

    .venv/bin/python bench/augment_models.py [--rows 2000] [--guard] [--generate] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from harness import target  # noqa: E402

DATA = REPO.parent / "shared" / "data"
TOKENIZER_FILES = ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json"]


def load(rows: int) -> list[str]:
    import polars as pl

    return pl.read_csv(DATA / "mr" / "all.csv")["text"].head(rows).to_list()


def raw_apertium(texts: list[str]) -> tuple[float, list[str]]:
    exe = shutil.which("apertium")
    assert exe is not None
    t0 = time.perf_counter()
    spa = subprocess.run(
        [exe, "-u", "eng-spa"], input="\n".join(texts) + "\n", capture_output=True, text=True
    ).stdout
    eng = subprocess.run([exe, "-u", "spa-eng"], input=spa, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, eng.split("\n")[:-1]


def assay_back_translation(texts: list[str], home: Path) -> tuple[float, int]:
    from assay import RunContext, from_records
    from assay.augment.back_translation import BackTranslationAugmenter
    from assay.recipes.runner import run_steps

    os.environ["ASSAY_HOME"] = str(home)
    corpus = from_records(texts, ["x"] * len(texts), split=["train"] * len(texts))
    t0 = time.perf_counter()
    out = run_steps(corpus, [BackTranslationAugmenter(pivots=["spa"])], RunContext(seed=7))
    return time.perf_counter() - t0, out.reports[0].n_added


def batch_dependence(texts: list[str]) -> dict:
    """Share of sentences translated differently in another batch order: raw and assay."""
    from assay.augment import translate

    exe = shutil.which("apertium")
    assert exe is not None

    def raw(lines: list[str]) -> list[str]:
        out = subprocess.run(
            [exe, "-u", "eng-spa"],
            input="\n\n".join(lines) + "\n",
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        return [" ".join(line.split()) for line in out[::2]][: len(lines)]

    def ours(lines: list[str]) -> list[str]:
        return translate.translator("apertium", cache=False).translate(lines, "eng", "spa")

    share = {}
    for name, fn in (("raw_apertium", raw), ("assay", ours)):
        forward, backward = fn(texts), fn(texts[::-1])[::-1]
        share[name] = sum(a != b for a, b in zip(forward, backward, strict=True)) / len(texts)
    return share


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: unlike the wall clock, it does
    not grow with the machine's other load."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_apertium(texts: list[str], repeats: int, tmp: Path) -> dict:
    raw, cold, warm, ratios, cpu_ratios = [], [], [], [], []
    added = 0
    for r in range(repeats):
        # Paired and alternating: raw then assay, assay then raw, ...
        home = tmp / f"home{r}"
        for which in ("raw", "assay") if r % 2 == 0 else ("assay", "raw"):
            cpu = cpu_seconds()
            if which == "raw":
                raw.append(raw_apertium(texts)[0])
                raw_cpu = cpu_seconds() - cpu
            else:
                seconds, added = assay_back_translation(texts, home)
                assay_cpu = cpu_seconds() - cpu
        cold.append(seconds)
        ratios.append(seconds / raw[-1])
        cpu_ratios.append(assay_cpu / raw_cpu)
        warm.append(assay_back_translation(texts, home)[0])
    n = len(texts)
    return {
        "paired_time_ratio": statistics.median(ratios),
        "paired_cpu_ratio": statistics.median(cpu_ratios),
        "raw_apertium": {
            "seconds": statistics.median(raw),
            "sentences_per_s": n / statistics.median(raw),
        },
        "assay_cold": {
            "seconds": statistics.median(cold),
            "sentences_per_s": n / statistics.median(cold),
            "added": added,
        },
        "assay_warm_cache": {
            "seconds": statistics.median(warm),
            "sentences_per_s": n / statistics.median(warm),
        },
    }


def bench_models(texts: list[str], repeats: int, tmp: Path, max_length: int) -> dict:
    import ctranslate2

    from assay.augment.translate import CTranslate2Translator, HFTranslator
    from assay.testing import tiny_marian

    model = tiny_marian(tmp / "marian", texts, vocab_size=1000, d_model=64, layers=2, positions=128)
    converted = tmp / "marian-ct2"
    ctranslate2.converters.TransformersConverter(str(model), copy_files=TOKENIZER_FILES).convert(
        str(converted)
    )
    hf = HFTranslator(str(model), device="cpu", batch_size=32, max_length=max_length, cache=False)
    ct2 = CTranslate2Translator(
        str(converted), device="cpu", batch_size=32, max_length=max_length, cache=False
    )
    hf.translate(texts[:64], "eng", "spa")  # load and warm up both
    ct2.translate(texts[:64], "eng", "spa")
    times: dict[str, list[float]] = {"hf_transformers": [], "ctranslate2": []}
    for _ in range(repeats):
        for name, translator in (("hf_transformers", hf), ("ctranslate2", ct2)):
            t0 = time.perf_counter()
            translator.translate(texts, "eng", "spa")
            times[name].append(time.perf_counter() - t0)
    n = len(texts)
    return {
        name: {"seconds": statistics.median(t), "sentences_per_s": n / statistics.median(t)}
        for name, t in times.items()
    }


def bench_guard(n: int) -> dict:
    import numpy as np
    import polars as pl

    from assay import from_records
    from assay.augment.guard import GuardConfig, check
    from assay.augment.translate import translator

    train = pl.read_csv(DATA / "sst2" / "train.csv")
    test = pl.read_csv(DATA / "sst2" / "test.csv").head(n)
    corpus = from_records(
        train["text"].to_list(), train["label"].to_list(), split=["train"] * train.height
    )
    parents = from_records(
        test["text"].to_list(),
        test["label"].to_list(),
        ids=[f"t{i}" for i in range(test.height)],
        split=["test"] * test.height,
    )
    apertium = translator("apertium")
    faithful = apertium.translate(
        apertium.translate(test["text"].to_list(), "eng", "spa"), "spa", "eng"
    )
    labels = test["label"].to_list()
    rng = np.random.default_rng(0)
    flipped = []
    for label in labels:
        others = np.flatnonzero(np.array(labels) != label)
        flipped.append(test["text"][int(rng.choice(others))])
    ids = parents["id"].to_list()
    new = pl.DataFrame({"parent_id": ids + ids, "text": faithful + flipped})
    checked = check(GuardConfig(), corpus, parents, new, 7, "back_translation")
    rejected = checked["_guard_reason"].is_not_null().to_numpy()
    return {
        "n": test.height,
        "faithful_kept": float(1 - rejected[: test.height].mean()),
        "flipped_rejected": float(rejected[test.height :].mean()),
    }


def bench_generate(n: int, batch_size: int, new_tokens: int) -> dict:
    """Unbatched and batched generation on the same prompts, in pairs of one batch's
    prompts, alternating which goes first (the load of a shared machine drifts)."""
    from assay.augment.generate import PARAPHRASE_PROMPT
    from assay.augment.lm import CausalLM, causal_lm

    texts = load(n)
    prompts = [PARAPHRASE_PROMPT.replace("{text}", t) for t in texts]
    t0 = time.perf_counter()
    loaded = causal_lm("smollm2", device="cpu")
    load_seconds = time.perf_counter() - t0
    loaded.generate(prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up
    models = {
        name: CausalLM(loaded.name, loaded.tokenizer, loaded.model, loaded.device)
        for name in ("unbatched", "batched")
    }
    sizes = {"unbatched": 1, "batched": batch_size}
    cpu = dict.fromkeys(models, 0.0)
    examples: dict[str, str] = {}
    for k, start in enumerate(range(0, len(prompts), batch_size)):
        group = prompts[start : start + batch_size]
        order = ["unbatched", "batched"] if k % 2 == 0 else ["batched", "unbatched"]
        for name in order:
            c0 = time.process_time()
            outputs = models[name].generate(
                group, max_new_tokens=new_tokens, batch_size=sizes[name], seed=7 + k
            )
            cpu[name] += time.process_time() - c0
            examples.setdefault(name, outputs[0][0])
    out: dict = {
        "prompts": len(prompts),
        "load_seconds": round(load_seconds, 2),
        "threads": _torch_threads(),
    }
    for name, model in models.items():
        stats = model.stats.to_dict()
        out[name] = {
            "batch_size": sizes[name],
            "seconds": stats["seconds"],
            "cpu_seconds": round(cpu[name], 2),
            "tokens": stats["tokens"],
            "tokens_per_s": stats["tokens_per_s"],
            "tokens_per_cpu_s": round(stats["tokens"] / cpu[name], 2),
            "sentences_per_s": round(len(prompts) / stats["seconds"], 3),
            "example": examples[name],
        }
    out["speedup"] = out["batched"]["tokens_per_s"] / out["unbatched"]["tokens_per_s"]
    out["speedup_cpu"] = out["batched"]["tokens_per_cpu_s"] / out["unbatched"]["tokens_per_cpu_s"]
    return out


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-length", type=int, default=48, help="tokens decoded per sentence")
    ap.add_argument("--guard", action="store_true", help="also the guard-quality benchmark")
    ap.add_argument("--generate", action="store_true", help="also SmolLM2 generation")
    ap.add_argument("--prompts", type=int, default=64, help="generate: prompts")
    ap.add_argument("--batch-size", type=int, default=16, help="generate: batched size")
    ap.add_argument("--new-tokens", type=int, default=32, help="generate: max new tokens")
    ap.add_argument("--no-translation", action="store_true", help="skip the translation benchmarks")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="assay-bench-", ignore_cleanup_errors=True) as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    results: dict = {}
    targets: list[dict] = []
    if not args.no_translation:
        texts = load(args.rows)
        results.update(bench_apertium(texts, args.repeats, tmp))
        results["batch_dependent_share"] = batch_dependence(texts)
        results.update(bench_models(texts, args.repeats, tmp, args.max_length))
        cold, warm = (results[k]["seconds"] for k in ("assay_cold", "assay_warm_cache"))
        hf, ct2 = results["hf_transformers"], results["ctranslate2"]
        targets += [
            target("apertium_time_vs_raw", results["paired_time_ratio"], 1.15, "<="),
            {
                "name": "apertium_cpu_vs_raw",
                "value": round(results["paired_cpu_ratio"], 3),
                "target": "reported",
                "met": True,
            },
            target(
                "assay_batch_dependent_share", results["batch_dependent_share"]["assay"], 0, "<="
            ),
            target("warm_cache_time_vs_first_run", warm / cold, 0.05, "<="),
            {
                "name": "ctranslate2_vs_hf_sentences_per_s",
                "value": round(ct2["sentences_per_s"] / hf["sentences_per_s"], 2),
                "target": "reported",
                "met": True,
            },
        ]
    if args.guard:
        results["guard"] = bench_guard(500)
        targets.append(
            target("guard_flipped_rejected", results["guard"]["flipped_rejected"], 0.8, ">=")
        )
        targets.append(target("guard_faithful_kept", results["guard"]["faithful_kept"], 0.8, ">="))
    if args.generate:
        gen = bench_generate(args.prompts, args.batch_size, args.new_tokens)
        results["generate"] = gen
        targets.append(
            target("generate_batched_vs_unbatched_tokens_per_s", gen["speedup"], 3, ">=")
        )
        targets.append(
            {
                "name": "generate_batched_vs_unbatched_tokens_per_cpu_s",
                "value": round(gen["speedup_cpu"], 2),
                "target": "reported",
                "met": True,
            }
        )
    report = {
        "bench": "augment_models",
        "params": {
            "rows": args.rows,
            "repeats": args.repeats,
            "max_length": args.max_length,
            "prompts": args.prompts,
            "batch_size": args.batch_size,
            "new_tokens": args.new_tokens,
        },
        "results": results,
        "targets": targets,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"back-translation benchmark: rows={args.rows}, median of {args.repeats}")
    print(f"{'method':<22}{'seconds':>10}{'sentences/s':>14}")
    for name, r in results.items():
        if isinstance(r, dict) and "seconds" in r:
            print(f"{name:<22}{r['seconds']:>10.3f}{r['sentences_per_s']:>14,.0f}")
    if "batch_dependent_share" in results:
        d = results["batch_dependent_share"]
        print(
            f"translated differently in another batch order: raw apertium "
            f"{d['raw_apertium']:.1%}, assay {d['assay']:.1%}"
        )
    if "generate" in results:
        g = results["generate"]
        print(
            f"SmolLM2 generation: {g['prompts']} prompts, loaded in {g['load_seconds']} s, "
            f"{g['threads']} torch threads"
        )
        for name in ("unbatched", "batched"):
            r = g[name]
            print(
                f"  batch {r['batch_size']:>3}: {r['tokens']} tokens in {r['seconds']:.1f} s "
                f"({r['cpu_seconds']:.1f} s CPU), {r['tokens_per_s']:.1f} tokens/s, "
                f"{r['tokens_per_cpu_s']:.1f} tokens/CPU-s, {r['sentences_per_s']:.2f} sentences/s"
            )
    if "guard" in results:
        g = results["guard"]
        print(
            f"guard on {g['n']} SST-2 test sentences: faithful kept {g['faithful_kept']:.3f}, "
            f"flipped rejected {g['flipped_rejected']:.3f}"
        )
    print()
    for t in targets:
        print(
            f"  {'MET ' if t['met'] else 'MISS'} {t['name']}: {t['value']} (target {t['target']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
