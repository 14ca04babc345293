"""Cloud subcommands: ``deploy``, ``status``, ``keys {create,list,revoke}`` and ``teardown``.

All read ``config/deploy.toml`` (``--config``), environment overrides ``ADULT_<SECTION>_<KEY>`` and
``--set section.key=value``. Registration imports nothing heavy; boto3 loads when a command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from pipeline.commands import deploy_config

EXIT_FAILED = 1
EXIT_CONFIG = 2


def register(subparsers: Any) -> None:
    """Add the cloud subcommands to ``python -m pipeline``."""
    common = deploy_config.options()

    deploy = subparsers.add_parser(
        "deploy",
        parents=[common],
        help="deploy or update the AWS stack (ECR, training, endpoint, Lambda, API Gateway)",
        description="Deploy or update the whole AWS stack; every step is idempotent.",
    )
    deploy.add_argument("--dry-run", action="store_true", help="print the plan; call nothing, change nothing")
    deploy.add_argument(
        "--image-uri", help="use this image from the project's ECR repository (skip build/push)"
    )
    deploy.add_argument(
        "--model-data", help="use this model.tar.gz under the project's S3 prefix (skip training)"
    )
    deploy.add_argument(
        "--show-key",
        action="store_true",
        help="print a newly created API key's value once instead of saving it",
    )
    deploy.add_argument("--poll-seconds", type=float, default=30.0, help="how often to poll while waiting")
    deploy.add_argument(
        "--skip-preflight",
        action="store_true",
        help="do not run `python -m pipeline preflight` first (it stops the deploy before anything "
        "is created when a check fails)",
    )
    deploy.set_defaults(func=run_deploy)

    status = subparsers.add_parser("status", parents=[common], help="what is deployed, endpoint state, URL")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=run_status)

    keys = subparsers.add_parser("keys", help="create, list and revoke API keys (cloud, or --local)")
    actions = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    local = argparse.ArgumentParser(add_help=False)
    local.add_argument("--local", action="store_true", help="manage the local gateway's keys instead")
    create = actions.add_parser("create", parents=[common, local], help="create a key on the usage plan")
    create.add_argument("name", help="a name for the key (the project prefix is added)")
    create.add_argument("--show", action="store_true", help="print the value once instead of saving it")
    create.set_defaults(func=run_keys_create)
    listing = actions.add_parser(
        "list", parents=[common, local], help="list keys (ids and names, never values)"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_keys_list)
    revoke = actions.add_parser(
        "revoke", parents=[common, local], help="remove a key from the plan and delete it"
    )
    revoke.add_argument("key_id", help="the key id (from `keys list`)")
    revoke.set_defaults(func=run_keys_revoke)

    policy = subparsers.add_parser(
        "policy",
        parents=[common],
        help="print the IAM policy the deploying identity needs, filled in for an account",
        description="Print pipeline/cloud/policies/deployer.json with partition, region, account, prefix "
        "and bucket filled in. Without --account it asks STS which account the credentials belong to.",
    )
    policy.add_argument("--account", help="12-digit account id (no AWS call is made)")
    policy.set_defaults(func=run_policy)

    teardown = subparsers.add_parser("teardown", parents=[common], help="delete everything deploy created")
    teardown.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    teardown.add_argument("--poll-seconds", type=float, default=10.0, help="how often to poll while waiting")
    teardown.set_defaults(func=run_teardown)


def _guarded(run: Any) -> Any:
    """Run a command body, turning expected failures into a message on stderr and an exit status."""

    def wrapper(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        from pipeline.cloud.config import ConfigError
        from pipeline.cloud.errors import CloudError, describe_failure

        try:
            return run(args) or 0
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        except NoCredentialsError:
            print(
                "error: no AWS credentials found; configure them (aws configure, AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), see docs/deploy.md",
                file=sys.stderr,
            )
            return EXIT_FAILED
        except (ClientError, CloudError, BotoCoreError) as exc:
            print(f"error: {describe_failure(exc)}", file=sys.stderr)
            return EXIT_FAILED

    return wrapper


@_guarded
def run_deploy(args: argparse.Namespace) -> int:
    from pipeline.cloud.deploy import DeployOptions, deploy

    options = DeployOptions(
        dry_run=args.dry_run,
        image_uri=args.image_uri,
        model_data=args.model_data,
        show_key=args.show_key,
        poll_seconds=args.poll_seconds,
        preflight=not args.skip_preflight,
    )
    deploy(deploy_config.load(args), options)
    return 0


@_guarded
def run_status(args: argparse.Namespace) -> int:
    from pipeline.cloud.clients import Clients
    from pipeline.cloud.status import gather, render

    config = deploy_config.load(args)
    report = gather(config, Clients(config.project.region))
    print(json.dumps(report, indent=2, default=str) if args.json else "\n".join(render(report)))
    return 0


def _cloud_keys(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from pipeline.cloud import keys
    from pipeline.cloud.clients import Clients
    from pipeline.cloud.names import names_for

    config = deploy_config.load(args)
    clients = Clients(config.project.region)
    names = names_for(config, clients.account_id)
    return clients.apigateway, names, keys.plan_id(clients.apigateway, names)


def _local_keys() -> Any:
    from pipeline.local import keys as local_keys  # written by the local cloud; imported only when asked

    return local_keys


def _local_call(function: str, *args: Any) -> Any:
    """Call ``pipeline.local.keys.<function>``; its own errors become CloudError (message, exit 1)."""
    from pipeline.cloud.errors import CloudError

    module = _local_keys()
    local_error = getattr(module, "KeyStoreError", None)
    try:
        return getattr(module, function)(*args)
    except Exception as exc:
        if local_error is not None and isinstance(exc, local_error):
            raise CloudError(str(exc)) from exc
        raise


def _public_row(row: Any) -> dict[str, Any]:
    """A key listing row as a dict without anything secret (value, hash)."""
    if hasattr(row, "public"):
        row = row.public()
    elif dataclasses.is_dataclass(row) and not isinstance(row, type):
        row = dataclasses.asdict(row)
    row = dict(row)
    if "created" not in row and "created_at" in row:
        row["created"] = row.pop("created_at")
    return {k: v for k, v in row.items() if k not in ("value", "key", "secret", "sha256")}


@_guarded
def run_keys_create(args: argparse.Namespace) -> int:
    from pipeline.cloud.keys import create_key, write_secret

    if args.local:
        key_id, value = _local_call("create_key", args.name)
        secret_name = f"local-{args.name}"
    else:
        apigateway, names, plan = _cloud_keys(args)
        key_id, value = create_key(apigateway, names, plan, args.name)
        secret_name = names.key_name(args.name)
    if args.show:
        print(f"key {key_id} value (shown once, store it now): {value}")
    else:
        path = write_secret(secret_name, value)
        print(f"created key {key_id}; value written to {path} (mode 0600)")
        print(f'use it: curl -H "x-api-key: $(cat {path})" ...')
    return 0


@_guarded
def run_keys_list(args: argparse.Namespace) -> int:
    from pipeline.cloud.keys import list_keys

    if args.local:
        rows = _local_call("list_keys")
    else:
        apigateway, _, plan = _cloud_keys(args)
        rows = list_keys(apigateway, plan)
    rows = [_public_row(row) for row in rows]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        print("no keys")
    else:
        for row in rows:
            state = "enabled" if row.get("enabled", True) else "disabled"
            print(f"{row.get('id', '?'):<24} {row.get('name', ''):<32} {state:<9} {row.get('created', '')}")
    return 0


@_guarded
def run_keys_revoke(args: argparse.Namespace) -> int:
    from pipeline.cloud.keys import revoke_key

    if args.local:
        _local_call("revoke_key", args.key_id)
        print(f"revoked local key {args.key_id}")
        return 0
    apigateway, _, plan = _cloud_keys(args)
    name = revoke_key(apigateway, plan, args.key_id)
    print(f"revoked key {args.key_id} ({name}); requests with it now get 403")
    return 0


@_guarded
def run_policy(args: argparse.Namespace) -> int:
    from pipeline.cloud import deployer_policy
    from pipeline.cloud.errors import CloudError
    from pipeline.cloud.names import names_for

    config = deploy_config.load(args)
    if args.account is not None and not (args.account.isdigit() and len(args.account) == 12):
        raise CloudError(f"--account {args.account!r} must be a 12-digit AWS account id")
    if args.account is None:
        from pipeline.cloud.clients import Clients

        args.account = Clients(config.project.region).account_id
    print(json.dumps(deployer_policy.render(names_for(config, args.account)), indent=2))
    return 0


@_guarded
def run_teardown(args: argparse.Namespace) -> int:
    from pipeline.cloud.clients import Clients
    from pipeline.cloud.progress import Progress
    from pipeline.cloud.teardown import teardown

    config = deploy_config.load(args)

    def confirm(found: list[tuple[str, str]]) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            print("error: not a terminal, so no confirmation possible; pass --yes to delete", file=sys.stderr)
            return False
        answer = input(f"Delete these {len(found)} resources? Type 'yes' to confirm: ")
        return answer.strip().lower() == "yes"

    result = teardown(config, Clients(config.project.region), Progress(), confirm, poll_s=args.poll_seconds)
    return 0 if result.complete else EXIT_FAILED
