"""Benchmark: assay's synonym replacement and EDA against nlpaug and Wei & Zou's eda.py.

All runs use the same sentences (MR movie-review polarity, 10,662 by default):

- Synonym replacement at edit rate 0.1: assay's `synonyms` step (WordNet, Brill-lexicon
  POS with contextual correction) against nlpaug `SynonymAug(aug_src="wordnet",
  aug_p=0.1)`. nlpaug asks `nltk.pos_tag`, whose model is a download: it gets assay's
  offline lexicon tagger instead (cached; the fastest tagger available here, so nlpaug's
  number is its own augmentation path). Setup and the first, cache-filling ("cold") pass
  run in a fresh process per implementation (for assay also in a fresh home, where it
  first builds its WordNet tables); warm passes (median of `--repeats`, after
  one pass that fills every cache) alternate in this process. Also reported: the share of
  words changed (word-level diff of the lowercased words), and assay with nlpaug's count
  rule (ceil(p * words) instead of p * words rounded stochastically).
- EDA mix, 4 operations, 4 augmentations per sentence, alpha 0.1: assay's `eda` step
  against a plain-Python implementation of Wei & Zou's eda.py (below; same stop words,
  WordNet through NLTK, python `random`), both warm, per input sentence.

Throughput for assay is end to end through `Step.apply` (ids, parents, duplicate checks,
schema), the peers return strings only; assay's generation-only rate is shown as well.

    .venv/bin/python bench/augment.py [--data ../shared/data/mr/all.csv] [--json]
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mr" / "all.csv"
P = 0.1
_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def load(path: Path, rows: int | None) -> tuple[list[str], list[str]]:
    import polars as pl

    frame = pl.read_csv(path)
    if rows:
        frame = frame.head(rows)
    return frame["text"].to_list(), frame["label"].to_list()


def changed_share(parents: list[str], children: list[str]) -> float:
    """Share of the parents' words not kept in order by the child (word-level diff)."""
    total = changed = 0
    for a, b in zip(parents, children, strict=True):
        wa, wb = _WORDS.findall(a.lower()), _WORDS.findall(b.lower())
        kept = sum(m.size for m in difflib.SequenceMatcher(None, wa, wb).get_matching_blocks())
        total += len(wa)
        changed += len(wa) - kept
    return changed / max(total, 1)


# -- assay ----------------------------------------------------------------------------------


def assay_corpus(texts: list[str], labels: list[str]):
    from assay import from_records

    return from_records(texts, labels, split="train")


def assay_step(name: str, **params):
    from assay.augment.eda import EdaAugmenter, SynonymAugmenter

    cls = {"synonyms": SynonymAugmenter, "eda": EdaAugmenter}[name]
    return cls(**params)


def assay_run(step, corpus, seed: int):
    from assay import RunContext

    return step.apply(corpus, RunContext(seed=seed).for_step(0, step.name))


def assay_generate(step, texts: list[str], seed: int) -> int:
    """Generation only (no ids, no checks): the augmenter's batched path."""
    import numpy as np

    from assay.augment.base import draws

    return sum(
        1
        for _ in step.augment_batch(
            texts, step.config.n_per_row, draws(np.random.default_rng(seed))
        )
    )


# -- nlpaug ---------------------------------------------------------------------------------


def nlpaug_synonyms():
    import nlpaug.augmenter.word as naw
    import nlpaug.model.word_dict as nmw

    from assay.augment.tagger import default_tagger
    from assay.resources import wordnet

    wordnet()  # the offline NLTK data dir; nlpaug would call nltk.download otherwise
    tagger = default_tagger()
    nmw.WordNet.pos_tag = classmethod(
        lambda cls, tokens: list(zip(tokens, tagger.tag(tokens), strict=True))
    )
    return naw.SynonymAug(aug_src="wordnet", aug_p=P)


# -- Wei & Zou's eda.py, plain Python (the peer) ----------------------------------------------

EDA_STOP_WORDS = set(
    [
        "i",
        "me",
        "my",
        "myself",
        "we",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "a",
        "an",
        "the",
        "and",
        "but",
        "if",
        "or",
        "because",
        "as",
        "until",
        "while",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
    ]
) | {""}


