"""Typed failures of a batch job; the command maps each to a message and exit status 1."""

from __future__ import annotations


class BatchError(RuntimeError):
    """A batch job cannot run or did not finish; the message says what and where."""


class BadRecord(BatchError):
    """A record the model cannot score (the job fails on it unless ``--skip-invalid``)."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str, message: str) -> None:
        self.path, self.line, self.field, self.problem, self.message = path, line, field, problem, message
        where = f"{path} line {line}" if line is not None else path
        field_part = f", field {field!r}" if field else ""
        super().__init__(f"invalid record: {where}{field_part}: {problem}: {message}")


class ContainerUnavailable(BatchError):
    """The container kept failing (5xx or connection errors) after every retry."""


class ContainerRejected(BatchError):
    """The container refused a request for a reason that is not a bad record (415, 413, 406...)."""
