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
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


class ThreadGovernor:
    """Re-fits the torch thread count to the free cores while training runs.

    Other processes come and go during a long fine-tune. Every `interval` seconds the
    governor compares the machine's busy CPU time with this process's own CPU time over
    the same wall time; the difference is what others used. It costs two small file reads.
    """

    def __init__(self, threads: int, interval: float = 15.0) -> None:
        self.threads = threads
        self.interval = interval
        self.cores = available_cores()
        self.changes = 0
        self._mark = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            idle, total = _cpu_times()
        except OSError:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        own = os.times()
        return time.monotonic(), (total - idle) / tick, own.user + own.system

    def tick(self) -> None:
        if self._mark is None or time.monotonic() - self._mark[0] < self.interval:
            return
        now = self._sample()
        if now is None:
            return
        wall = now[0] - self._mark[0]
        others = max(0.0, (now[1] - self._mark[1]) - (now[2] - self._mark[2])) / wall
        self._mark = now
        wanted = max(1, min(self.cores, int(self.cores - others + 0.5)))
        if wanted != self.threads:
            import torch

            log.info("others use %.1f cores: torch threads %d -> %d", others, self.threads, wanted)
            torch.set_num_threads(wanted)
            self.threads = wanted
            self.changes += 1
