"""Small causal signal tools the rules share: rolling means and rolling spread over data time."""

from __future__ import annotations

import math
from collections import deque


class RollingMean:
    """Mean of the non-null values of the last ``window_s`` seconds (causal smoothing)."""

    __slots__ = ("_sum", "_values", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._values: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def update(self, t_s: float, value: float | None) -> float | None:
        if value is not None:
            self._values.append((t_s, value))
            self._sum += value
        while self._values and self._values[0][0] <= t_s - self.window_s:
            self._sum -= self._values.popleft()[1]
        if not self._values:
            self._sum = 0.0
            return None
        return self._sum / len(self._values)


class RollingStd:
    """Standard deviation of the last ``window_s`` seconds of a 1 Hz series.

    ``None`` until ``min_count`` values are in the window: a spread of three points says little.
    """

    __slots__ = ("_values", "min_count", "window_s")

    def __init__(self, window_s: float, min_count: int) -> None:
        self.window_s = window_s
        self.min_count = min_count
        self._values: deque[tuple[float, float]] = deque()

    def update(self, t_s: float, value: float | None) -> float | None:
        if value is not None:
            self._values.append((t_s, value))
        while self._values and self._values[0][0] <= t_s - self.window_s:
            self._values.popleft()
        n = len(self._values)
        if n < self.min_count:
            return None
        mean = math.fsum(v for _, v in self._values) / n
        return math.sqrt(math.fsum((v - mean) ** 2 for _, v in self._values) / (n - 1))
