"""``python -m pipeline monitor``: compare captured traffic with the model's training baseline.

Exit status, so a schedule can act on it: 0 no alert (warnings allowed), 1 a threshold was crossed,
2 the monitor could not run (bad configuration, unreadable source, no baseline, no records),
3 too few records to judge (fewer than ``monitoring.min_records``).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path
from typing import Any

from pipeline.commands import deploy_config

EXIT_ALERT = 1
EXIT_CANNOT_RUN = 2
EXIT_TOO_FEW = 3
DEFAULT_OUT = Path("build/monitor")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / "model"


def register(subparsers: Any) -> None:
    """Add ``monitor`` to ``python -m pipeline``."""
    parser = subparsers.add_parser(
        "monitor",
        parents=[deploy_config.options("monitoring.psi_alert=0.3")],
        help="drift report: captured traffic vs the training baseline (exit 1 when a threshold is crossed)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="capture folder or s3://bucket/prefix (default: the local cloud's <run dir>/data-capture)",
    )
    parser.add_argument(
        "--since",
        help="only events from then on: ISO time (2024-05-01T12:00Z) or a span (90m, 24h, 7d)",
    )
    parser.add_argument("--until", help="only events before then (same forms as --since)")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help="the model whose baseline to use: a folder with manifest.json, a manifest.json or a "
        "model.tar.gz (default: the release in model/)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"report folder (default: {DEFAULT_OUT})"
    )
    parser.set_defaults(func=run_monitor_command)


def run_monitor_command(args: argparse.Namespace) -> int:
    from pipeline.cloud.config import ConfigError
    from pipeline.monitoring.capture_files import SourceError, parse_since, read_local, read_s3
    from pipeline.monitoring.monitor import NoBaselineError, run_monitor
    from pipeline.monitoring.report import REPORT_MD, write_report
    from pipeline.schema import Schema

    try:
        config = deploy_config.load(args)
        since = parse_since(args.since) if args.since else None
        until = parse_since(args.until) if args.until else None
        manifest = read_model_manifest(args.model)
        source = args.source or str(_default_source())
        if source.startswith("s3://"):
            events, files = read_s3(source, since)
        else:
            events, files = read_local(Path(source), since)
        if until is not None:
            events = [e for e in events if e.inference_time < until]
        thresholds = config.monitoring.thresholds()
        result = run_monitor(
            manifest, Schema.from_dict(manifest["schema"]), events, files, thresholds, source, since
        )
    except (ConfigError, SourceError, NoBaselineError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    write_report(result, args.out)
    print(summary(result))
    print(f"report: {args.out / REPORT_MD}")
    if result["records"] == 0:
        print("error: no readable capture records in the source", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if result["level"] == "insufficient":
        return EXIT_TOO_FEW
    return EXIT_ALERT if result["level"] == "alert" else 0


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal (the report has the rest)."""
    lines = [
        f"monitor: {result['level'].upper()} - {result['records']} records in {result['events']} events "
        f"from {result['source']}"
    ]
    lines += [f"  {finding}" for finding in result["findings"]]
    skipped = result["files"]["with_problems"]
    for entry in skipped:
        first = entry["problems"][0]
        where = f" line {first['line']}" if first["line"] else ""
        lines.append(f"  skipped in {entry['file']}{where}: {first['problem']}")
    if result["undecodable_events"]:
        lines.append(f"  {len(result['undecodable_events'])} event(s) could not be decoded (see the report)")
    return "\n".join(lines)


def read_model_manifest(model: Path) -> dict[str, Any]:
    """The manifest of a model folder, a manifest.json file or a model.tar.gz."""
    import json

    if model.is_dir():
        model = model / "manifest.json"
    if model.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(model, "r:gz") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise ValueError(f"{model} has no manifest.json")
            return json.loads(member.read())
    try:
        return json.loads(model.read_text())
    except FileNotFoundError:
        raise ValueError(f"no model manifest at {model}") from None


def _default_source() -> Path:
    from pipeline.local.settings import load_local_settings

    return load_local_settings().capture_dir
