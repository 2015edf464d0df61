"""Counterfactual bias: does the prediction change when only a gendered word or a name does?

Each term pair (he/she, father/mother, john/mary...) is swapped in the texts that contain
either of its words, in both directions (he -> she and she -> he), as whole words, keeping
the case of each occurrence (He -> She, HE -> SHE). The trained model predicts the original
and the swapped text; per pair the report gives the texts affected, the share whose
prediction flips with a 95% Wilson interval, and the mean absolute change of the
probability of the originally predicted class (for multi-label, the largest change of any
class). The overall flip rate swaps every pair at once in every affected text; where a
word belongs to two pairs (her: his/her and him/her) the first pair listed decides.

The shipped list (`data/counterfactual_terms.json`) holds English gendered word pairs and
common first-name pairs. A user list is a mapping (`{"he": "she"}`), a JSON file (such a
mapping, or groups of pairs: `{"gender": [["he", "she"], ...]}`), or a text file of one
pair per line (`he she`, `he,she` or `he<TAB>she`; `#` starts a comment).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from assay.errors import InputError

Z95 = 1.959963984540054
PAIR_SCHEMA = {
    "pair": pl.String,
    "group": pl.String,
    "texts": pl.Int64,
    "flips": pl.Int64,
    "flip_rate": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "mean_abs_delta": pl.Float64,
}
EXAMPLE_SCHEMA = {
    "id": pl.String,
    "pair": pl.String,
    "text": pl.String,
    "counterfactual": pl.String,
    "pred": pl.String,
    "counterfactual_pred": pl.String,
    "abs_delta": pl.Float64,
}
ALL_PAIRS = "(all pairs)"


class ProbabilisticClassifier(Protocol):
    classes_: Sequence[str]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class TermPair:
    a: str
    b: str
    group: str = "custom"

    @property
    def name(self) -> str:
        return f"{self.a}/{self.b}"


TermSource = str | Path | Mapping[str, Any] | Sequence[Any] | None


def default_terms_path() -> Path:
    return Path(str(resources.files("assay.audits") / "data" / "counterfactual_terms.json"))


def load_terms(source: TermSource = None) -> list[TermPair]:
    """Term pairs from the shipped list (None), a mapping, a list of pairs, or a file."""
    if source is None:
        source = default_terms_path()
    if isinstance(source, (str, Path)):
        return _read_terms_file(Path(source).expanduser())
    if isinstance(source, Mapping):
        return _pairs_from_json(source, "the term mapping")
    return _pairs_from_list(source, "custom", "the term list")


def _read_terms_file(path: Path) -> list[TermPair]:
    if not path.is_file():
        raise InputError(f"term list {str(path)!r} does not exist; pass a .json or .txt file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"term list {str(path)!r} is not valid JSON: {exc}") from None
        return _pairs_from_json(data, repr(str(path)))
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = [w for w in re.split(r"[,\t ]+", line) if w]
        if len(words) != 2:
            raise InputError(
                f"{str(path)!r} line {number}: expected two words (a pair like 'he she'), "
                f"found {line!r}"
            )
        pairs.append(words)
    return _pairs_from_list(pairs, "custom", repr(str(path)))


def _pairs_from_json(data: Any, where: str) -> list[TermPair]:
    if isinstance(data, Mapping) and all(isinstance(v, str) for v in data.values()):
        return _pairs_from_list(list(data.items()), "custom", where)
    if isinstance(data, Mapping):
        out = []
        for group, pairs in data.items():
            out += _pairs_from_list(pairs, str(group), where)
        return _checked(out, where)
    if isinstance(data, list):
        return _pairs_from_list(data, "custom", where)
    raise InputError(
        f"{where}: expected a mapping of words ({{'he': 'she'}}) or groups of pairs "
        f"({{'gender': [['he', 'she']]}}), found {type(data).__name__}"
    )


def _pairs_from_list(pairs: Any, group: str, where: str) -> list[TermPair]:
    out = []
    for pair in pairs:
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(w, str) and re.fullmatch(r"[\w'.-]+", w.strip()) for w in pair)
        ):
            raise InputError(f"{where}: a term pair is two single words, found {pair!r}")
        a, b = (w.strip().lower() for w in pair)
        if a == b:
            raise InputError(f"{where}: the pair {pair!r} swaps a word with itself")
        out.append(TermPair(a, b, group))
    return _checked(out, where)


def _checked(pairs: list[TermPair], where: str) -> list[TermPair]:
    if not pairs:
        raise InputError(f"{where} holds no term pairs")
    return pairs


# -- swapping ---------------------------------------------------------------------------------


def _cased(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class Swapper:
    """Whole-word, case-preserving replacement of words by their counterparts."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = dict(mapping)
        words = sorted(self.mapping, key=lambda w: (-len(w), w))
        self.pattern = re.compile(
            r"(?<![\w'])(" + "|".join(map(re.escape, words)) + r")(?![\w'])", re.IGNORECASE
        )

    def __call__(self, text: str) -> str:
        return self.pattern.sub(
            lambda m: _cased(self.mapping[m.group(0).lower()], m.group(0)), text
        )

    def affects(self, text: str) -> bool:
        return self.pattern.search(text) is not None


def pair_swapper(pair: TermPair) -> Swapper:
    return Swapper({pair.a: pair.b, pair.b: pair.a})


def combined_swapper(pairs: Sequence[TermPair]) -> Swapper:
    mapping: dict[str, str] = {}
    for pair in pairs:
        mapping.setdefault(pair.a, pair.b)
        mapping.setdefault(pair.b, pair.a)
    return Swapper(mapping)


