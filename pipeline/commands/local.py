"""``python -m pipeline local up|demo|down|status``: the local cloud on loopback.

``up`` starts the container, the local InvokeEndpoint and the local API Gateway in the background;
``demo`` does the same (training a quick model if no released artifact exists), creates an API key,
sends sample requests through the gateway and prints them; ``down`` stops everything; ``status``
shows what runs. API keys for the local gateway: ``python -m pipeline cloud keys --local``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.local.settings import LocalSettings
    from pipeline.local.stack import StackInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``local`` command and its subcommands."""
    parser = subparsers.add_parser("local", help="the local cloud: gateway, Lambda proxy, runtime, container")
    sub = parser.add_subparsers(dest="local_command", required=True, metavar="SUBCOMMAND")

    for name, help_text, func in (
        ("up", "start the container, local InvokeEndpoint and local API Gateway", _up),
        ("demo", "start everything, create a key and send sample requests", _demo),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--model-dir", type=Path, help="serve this artifact directory instead of model/model.tar.gz"
        )
        p.add_argument("--config", type=Path, help="deploy configuration (default config/deploy.toml)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a deploy configuration value (repeatable)")  # fmt: skip
        p.set_defaults(func=func)

    down = sub.add_parser("down", help="stop everything `local up` or `local demo` started")
    down.set_defaults(func=_down)
    status = sub.add_parser("status", help="show what runs and where")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)


def _start(args: argparse.Namespace) -> tuple[LocalSettings, StackInfo]:
    """Start (or reuse) the stack; returns (settings, StackInfo)."""
    from pipeline.cloud.config import parse_override
    from pipeline.local.model_source import prepare_model_dir
    from pipeline.local.settings import load_local_settings
    from pipeline.local.stack import Stack

    settings = load_local_settings()
    stack = Stack(settings)
    running = stack.running()
    if running is not None:
        print(f"the local stack is already running (gateway {running.gateway_url}); reusing it")
        return settings, running
    model_dir = args.model_dir or prepare_model_dir(settings.run_dir)
    overrides = dict(parse_override(text) for text in args.overrides)
    print("starting the local stack ...")
    info = stack.up(Path(model_dir), config_path=args.config, overrides=overrides)
    return settings, info


def _print_endpoints(info: StackInfo) -> None:
    print(f"  API Gateway     {info.gateway_url}/{info.stage}  (POST /predict, GET /health; needs x-api-key)")
    print(f"  InvokeEndpoint  {info.runtime_url}  (endpoint {info.endpoint_name})")
    print(f"  container       {info.container_url}  ({info.mode}; model {info.model_dir})")


def _up(args: argparse.Namespace) -> int:
    from pipeline.local.stack import StackError

    try:
        _, info = _start(args)
    except StackError as exc:
        print(f"error: {exc}")
        return 1
    print("the local stack is up:")
    _print_endpoints(info)
    print("create an API key: .venv/bin/python -m pipeline keys create --local NAME  (saved in .secrets/)")
    print("stop it: make down")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipeline.local import demo
    from pipeline.local.stack import StackError

    try:
        settings, info = _start(args)
    except StackError as exc:
        print(f"error: {exc}")
        return 1
    print("the local stack is up:")
    _print_endpoints(info)
    key_file, created = demo.demo_key(settings)
    state = "created; its value is only in that file" if created else "reused"
    print(f"\nYour API key: {demo.display_path(key_file)} (mode 0600, {state}).")
    exchanges = demo.send_samples(info, key_file)
    demo.render(exchanges, info)
    demo.instructions(info, key_file)
    expected = [200, 200, 400, 403]
    if [ex.status for ex in exchanges] != expected:
        print(f"\nunexpected statuses {[ex.status for ex in exchanges]} (expected {expected}); see the logs")
        return 1
    return 0


def _down(args: argparse.Namespace) -> int:
    from pipeline.local.settings import load_local_settings
    from pipeline.local.stack import Stack

    Stack(load_local_settings()).down()
    return 0


def _status(args: argparse.Namespace) -> int:
    from pipeline.local.settings import load_local_settings
    from pipeline.local.stack import Stack

    report = Stack(load_local_settings()).status()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    stack = report.get("stack")
    if not stack:
        print("the local stack is not running (start it with `make demo` or `python -m pipeline local up`)")
        return 0
    print(f"local stack ({stack['mode']} container), run directory {report['run_dir']}:")
    for name, pid in report["processes"].items():  # type: ignore[union-attr]
        if name == "container" and stack["docker_container"]:
            state = "running" if report.get("docker_running") else "not running"
            print(f"  {name:<10} Docker container {stack['docker_container'][:12]} ({state})")
            continue
        print(f"  {name:<10} {'pid ' + str(pid) if pid else 'not running'}")
    print(f"  gateway    {stack['gateway_url']}/{stack['stage']}")
    print(f"  runtime    {stack['runtime_url']}  (endpoint {stack['endpoint_name']})")
    print(f"  container  {stack['container_url']}  /ping -> {report.get('container_ping')}")
    return 0
