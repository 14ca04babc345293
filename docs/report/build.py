"""Build the project report: ``python -m docs.report`` (the ``make report`` target).

Steps: (1) unless ``--no-capture``, record real terminal sessions: by default from the local cloud (started
and stopped here), with ``--target aws`` (or ``REPORT_TARGET=aws``) from the AWS deployment into
``captures/cloud/``, which the report then shows instead of the local run; (2) draw the architecture diagrams;
(3) render every capture as a terminal screenshot; (4) fill the HTML template with facts read from the
manifest, the evaluation outputs, the schema and the deploy configuration; (5) print it to PDF.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import paths


def build(
    *,
    capture: bool,
    target: str = "local",
    pdf_path: Path = paths.REPORT_PDF,
    html_path: Path = paths.REPORT_HTML,
    captures_root: Path = paths.CAPTURES,
    architecture_png: Path = paths.ARCHITECTURE_PNG,
    manifest_path: Path = paths.MANIFEST,
    evaluation_dir: Path = paths.EVALUATION_DIR,
    eda_dir: Path = paths.EDA_DIR,
) -> Path:
    """Build the report and return the PDF's path; each output is replaced only when complete."""
    from . import diagram, facts, render

    if capture and target == "aws":
        from . import cloud_session

        cloud_session.record(captures_root / "cloud")
    elif capture:
        from . import local_session

        local_session.record(captures_root / "local")
    settings = diagram.settings_from_config()
    diagram.draw_aws_architecture(architecture_png, settings)
    local_png = html_path.parent / "assets" / "local-architecture.png"
    diagram.draw_local_architecture(local_png)
    context = facts.collect(
        settings=settings,
        captures_root=captures_root,
        architecture_png=architecture_png,
        local_architecture_png=local_png,
        screenshot_dir=html_path.parent / "assets",
        manifest_path=manifest_path,
        evaluation_dir=evaluation_dir,
        eda_dir=eda_dir,
    )
    render.render_html(context, html_path)
    return render.render_pdf(html_path, pdf_path)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m docs.report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-capture",
        action="store_true",
        help="reuse the saved terminal captures instead of starting the local cloud to record new ones",
    )
    parser.add_argument(
        "--target",
        choices=("local", "aws"),
        default=os.environ.get("REPORT_TARGET", "local"),
        help="where to record the terminal sessions (default: $REPORT_TARGET, else local)",
    )
    parser.add_argument(
        "--output", type=Path, default=paths.REPORT_PDF, help="PDF path (default docs/report.pdf)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    pdf = build(capture=not args.no_capture, target=args.target, pdf_path=args.output)
    print(f"report: wrote {pdf} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
