"""Running speed from a trunk IMU when no footpod speaks: a per-runner step-length model.

Weinberg's model (2002): step length ≈ K · (peak-to-peak vertical acceleration of the step)^¼.
K is the runner's own: it is learned while a footpod (or a known speed) is present, as the
median ratio of the footpod's step length to the IMU feature over recent running, and it keeps
serving when the footpod disappears. Without any calibration a population K applies and the
speed's quality is ``uncalibrated``.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Final

from monitor.metrics import MetricValue, Quality

#: A population value: 1.1 m steps at a 3 g vertical range (29 m/s²: 29^¼ ≈ 2.32).
POPULATION_K: Final = 0.47
#: Calibration samples (one per second of running with a footpod) kept.
CALIBRATION_SECONDS: Final = 120
#: Running: only then is a step length meaningful.
MIN_RUNNING_SPM: Final = 130.0


class ImuSpeedModel:
    """Learns K from footpod seconds, answers speed from IMU steps afterwards."""

    def __init__(self) -> None:
        self._ratios: deque[float] = deque(maxlen=CALIBRATION_SECONDS)
        self._k: float | None = None  # the median of the ratios, once asked for

    @property
    def calibrated(self) -> bool:
        return len(self._ratios) >= 10

    @property
    def k(self) -> float:
        if not self.calibrated:
            return POPULATION_K
        if self._k is None:
            self._k = statistics.median(self._ratios)
        return self._k

    def learn(self, speed_mps: float, cadence_spm: float, feature: float) -> None:
        """One second with a trusted speed: store this runner's step-length ratio."""
        if cadence_spm >= MIN_RUNNING_SPM and feature > 0.0 and speed_mps > 0.5:
            self._ratios.append(speed_mps / (cadence_spm / 60.0) / feature)
            self._k = None

    def speed(self, cadence_spm: float | None, feature: float | None) -> MetricValue:
        if cadence_spm is None or feature is None:
            return MetricValue(None, "ok" if self.calibrated else "uncalibrated")
        if cadence_spm < MIN_RUNNING_SPM:
            return MetricValue(0.0 if cadence_spm == 0.0 else None, "ok")
        quality: Quality = "ok" if self.calibrated else "uncalibrated"
        return MetricValue(self.k * feature * cadence_spm / 60.0, quality)