class WeiZouEda:
    """Wei & Zou (2019) eda.py: the published algorithm, in plain Python."""

    def __init__(self, wordnet, seed: int = 1) -> None:
        self.wn = wordnet
        self.random = random.Random(seed)

    @staticmethod
    def get_only_chars(line: str) -> str:
        line = line.replace("’", "").replace("'", "").replace("-", " ").replace("\t", " ")
        line = line.replace("\n", " ").lower()
        clean = "".join(c if c in "qwertyuiopasdfghjklzxcvbnm " else " " for c in line)
        clean = re.sub(" +", " ", clean)
        return clean[1:] if clean[:1] == " " else clean

    def get_synonyms(self, word: str) -> list[str]:
        synonyms = set()
        for syn in self.wn.synsets(word):
            for lemma in syn.lemmas():
                synonym = lemma.name().replace("_", " ").replace("-", " ").lower()
                synonym = "".join(c for c in synonym if c in " qwertyuiopasdfghjklzxcvbnm")
                synonyms.add(synonym)
        synonyms.discard(word)
        return list(synonyms)

    def synonym_replacement(self, words: list[str], n: int) -> list[str]:
        new_words = words.copy()
        candidates = list({w for w in words if w not in EDA_STOP_WORDS})
        self.random.shuffle(candidates)
        replaced = 0
        for word in candidates:
            synonyms = self.get_synonyms(word)
            if synonyms:
                synonym = self.random.choice(synonyms)
                new_words = [synonym if w == word else w for w in new_words]
                replaced += 1
            if replaced >= n:
                break
        return " ".join(new_words).split(" ")

    def random_deletion(self, words: list[str], p: float) -> list[str]:
        if len(words) == 1:
            return words
        kept = [w for w in words if self.random.uniform(0, 1) > p]
        return kept or [words[self.random.randint(0, len(words) - 1)]]

    def random_swap(self, words: list[str], n: int) -> list[str]:
        new_words = words.copy()
        for _ in range(n):
            i = self.random.randint(0, len(new_words) - 1)
            j, tries = i, 0
            while j == i and tries <= 3:
                j = self.random.randint(0, len(new_words) - 1)
                tries += 1
            new_words[i], new_words[j] = new_words[j], new_words[i]
        return new_words

    def random_insertion(self, words: list[str], n: int) -> list[str]:
        new_words = words.copy()
        for _ in range(n):
            synonyms: list[str] = []
            tries = 0
            while not synonyms:
                word = new_words[self.random.randint(0, len(new_words) - 1)]
                synonyms = self.get_synonyms(word)
                tries += 1
                if tries >= 10:
                    break
            if synonyms:
                new_words.insert(self.random.randint(0, len(new_words) - 1), synonyms[0])
        return new_words

    def eda(self, sentence: str, alpha: float = 0.1, num_aug: int = 4) -> list[str]:
        words = [w for w in self.get_only_chars(sentence).split(" ") if w != ""]
        num_words = len(words)
        per_technique = int(num_aug / 4) + 1
        n = max(1, int(alpha * num_words))
        out: list[str] = []
        if not words:
            return [sentence]
        for _ in range(per_technique):
            out.append(" ".join(self.synonym_replacement(words, n)))
            out.append(" ".join(self.random_insertion(words, n)))
            out.append(" ".join(self.random_swap(words, n)))
            out.append(" ".join(self.random_deletion(words, alpha)))
        out = [self.get_only_chars(s) for s in out]
        self.random.shuffle(out)
        return out[:num_aug]


# -- measurements ---------------------------------------------------------------------------


