"""Causal smoothing over data time, shared by the rules."""

from __future__ import annotations

from collections import deque


class RollingMean:
    """Mean of the non-null values of the last ``window_s`` seconds (causal smoothing)."""

    __slots__ = ("_sum", "_values", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._values: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def update(self, t_s: float, value: float | None) -> float | None:
        values = self._values
        if value is not None:
            values.append((t_s, value))
            self._sum += value
        cutoff = t_s - self.window_s
        while values and values[0][0] <= cutoff:
            self._sum -= values.popleft()[1]
        if not values:
            self._sum = 0.0
            return None
        return self._sum / len(values)
