"""Tokenised examples, length-bucketed batches and dynamic padding.

Short sentences dominate classification corpora; padding a random batch to its longest
member wastes most of the compute. Sorting examples by length (with a random tie-break
each epoch) and cutting batches from the sorted order pads each batch only to its own
length; the batch order is then shuffled so training still sees lengths mixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass
class Encoded:
    """Token ids per example (unpadded), with targets and per-example loss weights."""

    input_ids: list[list[int]]
    targets: np.ndarray | None = None  # (n,) class index or (n, k) 0/1
    weights: np.ndarray | None = None  # (n,) per-example loss weight

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    out = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return out["input_ids"]


def batch_order(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, bucket: bool = True
) -> list[np.ndarray]:
    """Index batches for one epoch: length-bucketed (shuffled batch order) or random."""
    n = len(lengths)
    if not bucket:
        perm = rng.permutation(n)
        return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    # Random tie-break among equal lengths: batches differ from epoch to epoch.
    order = np.lexsort((rng.random(n), lengths))
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def eval_order(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Sorted by length, no shuffling: least padding at inference."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(input_ids: list[list[int]], index: np.ndarray, pad_id: int):
    """Pad the selected examples to the longest among them: (ids, attention_mask) tensors.

    The mask is None when no row is padded (common with length buckets): attention then
    runs without a mask, which is faster.
    """
    import torch

    rows = [input_ids[i] for i in index]
    width = max(len(r) for r in rows)
    if all(len(r) == width for r in rows):
        return torch.tensor(rows, dtype=torch.int64), None
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for j, r in enumerate(rows):
        ids[j, : len(r)] = r
        mask[j, : len(r)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)
