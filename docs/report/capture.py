"""Record real terminal sessions (commands + their actual output) for the report's screenshots.

A capture is a JSON file in ``docs/report/captures/<where>/`` (``where`` is ``local`` or ``cloud``) holding
the commands exactly as typed, their merged stdout/stderr and exit status, when and where they ran. The
PNG next to it is drawn from that JSON by :mod:`docs.report.terminal`, so the picture is always the
recorded text. Secret values (API keys) are passed to commands only through environment variables, shown
as ``$API_KEY`` in the command line, and scrubbed from the output as a second line of defence.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .terminal import Step

REDACTED = "****"
HTTP_STATUS = re.compile(r"\[HTTP (\d{3})\]")


class CaptureMismatchError(RuntimeError):
    """A recorded step does not show the outcome its session (and so the report's caption) expects."""


def shown_status(step: Step) -> int | None:
    """The HTTP status a step's output shows (the last ``[HTTP nnn]``), or None."""
    found = HTTP_STATUS.findall(step.output)
    return int(found[-1]) if found else None


def check_outcomes(name: str, steps: Sequence[Step]) -> None:
    """Raise :class:`CaptureMismatchError` unless every step shows the status it was recorded to expect."""
    for number, step in enumerate(steps, 1):
        actual = shown_status(step)
        if step.expected_status is None and actual is not None:
            raise CaptureMismatchError(
                f"capture {name!r}, step {number} ({step.command!r}) shows HTTP {actual} but carries no "
                "expected status, so nothing checks its caption; record the sessions again (make report)"
            )
        if step.expected_status is not None and actual != step.expected_status:
            raise CaptureMismatchError(
                f"capture {name!r}, step {number} ({step.command!r}) expects HTTP {step.expected_status} "
                f"but the recorded output shows {actual if actual is not None else 'no HTTP status'}: "
                "its caption would be wrong; record the sessions again (make report)"
            )


@dataclass(frozen=True)
class Capture:
    """A recorded terminal session."""

    name: str
    title: str
    where: str  # "LOCAL" or "AWS"
    recorded_at: str
    host: str
    steps: tuple[Step, ...]
    notes: str = ""

    def to_json(self) -> str:
        """Serialise for ``captures/<where>/<name>.json``."""
        data = asdict(self)
        data["steps"] = [asdict(s) for s in self.steps]
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> Capture:
        """Read a capture written by :meth:`to_json`."""
        data = json.loads(path.read_text())
        steps = tuple(Step(**s) for s in data.pop("steps"))
        return cls(steps=steps, **data)

    def check(self) -> None:
        """Every step shows the outcome it was recorded to expect (see :func:`check_outcomes`)."""
        check_outcomes(self.name, self.steps)


@dataclass
class Recorder:
    """Runs commands in bash from the repository root and records what they print."""

    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()
    timeout: float = 180.0
    steps: list[Step] = field(default_factory=list)

    def run(self, command: str, *, timeout: float | None = None, expect_status: int | None = None) -> Step:
        """Run ``command`` (as typed, with ``$VARS`` expanded by bash) and record its output and status.

        ``expect_status`` is the HTTP status the session's caption relies on; a different one raises
        :class:`CaptureMismatchError` (the step is recorded first, so the message can show it).
        """
        try:
            proc = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=self.cwd,
                env={**os.environ, **self.env, "NO_COLOR": "1", "TERM": "dumb"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout or self.timeout,
                check=False,
            )
            output, code = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            output, code = partial + f"\n(timed out after {exc.timeout:.0f} s)", 124
        step = Step(command=command, output=self.scrub(output), exit_code=code, expected_status=expect_status)
        self.steps.append(step)
        check_outcomes("(being recorded)", [step])
        return step

    def scrub(self, text: str) -> str:
        """Replace every secret value in ``text``."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def capture(self, name: str, title: str, where: str, notes: str = "") -> Capture:
        """Freeze the steps recorded since the last call into a :class:`Capture` and start afresh."""
        captured = Capture(
            name=name,
            title=title,
            where=where,
            recorded_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            host=f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
            steps=tuple(self.steps),
            notes=notes,
        )
        self.steps = []
        return captured


def save(capture: Capture, directory: Path) -> Path:
    """Write ``capture`` as JSON into ``directory`` (atomically) and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{capture.name}.json"
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(capture.to_json())
    tmp.replace(path)
    return path


def load_all(directory: Path) -> list[Capture]:
    """Every capture in ``directory``, in file-name order (names start with a number to set the order)."""
    return [Capture.from_file(p) for p in sorted(directory.glob("*.json"))]
