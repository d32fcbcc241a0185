"""Progress by phase on a terminal (stderr), nothing when piped: read, prepare, sign, verify."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


class TerminalPhases:
    """One line per phase: a spinner while it runs, a bar with a count when its total is known,
    its time once done; the lines go when the run ends (the summary follows)."""

    def __init__(self, label: str):
        self.label = label
        self.progress = None

    def __enter__(self) -> TerminalPhases:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True,
        )
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.progress is not None
        self.progress.__exit__(None, None, None)

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        bar = self.progress
        assert bar is not None
        task = bar.add_task(f"{self.label}: {name}", total=total)
        try:
            yield lambda n: bar.advance(task, n)
        finally:
            bar.update(task, completed=total if total is not None else 1, total=total or 1)
            bar.stop_task(task)


class Quiet:
    """Phases that show nothing (piped, or --json)."""

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        yield lambda n: None


def phases_for(label: str, quiet: bool) -> contextlib.AbstractContextManager[TerminalPhases | Quiet]:
    """Phases shown on stderr when it is a terminal and not `quiet` (--json)."""
    if quiet or not sys.stderr.isatty():
        return contextlib.nullcontext(Quiet())
    return TerminalPhases(label)
