"""Steady running and the runner's personal baseline (DESIGN §1).

Steady running: speed within ±0.3 m/s and cadence within ±5 steps/min for at least 60 s. The
baseline of each metric is its median over minutes 2–5 of a steady stretch, kept per speed band
of 0.5 m/s. Baselines go out as plain data for the monitor to store and come back on later runs.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.config import SteadyConfig


@dataclass(frozen=True, slots=True)
class Baseline:
    """Personal reference values for one speed band."""

    speed_band: int
    speed_mps: float
    metrics: Mapping[str, float]
    samples: int
    learned_at_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "speed_band": self.speed_band,
            "speed_mps": round(self.speed_mps, 3),
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "samples": self.samples,
            "learned_at_s": round(self.learned_at_s, 3),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Baseline:
        return Baseline(
            speed_band=int(data["speed_band"]),
            speed_mps=float(data["speed_mps"]),
            metrics={str(k): float(v) for k, v in dict(data["metrics"]).items()},
            samples=int(data["samples"]),
            learned_at_s=float(data.get("learned_at_s", 0.0)),
        )


@dataclass(slots=True)
class Baselines:
    """The runner's baselines by speed band."""

    by_band: dict[int, Baseline] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_band)

    def add(self, baseline: Baseline) -> None:
        self.by_band[baseline.speed_band] = baseline

    def near(self, speed_mps: float | None, tolerance_mps: float) -> Baseline | None:
        """The baseline learned closest to ``speed_mps``, if within the tolerance.

        Without a speed (no footpod and no IMU speed yet) the most recently learned one applies.
        """
        if speed_mps is None:
            return max(self.by_band.values(), key=lambda b: b.learned_at_s, default=None)
        best: Baseline | None = None
        for baseline in self.by_band.values():
            gap = abs(baseline.speed_mps - speed_mps)
            if gap <= tolerance_mps and (best is None or gap < abs(best.speed_mps - speed_mps)):
                best = baseline
        return best

    def to_json(self) -> dict[str, Any]:
        return {str(band): b.to_json() for band, b in sorted(self.by_band.items())}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Baselines:
        return Baselines({int(band): Baseline.from_json(b) for band, b in data.items()})


