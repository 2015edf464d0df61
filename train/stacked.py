"""Many fine-tunes at once: K copies of a BERT-family encoder trained as one stacked model.

A MiniLM step at batch 16 is a few hundred small kernels; on a GPU their launch cost, not
their arithmetic, sets the pace. Here the weights of K cells (an ablation's arms x seeds)
carry a leading K dimension, so each kernel of a step does the work of K steps: batched
matrix products, one attention call, one optimiser pass.

Each cell keeps everything that is its own: head initialisation, train rows and their
order, dropout masks (drawn from its own generator at its own batch shape), learning-rate
schedule, gradient clipping, dev evaluations, best checkpoint and early stop. So a cell
trained in a stack of 80 predicts what it predicts trained alone, to float rounding.

The training step makes no host synchronisation: the rows of every step, the learning
rates and the token ids are on the device before the first step, dev scores and the
choice of the best checkpoint are computed there, and host values are read once, at the
end. Models outside the BERT family (or with LoRA, several micro-batches per step or
several labels per row) are trained one cell at a time by `EncoderModel` instead;
`unstackable` says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.progress import Progress, SilentProgress
from assay.train.finetune import (
    FineTuneConfig,
    base_encoder,
    eval_points,
    head_init,
    loss_weights,
    lr_factor,
    token_cache,
)

# Each cell's dropout generator: its own stream, apart from the head initialisation's.
DROPOUT_STREAM = 0x5EED


@dataclasses.dataclass
class Cell:
    """One model to train: its seed and its training rows (labels as strings)."""

    seed: int
    texts: Sequence[str]
    labels: Sequence[str]
    weights: np.ndarray | None = None


@dataclasses.dataclass
class CellResult:
    classes: list[str]
    proba: np.ndarray  # (n_eval, n_classes) in `classes` order
    steps: int
    train_examples: int
    history: list[dict[str, Any]]
    train_seconds: float  # the stack's training time, shared by its cells

    @property
    def examples_per_s(self) -> float:
        return self.train_examples / self.train_seconds if self.train_seconds else 0.0


def unstackable(config: FineTuneConfig, multilabel: bool = False) -> str | None:
    """Why cells with this configuration cannot share a stack (None when they can)."""
    if config.lora is not None:
        return "LoRA adapters"
    if config.grad_accum != 1:
        return "several micro-batches per optimiser step"
    if config.domain_terms:
        return "domain terms added to the tokenizer"
    if multilabel:
        return "multi-label targets"
    _, hf_config, _ = base_encoder(config.model)
    if (
        hf_config.model_type != "bert"
        or getattr(hf_config, "position_embedding_type", "absolute") != "absolute"
    ):
        return f"a {hf_config.model_type!r} encoder (stacking supports BERT-family models)"
    if hf_config.hidden_act not in ("gelu", "relu", "gelu_new"):
        return f"the {hf_config.hidden_act!r} activation"
    return None


def train_stack(
    cells: Sequence[Cell],
    config: FineTuneConfig,
    eval_texts: Sequence[str],
    dev: tuple[Sequence[str], Sequence[str]] | None = None,
    *,
    progress: Progress | None = None,
    check_syncs: bool = False,
) -> list[CellResult]:
    """Train every cell (same configuration, same class set) in one stack; return each
    cell's class probabilities on `eval_texts`, in the order of `cells`.

    `check_syncs` makes any host synchronisation inside the training steps an error
    (CUDA only: `torch.cuda.set_sync_debug_mode`)."""
    import torch

    from assay.train.device import select_device

    if not cells:
        return []
    reason = unstackable(config)
    if reason is not None:
        raise InputError(f"these cells cannot be trained as a stack: {reason}")
    classes = sorted({str(y) for y in cells[0].labels})
    for cell in cells:
        if sorted({str(y) for y in cell.labels}) != classes:
            raise InputError("every cell of a stack must have the same classes; group them first")
        if len(cell.texts) != len(cell.labels) or not len(cell.texts):
            raise InputError("each cell needs as many labels as texts, and at least one")
    if len(classes) < 2:
        raise InputError(f"fine-tuning needs at least two classes; found {classes}")
    setup = select_device(config.device, config.threads)
    device = torch.device(setup.device)
    tokenizer, hf_config, state = base_encoder(config.model)
    tokens = token_cache(tokenizer, config.max_length)

    # Token ids: every distinct text tokenised once, remapped to the rows the stack uses.
    dev_texts = list(dev[0]) if dev is not None else []
    all_texts = [t for c in cells for t in c.texts] + dev_texts + list(eval_texts)
    used = np.unique(np.concatenate([np.asarray(tokens(t), dtype=np.int64) for t in all_texts]
                                    + [np.array([tokenizer.pad_token_id or 0])]))  # fmt: skip
    remap = np.full(hf_config.vocab_size, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    pad = int(remap[tokenizer.pad_token_id or 0])

    def table(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids = [remap[np.asarray(tokens(t), dtype=np.int64)] for t in texts]
        lengths = np.array([len(x) for x in ids], dtype=np.int64)
        out = np.full((len(ids), max(1, lengths.max(initial=1))), pad, dtype=np.int64)
        for i, row in enumerate(ids):
            out[i, : len(row)] = row
        return out, lengths

    plans = [_plan(cell, config, classes, tokens) for cell in cells]
    rows, row_lengths = table([t for c in cells for t in c.texts])
    offsets = np.cumsum([0] + [len(c.texts) for c in cells])
    model = _Stack(state, hf_config, used, len(classes), [c.seed for c in cells], config,
                   device)  # fmt: skip
    trainer = _Trainer(model, plans, offsets, rows, row_lengths, config, setup, device, pad)
    dev_tables = None
    if dev is not None and len(dev_texts):
        dev_labels = [str(y) for y in dev[1]]
        scored = sorted(set(classes) | set(dev_labels))
        dev_tables = (*table(dev_texts), np.array([scored.index(y) for y in dev_labels]),
                      len(scored))  # fmt: skip
    progress = progress or SilentProgress()
    started = time.perf_counter()
    history = trainer.run(dev_tables, progress, check_syncs)
    seconds = time.perf_counter() - started
    eval_ids, eval_lengths = table(list(eval_texts)) if len(eval_texts) else (None, None)
    proba = (
        model.predict(eval_ids, eval_lengths, config.eval_batch_size, pad, setup)
        if eval_ids is not None
        else np.zeros((len(cells), 0, len(classes)), dtype=np.float32)
    )
    out = []
    for k, plan in enumerate(plans):
        steps = int(trainer.stopped[k])
        out.append(
            CellResult(
                classes=list(classes),
                proba=proba[k],
                steps=steps,
                train_examples=int(plan.sizes[:steps].sum()),
                history=history[k],
                train_seconds=seconds,
            )
        )
    return out


# -- the plan of one cell: its batches, schedule and dev evaluations ------------------------


@dataclasses.dataclass
class _Plan:
    batches: list[np.ndarray]  # row indices per optimiser step (into the cell's rows)
    sizes: np.ndarray  # examples per step
    lr: np.ndarray  # learning rate per step
    evals: set[int]  # steps (1-based) after which dev is evaluated
    total: int
    targets: np.ndarray
    weights: np.ndarray


def _plan(cell: Cell, config: FineTuneConfig, classes: list[str], tokens) -> _Plan:
    """The cell's batches in the order `EncoderModel.fit` takes them (same seed, same rng)."""
    from assay.train import batching
    from assay.train.metrics import encode

    labels = [str(y) for y in cell.labels]
    lengths = np.array([len(tokens(t)) for t in cell.texts], dtype=np.int64)
    batch = config.batch_size
    per_epoch = math.ceil(len(labels) / batch)
    total = config.max_steps or max(1, math.ceil(per_epoch * config.epochs))
    rng = np.random.default_rng(cell.seed)
    batches: list[np.ndarray] = []
    while len(batches) < total:
        batches.extend(batching.batch_order(lengths, batch, rng, config.bucket_by_length))
    batches = batches[:total]
    factor = lr_factor(total, config.warmup_ratio)
    return _Plan(
        batches=batches,
        sizes=np.array([len(b) for b in batches], dtype=np.int64),
        lr=np.array([config.learning_rate * factor(s) for s in range(total)], dtype=np.float64),
        evals=eval_points(per_epoch, total, config.evals_per_epoch),
        total=total,
        targets=encode(labels, classes),
        weights=loss_weights(labels, cell.weights, classes, config),
    )


