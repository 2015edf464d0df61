"""The stacked model: K BERT classifiers as one set of tensors with a leading K dimension,
and the dropout masks that keep each cell's draws its own.

`assay.train.stacked` trains it; a cell's forward pass here computes what the cell's own
`BertForSequenceClassification` computes, to float rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from assay.train.base_encoder import head_init

# Each cell's dropout generator: its own stream, apart from the head initialisation's.
DROPOUT_STREAM = 0x5EED


class StackedModel:
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

        `drop` is a per-step `CellDropout` (training) or None (inference); `sizes[k]` is the
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
        with torch.inference_mode(), autocast(setup):
            for idx, width in self.batches(lengths, batch):
                logits = self.forward(ids_t[idx, :width], lengths_t[idx])
                out[:, idx] = torch.softmax(logits.float(), dim=-1)
        return out.cpu().numpy()


class CellDropout:
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


def autocast(setup):
    """Mixed precision on CUDA when the device setup asks for it, else nothing."""
    import contextlib

    import torch

    if setup.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=getattr(torch, setup.amp_dtype))
