"""Generation with a causal language model: paraphrases of rows, or new rows of a label.

Two modes:

- `paraphrase`: each selected row is rewritten `n_per_row` times; the label is carried
  over from the row.
- `fewshot`: each prompt shows `shots` rows of one label, drawn by the step's random
  stream, and asks for a new one; the parent is the first shot and the new row's label is
  set to that label explicitly.

With `per_label: {label: count}` the step makes `count` outputs of each label instead of
`n_per_row` per row (parents taken in a random order, round robin), which is how
`balance: {strategy: augment_to, augmenter: generate}` asks for the rows a class lacks.

Outputs are cleaned (`generate_clean`: preambles, quotes, numbering, echoes); an output
with nothing usable is rejected as `unusable_output`, one that lost a `protected` term of
its parent as `lost_protected_term`. Every row that remains passes three
filters, in the adoption's rejection rule, before the kernel's own duplicate checks:

- `leaks_eval`: the output is a near-duplicate (MinHash-LSH verified by true Jaccard, as
  `dedup: {method: minhash}`; or the same text once case, punctuation and spacing are
  folded) of ANY dev/test row; near-duplicates of other rows (the parent included) are
  `near_duplicate`;
- the label guard (`guard:`, as for every augmenter);
- diversity: near-duplicates among the generated rows collapse to the first of them, the
  others are `near_duplicate`.

`max_added` caps the rows kept (the rest, drawn at random, are `over_budget`). Model,
backend and operation are on every row: in its origin (`augment.generate:paraphrase:hf:
smollm2`) and in `generate__model`, `generate__backend` and `generate__mode`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from assay import corpus as corpus_mod
from assay.augment import lm
from assay.augment.base import TextAugmenter, TextAugmenterBaseConfig
from assay.augment.generate_clean import clean
from assay.context import RunContext
from assay.curate.dedup import MINHASH_THRESHOLD
from assay.engine_steps import run_engine
from assay.errors import StepError
from assay.registry import register
from assay.step import Rejections

BACKEND = "hf"  # transformers; the packaged SmolLM2 GGUF is dequantised into it
OPS = {"paraphrase": "para", "fewshot": "fewshot"}
PARAPHRASE_PROMPT = (
    "Paraphrase the sentence below: keep its meaning and its tone, change the wording. "
    "Reply with the paraphrase only.\nSentence: {text}"
)
FEWSHOT_PROMPT = (
    "Here are examples of sentences labelled {label}:\n{examples}\n"
    "Write one new sentence labelled {label}, different from the examples. "
    "Reply with the sentence only."
)
UNUSABLE = "unusable_output"
LOST_PROTECTED = "lost_protected_term"
LEAKS_EVAL = "leaks_eval"
NEAR_DUPLICATE = "near_duplicate"
OVER_BUDGET = "over_budget"


@register("generate")
class GenerateAugmenter(TextAugmenter):
    """New rows from a causal language model (packaged SmolLM2 by default): paraphrases of
    rows (`mode: paraphrase`) or new rows of a label from a few in-class examples
    (`mode: fewshot`), `n_per_row` per row or `per_label` counts. Outputs are cleaned, and
    dropped when unusable, when they near-duplicate a dev/test row (`leaks_eval`) or a
    train row (`near_duplicate`), when the label guard rejects them, or when they
    near-duplicate an earlier generated row (`near_duplicate`)."""

    # Few-shot prompts draw examples from every selected row of a label: the prompts are
    # built on the driver, and on an engine only the model batches run there, each under
    # the same (seed, batch) as in-process. The filters need every output together.
    row_local = False

    class Config(TextAugmenterBaseConfig):
        mode: Literal["paraphrase", "fewshot"] = Field(
            "paraphrase",
            description="paraphrase: rewrite each row; fewshot: new rows of a label from "
            "`shots` rows of it",
        )
        model: str = Field(
            lm.PACKAGED,
            description="causal LM: 'smollm2' (packaged), a local directory or a Hugging Face id",
        )
        device: str = Field("auto", description="auto (CUDA when present), cpu or cuda")
        shots: int = Field(3, ge=1, le=20, description="fewshot: examples shown per prompt")
        per_label: dict[str, int] | None = Field(
            None,
            description="outputs per label (instead of n_per_row per row): {label: count}",
        )
        max_new_tokens: int = Field(48, ge=1, le=1024, description="tokens generated per output")
        temperature: float = Field(
            0.7, ge=0, le=2, description="sampling temperature (0: greedy decoding)"
        )
        top_p: float = Field(0.9, gt=0, le=1, description="nucleus sampling: top-p mass kept")
        batch_size: int = Field(16, ge=1, description="prompts per model batch")
        prompt: str | None = Field(
            None,
            description="prompt template: paraphrase needs {text}; fewshot needs {examples} "
            "and may use {label} (built-in prompt if unset)",
        )
        system: str | None = Field(
            None, description="system message for chat models (the model's default if unset)"
        )
        max_added: int | None = Field(
            None, ge=1, description="cap on rows kept; the rest are dropped as over_budget"
        )
        threshold: float = Field(
            MINHASH_THRESHOLD,
            gt=0,
            lt=1,
            description="near-duplicate threshold (Jaccard of word bigrams) for leaks_eval, "
            "near_duplicate and the diversity filter",
        )
        ngram: int = Field(2, ge=1, le=8, description="shingle length in words for MinHash")

        @model_validator(mode="after")
        def _prompt_fields(self) -> GenerateAugmenter.Config:
            need = "{text}" if self.mode == "paraphrase" else "{examples}"
            if self.prompt is not None and need not in self.prompt:
                raise ValueError(
                    f"prompt for mode {self.mode!r} must contain {need}; got {self.prompt!r}"
                )
            if self.temperature == 0 and self.n_per_row > 1 and self.per_label is None:
                raise ValueError(
                    f"temperature 0 decodes greedily: one output per prompt, but n_per_row is "
                    f"{self.n_per_row}; set a temperature above 0 or n_per_row: 1"
                )
            if self.per_label is not None:
                bad = {k: v for k, v in self.per_label.items() if v < 1}
                if not self.per_label or bad:
                    raise ValueError(
                        f"per_label needs a count >= 1 for each label; got {self.per_label}"
                    )
            return self

    op = "gen"

    # -- prompts -------------------------------------------------------------------------

    def _plan(self, rows: pl.DataFrame, ctx: RunContext) -> tuple[list[int], int]:
        """Row positions to prompt from (one prompt each, in order) and outputs per prompt."""
        cfg = self.config
        labelled = rows["label"].is_not_null().to_numpy()
        if cfg.per_label is None:
            usable = np.flatnonzero(labelled) if cfg.mode == "fewshot" else np.arange(rows.height)
            return usable.tolist(), cfg.n_per_row
        if corpus_mod.is_multilabel(rows):
            raise StepError(
                "generate: per_label counts need single-label rows; use n_per_row on "
                "multi-label corpora"
            )
        labels = rows["label"].to_list()
        rng = ctx.rng("per_label")
        plan: list[int] = []
        for label, count in cfg.per_label.items():
            members = [i for i, lab in enumerate(labels) if lab == label]
            if not members:
                raise StepError(
                    f"generate: per_label asks for {count} rows of {label!r}, but no selected "
                    f"row has that label (splits {cfg.splits}); labels found: "
                    f"{sorted({x for x in labels if x is not None})}"
                )
            order = rng.permutation(len(members))
            plan.extend(members[order[k % len(members)]] for k in range(count))
        return plan, 1

    def _prompts(
        self, rows: pl.DataFrame, plan: list[int], ctx: RunContext
    ) -> tuple[list[str], list[str]]:
        """(prompt, echo text) per planned row: the echoes are what an output must not
        repeat (the row; in fewshot mode every shot)."""
        cfg = self.config
        texts = rows["text"].to_list()
        if cfg.mode == "paraphrase":
            template = cfg.prompt or PARAPHRASE_PROMPT
            return [template.replace("{text}", texts[i]) for i in plan], [texts[i] for i in plan]
        template = cfg.prompt or FEWSHOT_PROMPT
        labels = rows["label"].to_list()
        by_label: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            if lab is not None:
                by_label.setdefault(_label_text(lab), []).append(i)
        rng = ctx.rng("shots")
        prompts, echoes = [], []
        for i in plan:
            name = _label_text(labels[i])
            others = [j for j in by_label[name] if j != i]
            k = min(cfg.shots - 1, len(others))
            picked = rng.choice(len(others), size=k, replace=False).tolist() if k else []
            shots = [texts[i], *(texts[others[j]] for j in picked)]
            examples = "\n".join(f"{n}. {t}" for n, t in enumerate(shots, 1))
            prompts.append(template.replace("{examples}", examples).replace("{label}", name))
            echoes.append("\n".join(shots))
        return prompts, echoes

    # -- the augmenter hook -----------------------------------------------------------------

    def generate(self, rows: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        cfg = self.config
        plan, per_prompt = self._plan(rows, ctx)
        prompts, echoes = self._prompts(rows, plan, ctx)
        options: dict[str, Any] = {
            "max_new_tokens": cfg.max_new_tokens,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "seed": ctx.step_seed("sampling"),
            "num_return_sequences": per_prompt,
            "system": cfg.system,
        }
        engine = run_engine(ctx)
        with ctx.task(f"{self.name}: generating", total=len(prompts)) as task:
            if engine is None:
                model = lm.causal_lm(cfg.model, cfg.device)
                before = dataclasses.replace(model.stats)
                outputs = model.generate(
                    prompts, batch_size=cfg.batch_size, advance=task.advance, **options
                )
                done = model.stats.since(before)
            else:
                outputs, done = lm.generate_on(
                    engine, cfg.model, cfg.device, prompts, batch_size=cfg.batch_size, **options
                )
                task.advance(len(prompts))
        tokens, seconds = done.tokens, done.seconds
        ids = rows["id"].to_list()
        texts = rows["text"].to_list()
        labels = rows["label"].to_list()
        parent, out_text, label_col = [], [], []
        for i, prompt, echo, outs in zip(plan, prompts, echoes, outputs, strict=True):
            for raw in outs:
                # An unusable output stays as an empty text: the rejection rule records it.
                parent.append(ids[i])
                out_text.append(clean(raw, source=texts[i], prompt=f"{prompt}\n{echo}") or "")
                label_col.append(labels[i])
        n = len(parent)
        tag = lm.model_tag(cfg.model)
        self._stats = {
            "mode": cfg.mode,
            "model": tag,
            "backend": BACKEND,
            "prompts": len(prompts),
            "generated": len(prompts) * per_prompt,
            "usable": sum(1 for t in out_text if t),
            "tokens": tokens,
            "generation_seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else 0.0,
        }
        columns: dict[str, Any] = {
            "parent_id": parent,
            "text": out_text,
            "op": [OPS[cfg.mode]] * n,
            f"{self.name}__mode": [cfg.mode] * n,
            f"{self.name}__backend": [BACKEND] * n,
            f"{self.name}__model": [tag] * n,
            "origin": [f"{cfg.mode}:{BACKEND}:{tag}"] * n,
        }
        schema: dict[str, Any] = dict.fromkeys(columns, pl.String)
        if cfg.mode == "fewshot":
            columns["label"] = label_col
            schema["label"] = rows.schema["label"]
        return pl.DataFrame(columns, schema=schema)

    def generation_summary(self) -> dict[str, Any]:
        return dict(getattr(self, "_stats", {}))

    # -- the filters ---------------------------------------------------------------------------

    def reject(
        self, candidates: pl.DataFrame, parents: pl.DataFrame, corpus: pl.DataFrame, ctx: RunContext
    ) -> Rejections | None:
        """Unusable outputs and outputs that lost a protected term, leaks into dev/test,
        near-duplicates of existing rows, the label guard, near-duplicates among the outputs
        and the `max_added` cap, in that order."""
        cfg = self.config
        n = candidates.height
        reason: list[str | None] = [None] * n
        texts = candidates["text"].to_list()
        parent_text = dict(zip(parents["id"].to_list(), parents["text"].to_list(), strict=True))
        keep_terms = [t.lower() for t in cfg.protected]
        for i, (text, pid) in enumerate(zip(texts, candidates["parent_id"], strict=True)):
            source, low = parent_text[pid].lower(), text.lower()
            if not text.strip():
                reason[i] = UNUSABLE
            elif any(t in source and t not in low for t in keep_terms):
                reason[i] = LOST_PROTECTED
        near_existing, pairs = near_duplicates(corpus, texts, cfg.threshold, cfg.ngram, ctx)
        for i, hit in near_existing.items():
            if reason[i] is None:
                reason[i] = hit
        summary: dict[str, Any] = {}
        columns = None
        alive = [i for i in range(n) if reason[i] is None]
        if cfg.guard is not None and alive:
            judged = super().reject(candidates[alive], parents, corpus, ctx)
            assert judged is not None
            for i, r in zip(alive, judged.reason, strict=True):
                reason[i] = r
            summary.update(judged.summary)
            if judged.columns is not None:
                columns = _spread(judged.columns, alive, n)
        alive = [i for i in range(n) if reason[i] is None]
        for i in collapse(alive, pairs):
            reason[i] = NEAR_DUPLICATE
        alive = [i for i in range(n) if reason[i] is None]
        if cfg.max_added is not None and len(alive) > cfg.max_added:
            chosen = set(ctx.rng("max_added").choice(alive, size=cfg.max_added, replace=False))
            for i in alive:
                if i not in chosen:
                    reason[i] = OVER_BUDGET
        counts = Counter(r for r in reason if r is not None)
        summary["filters"] = {
            "checked": n,
            "passed": n - sum(counts.values()),
            "dropped": dict(sorted(counts.items())),
            "threshold": cfg.threshold,
        }
        return Rejections(
            reason=pl.Series("reason", reason, dtype=pl.String),
            columns=columns,
            tag="filtered",
            summary=summary,
        )


def _label_text(label: Any) -> str:
    return ", ".join(label) if isinstance(label, list) else str(label)


def _spread(columns: pl.DataFrame, rows: list[int], n: int) -> pl.DataFrame:
    """`columns` (one row per position in `rows`) spread over n rows, null elsewhere."""
    index = pl.DataFrame({"_i": rows}, schema={"_i": pl.Int64}).hstack(columns)
    full = pl.DataFrame({"_i": list(range(n))}, schema={"_i": pl.Int64})
    return full.join(index, on="_i", how="left", maintain_order="left").drop("_i")


def near_duplicates(
    corpus: pl.DataFrame, texts: list[str], threshold: float, ngram: int, ctx: RunContext
) -> tuple[dict[int, str], list[tuple[int, int]]]:
    """Which of `texts` near-duplicate a corpus row (`leaks_eval` for dev/test rows, else
    `near_duplicate`), and the near-duplicate pairs among `texts` themselves.

    Near means the same folded text (case, punctuation and spacing aside) or a verified
    MinHash-LSH pair (word `ngram` shingles, true Jaccard >= `threshold`)."""
    from assay.curate.dedup import near_duplicate_pairs
    from assay.curate.dedup_exact import Normalization, normalize_series
    from assay.curate.dedup_minhash import MinHashParams

    m = corpus.height
    is_eval = corpus["split"].is_in(list(corpus_mod.EVAL_SPLITS)).to_list()
    found: dict[int, str] = {}

    def hit(i: int, row: int) -> None:
        if is_eval[row]:
            found[i] = LEAKS_EVAL
        else:
            found.setdefault(i, NEAR_DUPLICATE)

    all_texts = pl.concat([corpus["text"], pl.Series("text", texts, dtype=pl.String)])
    folded = normalize_series(all_texts, Normalization()).to_list()
    first: dict[str, list[int]] = {}
    for row in range(m):
        first.setdefault(folded[row], []).append(row)
    pairs: set[tuple[int, int]] = set()
    seen: dict[str, int] = {}
    for i in range(len(texts)):
        key = folded[m + i]
        if not key:
            continue
        for row in first.get(key, []):
            hit(i, row)
        if key in seen:
            pairs.add((seen[key], i))
        else:
            seen[key] = i
    if texts:
        params = MinHashParams.for_threshold(threshold, ngram=ngram, seed=ctx.step_seed("minhash"))
        a, b, _ = near_duplicate_pairs(all_texts.to_arrow(), params, None, threshold)
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            if y < m:
                continue  # two corpus rows: not this step's business
            if x < m:
                hit(y - m, x)
            else:
                pairs.add((x - m, y - m))
    return found, sorted(pairs)


def collapse(alive: list[int], pairs: list[tuple[int, int]]) -> list[int]:
    """Members of `alive` that near-duplicate an earlier member (through `pairs` among
    them, transitively): all but the first of each group."""
    from assay.curate.dedup_clusters import components

    if not alive or not pairs:
        return []
    where = {i: k for k, i in enumerate(alive)}
    edges = [(where[x], where[y]) for x, y in pairs if x in where and y in where]
    if not edges:
        return []
    a = np.array([e[0] for e in edges], dtype=np.int64)
    b = np.array([e[1] for e in edges], dtype=np.int64)
    label = components(len(alive), a, b)
    return [alive[k] for k in range(len(alive)) if label[k] != k]