# -- the stacked model ----------------------------------------------------------------------


class _Stack:
    """K BERT classifiers as stacked tensors (leading dimension K), fp32 master weights."""

    def __init__(self, state, hf_config, used, n_classes, seeds, config, device) -> None:
        import torch

        k = len(seeds)
        self.k, self.config, self.hf = k, config, hf_config
        self.heads = hf_config.num_attention_heads
        self.eps = hf_config.layer_norm_eps
        self.act = hf_config.hidden_act
        used_t = torch.as_tensor(used)

        def stack(t):  # (K, *shape) copy of a shared tensor, on the device
            return t.detach().to(device=device, dtype=torch.float32).unsqueeze(0).repeat(
                k, *([1] * t.ndim)
            ).contiguous()  # fmt: skip

        p: dict[str, Any] = {}
        decay: dict[str, bool] = {}
        frozen: set[str] = set()
        prefix = "embeddings."
        p["word"] = stack(state[prefix + "word_embeddings.weight"][used_t])
        positions = min(config.max_length, state[prefix + "position_embeddings.weight"].shape[0])
        p["position"] = stack(state[prefix + "position_embeddings.weight"][:positions])
        p["token_type"] = stack(state[prefix + "token_type_embeddings.weight"][0])
        p["emb_norm_w"] = stack(state[prefix + "LayerNorm.weight"])
        p["emb_norm_b"] = stack(state[prefix + "LayerNorm.bias"])
        decay.update(word=True, position=True, token_type=True)
        if config.freeze_embeddings or config.freeze_layers:
            frozen |= {"word", "position", "token_type", "emb_norm_w", "emb_norm_b"}
        for i in range(hf_config.num_hidden_layers):
            pre = f"encoder.layer.{i}."
            att = pre + "attention."
            q, kk, v = (state[att + f"self.{n}.weight"] for n in ("query", "key", "value"))
            qb, kb, vb = (state[att + f"self.{n}.bias"] for n in ("query", "key", "value"))
            names = {
                "qkv_w": torch.cat([q, kk, v]).T,
                "qkv_b": torch.cat([qb, kb, vb]),
                "att_out_w": state[att + "output.dense.weight"].T,
                "att_out_b": state[att + "output.dense.bias"],
                "att_norm_w": state[att + "output.LayerNorm.weight"],
                "att_norm_b": state[att + "output.LayerNorm.bias"],
                "ffn_in_w": state[pre + "intermediate.dense.weight"].T,
                "ffn_in_b": state[pre + "intermediate.dense.bias"],
                "ffn_out_w": state[pre + "output.dense.weight"].T,
                "ffn_out_b": state[pre + "output.dense.bias"],
                "ffn_norm_w": state[pre + "output.LayerNorm.weight"],
                "ffn_norm_b": state[pre + "output.LayerNorm.bias"],
            }
            for name, tensor in names.items():
                p[f"{i}.{name}"] = stack(tensor)
                decay[f"{i}.{name}"] = name.endswith("_w") and "norm" not in name
                if i < config.freeze_layers:
                    frozen.add(f"{i}.{name}")
        # The pooler (the checkpoint's, or a fresh one) and the classifier: each cell's own.
        hidden = hf_config.hidden_size
        pool_w, pool_b, cls_w, cls_b = [], [], [], []
        for seed in seeds:
            pw, pb, cw, cb = head_init(seed, hf_config, n_classes, state)
            pool_w.append(pw.T)
            pool_b.append(pb)
            cls_w.append(cw.T)
            cls_b.append(cb)
        p["pool_w"] = torch.stack(pool_w).to(device)
        p["pool_b"] = torch.stack(pool_b).to(device)
        p["cls_w"] = torch.stack(cls_w).to(device)
        p["cls_b"] = torch.stack(cls_b).to(device)
        decay.update(pool_w=True, cls_w=True)
        assert p["pool_w"].shape == (k, hidden, hidden)
        self.params = {n: t.requires_grad_(n not in frozen) for n, t in p.items()}
        self.decay = {n: decay.get(n, False) for n in p}
        self.layers = hf_config.num_hidden_layers
        self.dropout = (hf_config.hidden_dropout_prob, hf_config.attention_probs_dropout_prob)
        self.classifier_dropout = (
            hf_config.classifier_dropout
            if getattr(hf_config, "classifier_dropout", None) is not None
            else hf_config.hidden_dropout_prob
        )
        self.generators = []
        for seed in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(int(np.random.SeedSequence([seed, DROPOUT_STREAM]).generate_state(1)[0]))
            self.generators.append(g)

    def trainable(self) -> dict[str, Any]:
        return {n: t for n, t in self.params.items() if t.requires_grad}

    # -- forward ------------------------------------------------------------------------

    def forward(self, ids, lengths, sizes=None, drop=None):
        """Logits (K, B, C) for token ids (K, B, T) or (B, T) shared by every cell.

        `drop` is a per-step `_Dropout` (training) or None (inference); `sizes[k]` is the
        number of real rows of cell k in this batch."""
        import torch
        import torch.nn.functional as F

        p = self.params
        k = self.k
        shared = ids.dim() == 2
        b, t = ids.shape[-2], ids.shape[-1]
        vocab, hidden = p["word"].shape[1], p["word"].shape[2]
        offsets = (torch.arange(k, device=ids.device) * vocab).view(k, 1, 1)
        flat_ids = (ids.unsqueeze(0) if shared else ids) + offsets
        x = F.embedding(flat_ids, p["word"].reshape(k * vocab, hidden))
        x = x + p["position"][:, None, :t] + p["token_type"][:, None, None]
        x = self._norm(x, "emb_norm")
        x = drop.hidden_states(x, self.dropout[0]) if drop is not None else x
        positions = torch.arange(t, device=ids.device)
        keep = positions < lengths.clamp(min=1).unsqueeze(-1)  # (K, B, T) or (B, T)
        if shared:
            keep = keep.unsqueeze(0).expand(k, b, t)
        bias = torch.zeros(keep.shape, dtype=x.dtype, device=x.device)
        bias = bias.masked_fill(~keep, torch.finfo(x.dtype).min)
        bias = bias.reshape(k * b, 1, 1, t)
        x = x.reshape(k, b * t, hidden)
        heads, dim = self.heads, hidden // self.heads
        for i in range(self.layers):
            qkv = torch.baddbmm(p[f"{i}.qkv_b"].unsqueeze(1), x, p[f"{i}.qkv_w"])
            qkv = qkv.view(k * b, t, 3, heads, dim).permute(2, 0, 3, 1, 4)
            q, kk, v = qkv[0], qkv[1], qkv[2]
            scores = torch.matmul(q, kk.transpose(-1, -2)) / math.sqrt(dim)
            probs = torch.softmax(scores.float() + bias.float(), dim=-1).to(q.dtype)
            if drop is not None:
                probs = drop.attention(probs.view(k, b, heads, t, t), self.dropout[1])
                probs = probs.view(k * b, heads, t, t)
            ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(k, b * t, hidden)
            out = torch.baddbmm(p[f"{i}.att_out_b"].unsqueeze(1), ctx, p[f"{i}.att_out_w"])
            if drop is not None:
                out = drop.hidden_states(out.view(k, b, t, hidden), self.dropout[0]).view(
                    k, b * t, -1
                )
            x = self._norm(out + x, f"{i}.att_norm")
            inner = torch.baddbmm(p[f"{i}.ffn_in_b"].unsqueeze(1), x, p[f"{i}.ffn_in_w"])
            inner = self._activation(inner)
            out = torch.baddbmm(p[f"{i}.ffn_out_b"].unsqueeze(1), inner, p[f"{i}.ffn_out_w"])
            if drop is not None:
                out = drop.hidden_states(out.view(k, b, t, hidden), self.dropout[0]).view(
                    k, b * t, -1
                )
            x = self._norm(out + x, f"{i}.ffn_norm")
        first = x.view(k, b, t, hidden)[:, :, 0]
        pooled = torch.tanh(torch.baddbmm(p["pool_b"].unsqueeze(1), first, p["pool_w"]))
        if drop is not None:
            pooled = drop.rows(pooled, self.classifier_dropout)
        return torch.baddbmm(p["cls_b"].unsqueeze(1), pooled, p["cls_w"])

    def _norm(self, x, name: str):
        import torch.nn.functional as F

        w, b = self.params[name + "_w"], self.params[name + "_b"]
        shape = (w.shape[0],) + (1,) * (x.dim() - 2) + (w.shape[-1],)
        y = F.layer_norm(x, (x.shape[-1],), eps=self.eps)
        return y * w.view(shape) + b.view(shape)

    def _activation(self, x):
        import torch.nn.functional as F

        if self.act == "relu":
            return F.relu(x)
        return F.gelu(x, approximate="tanh" if self.act == "gelu_new" else "none")

    def batches(self, lengths: np.ndarray, batch: int):
        """Inference batches as (row indices on the device, width), sorted by length; larger
        on a GPU as the stack grows (every cell reads the same rows)."""
        import torch

        from assay.train import batching

        device = self.params["word"].device
        size = max(batch, 4096 // self.k) if device.type == "cuda" else batch
        return [
            (torch.as_tensor(index, device=device), max(int(lengths[index].max()), 1))
            for index in batching.eval_order(lengths, size)
        ]

    def predict(self, ids: np.ndarray, lengths: np.ndarray, batch: int, pad: int, setup):
        """Class probabilities (K, n, C)."""
        import torch

        device = self.params["word"].device
        out = torch.empty((self.k, len(lengths), self.params["cls_b"].shape[-1]), device=device)
        ids_t = torch.as_tensor(ids, device=device)
        lengths_t = torch.as_tensor(lengths, device=device)
        with torch.inference_mode(), _autocast(setup):
            for idx, width in self.batches(lengths, batch):
                logits = self.forward(ids_t[idx, :width], lengths_t[idx])
                out[:, idx] = torch.softmax(logits.float(), dim=-1)
        return out.cpu().numpy()


class _Dropout:
    """Dropout masks whose draws belong to their cell.

    At each step every cell fills its own stretch of one buffer with uniform numbers from
    its own generator (one call per cell), as many as its masks at its own batch shape
    need, site after site in forward order. A site's stacked mask then reads each cell's
    numbers at the positions that shape gives them (an index computed on the device): a
    cell draws the same numbers, and keeps the same units, alone or in a stack of 80.
    """

    def __init__(self, model, sizes: np.ndarray, widths: np.ndarray, device) -> None:
        import torch

        p_hidden, p_attention = model.dropout
        hidden = model.params["word"].shape[-1]
        self.sites = [("hidden", p_hidden)]
        self.sites += [("attention", p_attention), ("hidden", p_hidden), ("hidden", p_hidden)] * (
            model.layers
        )
        self.sites.append(("rows", model.classifier_dropout))
        self.hidden, self.heads = hidden, model.heads
        self.generators, self.device = model.generators, device
        # Numbers per cell, site and step (steps x sites x K), from the cells' own shapes.
        b, t = sizes.astype(np.int64), widths.astype(np.int64)
        per_kind = {"hidden": b * t * hidden, "attention": b * model.heads * t * t,
                    "rows": b * hidden}  # fmt: skip
        counts = np.stack([per_kind[kind] if p > 0 else 0 * b for kind, p in self.sites], 1)
        cell_totals = counts.sum(1)  # (steps, K)
        self.cell_starts = np.concatenate(
            [np.zeros((len(b), 1), np.int64), np.cumsum(cell_totals, 1)], 1
        )
        site_base = self.cell_starts[:, None, :-1] + np.cumsum(counts, 1) - counts
        # 32-bit offsets while every buffer fits them: half the traffic of the index maths.
        self.index_dtype = torch.int32 if cell_totals.sum(1).max() < 2**31 else torch.int64
        self.site_base = torch.as_tensor(site_base, device=device).to(self.index_dtype)
        self.b = torch.as_tensor(b, device=device).to(self.index_dtype)
        self.t = torch.as_tensor(t, device=device).to(self.index_dtype)

    def start(self, step: int) -> None:
        import torch

        starts = self.cell_starts[step]
        self.buffer = torch.empty(int(starts[-1]), device=self.device)
        for k, g in enumerate(self.generators):
            if starts[k + 1] > starts[k]:
                self.buffer[starts[k] : starts[k + 1]].uniform_(generator=g)
        self.step, self.site = step, 0

    def _keep(self, kind: str, shape, p: float):
        """The stacked keep-mask (already scaled by 1 / (1 - p)) of the next site."""
        import torch

        site, self.site = self.site, self.site + 1
        assert self.sites[site][0] == kind
        k = shape[0]
        base = self.site_base[self.step, site]
        _b, t = self.b[self.step], self.t[self.step]

        def axis(n: int, dim: int, ndim: int):
            view = [1] * ndim
            view[dim] = n
            return torch.arange(n, device=self.device, dtype=self.index_dtype).view(view)

        def per_cell(v, ndim: int):
            return v.view((k,) + (1,) * (ndim - 1))

        nd = len(shape)
        if kind == "hidden":  # (K, B, T, H): cell layout (b, t, H)
            tk = per_cell(t, nd)
            index = (per_cell(base, nd) + axis(shape[1], 1, nd) * tk * self.hidden
                     + axis(shape[2], 2, nd) * self.hidden + axis(shape[3], 3, nd))  # fmt: skip
        elif kind == "attention":  # (K, B, heads, T, T): cell layout (b, heads, t, t)
            tk = per_cell(t, nd)
            index = (per_cell(base, nd) + axis(shape[1], 1, nd) * self.heads * tk * tk
                     + axis(shape[2], 2, nd) * tk * tk + axis(shape[3], 3, nd) * tk
                     + axis(shape[4], 4, nd))  # fmt: skip
        else:  # rows (K, B, H)
            index = per_cell(base, nd) + axis(shape[1], 1, nd) * self.hidden + axis(shape[2], 2, nd)
        # Positions past a cell's own rows or width are padding: any number will do there.
        index = index.clamp(max=max(self.buffer.numel() - 1, 0))
        return (self.buffer[index] >= p).to(torch.float32) / (1 - p)

    def hidden_states(self, x, p: float):
        return x if p == 0 else x * self._keep("hidden", x.shape, p).to(x.dtype)

    def attention(self, probs, p: float):
        return probs if p == 0 else probs * self._keep("attention", probs.shape, p).to(probs.dtype)

    def rows(self, x, p: float):
        return x if p == 0 else x * self._keep("rows", x.shape, p).to(x.dtype)


@contextlib.contextmanager
def _sync_debug(mode: str):
    import torch

    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(before)


def _autocast(setup):
    import contextlib

    import torch

    if setup.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=getattr(torch, setup.amp_dtype))


