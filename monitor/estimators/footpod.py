"""Cadence, speed and stride length from an RSC footpod.

The footpod reports instantaneous values about once a second; the estimator normalises cadence
to steps/min, applies the footpod's speed calibration, and averages over a short causal window
so one jittery reading does not move the metric. Stride length is derived from speed and cadence
(DESIGN §3.1: the RSC stride field is recorded but not trusted).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

from monitor.metrics import STALE_AFTER_S, MetricName, MetricValue
from sensors.gatt.rsc import RscMeasurement

CadenceUnit = Literal["steps", "strides", "auto"]

#: Below this many per minute at running speed, a raw cadence can only be strides (DESIGN §3.1).
AUTO_STRIDES_BELOW_PER_MIN: Final = 110
#: Speed from which the ``auto`` cadence unit decides (a brisk walk is under 2 m/s).
AUTO_DECIDE_FROM_MPS: Final = 2.0
#: Cadence under which the runner is not stepping: stride length is undefined.
MIN_STEPPING_SPM: Final = 60.0


@dataclass(frozen=True, slots=True)
class FootpodReading:
    t_s: float
    cadence_spm: float
    speed_mps: float


class FootpodEstimator:
    """Streaming footpod metrics; feed readings in time order, ask for metrics at any time."""

    provides: Final[tuple[MetricName, ...]] = ("cadence_spm", "speed_mps", "stride_length_m")

    def __init__(
        self,
        *,
        cadence_unit: CadenceUnit = "auto",
        speed_factor: float = 1.0,
        window_s: float = 5.0,
    ) -> None:
        self.cadence_unit: CadenceUnit = cadence_unit
        self.speed_factor = speed_factor
        self.window_s = window_s
        self._readings: deque[FootpodReading] = deque()
        self._auto_multiplier: float | None = None
        self._last_t_s: float | None = None

    @property
    def cadence_multiplier(self) -> float | None:
        """2 when the footpod counts strides, 1 for steps, ``None`` while ``auto`` is undecided."""
        if self.cadence_unit == "steps":
            return 1.0
        if self.cadence_unit == "strides":
            return 2.0
        return self._auto_multiplier

    def update(self, t_s: float, measurement: RscMeasurement) -> None:
        speed_mps = measurement.speed_mps * self.speed_factor
        raw = float(measurement.cadence_raw_per_min)
        auto_undecided = self.cadence_unit == "auto" and self._auto_multiplier is None
        if auto_undecided and speed_mps >= AUTO_DECIDE_FROM_MPS and raw > 0:
            self._auto_multiplier = 2.0 if raw < AUTO_STRIDES_BELOW_PER_MIN else 1.0
        multiplier = self.cadence_multiplier
        # Undecided ``auto`` but not stepping: zero is zero in either unit.
        cadence_spm = raw * multiplier if multiplier is not None else (0.0 if raw == 0 else -1.0)
        self._readings.append(FootpodReading(t_s, cadence_spm, speed_mps))
        self._last_t_s = t_s if self._last_t_s is None else max(self._last_t_s, t_s)
        horizon = self._last_t_s - self.window_s
        while self._readings and self._readings[0].t_s <= horizon:
            self._readings.popleft()

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]:
        """Metrics from readings up to ``t_s``; ``null`` once the footpod is silent > 3 s."""
        if self._last_t_s is None:
            warming = MetricValue(None, "warming_up")
            return {name: warming for name in self.provides}
        if t_s - self._last_t_s > STALE_AFTER_S:
            stale = MetricValue(None, "stale")
            return {name: stale for name in self.provides}
        since_s = t_s - self.window_s
        recent = [r for r in self._readings if since_s < r.t_s <= t_s]
        if not recent:
            warming = MetricValue(None, "warming_up")
            return {name: warming for name in self.provides}
        speed_mps = sum([r.speed_mps for r in recent]) / len(recent)
        speed = MetricValue(speed_mps, "ok")
        cadences = [r.cadence_spm for r in recent]
        if min(cadences) < 0.0:
            # ``auto`` has not seen running speed yet: the unit of a non-zero cadence is unknown.
            undecided = MetricValue(None, "warming_up")
            return {"cadence_spm": undecided, "speed_mps": speed, "stride_length_m": undecided}
        cadence_spm = sum(cadences) / len(recent)
        if cadence_spm < MIN_STEPPING_SPM or speed_mps <= 0.0:
            stride = MetricValue(None, "ok")
        else:
            stride = MetricValue(speed_mps / (cadence_spm / 60.0), "ok")
        return {
            "cadence_spm": MetricValue(cadence_spm, "ok"),
            "speed_mps": speed,
            "stride_length_m": stride,
        }