# -- the report -------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion k/n (nan for n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclasses.dataclass
class CounterfactualReport:
    pairs: pl.DataFrame  # PAIR_SCHEMA, one row per term pair (pairs with no text included)
    overall: dict[str, Any]  # the ALL_PAIRS row as a dict
    examples: pl.DataFrame  # EXAMPLE_SCHEMA: the flipped counterfactuals

    def to_dict(self, k: int = 10) -> dict[str, Any]:
        affected = self.pairs.filter(pl.col("texts") > 0)
        return {
            "overall": self.overall,
            "pairs_with_texts": affected.height,
            "pairs": affected.sort(
                ["flip_rate", "texts", "pair"], descending=[True, True, False], nulls_last=True
            ).to_dicts(),
            "examples": self.examples.head(k).to_dicts(),
        }


def counterfactual_report(
    model: ProbabilisticClassifier,
    texts: Sequence[str],
    ids: Sequence[str] | None = None,
    terms: TermSource | Sequence[TermPair] = None,
    *,
    multilabel_threshold: float = 0.5,
    batch_size: int = 256,
) -> CounterfactualReport:
    """Swap each term pair in `texts`, predict with `model`, and report flip rates.

    A model whose `multilabel` attribute is true decides each class at
    `multilabel_threshold`; any other picks the most probable class."""
    multilabel = bool(getattr(model, "multilabel", False))
    texts = [t or "" for t in texts]
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(texts))]
    if len(ids) != len(texts):
        raise InputError(f"counterfactuals got {len(ids)} ids for {len(texts)} texts")
    pairs = (
        list(terms)
        if isinstance(terms, Sequence) and terms and isinstance(terms[0], TermPair)
        else load_terms(terms)  # type: ignore[arg-type]
    )
    jobs: list[tuple[str, str, int, str]] = []  # (pair, group, text index, swapped text)
    combined = combined_swapper(pairs)
    # A text no pair's pattern matches is one the combined pattern does not match either:
    # one search per text picks the few each pair's pattern is tried on.
    candidates = [i for i, text in enumerate(texts) if combined.affects(text)]
    for name, group, swap in [
        *((p.name, p.group, pair_swapper(p)) for p in pairs),
        (ALL_PAIRS, "all", combined),
    ]:
        for i in candidates:
            text = texts[i]
            if swap is combined or swap.affects(text):
                swapped = swap(text)
                if swapped != text:
                    jobs.append((name, group, i, swapped))
    touched = sorted({i for _, _, i, _ in jobs})
    classes = [str(c) for c in model.classes_]
    base = _predict(model, [texts[i] for i in touched], batch_size)
    cf = _predict(model, [j[3] for j in jobs], batch_size)
    row_of = {i: r for r, i in enumerate(touched)}
    records: dict[str, dict[str, Any]] = {}
    examples = []
    for (name, group, i, swapped), p_cf in zip(jobs, cf, strict=True):
        p = base[row_of[i]]
        threshold = multilabel_threshold if multilabel else None
        before, after = _decide(p, classes, threshold), _decide(p_cf, classes, threshold)
        if isinstance(before, str):
            delta = abs(float(p[classes.index(before)] - p_cf[classes.index(before)]))
        else:
            delta = float(np.abs(p - p_cf).max())
        rec = records.setdefault(name, {"group": group, "texts": 0, "flips": 0, "delta": 0.0})
        rec["texts"] += 1
        rec["flips"] += int(before != after)
        rec["delta"] += delta
        if before != after:
            examples.append(
                {
                    "id": ids[i],
                    "pair": name,
                    "text": texts[i],
                    "counterfactual": swapped,
                    "pred": _show(before),
                    "counterfactual_pred": _show(after),
                    "abs_delta": delta,
                }
            )
    rows = [_pair_row(p.name, p.group, records.get(p.name)) for p in pairs]
    overall = _pair_row(ALL_PAIRS, "all", records.get(ALL_PAIRS))
    example_frame = pl.DataFrame(examples, schema=EXAMPLE_SCHEMA).sort(
        ["abs_delta", "pair", "id"], descending=[True, False, False]
    )
    return CounterfactualReport(pl.DataFrame(rows, schema=PAIR_SCHEMA), overall, example_frame)


def _predict(model: ProbabilisticClassifier, texts: list[str], batch_size: int) -> np.ndarray:
    k = len(model.classes_)
    if not texts:
        return np.zeros((0, k))
    parts = [
        np.asarray(model.predict_proba(texts[s : s + batch_size]), dtype=np.float64)
        for s in range(0, len(texts), batch_size)
    ]
    return np.concatenate(parts)


def _decide(
    proba: np.ndarray, classes: list[str], threshold: float | None
) -> str | tuple[str, ...]:
    if threshold is not None:
        return tuple(c for c, p in zip(classes, proba, strict=True) if p >= threshold)
    return classes[int(np.argmax(proba))]


def _show(decision: str | tuple[str, ...]) -> str:
    return decision if isinstance(decision, str) else "|".join(decision)


def _pair_row(name: str, group: str, rec: dict[str, Any] | None) -> dict[str, Any]:
    n = rec["texts"] if rec else 0
    k = rec["flips"] if rec else 0
    low, high = wilson(k, n)
    return {
        "pair": name,
        "group": group,
        "texts": n,
        "flips": k,
        "flip_rate": k / n if n else float("nan"),
        "low": low,
        "high": high,
        "mean_abs_delta": rec["delta"] / n if n else float("nan"),
    }
