"""Render a recorded terminal session (commands and their real output) as a PNG "screenshot".

The session is drawn with Pillow in DejaVu Sans Mono: a window title bar that states where the run happened
(LOCAL or AWS), then each command after a prompt and its output below it. ANSI colour codes (SGR) in the
output are honoured; every other escape sequence is dropped. Long lines wrap; very long outputs are cut with
an explicit "... N more lines" marker so a picture never silently hides text.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
COLUMNS = 100
MAX_OUTPUT_LINES = 40

BACKGROUND = (30, 32, 40)
TITLE_BAR = (52, 55, 66)
FOREGROUND = (220, 223, 228)
DIM = (140, 146, 160)
PROMPT = (120, 200, 120)
ERROR = (240, 110, 100)
PALETTE = {
    30: (60, 62, 70),
    31: (240, 110, 100),
    32: (120, 200, 120),
    33: (230, 200, 100),
    34: (110, 160, 240),
    35: (200, 130, 220),
    36: (100, 200, 210),
    37: (220, 223, 228),
}
PALETTE.update({code + 60: colour for code, colour in PALETTE.items()})

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b\][^\x07]*\x07|\r")


@dataclass(frozen=True)
class Step:
    """One command as typed and what it printed (stdout and stderr interleaved as captured)."""

    command: str
    output: str
    exit_code: int = 0
    # The HTTP status the session expects this step to show (curl's "[HTTP nnn]"); the captions rely on
    # it, so recording and building the report both fail when the recorded output shows another one.
    expected_status: int | None = None


@dataclass(frozen=True)
class Span:
    """A run of text drawn in one style."""

    text: str
    colour: tuple[int, int, int]
    bold: bool = False


def parse_ansi(line: str, default: tuple[int, int, int] = FOREGROUND) -> list[Span]:
    """Split one line into styled spans, interpreting the SGR codes we expect from CLIs."""
    line = _OTHER_ESCAPES.sub("", line)
    spans: list[Span] = []
    colour, bold, pos = default, False, 0
    for match in _SGR.finditer(line):
        if match.start() > pos:
            spans.append(Span(line[pos : match.start()], colour, bold))
        for code in (int(c) for c in (match.group(1) or "0").split(";") if c):
            if code == 0:
                colour, bold = default, False
            elif code == 1:
                bold = True
            elif code == 22:
                bold = False
            elif code == 2:
                colour = DIM
            elif code == 39:
                colour = default
            elif code in PALETTE:
                colour = PALETTE[code]
        pos = match.end()
    if pos < len(line):
        spans.append(Span(line[pos:], colour, bold))
    return spans


def _wrap_spans(spans: list[Span], width: int) -> Iterator[list[Span]]:
    """Wrap styled spans at ``width`` characters, keeping styles across the break."""
    row: list[Span] = []
    used = 0
    for span in spans:
        text = span.text.expandtabs(4)
        while text:
            room = width - used
            piece, text = text[:room], text[room:]
            row.append(Span(piece, span.colour, span.bold))
            used += len(piece)
            if used >= width and text:
                yield row
                row, used = [], 0
    yield row


def _session_rows(steps: Sequence[Step], prompt: str, width: int) -> list[list[Span]]:
    rows: list[list[Span]] = []
    for index, step in enumerate(steps):
        if index:
            rows.append([])
        first = True
        for chunk in textwrap.wrap(step.command, width - len(prompt), break_on_hyphens=False) or [""]:
            lead = Span(prompt if first else " " * len(prompt), PROMPT, True)
            rows.append([lead, Span(chunk, FOREGROUND, True)])
            first = False
        lines = step.output.rstrip("\n").splitlines() if step.output.strip() else []
        hidden = max(0, len(lines) - MAX_OUTPUT_LINES)
        for line in lines[:MAX_OUTPUT_LINES]:
            rows.extend(_wrap_spans(parse_ansi(line), width))
        if hidden:
            rows.append([Span(f"... {hidden} more lines (full text in the capture file)", DIM)])
        if step.exit_code:
            rows.append([Span(f"[exit status {step.exit_code}]", ERROR)])
    return rows


def render_session(
    steps: Sequence[Step],
    title: str,
    destination: Path,
    *,
    prompt: str = "$ ",
    columns: int = COLUMNS,
    font_size: int = 26,
) -> Path:
    """Draw ``steps`` as a terminal window titled ``title`` and save it as a PNG at ``destination``."""
    regular = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono.ttf"), font_size)
    bold = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono-Bold.ttf"), font_size)
    title_font = ImageFont.truetype(str(FONT_DIR / "DejaVuSans-Bold.ttf"), font_size)
    char_w = regular.getlength("M")
    line_h = int(font_size * 1.35)
    pad = font_size
    bar_h = int(font_size * 2)

    rows = _session_rows(steps, prompt, columns)
    longest = max((sum(len(s.text) for s in row) for row in rows), default=0)
    title_w = title_font.getlength(title) + font_size * 5
    width = int(max(pad * 2 + char_w * max(longest, 80), title_w + pad))
    height = bar_h + pad * 2 + line_h * len(rows)

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, bar_h], fill=TITLE_BAR)
    for i, colour in enumerate(((237, 106, 94), (245, 191, 79), (98, 197, 84))):
        cx, cy, r = pad + i * font_size * 1.2, bar_h / 2, font_size * 0.35
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    draw.text((pad + font_size * 4, bar_h / 2), title, font=title_font, fill=FOREGROUND, anchor="lm")

    y = bar_h + pad
    for row in rows:
        x = float(pad)
        for span in row:
            draw.text((x, y), span.text, font=bold if span.bold else regular, fill=span.colour)
            x += char_w * len(span.text)
        y += line_h
    destination.parent.mkdir(parents=True, exist_ok=True)
    image.save(destination, optimize=True)
    return destination
