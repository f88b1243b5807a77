"""Causal smoothing over data time, shared by the rules."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping


class RollingMeans:
    """Means of the non-null values of the last ``window_s`` seconds of several signals.

    Causal smoothing, one row per call, rows in time order. Each signal keeps the running sum of
    its values in the window (a value is added when its row comes, subtracted when the row
    leaves the window, and the sum restarts from 0 when the window holds none), so all signals
    are smoothed together with one window of rows.
    """

    __slots__ = ("_counts", "_rows", "_sums", "names", "window_s")

    def __init__(self, window_s: float, names: Iterable[str]) -> None:
        self.window_s = window_s
        self.names = tuple(names)
        self._rows: deque[tuple[float, list[float | None]]] = deque()
        self._sums = [0.0] * len(self.names)
        self._counts = [0] * len(self.names)

    def update(self, t_s: float, signals: Mapping[str, float | None]) -> dict[str, float | None]:
        """Add the row of ``t_s`` (a missing signal is null); returns each signal's mean, null
        when its window holds no value."""
        rows = self._rows
        cutoff = t_s - self.window_s
        expired: list[list[float | None]] = []
        while rows and rows[0][0] <= cutoff:
            expired.append(rows.popleft()[1])
        sums, counts = self._sums, self._counts
        values: list[float | None] = []
        means: dict[str, float | None] = {}
        for i, name in enumerate(self.names):
            value = signals.get(name)
            values.append(value)
            # The new value in first, then the expired ones out, oldest first.
            total, count = sums[i], counts[i]
            if value is not None:
                total += value
                count += 1
            for row in expired:
                old = row[i]
                if old is not None:
                    total -= old
                    count -= 1
            if count:
                means[name] = total / count
            else:
                total = 0.0
                means[name] = None
            sums[i], counts[i] = total, count
        rows.append((t_s, values))
        return means
