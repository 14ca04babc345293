"""Turn the collected facts into HTML (Jinja2 template + CSS) and the HTML into a PDF (WeasyPrint)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from . import paths


def render_html(context: dict[str, Any], destination: Path) -> Path:
    """Fill ``templates/report.html.j2`` with ``context`` and write it atomically to ``destination``.

    Image paths in the context are made relative to the HTML file so the HTML opens in a browser from
    the repository as well as feeding the PDF.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(paths.TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,  # a missing fact is an error, never an empty table cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rel"] = lambda p: os.path.relpath(Path(p), destination.parent)
    html = env.get_template("report.html.j2").render(**context)
    _write_atomic(destination, html.encode())
    return destination


def render_pdf(html_path: Path, destination: Path) -> Path:
    """Print ``html_path`` to a PDF at ``destination`` (written to a temporary file, then renamed)."""
    from weasyprint import HTML

    document = HTML(filename=str(html_path), base_url=str(html_path.parent))
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=destination.parent, suffix=".pdf.part", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        document.write_pdf(tmp_path)
        tmp_path.chmod(0o644)  # NamedTemporaryFile creates 0600; the report is a public document
        tmp_path.replace(destination)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return destination


def _write_atomic(destination: Path, data: bytes) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(destination.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(destination)
