"""vCPUs and memory per SageMaker instance type, from ``config/instance-types.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pipeline.capacity.errors import InstanceTableError, UnknownInstanceType

INSTANCE_TYPES_PATH = Path(__file__).resolve().parents[2] / "config" / "instance-types.toml"


@dataclass(frozen=True)
class InstanceType:
    """One row of the table; ``source`` is the page its figures are from."""

    name: str
    vcpus: int
    memory_gib: float
    source: str
    burstable: bool


def load_instance_types(path: Path | None = None) -> dict[str, InstanceType]:
    """Every instance type in the table (default ``config/instance-types.toml``), by name."""
    path = path or INSTANCE_TYPES_PATH
    try:
        doc = tomllib.loads(path.read_text())
        sources = doc["sources"]
        table = {
            name: InstanceType(
                name=name,
                vcpus=int(row["vcpus"]),
                memory_gib=float(row["memory_gib"]),
                source=sources[row["source"]],
                burstable=bool(row["burstable"]),
            )
            for name, row in doc["types"].items()
        }
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise InstanceTableError(f"instance-type table {path} is unreadable: {exc!r}") from None
    bad = [name for name, row in table.items() if row.vcpus < 1]
    if bad:
        raise InstanceTableError(f"instance-type table {path}: vcpus must be at least 1 for {', '.join(bad)}")
    return table


def lookup(name: str, table: dict[str, InstanceType]) -> InstanceType:
    """The row for ``name``; a type missing from the table is refused by name, never guessed."""
    try:
        return table[name]
    except KeyError:
        raise UnknownInstanceType(
            f"instance type {name!r} is not in the instance-type table {INSTANCE_TYPES_PATH.name} "
            f"(known: {', '.join(sorted(table))}); add its vCPUs and memory with their source, or "
            "choose a listed type with --set endpoint.instance_type=..."
        ) from None
