"""Domain terms: mine candidates from a corpus, and hand the chosen ones to training.

Candidates are words over-represented in the corpus against a general reference
word-frequency list (smoothed log ratio of relative frequencies), with the number of
pieces the model's tokenizer splits each into (its fertility) and, optionally, the pieces
of a unigram sentencepiece model trained on the corpus. Chosen terms are the best
`max_terms` candidates that the tokenizer splits into at least `min_pieces` pieces: the
ones worth a token of their own.

Hand-over to training: the `domain_terms` step lists the chosen terms, best first, in its
report summary (`domain_terms__terms`, kept in manifest.json whether or not the step was
cached), in `findings/NN_domain_terms.parquet` (every candidate, `chosen` flag), and in
`work/domain_terms/domain_terms.txt` (one term per line, UTF-8) with the statistics in
`domain_terms.tsv` (columns term, count, ref_count, log_ratio, pieces[, corpus_pieces],
chosen). `chosen_terms(run_dir)` reads them back; the fine-tune loop adds them as tokens
whose embeddings start as the mean of their former pieces.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import Field

from assay import corpus as corpus_mod
from assay.augment.word_ops import STOP_WORDS
from assay.context import RunContext
from assay.errors import ResourceError, require
from assay.registry import register
from assay.step import Audit, Findings, StepConfig

_WORD = re.compile(r"[A-Za-z][A-Za-z\-]*[A-Za-z]")
TERMS_FILE = "domain_terms.txt"
TABLE_FILE = "domain_terms.tsv"


class MineConfig(StepConfig):
    """Propose domain terms: over-represented words that the tokenizer fragments."""

    reference: str | None = Field(
        None,
        description="general word-frequency list ('word count' per line); default: the "
        "English counts shipped with textblob (Norvig's big.txt, Gutenberg, BNC)",
    )
    min_count: int = Field(5, ge=1, description="a candidate occurs at least this often")
    min_log_ratio: float = Field(
        3.0,
        description="natural-log ratio of corpus to reference frequency, at least (3: 20x)",
    )
    tokenizer: str | None = Field(
        None,
        description="tokenizer whose pieces give fertility (the packaged MiniLM if unset; "
        "'none' to skip)",
    )
    min_pieces: int = Field(
        2, ge=1, description="a chosen term splits into at least this many pieces"
    )
    max_terms: int = Field(100, ge=1, description="at most this many chosen terms")
    sentencepiece: bool = Field(
        False, description="also report pieces under a sentencepiece model trained on the corpus"
    )
    sentencepiece_vocab: int = Field(8000, ge=100, description="its vocabulary size")


def reference_counts(path: str | None) -> Counter[str]:
    if path is None:
        from assay.augment.base import package_file

        ref = package_file("textblob", "en", "en-spelling.txt", purpose="word frequencies")
        text = ref.read_text(encoding="utf-8")
    else:
        if not Path(path).exists():
            raise ResourceError(f"reference word list {path!r} does not exist")
        text = Path(path).read_text(encoding="utf-8")
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line or line.startswith(";;;"):
            continue
        parts = line.split()
        if len(parts) >= 2 and parts[-1].isdigit():
            counts[" ".join(parts[:-1]).lower()] += int(parts[-1])
    if not counts:
        raise ResourceError(f"reference word list {path!r} has no 'word count' lines")
    return counts


def over_represented(
    texts: list[str], reference: Counter[str], min_count: int, min_log_ratio: float
) -> pl.DataFrame:
    """Words whose corpus frequency exceeds their reference frequency, with counts and the
    smoothed log ratio; sorted by ratio, then count."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w.lower() for w in _WORD.findall(text))
    n_corpus = sum(counts.values()) or 1
    n_ref = sum(reference.values())
    rows = []
    for word, c in counts.items():
        if c < min_count or word in STOP_WORDS:
            continue
        r = reference.get(word, 0)
        # Half-count smoothing keeps words absent from the reference finite.
        ratio = math.log((c / n_corpus) / ((r + 0.5) / n_ref))
        if ratio >= min_log_ratio:
            rows.append((word, c, r, ratio))
    frame = pl.DataFrame(
        rows,
        schema={
            "term": pl.String,
            "count": pl.Int64,
            "ref_count": pl.Int64,
            "log_ratio": pl.Float64,
        },
        orient="row",
    )
    return frame.sort(["log_ratio", "count", "term"], descending=[True, True, False])


def fertility(terms: list[str], tokenizer: str | None) -> list[int]:
    """Pieces per term under the model's tokenizer."""
    require("transformers", "train", "tokenizer fertility")
    from transformers import AutoTokenizer

    from assay.resources import encoder

    tok = AutoTokenizer.from_pretrained(encoder(tokenizer))
    return [len(tok.tokenize(t)) for t in terms]


