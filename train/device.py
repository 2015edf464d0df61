"""Device and thread selection: CUDA with bf16/fp16 and larger batches, else CPU threads
sized to the cores that are actually free.

On a shared CPU, asking torch for more threads than free cores makes every op wait for a
descheduled thread at each barrier; throughput then collapses (7x measured on a loaded
2-core machine). So the thread count is the available cores minus the load other
processes put on them, at least one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

log = logging.getLogger(__name__)

CPU_BATCH = 16
CUDA_BATCH = 64


@dataclasses.dataclass(frozen=True)
class DeviceSetup:
    device: str  # "cpu" or "cuda"
    amp_dtype: str | None  # "bfloat16" / "float16" on CUDA, None on CPU
    threads: int | None  # torch intra-op threads on CPU
    default_batch_size: int

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def available_cores() -> int:
    """The cores this process may use (inside a Ray worker, the CPUs Ray assigned it)."""
    from assay.engine import cpu_budget

    return cpu_budget()


def busy_cores(interval: float = 0.3) -> float:
    """Cores other processes keep busy right now (this process is idle while it samples).

    Read from /proc/stat over a short interval; the 1-minute load average lags by a minute
    and counts this process's own recent work, so it is only the fallback.
    """
    try:
        first = _cpu_times()
        time.sleep(interval)
        second = _cpu_times()
    except OSError:
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    idle = second[0] - first[0]
    total = second[1] - first[1]
    if total <= 0:
        return 0.0
    return (1.0 - idle / total) * (os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, all but guest time


def free_cores(cores: int | None = None, busy: float | None = None) -> int:
    """Cores not taken by other processes: at least one, at most the available cores."""
    cores = cores or available_cores()
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, int(cores - busy + 0.5)))


def describe_device(device: str = "auto") -> tuple[str, str]:
    """(device kind, training dtype) that `select_device` would give, without needing the
    device here: an explicit "cuda" names a GPU with bf16 (every GPU since Ampere) when
    none is visible, so cells meant for another machine are keyed as they will train."""
    import torch

    cuda = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if not device.startswith("cuda"):
        return "cpu", "float32"
    if cuda and not torch.cuda.is_bf16_supported():
        return "cuda", "float16"
    return "cuda", "bfloat16"


def select_device(device: str = "auto", threads: int | None = None) -> DeviceSetup:
    """Resolve `device` ("auto", "cpu", "cuda", "cuda:1"...) and apply the thread count."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            from assay.errors import ResourceError

            raise ResourceError(
                f"device {device!r} was asked for but torch sees no CUDA device; "
                "use device: auto or cpu"
            )
        amp = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return DeviceSetup(device, amp, None, CUDA_BATCH)
    n = threads or free_cores()
    if torch.get_num_threads() != n:
        log.info("torch CPU threads: %d (of %d cores)", n, available_cores())
        torch.set_num_threads(n)
    return DeviceSetup("cpu", None, n, CPU_BATCH)


class ThreadTuner:
    """Picks torch's CPU thread count by timing real training steps, again and again.

    Load from other processes comes and goes, and whether a second thread helps depends
    on it: on a loaded 2-core machine two threads ran 7x slower than one, on a quiet one
    about 1.6x faster. A round runs a few steps at each candidate count and keeps the
    fastest per token. Rounds recur every `period` steps, and at once when steps at the
    chosen count get much slower than they were (load arrived). A count that the CPU time
    of other processes says would oversubscribe the cores is not tried, and a candidate
    more than twice as slow as the best so far is dropped after one step.
    """

    def __init__(self, start: int, cores: int | None = None, trial_steps: int = 2,
                 period: int = 40, slowdown: float = 1.6) -> None:  # fmt: skip
        cores = cores or available_cores()
        self.cores = cores
        self.candidates = sorted({1, start, cores} | ({cores // 2} if cores > 4 else set()))
        self.trial_steps = trial_steps
        self.period = period
        self.slowdown = slowdown
        self.threads = start
        self.history: list[tuple[int, int]] = []  # (step, threads chosen)
        self._step = 0
        self._since_round = 0
        self._queue: list[int] = []
        self._timings: dict[int, list[float]] = {}
        self._reference = 0.0  # per-token time of the chosen count when it was chosen
        self._started = 0.0
        self._load_mark = _load_sample()
        self._round()

    def _others(self) -> float | None:
        """Cores other processes used since the last round (None without /proc)."""
        now = _load_sample()
        before, self._load_mark = self._load_mark, now
        if now is None or before is None or now[0] <= before[0]:
            return None
        return max(0.0, (now[1] - before[1]) - (now[2] - before[2])) / (now[0] - before[0])

    def _round(self) -> None:
        others = self._others()
        allowed = [
            c for c in self.candidates if c == 1 or others is None or c <= self.cores - others + 0.5
        ]
        self._timings = {}
        self._since_round = 0
        self._queue = [c for c in allowed for _ in range(self.trial_steps)]
        if len(allowed) == 1:
            self._queue = []
            self._choose(allowed[0], 0.0)

    def _set(self, n: int) -> None:
        if n != self.threads:
            import torch

            torch.set_num_threads(n)
            self.threads = n

    def _choose(self, n: int, reference: float) -> None:
        if not self.history or self.history[-1][1] != n:
            log.info("torch CPU threads: %d", n)
        self.history.append((self._step, n))
        self._reference = reference
        self._set(n)

    def before_step(self) -> None:
        if self._queue:
            self._set(self._queue[0])
        self._started = time.perf_counter()

    def after_step(self, tokens: int) -> None:
        per_token = (time.perf_counter() - self._started) / max(tokens, 1)
        self._step += 1
        self._since_round += 1
        if not self._queue:
            slower = self._reference and per_token > self.slowdown * self._reference
            if self._since_round >= self.period or slower:
                self._round()
            return
        n = self._queue.pop(0)
        self._timings.setdefault(n, []).append(per_token)
        best = min(min(v) for v in self._timings.values())
        if per_token > 2 * best:  # clearly worse: no more trial steps for it
            self._queue = [c for c in self._queue if c != n]
        if not self._queue:
            medians = {c: float(np.median(t)) for c, t in self._timings.items()}
            chosen = min(medians, key=medians.__getitem__)
            self._choose(chosen, medians[chosen])


def _load_sample() -> tuple[float, float, float] | None:
    """(wall seconds, machine busy CPU seconds, this process's CPU seconds)."""
    try:
        idle, total = _cpu_times()
    except OSError:
        return None
    own = os.times()
    return time.monotonic(), (total - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system
