"""The coach's incremental per-second state against the plain definitions it stands for, bit for
bit: the rolling means shared by the rules, and the baseline learner's steady-running check."""

from __future__ import annotations

import math
import random
import statistics
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.baseline import BaselineLearner
from rules.config import SteadyConfig
from rules.signals import RollingMeans

NAMES = ("a", "b", "c")
Value = float | None
Window = list[tuple[float, Value, Value]]

values = st.one_of(
    st.none(),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.5, 3.2, 172.0]),
)
steps = st.sampled_from([0.5, 1.0, 1.0, 1.0, 2.0, 7.0])
rows = st.lists(st.tuples(steps, st.tuples(values, values, values)), max_size=120)


class _PlainMean:
    """The definition: the mean of the non-null values of the last ``window_s`` seconds."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.values: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def update(self, t_s: float, value: Value) -> Value:
        if value is not None:
            self.values.append((t_s, value))
            self.total += value
        while self.values and self.values[0][0] <= t_s - self.window_s:
            self.total -= self.values.popleft()[1]
        if not self.values:
            self.total = 0.0
            return None
        return self.total / len(self.values)


@settings(max_examples=300, deadline=None)
@given(rows, st.sampled_from([1.0, 2.5, 10.0]))
def test_rolling_means_are_the_per_signal_means(
    stream: list[tuple[float, tuple[Value, Value, Value]]], window_s: float
) -> None:
    together = RollingMeans(window_s, NAMES)
    apart = {name: _PlainMean(window_s) for name in NAMES}
    t_s = 0.0
    for step_s, row in stream:
        t_s += step_s
        # A null value, or (early on) no value at all.
        signals = {name: v for name, v in zip(NAMES, row, strict=True) if v is not None or t_s > 5}
        means = together.update(t_s, signals)
        expected = {name: mean.update(t_s, signals.get(name)) for name, mean in apart.items()}
        assert repr(means) == repr(expected)


def _plain_steady(window: Window, config: SteadyConfig) -> bool:
    """DESIGN §1: every speed and cadence of the window within its tolerance of the median."""
    for column, tolerance in ((1, config.speed_tolerance_mps), (2, config.cadence_tolerance_spm)):
        numbers = [row[column] for row in window]
        if any(v is None for v in numbers):
            return False
        center = statistics.median(v for v in numbers if v is not None)
        if not all(v is not None and abs(v - center) <= tolerance for v in numbers):
            return False
    return True


def _run(rng: random.Random) -> list[tuple[Value, Value]]:
    """Running near 3.3 m/s and 172 steps/min (steady or just not), now and then no value."""
    spread = rng.choice([0.5, 1.0, 1.5])
    # On a grid, values often lie exactly at the tolerance from the median.
    grid = rng.random() < 0.5
    stream: list[tuple[Value, Value]] = []
    for _ in range(rng.randrange(1, 90)):
        if grid:
            speed: Value = 3.3 + 0.05 * rng.randint(-round(8 * spread), round(8 * spread))
            cadence: Value = 172.0 + 0.5 * rng.randint(-round(12 * spread), round(12 * spread))
        else:
            speed = 3.3 + rng.uniform(-0.4 * spread, 0.4 * spread)
            cadence = 172.0 + rng.uniform(-7.0 * spread, 7.0 * spread)
        if rng.random() < 0.03:
            speed = rng.choice([None, math.nan])
        if rng.random() < 0.02:
            cadence = None
        stream.append((speed, cadence))
    return stream


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_steady_is_every_value_near_the_median(seed: int) -> None:
    config = SteadyConfig(min_duration_s=10.0)
    learner = BaselineLearner(config)
    window: Window = []
    for t, (speed, cadence) in enumerate(_run(random.Random(seed)), start=1):
        learner.update(float(t), {"speed_mps": speed, "cadence_spm": cadence})
        window = [row for row in [*window, (t, speed, cadence)] if row[0] > t - 10.0]
        expected = window[0][0] <= t - 10.0 + 1.0 and _plain_steady(window, config)
        assert (learner._steady_since_s is not None) == expected
