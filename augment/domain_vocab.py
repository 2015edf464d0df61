"""Domain vocabulary: inject domain terms from a lexicon.

A user lexicon maps a term to its domain variants (or a general term to the domain
term). Each augmentation substitutes matched terms by a variant, or inserts a variant at a
random position, with a cap on how many generated rows may use each domain term.

Mining candidate terms for the tokenizer is its own step, `domain_terms`
(`assay.augment.term_mining`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from assay.augment.base import Draw, TextAugmenter, TextAugmenterConfig
from assay.context import RunContext
from assay.errors import InputError
from assay.registry import register

log = logging.getLogger(__name__)

# -- lexicon -------------------------------------------------------------------------------


def load_lexicon(path: str | Path) -> dict[str, list[str]]:
    """Read a lexicon: YAML `term: variant` or `term: [variants]`, or CSV/TSV rows
    `term,variant` (a header row `term,variant` is skipped; repeated terms accumulate)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"lexicon {str(path)!r} does not exist; give a YAML or CSV file")
    text = path.read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise InputError(
                f"lexicon {str(path)!r} must map terms to variants (term: [variant, ...]), "
                f"found a {type(data).__name__}"
            )
        for term, variants in data.items():
            vs = variants if isinstance(variants, list) else [variants]
            out.setdefault(str(term), []).extend(str(v) for v in vs if v is not None)
    elif path.suffix.lower() in (".csv", ".tsv"):
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        for k, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter)):
            if not row or not row[0].strip():
                continue
            if k == 0 and [c.strip().lower() for c in row[:2]] == ["term", "variant"]:
                continue
            if len(row) < 2:
                raise InputError(
                    f"lexicon {str(path)!r} line {k + 1}: expected 'term,variant', found {row}"
                )
            out.setdefault(row[0].strip(), []).extend(v.strip() for v in row[1:] if v.strip())
    else:
        raise InputError(
            f"lexicon {str(path)!r}: expected a .yaml, .yml, .csv or .tsv file, "
            f"found {path.suffix or 'no extension'}"
        )
    empty = [t for t, vs in out.items() if not vs]
    if empty:
        raise InputError(f"lexicon {str(path)!r}: terms without variants: {empty[:5]}")
    return out


class LexiconMatcher:
    """Finds lexicon terms in text (case-insensitive, whole words, longest first)."""

    def __init__(self, lexicon: dict[str, list[str]], symmetric: bool = False) -> None:
        table: dict[str, list[str]] = {}
        for term, variants in lexicon.items():
            group = [term, *variants] if symmetric else [term]
            for key in group:
                others = [v for v in [term, *variants] if v.lower() != key.lower()]
                if not symmetric:
                    others = list(variants)
                bucket = table.setdefault(key.lower(), [])
                bucket.extend(v for v in others if v not in bucket)
        self.table = {k: v for k, v in table.items() if v}
        keys = sorted(self.table, key=len, reverse=True)
        pattern = "|".join(re.escape(k) for k in keys) or r"(?!x)x"
        self.regex = re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE)

    def find(self, text: str) -> list[re.Match[str]]:
        return list(self.regex.finditer(text))


# -- the step ------------------------------------------------------------------------------


@register("domain_vocab")
class DomainVocabAugmenter(TextAugmenter):
    """Inject domain terms from a lexicon, with a cap on generated rows per term.

    Each augmentation substitutes matched terms by a domain variant (or inserts a variant
    at a random position), at most `max_per_term` generated rows per domain term. Per-term
    uses go to the report summary (`term_uses`). To mine candidate terms for the
    tokenizer, use the `domain_terms` step.
    """

    class Config(TextAugmenterConfig):
        lexicon: str = Field(description="YAML or CSV file: term -> domain variants")
        mode: Literal["substitute", "insert"] = Field(
            "substitute", description="replace matched terms, or insert a variant elsewhere"
        )
        symmetric: bool = Field(
            False, description="a term and its variants are interchangeable (synonym sets)"
        )
        max_per_term: int | None = Field(
            None, ge=1, description="at most this many generated rows use each domain term"
        )
        p: float = Field(1.0, ge=0, le=1, description="share of matched terms edited")

    op = "dv"

    @property
    def params(self) -> dict[str, Any]:
        """The config, plus the content hash of the files it names: the step cache (keyed
        by params) must not serve a result computed from an earlier version of a lexicon."""
        out = super().params
        cfg = self.config
        if Path(cfg.lexicon).is_file():
            out["lexicon_sha256"] = hashlib.sha256(Path(cfg.lexicon).read_bytes()).hexdigest()
        return out

    @property
    def row_local(self) -> bool:  # type: ignore[override]
        # The per-term cap counts uses across rows: batches would each get the full cap.
        return self.config.max_per_term is None

    def prepare(self, texts: list[str], ctx: RunContext) -> None:
        cfg = self.config
        self.matcher = LexiconMatcher(load_lexicon(cfg.lexicon), cfg.symmetric)
        self.uses: Counter[str] = Counter()

    def augment_batch(
        self, texts: list[str], n_per_row: int, draw: Draw
    ) -> Iterator[tuple[int, str, str]]:
        cap = self.config.max_per_term
        insert = self.config.mode == "insert"
        tag = "dvi" if insert else "dvs"
        table, uses = self.matcher.table, self.uses
        for i, text in enumerate(texts):
            found = self.matcher.find(text)
            if not found:
                continue
            made = {text}
            for _ in range(n_per_row):
                picks = list(found)
                k = min(len(picks), self.edits(len(picks), draw))
                for j in range(k):
                    r = j + int(draw() * (len(picks) - j))
                    picks[j], picks[r] = picks[r], picks[j]
                chosen: list[tuple[re.Match[str], str]] = []
                for m in picks[:k]:
                    options = table[m.group(0).lower()]
                    if cap is not None:
                        options = [v for v in options if uses[v] < cap]
                    if options:
                        chosen.append((m, options[int(draw() * len(options))]))
                if not chosen:
                    continue
                new = _insert(text, chosen, draw) if insert else _substitute(text, chosen)
                if new in made:  # a repeat would be rejected, yet count against the cap
                    continue
                made.add(new)
                for _, v in chosen:
                    uses[v] += 1
                yield i, new, tag

    def generation_summary(self) -> dict[str, Any]:
        return {"term_uses": dict(sorted(getattr(self, "uses", Counter()).items()))}


def _substitute(text: str, chosen: list[tuple[re.Match[str], str]]) -> str:
    out, last = [], 0
    for m, variant in sorted(chosen, key=lambda mv: mv[0].start()):
        out.append(text[last : m.start()])
        out.append(_case_like(m.group(0), variant))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _insert(text: str, chosen: list[tuple[re.Match[str], str]], draw: Draw) -> str:
    """Insert each variant at a random word boundary outside the matched terms."""
    spans = [(m.start(), m.end()) for m, _ in chosen]
    points = [0, *(k for k, c in enumerate(text) if c == " "), len(text)]
    points = [p for p in points if not any(a < p < b for a, b in spans)]
    inserts = sorted(
        ((points[int(draw() * len(points))], variant) for _, variant in chosen),
        key=lambda pv: pv[0],
        reverse=True,
    )
    for point, variant in inserts:
        text = f"{text[:point]} {variant} {text[point:]}"
    return " ".join(text.split())


def _case_like(template: str, variant: str) -> str:
    """Capitalise the variant where the matched text was capitalised (not an acronym)."""
    acronym = len(template) > 1 and template.isupper()
    if template[:1].isupper() and not acronym and variant[:1].islower():
        return variant[:1].upper() + variant[1:]
    return variant