def cold(which: str, data: Path, rows: int | None) -> dict:
    """Setup and first pass of one implementation, in this (fresh) process."""
    texts, labels = load(data, rows)
    started = time.perf_counter()
    if which == "assay":
        from assay.augment.tagger import context_rules, default_tagger
        from assay.augment.wordnet import default_synonyms

        default_synonyms()
        default_tagger()
        context_rules()
        step = assay_step("synonyms", p=P)
        corpus = assay_corpus(texts, labels)
        setup = time.perf_counter() - started
        t0 = time.perf_counter()
        assay_run(step, corpus, seed=1)
        first = time.perf_counter() - t0
    else:
        aug = nlpaug_synonyms()
        setup = time.perf_counter() - started
        random.seed(1)
        t0 = time.perf_counter()
        aug.augment(texts)
        first = time.perf_counter() - t0
    return {"setup_s": round(setup, 3), "cold_sents_per_s": round(len(texts) / first, 1)}


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(data: Path, rows: int | None, repeats: int) -> dict:
    texts, labels = load(data, rows)
    n = len(texts)
    results: dict[str, dict] = {}
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as fresh:
        # assay keeps its WordNet tables in its home: the first process ever builds them.
        env = {**os.environ, "ASSAY_HOME": fresh}
        for which, label in (("assay", "first"), ("assay", "assay"), ("nlpaug", "nlpaug")):
            out = subprocess.run(
                [sys.executable, __file__, "--cold", which, "--data", str(data)]
                + (["--rows", str(rows)] if rows else []),
                capture_output=True,
                text=True,
                check=True,
                env=env if which == "assay" else None,
            )
            results[f"{label}_synonyms"] = json.loads(out.stdout.strip().splitlines()[-1])
    first = results.pop("first_synonyms")
    results["assay_synonyms"]["setup_first_ever_s"] = first["setup_s"]

    # Warm: every cache filled by one pass, then alternate the implementations.
    from assay.resources import wordnet

    corpus = assay_corpus(texts, labels)
    syn = assay_step("synonyms", p=P)
    syn_ceil = assay_step("synonyms", p=P, rounding="ceil")  # nlpaug's count rule
    aug = nlpaug_synonyms()
    random.seed(1)
    assay_out = assay_run(syn, corpus, seed=1)
    ceil_out = assay_run(syn_ceil, corpus, seed=1)
    nlpaug_out = aug.augment(texts)
    t_assay, t_gen, t_ceil, t_nlpaug = [], [], [], []
    for k in range(repeats):
        t_assay.append(timed(lambda k=k: assay_run(syn, corpus, seed=k), 1))
        t_gen.append(timed(lambda k=k: assay_generate(syn, texts, k), 1))
        t_ceil.append(timed(lambda k=k: assay_run(syn_ceil, corpus, seed=k), 1))
        t_nlpaug.append(timed(lambda: aug.augment(texts), 1))
    added = assay_out.corpus.filter(assay_out.corpus["origin"] != "source")
    parent_text = dict(zip(corpus["id"].to_list(), texts, strict=True))
    results["assay_synonyms"].update(
        warm_sents_per_s=round(n / statistics.median(t_assay), 1),
        warm_generate_sents_per_s=round(n / statistics.median(t_gen), 1),
        changed_word_share=round(
            changed_share([parent_text[p] for p in added["parent_id"]], added["text"].to_list()), 4
        ),
        rows_added=added.height,
    )
    added_ceil = ceil_out.corpus.filter(ceil_out.corpus["origin"] != "source")
    results["assay_synonyms_ceil"] = {
        "warm_sents_per_s": round(n / statistics.median(t_ceil), 1),
        "changed_word_share": round(
            changed_share(
                [parent_text[p] for p in added_ceil["parent_id"]], added_ceil["text"].to_list()
            ),
            4,
        ),
    }
    results["nlpaug_synonyms"].update(
        warm_sents_per_s=round(n / statistics.median(t_nlpaug), 1),
        changed_word_share=round(changed_share(texts, nlpaug_out), 4),
        rows_changed=sum(a != b for a, b in zip(texts, nlpaug_out, strict=True)),
    )

    # EDA mix: 4 operations, 4 augmentations per sentence, alpha 0.1; both warm.
    eda = assay_step("eda", p=P, n_per_row=4)
    peer = WeiZouEda(wordnet())
    assay_run(eda, corpus, seed=1)
    [peer.eda(t) for t in texts]
    t_eda, t_eda_gen, t_peer = [], [], []
    for k in range(repeats):
        t_eda.append(timed(lambda k=k: assay_run(eda, corpus, seed=k), 1))
        t_eda_gen.append(timed(lambda k=k: assay_generate(eda, texts, k), 1))
        t_peer.append(timed(lambda: [peer.eda(t) for t in texts], 1))
    eda_out = assay_run(eda, corpus, seed=0)
    results["assay_eda"] = {
        "input_sents_per_s": round(n / statistics.median(t_eda), 1),
        "generate_input_sents_per_s": round(n / statistics.median(t_eda_gen), 1),
        "rows_added": eda_out.report.n_added,
    }
    results["eda_py"] = {
        "input_sents_per_s": round(n / statistics.median(t_peer), 1),
        "rows_out": 4 * n,
    }
    return results


