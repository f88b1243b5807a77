"""Heart rate from a Heart Rate Measurement stream (0x2A37): RR intervals first, HR field second.

A strap sends, about once a second, the RR intervals of the beats since its previous
notification and a heart rate it averaged itself. RR intervals are exact beat-to-beat times, so
``heart_rate_bpm`` = 60 ÷ the mean RR interval of the beats wholly in the last 5 s (the truth's
definition); only when a strap sends no RR intervals is it the mean reported heart rate over
the last 5 s. A strap without skin contact (contact bits "no contact", or a heart rate of 0
with no RR intervals) measures nothing: its readings are dropped and the metric is null until
contact returns. Null with quality ``stale`` after 3 s without notifications.

Beat times: :class:`BeatTimeline` chains RR intervals from notification to notification (exact
relative times), anchored to the host receive times; a lost notification (its beats are gone)
breaks the chain and re-anchors it. The RR-derived breathing fallback uses the same timeline.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from typing import Final

from monitor.metrics import STALE_AFTER_S, MetricName, MetricValue
from sensors.gatt.heart_rate import HeartRateMeasurement

#: Beats wholly inside this many seconds make the heart rate (truth's window).
HEART_WINDOW_S: Final = 5.0
#: RR intervals outside this range are artefacts (a missed or an extra beat), not heartbeats.
MIN_RR_S: Final = 60.0 / 240.0
MAX_RR_S: Final = 60.0 / 25.0
#: Fewest RR intervals in the window for an RR-based heart rate.
MIN_RR_INTERVALS: Final = 2
#: Receive latency a notification may plausibly have beyond the wait for its send slot.
MAX_LATENCY_S: Final = 0.3
#: A receive interval this many times the usual one means a notification went missing.
LOST_INTERVAL_FACTOR: Final = 1.5
_RECENT: Final = 16


class BeatTimeline:
    """Host times of the beats that close each RR interval, chained across notifications.

    Within a chain, beat times follow exactly from the RR intervals. The chain's end must lie
    before the notification's receive time, by at most one RR interval (the strap waits for its
    send slot) plus the link latency; a notification that arrives later than that, or after a
    receive gap of ``LOST_INTERVAL_FACTOR`` usual intervals, follows a lost one and starts a new
    chain, whose last beat is placed at the typical distance before its receive time.
    """

    def __init__(self) -> None:
        self._last_beat_t_s: float | None = None
        self._last_recv_t_s: float | None = None
        self._recv_intervals: deque[float] = deque(maxlen=_RECENT)
        self._slacks: deque[float] = deque(maxlen=_RECENT)

    def reset(self) -> None:
        """The next notification starts a new chain (after a reconnect, or lost contact)."""
        self._last_beat_t_s = None
        self._last_recv_t_s = None

    def place(self, t_s: float, rr_intervals_s: tuple[float, ...]) -> list[float]:
        """Times of the beats closing ``rr_intervals_s`` (received at ``t_s``), oldest first."""
        previous_recv = self._last_recv_t_s
        self._last_recv_t_s = t_s
        gap_s = None if previous_recv is None else t_s - previous_recv
        if gap_s is not None and gap_s > 0.0:
            self._recv_intervals.append(gap_s)
        if not rr_intervals_s:
            return []
        ends = list(itertools.accumulate(rr_intervals_s))
        total_s = ends[-1]
        last_rr_s = rr_intervals_s[-1]
        contiguous = self._last_beat_t_s is not None
        if contiguous and gap_s is not None and len(self._recv_intervals) >= 3:
            usual_s = statistics.median(self._recv_intervals)
            contiguous = gap_s <= LOST_INTERVAL_FACTOR * usual_s
        if contiguous:
            assert self._last_beat_t_s is not None
            slack_s = t_s - (self._last_beat_t_s + total_s)
            contiguous = slack_s <= 1.1 * last_rr_s + MAX_LATENCY_S
        if contiguous:
            assert self._last_beat_t_s is not None
            # A beat cannot come after the notification that reports it: clamp a chain that
            # the strap's clock has pushed ahead.
            last_t_s = min(self._last_beat_t_s + total_s, t_s)
            self._slacks.append(t_s - last_t_s)
        else:
            typical_s = statistics.median(self._slacks) if self._slacks else 0.5 * last_rr_s
            last_t_s = t_s - typical_s
        self._last_beat_t_s = last_t_s
        return [last_t_s - (total_s - end) for end in ends]


class HeartRateEstimator:
    """Streaming heart rate; feed measurements in receive order, ask for it at any time."""

    provides: Final[tuple[MetricName, ...]] = ("heart_rate_bpm",)

    def __init__(self, *, window_s: float = HEART_WINDOW_S) -> None:
        self.window_s = window_s
        self.timeline = BeatTimeline()
        # (beat time, RR interval, receive time) and (receive time, reported bpm)
        self._beats: deque[tuple[float, float, float]] = deque()
        self._reported: deque[tuple[float, float]] = deque()
        self._last_t_s: float | None = None
        self._contact = True

    def update(self, t_s: float, measurement: HeartRateMeasurement) -> None:
        self._last_t_s = t_s if self._last_t_s is None else max(self._last_t_s, t_s)
        no_contact = measurement.contact == "no_contact" or (
            measurement.heart_rate_bpm == 0 and not measurement.rr_intervals_s
        )
        if no_contact:
            self._contact = False
            self._beats.clear()
            self._reported.clear()
            self.timeline.reset()
            return
        self._contact = True
        rr = measurement.rr_intervals_s
        for beat_t_s, rr_s in zip(self.timeline.place(t_s, rr), rr, strict=True):
            if MIN_RR_S <= rr_s <= MAX_RR_S:
                self._beats.append((beat_t_s, rr_s, t_s))
        if measurement.heart_rate_bpm > 0:
            self._reported.append((t_s, float(measurement.heart_rate_bpm)))
        horizon = self._last_t_s - self.window_s - MAX_RR_S - 1.0
        while self._beats and self._beats[0][0] < horizon:
            self._beats.popleft()
        while self._reported and self._reported[0][0] < horizon:
            self._reported.popleft()

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]:
        """Heart rate from notifications received up to ``t_s``; null once silent > 3 s."""
        if self._last_t_s is None:
            return {"heart_rate_bpm": MetricValue(None, "warming_up")}
        if t_s - self._last_t_s > STALE_AFTER_S:
            return {"heart_rate_bpm": MetricValue(None, "stale")}
        if not self._contact:
            return {"heart_rate_bpm": MetricValue(None, "warming_up")}
        lo = t_s - self.window_s
        rr = [r for b, r, recv in self._beats if recv <= t_s and b - r > lo]
        if len(rr) >= MIN_RR_INTERVALS:
            return {"heart_rate_bpm": MetricValue(60.0 * len(rr) / sum(rr), "ok")}
        reported = [bpm for recv, bpm in self._reported if lo < recv <= t_s]
        if reported:
            return {"heart_rate_bpm": MetricValue(sum(reported) / len(reported), "ok")}
        return {"heart_rate_bpm": MetricValue(None, "warming_up")}
