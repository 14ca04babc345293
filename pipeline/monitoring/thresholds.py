"""The drift monitor's thresholds and their valid ranges (no heavy imports: config loading uses this).

Defaults and why (docs/monitoring.md has the longer story):

* PSI 0.1 warn / 0.25 alert: the usual reading of the population stability index in credit scoring,
  where it comes from (below 0.1 no real change, 0.1-0.25 a moderate shift worth a look, above 0.25
  a shift that changes what the model sees). Ten bins and at least :attr:`Thresholds.min_records`
  records keep pure sampling noise (about (bins - 1) / records) well below the warn level.
* missing-rate change 5 points, unknown-category rate 1 %, positive-rate change 5 points: absolute
  changes several standard errors wide at 500 records, so noise alone does not reach them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """When a check warns or alerts (the ``[monitoring]`` keys of config/deploy.toml)."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    missing_rate_alert: float = 0.05
    unknown_rate_alert: float = 0.01
    positive_rate_alert: float = 0.05
    min_records: int = 500

    def problems(self) -> list[str]:
        """What is wrong with these values (empty when valid)."""
        p = []
        if not 0 < self.psi_warn <= self.psi_alert <= 10:
            p.append(
                f"psi_warn ({self.psi_warn}) and psi_alert ({self.psi_alert}) need 0 < warn <= alert <= 10"
            )
        for name in ("missing_rate_alert", "unknown_rate_alert", "positive_rate_alert"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                p.append(f"{name} ({value}) must be a share in (0, 1]")
        if not 1 <= self.min_records <= 10_000_000:
            p.append(f"min_records ({self.min_records}) must be between 1 and 10000000")
        return p
