"""After teardown: prove nothing of the project is left (``python -m pipeline verify-gone``).

Two independent looks: the teardown inventory (every resource deploy creates, found by name), and the
Resource Groups Tagging API (everything in the region tagged ``project=<prefix>``, whoever made it).
Training jobs are the one expected survivor: SageMaker keeps their history and has no delete call; a
stopped job costs nothing. They are listed as such and do not count as left.

The Tagging API is eventually consistent: a resource deleted moments ago can still be listed for a
while, so a tagged leftover is looked up again until ``wait_s`` has passed before it counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.cloud import resource_group
from pipeline.cloud.clients import Clients
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.names import names_for
from pipeline.cloud.teardown import inventory

TRAINING_HISTORY = "training job (history)"


@dataclass
class Leftovers:
    """What still exists: by name (inventory), by tag, and the training-job history that must stay."""

    by_name: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    by_tag: list[tuple[str, str]] = field(default_factory=list)  # (kind or "unknown", ARN)
    history: list[str] = field(default_factory=list)  # training job ARNs

    @property
    def clean(self) -> bool:
        return not self.by_name and not self.by_tag


def look(config: DeployConfig, clients: Clients) -> Leftovers:
    """One look at both sources."""
    names = names_for(config, clients.account_id)
    found = Leftovers(by_name=inventory(config, clients))
    for arn in resource_group.members(clients.tagging, names):
        kind = resource_group.classify(arn, names)
        if kind == TRAINING_HISTORY:
            found.history.append(arn)
        else:
            found.by_tag.append((kind or "unknown (tagged, not created by deploy)", arn))
    return found


def verify_gone(
    config: DeployConfig,
    clients: Clients,
    wait_s: float = 0.0,
    poll_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Leftovers:
    """Look until nothing is left or ``wait_s`` has passed; returns the last look."""
    deadline = clock() + wait_s
    while True:
        found = look(config, clients)
        if found.clean or clock() >= deadline:
            return found
        sleep(poll_s)


def render(found: Leftovers, prefix: str, region: str) -> list[str]:
    """Lines for the terminal: the verdict first, then each leftover and the kept history."""
    if found.clean:
        lines = [
            f"nothing of {prefix} is left in {region}: the inventory is empty and no resource is tagged "
            f"project={prefix}" + (" except training-job history" if found.history else "")
        ]
    else:
        lines = [f"LEFT BEHIND in {region} ({len(found.by_name) + len(found.by_tag)}):"]
        lines += [f"  {kind}: {name}" for kind, name in found.by_name]
        lines += [f"  tagged project={prefix}, {kind}: {arn}" for kind, arn in found.by_tag]
        lines.append("  run `python -m pipeline teardown --yes` again, or delete these by hand")
    if found.history:
        lines.append(
            f"kept by SageMaker (no delete API, no cost once stopped): {len(found.history)} training job(s)"
        )
        lines += [f"  {arn}" for arn in found.history]
    return lines
