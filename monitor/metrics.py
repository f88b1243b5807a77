"""Metric names, units and qualities (DESIGN §3.3) and the one-second row of ``runmon analyze``.

The field names are a public contract: ``runmon analyze`` rows, the MQTT ``metrics`` topic and
``runmon simulate --truth`` all use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

MetricName = Literal[
    "cadence_spm",
    "speed_mps",
    "stride_length_m",
    "trunk_lean_deg",
    "trunk_rotation_deg",
    "vertical_oscillation_cm",
    "ground_contact_ms",
    "breathing_rate_bpm",
    "breath_depth_rel",
    "steps_per_breath",
    "heart_rate_bpm",
    "lateral_sway_cm",
    "lean_variability_deg",
]

#: Every metric, in the order rows list them. The last two are runmon's additions to DESIGN
#: §3.3: side-to-side sway of the trunk per stride (peak-to-peak), and the spread (standard
#: deviation) of stride-averaged lean over 30 s, the instability measures behind core_engage.
METRIC_NAMES: Final[tuple[MetricName, ...]] = get_args(MetricName)

#: Decimal places each metric is reported with: finer than any sensor resolves is noise.
METRIC_DECIMALS: Final[Mapping[MetricName, int]] = {
    "cadence_spm": 1,
    "speed_mps": 3,
    "stride_length_m": 3,
    "trunk_lean_deg": 2,
    "trunk_rotation_deg": 2,
    "vertical_oscillation_cm": 2,
    "ground_contact_ms": 1,
    "breathing_rate_bpm": 2,
    "breath_depth_rel": 3,
    "steps_per_breath": 2,
    "heart_rate_bpm": 1,
    "lateral_sway_cm": 2,
    "lean_variability_deg": 2,
}

Quality = Literal["ok", "warming_up", "stale", "uncalibrated", "relative", "missing"]

#: Seconds of sensor silence after which a metric is ``null`` with quality ``stale``.
STALE_AFTER_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class MetricValue:
    """A metric's latest value (``None`` when it cannot be estimated) and its quality."""

    value: float | None
    quality: Quality

    @staticmethod
    def missing() -> MetricValue:
        return _MISSING


_MISSING: Final = MetricValue(None, "missing")


@dataclass(frozen=True, slots=True)
class MetricRow:
    """The state of every metric at one whole second of data time."""

    t_s: int
    phase: str
    values: Mapping[MetricName, MetricValue]

    def value(self, name: MetricName) -> float | None:
        return self.values[name].value

    def quality(self, name: MetricName) -> Quality:
        return self.values[name].quality

    def to_json(self) -> dict[str, Any]:
        """The row as DESIGN §3.4 prints it: every field present, ``null`` where not estimated."""
        row: dict[str, Any] = {"t_s": self.t_s, "phase": self.phase}
        quality: dict[str, Quality] = {}
        values = self.values
        for name, decimals in _ROW_DECIMALS:
            metric = values[name]
            v = metric.value
            row[name] = None if v is None else round(v, decimals)
            quality[name] = metric.quality
        row["quality"] = quality
        return row


#: (metric, decimal places) in row order.
_ROW_DECIMALS: Final = tuple((name, METRIC_DECIMALS[name]) for name in METRIC_NAMES)
