"""How many fine-tunes one stack may hold in a CPU's memory.

A stack keeps, per cell, the encoder's fp32 weights, their gradients and AdamW's two
moments (16 bytes a parameter) and the activations of one batch kept for the backward pass.
Fifty MiniLM cells in one stack took 24 GB on a CPU and the kernel killed the process, so
on a CPU the cells train in stacks that fit in half the memory that is free. A stack's
cells predict what they predict trained alone, so the split changes no result. GPU stacks
are not split here: their memory was measured on the device (80 MiniLM cells in one).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

BYTES_PER_PARAMETER = 16  # fp32 weight, its gradient and AdamW's two moments
SHARE = 0.5  # of the free memory; the rest is the process's data and the allocator's slack


def cell_bytes(hf_config: Any, parameters: int, batch_size: int, max_length: int) -> int:
    """Bytes one cell of a stack needs on a CPU: its weights with their optimiser state,
    and fp32 activations of a full batch at `max_length` tokens (per layer about 34 values
    per token and hidden unit, and 5 per attention score: Korthikanti et al. 2022)."""
    hidden, layers = hf_config.hidden_size, hf_config.num_hidden_layers
    heads = hf_config.num_attention_heads
    per_layer = batch_size * max_length * (34 * hidden + 5 * heads * max_length)
    return BYTES_PER_PARAMETER * parameters + 4 * layers * per_layer


def free_memory() -> int:
    """Bytes the system could give this process now (Linux's MemAvailable)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def cells_per_stack(per_cell: int, available: int | None = None) -> int:
    """How many cells of `per_cell` bytes one CPU stack holds (at least one)."""
    available = free_memory() if available is None else available
    return max(1, int(SHARE * available) // max(per_cell, 1))


def chunks(n: int, size: int) -> list[range]:
    """`n` cells in consecutive stacks of at most `size`, as even as they can be."""
    stacks = -(-n // max(size, 1))
    bounds = [round(i * n / stacks) for i in range(stacks + 1)] if n else [0]
    return [range(a, b) for a, b in itertools.pairwise(bounds)]
