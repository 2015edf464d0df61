"""Progress reporting that library code can use without printing.

Steps call `ctx.progress(total, description)`; the CLI installs a rich-backed reporter,
`--quiet` and library use get the silent one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None = None) -> Iterator[Task]: ...


class _SilentTask:
    def advance(self, n: int = 1) -> None:
        pass


class SilentProgress:
    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield _SilentTask()


class RichProgress:
    """Rich progress bars with throughput; one bar per task, removed when done."""

    def __init__(self, console=None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as _Progress

        self._bars = _Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        bars = self._bars
        task_id = bars.add_task(description, total=total, rate="")
        outer = not bars.live.is_started
        if outer:
            bars.start()

        class _Task:
            def advance(self, n: int = 1) -> None:
                bars.advance(task_id, n)
                speed = next((t.speed for t in bars.tasks if t.id == task_id), None)
                if speed:
                    bars.update(task_id, rate=f"{speed:,.0f}/s")

        try:
            yield _Task()
        finally:
            bars.remove_task(task_id)
            if outer:
                bars.stop()