def corpus_pieces(texts: list[str], terms: list[str], vocab: int) -> list[int]:
    """Pieces per term under a unigram sentencepiece model trained on the corpus (trained
    on every sentence, without sampling: deterministic)."""
    spm = require("sentencepiece", "augment", "a corpus sentencepiece model")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab,
        model_type="unigram",
        hard_vocab_limit=False,
        minloglevel=2,
        num_threads=1,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return [len(sp.encode(t, out_type=str)) for t in terms]


def mine_terms(texts: list[str], cfg: MineConfig) -> pl.DataFrame:
    """Candidate domain terms with their statistics and a `chosen` flag."""
    frame = over_represented(
        texts, reference_counts(cfg.reference), cfg.min_count, cfg.min_log_ratio
    )
    terms = frame["term"].to_list()
    if cfg.tokenizer != "none" and terms:
        pieces = fertility(terms, cfg.tokenizer)
    else:
        pieces = [None] * len(terms)
    frame = frame.with_columns(pl.Series("pieces", pieces, dtype=pl.Int64))
    if cfg.sentencepiece and terms:
        sp = corpus_pieces(texts, terms, cfg.sentencepiece_vocab)
        frame = frame.with_columns(pl.Series("corpus_pieces", sp, dtype=pl.Int64))
    fragmented = pl.col("pieces").is_null() | (pl.col("pieces") >= cfg.min_pieces)
    rank = fragmented.cast(pl.Int64).cum_sum()
    return frame.with_columns(chosen=fragmented & (rank <= cfg.max_terms))


def write_terms(frame: pl.DataFrame, directory: Path) -> dict[str, str]:
    """domain_terms.txt (chosen terms, one per line) and domain_terms.tsv (all candidates)."""
    from assay.atomic import write_text

    chosen = frame.filter(pl.col("chosen"))["term"].to_list()
    terms_path = directory / TERMS_FILE
    table_path = directory / TABLE_FILE
    write_text(terms_path, "".join(f"{t}\n" for t in chosen))
    write_text(table_path, frame.write_csv(separator="\t"))
    return {"terms": str(terms_path), "table": str(table_path)}


@register("domain_terms")
class DomainTermsAudit(Audit):
    """Mine domain terms for the tokenizer: over-represented words that it fragments.

    The training loop adds the chosen terms as tokens. Mines training and unlabelled originals only (dev/test vocabulary would leak). The
    chosen terms go to the report summary (`domain_terms__terms`), every candidate to the
    findings table, and the lists to `domain_terms.txt` / `.tsv` in the step's work dir.
    """

    Config = MineConfig

    @property
    def params(self) -> dict[str, Any]:
        """The config, plus the content hash of the reference list: the step cache (keyed
        by params) must not serve terms mined against an earlier version of it."""
        out = super().params
        ref = self.config.reference
        if ref and Path(ref).is_file():
            out["reference_sha256"] = hashlib.sha256(Path(ref).read_bytes()).hexdigest()
        return out

    def score(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        rows = corpus.filter(
            ~pl.col("split").is_in(corpus_mod.EVAL_SPLITS)
            & (pl.col("origin") == corpus_mod.SOURCE_ORIGIN)
        )
        mined = mine_terms(rows["text"].to_list(), self.config)
        chosen = mined.filter(pl.col("chosen"))["term"].to_list()
        # The file is written when the step runs; a cached rerun finds the same list in
        # the manifest (the summary is cached) and in findings/NN_domain_terms.parquet.
        write_terms(mined, ctx.workdir(self.name))
        return Findings(
            findings=mined,
            summary={f"{self.name}__terms": chosen, "n_candidates": mined.height},
        )


def chosen_terms(run_dir: str | Path) -> list[str]:
    """The domain terms chosen in a run, in rank order, for the training loop to add as
    tokens: read from the manifest's step summaries (present whether or not the step was
    cached), else from `work/<step>/domain_terms.txt`."""
    import json

    run_dir = Path(run_dir)
    manifest = run_dir / "manifest.json"
    terms: list[str] = []
    if manifest.exists():
        for step in json.loads(manifest.read_text(encoding="utf-8")).get("steps", []):
            found = (step.get("summary") or {}).get(f"{step.get('step')}__terms")
            if found:
                terms.extend(t for t in found if t not in terms)
        if terms:
            return terms
    for path in sorted((run_dir / "work").glob(f"*/{TERMS_FILE}")):
        terms.extend(
            t for t in path.read_text(encoding="utf-8").split("\n") if t and t not in terms
        )
    return terms
