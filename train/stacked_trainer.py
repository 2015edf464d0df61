"""The training loop of a stack: every cell's optimiser steps, gradient clipping, dev
evaluations, best checkpoint and early stop, run on the device without host syncs.

`assay.train.stacked` builds the cells' plans and the `StackedModel`, then runs this.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from assay.progress import Progress
from assay.train.stacked_model import CellDropout, autocast


@contextlib.contextmanager
def _sync_debug(mode: str):
    import torch

    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(before)


class StackTrainer:
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
        self.drop = CellDropout(self.model, self.sizes_host, self.widths_host, self.device)
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
                with autocast(self.setup):
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
        with torch.no_grad(), autocast(self.setup):
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
