"""The batch job's progress bar (rich): bytes done of the input, rows scored, rows/s and ETA, on stderr.

The bar advances by input bytes (known up front, so the ETA is meaningful before any row is counted)
and shows rows, which are only known as mini-batches complete.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RowsColumn(ProgressColumn):
    """``1,234,567 rows  98,765 rows/s``."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = rows / elapsed if elapsed else 0.0
        return Text(f"{rows:,} rows  {rate:,.0f} rows/s", style="progress.data.speed")


class BatchProgress:
    """A context manager around one rich progress bar (a no-op when ``enabled`` is False)."""

    def __init__(self, total_bytes: int, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: Any = None
        self._rows = 0
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                _RowsColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console or Console(file=sys.stderr),
                transient=False,
            )
            self._task = self._progress.add_task("batch", total=max(total_bytes, 1), rows=0)

    def __enter__(self) -> BatchProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def describe(self, text: str) -> None:
        """Name what is being processed (the current input file)."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def advance(self, raw_bytes: int, rows: int) -> None:
        """Count a completed mini-batch."""
        self._rows += rows
        if self._progress is not None:
            self._progress.update(self._task, advance=raw_bytes, rows=self._rows)
