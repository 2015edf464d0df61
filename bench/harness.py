"""What the benchmarks share: running a measurement in its own process, its peak memory,
and the target records of the JSON report (BENCHMARKS.md)."""

from __future__ import annotations

import multiprocessing as mp
import resource


def peak_rss_mb() -> float:
    # VmHWM belongs to this process's own address space; ru_maxrss would carry the
    # parent's peak across the spawn (fork + exec).
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(target, args, queue) -> None:
    try:
        queue.put(("ok", target(*args)))
    except BaseException as exc:  # report, do not hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def isolated(target, *args) -> dict:
    """Run `target(*args)` in a fresh process, so its time and peak memory are its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    status, value = queue.get()
    proc.join()
    return value if status == "ok" else {"error": value}


def target(name: str, value: float, bound: float, op: str, digits: int = 4) -> dict:
    met = value >= bound if op == ">=" else value <= bound
    return {
        "name": name,
        "value": round(value, digits),
        "target": f"{op} {bound}",
        "met": bool(met),
    }