class BaselineLearner:
    """Finds steady stretches in the 1 Hz metric stream and learns a baseline from each."""

    __slots__ = (
        "_cadences",
        "_collected",
        "_collected_speeds",
        "_last_t_s",
        "_segment_done",
        "_speeds",
        "_steady_since_s",
        "_window",
        "baselines",
        "config",
    )

    def __init__(self, config: SteadyConfig, baselines: Baselines | None = None) -> None:
        self.config = config
        self.baselines = baselines if baselines is not None else Baselines()
        #: The last ``min_duration_s`` of rows: time, speed and cadence...
        self._window: deque[tuple[float, float | None, float | None]] = deque()
        #: ... and their speeds and cadences in sorted order.
        self._speeds = _SortedWindow()
        self._cadences = _SortedWindow()
        self._steady_since_s: float | None = None
        self._collected: list[Mapping[str, float | None]] = []
        self._collected_speeds: list[float] = []
        self._segment_done = False
        self._last_t_s = 0.0

    @property
    def steady_for_s(self) -> float:
        """How long the current steady stretch has lasted (0 when not steady)."""
        return 0.0 if self._steady_since_s is None else self._last_t_s - self._steady_since_s

    def update(self, t_s: float, metrics: Mapping[str, float | None]) -> Baseline | None:
        """Feed one row; returns a baseline when one was just learned."""
        self._last_t_s = t_s
        speed, cadence = metrics.get("speed_mps"), metrics.get("cadence_spm")
        self._push(t_s, speed, cadence)
        if not self._is_steady(t_s):
            # A stretch that broke after enough seconds still teaches its baseline.
            learned = None if self._segment_done else self._learn()
            self._reset_segment()
            self._steady_since_s = None
            return learned
        if self._steady_since_s is None:
            self._steady_since_s = self._window[0][0]
        elapsed_s = t_s - self._steady_since_s
        if self._segment_done:
            return None
        if self.config.baseline_from_s <= elapsed_s < self.config.baseline_until_s:
            self._collected.append(dict(metrics))
            if speed is not None:
                self._collected_speeds.append(speed)
        if elapsed_s >= self.config.baseline_until_s:
            learned = self._learn()
            self._reset_segment()
            self._segment_done = True
            return learned
        return None

    def _push(self, t_s: float, speed: float | None, cadence: float | None) -> None:
        """Add a row to the window and drop the rows older than ``min_duration_s``."""
        window = self._window
        window.append((t_s, speed, cadence))
        self._speeds.add(speed)
        self._cadences.add(cadence)
        cutoff = t_s - self.config.min_duration_s
        while window and window[0][0] <= cutoff:
            _, old_speed, old_cadence = window.popleft()
            self._speeds.remove(old_speed)
            self._cadences.remove(old_cadence)

    def _is_steady(self, t_s: float) -> bool:
        window = self._window
        # The window must reach back a full ``min_duration_s`` (1 s of slack for row timing).
        if not window or window[0][0] > t_s - self.config.min_duration_s + 1.0:
            return False
        # Every row needs both numbers.
        if self._speeds.nulls or self._cadences.nulls:
            return False
        return self._speeds.within(self.config.speed_tolerance_mps) and self._cadences.within(
            self.config.cadence_tolerance_spm
        )

    def _reset_segment(self) -> None:
        self._collected, self._collected_speeds = [], []
        self._segment_done = False

    def _learn(self) -> Baseline | None:
        """A baseline from the stretch's collected seconds, if enough and its band is new."""
        collected, speeds = self._collected, self._collected_speeds
        span_s = self.config.baseline_until_s - self.config.baseline_from_s
        if not speeds or len(collected) < self.config.min_coverage * span_s:
            return None
        speed_mps = statistics.median(speeds)
        band = math.floor(speed_mps / self.config.speed_band_mps)
        if band in self.baselines.by_band:
            return None
        baseline = Baseline(
            speed_band=band,
            speed_mps=speed_mps,
            metrics=_medians(collected, self.config.min_coverage),
            samples=len(collected),
            learned_at_s=self._last_t_s,
        )
        self.baselines.add(baseline)
        return baseline


class _SortedWindow:
    """One number of a sliding window of rows, kept sorted for its median and extremes.

    Nulls are counted, not kept (a NaN counts as null: it is never within a tolerance either).
    """

    __slots__ = ("_sorted", "nulls")

    def __init__(self) -> None:
        self._sorted: list[float] = []
        self.nulls = 0

    def add(self, value: float | None) -> None:
        if value is None or math.isnan(value):
            self.nulls += 1
        else:
            bisect.insort(self._sorted, value)

    def remove(self, value: float | None) -> None:
        if value is None or math.isnan(value):
            self.nulls -= 1
        else:
            del self._sorted[bisect.bisect_left(self._sorted, value)]

    def within(self, tolerance: float) -> bool:
        """Whether every number lies within ``tolerance`` of their median (``statistics.median``'s
        arithmetic); the ones furthest from it are the smallest and the largest."""
        values = self._sorted
        n = len(values)
        center = values[n // 2] if n % 2 == 1 else (values[n // 2 - 1] + values[n // 2]) / 2
        return abs(values[0] - center) <= tolerance and abs(values[-1] - center) <= tolerance


def _medians(rows: list[Mapping[str, float | None]], min_coverage: float) -> dict[str, float]:
    names = {name for row in rows for name in row}
    medians: dict[str, float] = {}
    for name in sorted(names):
        values = [v for row in rows if (v := row.get(name)) is not None]
        if values and len(values) >= min_coverage * len(rows):
            medians[name] = float(statistics.median(values))
    return medians