def targets(results: dict) -> list[dict]:
    a, b = results["assay_synonyms"], results["nlpaug_synonyms"]
    speed = a["warm_sents_per_s"] / b["warm_sents_per_s"]
    share = a["changed_word_share"] / max(b["changed_word_share"], 1e-9)
    eda = results["assay_eda"]["input_sents_per_s"] / results["eda_py"]["input_sents_per_s"]
    ceil = results["assay_synonyms_ceil"]
    speed_ceil = ceil["warm_sents_per_s"] / b["warm_sents_per_s"]
    share_ceil = ceil["changed_word_share"] / max(b["changed_word_share"], 1e-9)
    return [
        {
            "name": "synonyms_speedup_vs_nlpaug_warm",
            "value": round(speed, 2),
            "target": ">= 3",
            "met": speed >= 3,
        },
        {
            "name": "changed_word_share_ratio_vs_nlpaug",
            "value": round(share, 2),
            "target": "comparable (0.67..1.5)",
            "met": 0.67 <= share <= 1.5,
        },
        {
            "name": "synonyms_speedup_vs_nlpaug_warm_ceil_rule",
            "value": round(speed_ceil, 2),
            "target": ">= 3",
            "met": speed_ceil >= 3,
        },
        {
            "name": "changed_word_share_ratio_ceil_rule",
            "value": round(share_ceil, 2),
            "target": "comparable (0.67..1.5)",
            "met": 0.67 <= share_ceil <= 1.5,
        },
        {
            "name": "eda_speedup_vs_eda_py",
            "value": round(eda, 2),
            "target": ">= 5",
            "met": eda >= 5,
        },
    ]


def table(params: dict, results: dict, tgts: list[dict]) -> str:
    a, b = results["assay_synonyms"], results["nlpaug_synonyms"]
    lines = [
        f"augmentation benchmark: {params['rows']} sentences of {params['data']}, p={P}, "
        f"median of {params['repeats']}",
        "",
        "synonym replacement          setup s   cold sent/s   warm sent/s   words changed",
        f"  assay synonyms (end to end) {a['setup_s']:>7.2f}   {a['cold_sents_per_s']:>11,.0f}   "
        f"{a['warm_sents_per_s']:>11,.0f}   {a['changed_word_share']:>12.1%}",
        f"  assay synonyms (generate)   {'':>7}   {'':>11}   {a['warm_generate_sents_per_s']:>11,.0f}",
        f"  assay synonyms, ceil rule   {'':>7}   {'':>11}   "
        f"{results['assay_synonyms_ceil']['warm_sents_per_s']:>11,.0f}   "
        f"{results['assay_synonyms_ceil']['changed_word_share']:>12.1%}",
        f"  (assay setup in the first process ever, building its WordNet tables: "
        f"{a['setup_first_ever_s']:.2f} s)",
        f"  nlpaug SynonymAug           {b['setup_s']:>7.2f}   {b['cold_sents_per_s']:>11,.0f}   "
        f"{b['warm_sents_per_s']:>11,.0f}   {b['changed_word_share']:>12.1%}",
        "",
        "EDA mix (4 ops x 4 augmentations)   input sent/s",
        f"  assay eda (end to end)            {results['assay_eda']['input_sents_per_s']:>10,.0f}",
        f"  assay eda (generate)              {results['assay_eda']['generate_input_sents_per_s']:>10,.0f}",
        f"  Wei & Zou eda.py (plain Python)   {results['eda_py']['input_sents_per_s']:>10,.0f}",
        "",
        "targets",
    ]
    for t in tgts:
        lines.append(
            f"  {t['name']:<44} {t['value']:>6}  target {t['target']:<24} {'met' if t['met'] else 'NOT met'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cold", choices=["assay", "nlpaug"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold:
        print(json.dumps(cold(args.cold, args.data, args.rows)))
        return 0
    if not args.data.exists():
        print(
            f"data not found: {args.data} (pass --data PATH to a text,label CSV)", file=sys.stderr
        )
        return 0
    results = run(args.data, args.rows, args.repeats)
    rows = len(load(args.data, args.rows)[0])
    params = {"rows": rows, "data": str(args.data), "p": P, "repeats": args.repeats}
    tgts = targets(results)
    print(table(params, results, tgts))
    if args.json:
        print(
            json.dumps({"bench": "augment", "params": params, "results": results, "targets": tgts})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