# -- the training loop ----------------------------------------------------------------------


class _Trainer:
    """Runs the steps of a stack: AdamW per cell (the learning rate a (K,) tensor), per-cell
    gradient clipping, dev evaluation and best checkpoint, all on the device."""

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, model, plans, offsets, rows, row_lengths, config, setup, device, pad):
        import torch

        self.model, self.plans, self.config, self.setup = model, plans, config, setup
        self.device, self.pad = device, pad
        k = len(plans)
        self.steps = max(p.total for p in plans)
        width = max(int(s.max()) for s in (p.sizes for p in plans))
        # Every step's rows (global row numbers; -1 for a cell with fewer rows or no step).
        index = np.full((self.steps, k, width), -1, dtype=np.int64)
        sizes = np.zeros((self.steps, k), dtype=np.int64)
        lr = np.zeros((self.steps, k), dtype=np.float64)
        for c, plan in enumerate(plans):
            for s, rows_s in enumerate(plan.batches):
                index[s, c, : len(rows_s)] = rows_s + offsets[c]
            sizes[: plan.total, c] = plan.sizes
            lr[: plan.total, c] = plan.lr
        self.sizes_host = sizes
        # The widest row of any cell at each step: the padded length of that step.
        lengths_of = np.where(index >= 0, row_lengths[np.maximum(index, 0)], 0)
        self.widths_host = lengths_of.max(axis=2)  # (steps, K)
        self.step_width = np.maximum(self.widths_host.max(axis=1), 1)
        targets = np.concatenate([p.targets for p in plans])
        weights = np.concatenate([p.weights for p in plans]).astype(np.float32)

        def dev(a, dtype=None):
            return torch.as_tensor(a, dtype=dtype, device=device)

        self.index = dev(np.maximum(index, 0))
        self.valid = dev(index >= 0, torch.float32)
        self.sizes = dev(np.maximum(sizes, 1), torch.float32)
        self.lr = dev(lr, torch.float32)
        self.rows = dev(rows)
        self.row_lengths = dev(row_lengths)
        self.targets = dev(targets)
        self.weights = dev(weights)
        self.evals = [sorted(p.evals) for p in plans]
        # Steps at which every cell takes the same learning rate and none can stop early
        # (a step budget): one fused optimiser pass then serves the whole stack.
        same = (lr == lr[:, :1]).all(axis=1) & (sizes > 0).all(axis=1)
        fixed = config.early_stopping_patience is None
        self.shared_lr = [float(lr[s, 0]) if fixed and same[s] else None
                          for s in range(self.steps)]  # fmt: skip
        # Which cells evaluate dev after each step, and which take their last step then.
        due = np.zeros((self.steps + 1, k), dtype=bool)
        ends = np.zeros((self.steps + 1, k), dtype=bool)
        for c, plan in enumerate(plans):
            due[sorted(plan.evals), c] = True
            ends[plan.total, c] = True
        self.due, self.ends = dev(due), dev(ends)
        self.stopped = np.array([p.total for p in plans], dtype=np.int64)

    def run(self, dev_tables, progress: Progress, check_syncs: bool = False):
        """Every step; each cell's history (step, loss, dev macro-F1 at its evaluations)."""
        import contextlib

        import torch

        if dev_tables is not None:  # on the device before the first step
            ids, lengths, truth, self.n_scored = dev_tables
            self.dev = tuple(torch.as_tensor(a, device=self.device) for a in (ids, lengths, truth))
            self.dev_batches = self.model.batches(lengths, self.config.eval_batch_size)
        self.drop = _Dropout(self.model, self.sizes_host, self.widths_host, self.device)
        strict = check_syncs and self.device.type == "cuda"
        with _sync_debug("error") if strict else contextlib.nullcontext():
            device_values = self._steps(dev_tables, progress)
        return self._history(*device_values)

    def _steps(self, dev_tables, progress: Progress):
        import torch

        model, cfg = self.model, self.config
        params = model.trainable()
        names = list(params)
        tensors = [params[n] for n in names]
        m = [torch.zeros_like(t) for t in tensors]
        v = [torch.zeros_like(t) for t in tensors]
        state_steps = [torch.zeros((), device=self.device) for _ in tensors]
        decayed = [i for i, n in enumerate(names) if model.decay[n] and cfg.weight_decay]
        undecayed = [i for i, n in enumerate(names) if i not in decayed]
        k = model.k
        decay_views = {
            n: (k,) + (1,) * (params[n].dim() - 1) for n in names
        }  # shapes that broadcast a (K,) vector over a parameter
        active = torch.ones(k, device=self.device)
        best_score = torch.full((k,), -1.0, dtype=torch.float64, device=self.device)
        best = None
        bad = torch.zeros(k, device=self.device)
        eval_steps = sorted({s for e in self.evals for s in e})
        records = {s: None for s in eval_steps}
        losses = torch.zeros((self.steps, k), device=self.device)
        stop_step = torch.full((k,), self.steps, dtype=torch.int64, device=self.device)
        patience = cfg.early_stopping_patience
        total_examples = int(self.sizes_host.sum())
        b1, b2 = self.BETAS
        drop = self.drop
        with progress.task("fine-tune (examples, all cells)", total=total_examples) as task:
            for s in range(self.steps):
                width = int(self.step_width[s])
                idx = self.index[s]  # (K, B)
                ids = self.rows[:, :width][idx]
                lengths = self.row_lengths[idx] * self.valid[s].long()
                drop.start(s)
                with _autocast(self.setup):
                    logits = model.forward(ids, lengths, drop=drop)
                ce = torch.nn.functional.cross_entropy(
                    logits.float().flatten(0, 1), self.targets[idx].flatten(), reduction="none"
                ).view(idx.shape)
                per_cell = (ce * self.weights[idx] * self.valid[s]).sum(1) / self.sizes[s]
                grads = torch.autograd.grad(per_cell.sum(), tensors)
                losses[s] = per_cell.detach()
                grads = self._clip(grads, k)
                step = s + 1
                torch._foreach_add_(state_steps, 1.0)
                if self.shared_lr[s] is not None:  # one fused AdamW pass per group
                    for group, wd in ((decayed, cfg.weight_decay), (undecayed, 0.0)):
                        if group:
                            torch._fused_adamw_(
                                [tensors[i] for i in group], [grads[i] for i in group],
                                [m[i] for i in group], [v[i] for i in group], [],
                                [state_steps[i] for i in group], lr=self.shared_lr[s],
                                beta1=b1, beta2=b2, weight_decay=wd, eps=self.EPS,
                                amsgrad=False, maximize=False,
                            )  # fmt: skip
                else:  # cells on their own schedules: the learning rate a (K,) tensor
                    lr = self.lr[s] * active
                    torch._foreach_mul_(m, b1)
                    torch._foreach_add_(m, grads, alpha=1 - b1)
                    torch._foreach_mul_(v, b2)
                    torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
                    denom = torch._foreach_sqrt(v)
                    torch._foreach_div_(denom, math.sqrt(1 - b2**step))
                    torch._foreach_add_(denom, self.EPS)
                    update = torch._foreach_div(m, denom)
                    step_size = lr / (1 - b1**step)
                    with torch.no_grad():
                        for n, t, u in zip(names, tensors, update, strict=True):
                            if model.decay[n] and cfg.weight_decay:
                                t.mul_((1 - lr * cfg.weight_decay).view(decay_views[n]))
                            t.addcmul_(u, step_size.view(decay_views[n]), value=-1)
                if step in records and dev_tables is not None:
                    due = self.due[step] & (active > 0)
                    score = self._dev_scores()
                    better = due & (score > best_score + 1e-9)
                    best_score = torch.where(better, score, best_score)
                    best = self._snapshot(best, better)
                    bad = torch.where(due & ~better, bad + 1, torch.where(better, 0.0, bad))
                    records[step] = (score, due)
                    if patience is not None:
                        stopping = due & (bad >= patience)
                        stop_step = torch.where(stopping, torch.full_like(stop_step, step),
                                                stop_step)  # fmt: skip
                        active = active * (~stopping).float()
                elif step in records:
                    records[step] = (None, None)
                # A cell whose last step this was takes no more.
                active = active * (~self.ends[step]).float()
                task.advance(int(self.sizes_host[s].sum()))
        if best is not None:
            with torch.no_grad():
                for n, t in model.params.items():
                    if n in best:
                        t.copy_(best[n])
        return records, losses, stop_step

    def _history(self, records, losses, stop_step) -> list[list[dict[str, Any]]]:
        """Host values, read once after the last step."""
        k = self.model.k
        self.stopped = np.minimum(stop_step.cpu().numpy(), [p.total for p in self.plans])
        losses_host = losses.cpu().numpy()
        history: list[list[dict[str, Any]]] = [[] for _ in range(k)]
        for step, rec in records.items():
            score, due = rec if rec is not None else (None, None)
            score = score.cpu().numpy() if score is not None else None
            due = due.cpu().numpy() if due is not None else None
            for c in range(k):
                if step not in self.evals[c] or step > self.stopped[c]:
                    continue
                entry: dict[str, Any] = {"step": step, "loss": float(losses_host[step - 1, c])}
                if score is not None:
                    entry["dev_macro_f1"] = float(score[c])
                history[c].append(entry)
        return history

    def _clip(self, grads, k: int):
        """Each cell's gradients scaled to norm `max_grad_norm` at most (in place)."""
        import torch

        limit = self.config.max_grad_norm
        grads = list(grads)
        if not limit:
            return grads
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(k, -1), dim=1) for g in grads])
        coef = (limit / (norms.pow(2).sum(0).sqrt() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view((k,) + (1,) * (g.dim() - 1)))
        return grads

    def _snapshot(self, best, better):
        import torch

        with torch.no_grad():
            if best is None:
                return {n: t.detach().clone() for n, t in self.model.params.items()}
            for n, t in self.model.params.items():
                mask = better.view((-1,) + (1,) * (t.dim() - 1))
                best[n] = torch.where(mask, t.detach(), best[n])
            return best

    def _dev_scores(self):
        """Each cell's dev macro-F1 (float64, on the device), as `classification_report`
        computes it: classes with neither a true nor a predicted example left out."""
        import torch

        ids_t, lengths_t, truth_t = self.dev
        n_scored = self.n_scored
        pred = torch.empty((self.model.k, len(truth_t)), dtype=torch.int64, device=self.device)
        with torch.no_grad(), _autocast(self.setup):
            for idx, width in self.dev_batches:
                logits = self.model.forward(ids_t[idx, :width], lengths_t[idx])
                pred[:, idx] = logits.float().argmax(-1)
        k = self.model.k
        flat = truth_t.unsqueeze(0) * n_scored + pred  # (K, n)
        conf = torch.zeros((k, n_scored * n_scored), dtype=torch.float64, device=self.device)
        conf.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
        conf = conf.view(k, n_scored, n_scored)
        tp = conf.diagonal(dim1=1, dim2=2)
        true, predicted = conf.sum(2), conf.sum(1)
        present = (true + predicted) > 0
        f1 = torch.where(present, 2 * tp / (true + predicted).clamp(min=1), 0.0)
        return (f1 * present).sum(1) / present.sum(1).clamp(min=1)
