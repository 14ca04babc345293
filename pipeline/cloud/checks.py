"""One row of the preflight report: a named check, its outcome and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass, field

OK = "ok"
WARN = "warn"  # deploy can go on, but something will bite later (e.g. autoscaling above the quota)
FAIL = "fail"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """A check's outcome; ``message`` says what was found and, on failure, what to do."""

    name: str
    status: str
    message: str
    details: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """False only for a failure: warnings and skipped checks do not stop a deploy."""
        return self.status != FAIL

    def line(self) -> str:
        """The one-line form: ``[ok]   name: message``."""
        return f"{'[' + self.status + ']':<10} {self.name}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "message": self.message,
            "details": list(self.details),
        }
