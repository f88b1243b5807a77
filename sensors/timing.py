"""Sample timing: host-aligned per-sample times from sequence numbers or sensor timestamps.

A sensor says *which* samples a notification holds, by the sequence number of the first sample
(runmon IMU and Breath, u16 wrapping at 65536) or by its own clock's timestamp of the last sample
(Polar PMD). The recording's ``t`` says *when the host received* it. A timer per stream, fed one
block at a time, turns both into sample times on the host clock (the recording's ``t`` axis),
causally and in O(block) numpy work.

Invariant, for the whole life of a timer (gaps, restarts and :meth:`reset` included): every
:class:`TimedBlock` it returns has strictly increasing ``t_s``, and its first time is strictly
later than the last time of every block returned before it. No sample is passed twice and no
older sample follows a newer one. Blocks that would break this are dropped (duplicates,
out-of-order arrivals) or trimmed (overlap) and counted in :class:`TimingStats`.

Clock model (the numerics live in :class:`_HostClock`): host time = a + b * x, x being the
sensor's time of a sample (sequence index / sample rate, or the sensor timestamp), relative to
the current anchor.

- ``a``: receive latency is never negative, so host receive time - b * x of a block's last sample
  is an upper bound of ``a``; its running minimum is the estimate (the lowest-latency delivery).
- ``b``: the sensor clock's rate against the host's (drift; for sequence numbers, the sample rate
  error too). The minimum of (receive - x) per 5 s window of sensor time traces the lower
  envelope; a Theil-Sen slope over the last 10 min of window minima (robust to windows that only
  saw stalled deliveries) gives ``b`` once 20 s are covered. Reported as ``drift_ppm``.
- Output times slew towards the model: over each block the emitted timeline may run at most
  ``max_slew`` (default 5 %) faster or slower than the model's rate, so a better offset estimate
  bends the timeline smoothly instead of stepping it back in time.

Anomalies (reported in :class:`TimingStats` and on the block):

- lost packets: the next block starts later than expected; its :class:`Gap` says how many samples
  and which times are missing, and times after it are right again;
- duplicates: a block seen among the last 64 again (or the last timestamp again), plausibly late
  (its latency under ``max_late_s``): dropped;
- out of order: any other block older than expected and plausibly late: dropped, its samples
  stay counted as lost;
- wrap-around of u16 sequence numbers, resolved with host time when the sensor kept counting
  through a long silence;
- restarts: a block whose numbering cannot be this stream's re-anchors the timeline: one that
  would have been delivered more than ``max_late_s`` late, or one after a gap that lies more
  than ``max_early_s`` ahead of host time (contiguous blocks may run ahead: bursts after a stall
  do). So does the next block after :meth:`reset` (call it on reconnect). The gap across a
  restart has ``lost_samples=None``: nobody knows how many samples it cost.
"""

from __future__ import annotations

import functools
import math
import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, SupportsIndex

import numpy as np
from numpy.typing import NDArray

from sensors.jit import jit

#: Window of sensor time whose lowest-latency delivery is one point of the drift fit.
DRIFT_WINDOW_S: Final = 5.0
#: Window minima kept for the drift fit (10 min).
DRIFT_WINDOWS_KEPT: Final = 120
#: Sensor time the window minima must span before the drift is estimated at all.
DRIFT_MIN_BASELINE_S: Final = 20.0
#: Recent blocks remembered to recognise duplicates.
RECENT_BLOCKS: Final = 64
#: Gaps kept verbatim in the stats; beyond this only ``gap_count`` grows.
GAPS_KEPT: Final = 32
SEQUENCE_MODULUS: Final = 65536


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples missing before a block: between ``after_t_s`` and ``before_t_s`` (host times).

    ``lost_samples`` is None across a restart, where the count is unknowable.
    """

    host_t_s: float
    after_t_s: float
    before_t_s: float
    lost_samples: int | None


@dataclass(frozen=True, slots=True, eq=False)
class TimedBlock:
    """Host times of a pushed block's samples ``start:`` (``start`` > 0 only after an overlap).

    ``anchored``: the timeline (re)started at this block — the first block, after
    :meth:`SequenceTimer.reset`, or at a detected restart; continuity with earlier blocks is not
    claimed, only the ordering invariant.
    """

    t_s: NDArray[np.float64]
    start: int = 0
    gap: Gap | None = None
    anchored: bool = False

    @property
    def n_samples(self) -> int:
        return int(self.t_s.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class TimedBatch:
    """Host times of the samples :meth:`SequenceTimer.push_many` kept, in order.

    ``kept``: their indices among the pushed blocks' samples laid end to end; None when every
    sample was kept.
    """

    t_s: NDArray[np.float64]
    kept: NDArray[np.intp] | None


@dataclass(frozen=True, slots=True)
class TimingStats:
    """What a timer saw so far. ``drift_ppm``: host-clock length of a sensor second minus one,
    in ppm (positive: the sensor runs slow); None until 20 s of stream are covered.
    """

    blocks: int
    samples: int
    lost_samples: int
    duplicates: int
    out_of_order: int
    trimmed_samples: int
    restarts: int
    gap_count: int
    gaps: tuple[Gap, ...]
    drift_ppm: float | None


@functools.lru_cache(maxsize=DRIFT_WINDOWS_KEPT + 1)
def _pair_cells(n: int) -> NDArray[np.intp]:
    """Flat indices of the cells (i, j), i < j < n, of a DRIFT_WINDOWS_KEPT-square matrix."""
    i, j = np.triu_indices(n, k=1)
    return i * DRIFT_WINDOWS_KEPT + j


def _median(values: NDArray[np.float64]) -> float:
    """``np.median`` of finite, non-empty ``values``, which it partitions in place.

    np.median partitions at both middles and at the end (its NaN check); for finite values one
    partition and a max give the same number at a third of the cost.
    """
    mid = len(values) // 2
    values.partition(mid)
    upper = float(values[mid])
    if len(values) % 2:
        return upper
    return (float(values[:mid].max()) + upper) / 2


class _WindowMinima:
    """The last DRIFT_WINDOWS_KEPT window minima (x, host), and the slope of every pair of them.

    The drift fit takes the median of all n(n-1)/2 pairwise slopes at each new window, which
    adds only n-1 pairs: each slope is computed once, when its newer window arrives. Windows
    live in a ring of slots; ``_slopes[k, m]`` (= ``[m, k]``) is the slope between the windows
    in slots k and m, NaN when the newer one's x is not greater (a pair the fit skips).
    """

    __slots__ = ("_appended", "_host", "_skipped", "_slopes", "_x")

    def __init__(self) -> None:
        self._x = np.zeros(DRIFT_WINDOWS_KEPT)
        self._host = np.zeros(DRIFT_WINDOWS_KEPT)
        self._slopes = np.full((DRIFT_WINDOWS_KEPT, DRIFT_WINDOWS_KEPT), np.nan)
        self._appended = 0  # since the last clear; the next window goes to slot appended % size
        self._skipped = 0  # NaN slopes among the kept pairs

    def __len__(self) -> int:
        return min(self._appended, DRIFT_WINDOWS_KEPT)

    def clear(self) -> None:
        self._appended = 0
        self._skipped = 0

    def append(self, x: float, host: float) -> None:
        slot = self._appended % DRIFT_WINDOWS_KEPT
        if self._appended >= DRIFT_WINDOWS_KEPT:  # the ring is full: slot's old pairs leave
            self._skipped -= int(np.count_nonzero(np.isnan(self._slopes[slot]))) - 1
        self._appended += 1
        kept = len(self)
        self._x[slot] = x
        self._host[slot] = host
        dx = x - self._x[:kept]
        newer = dx > 0  # every other kept window is older; False on the diagonal
        row = np.divide(host - self._host[:kept], dx, out=np.full(kept, np.nan), where=newer)
        self._skipped += kept - 1 - int(np.count_nonzero(newer))
        self._slopes[slot, :kept] = row
        self._slopes[:kept, slot] = row

    def x_span(self) -> float:
        """Sensor time from the oldest kept window to the newest."""
        size = DRIFT_WINDOWS_KEPT
        oldest = self._appended % size if self._appended >= size else 0
        return float(self._x[(self._appended - 1) % size]) - float(self._x[oldest])

    def theil_sen_slope(self) -> float:
        """Median of pairwise slopes: robust to a minority of windows with only late deliveries."""
        slopes = self._slopes.take(_pair_cells(len(self)))
        if self._skipped:  # rare: sensor time grows within an anchor, but for float ties
            slopes = slopes[~np.isnan(slopes)]
        return _median(slopes)

    def lowest_offset(self, b: float) -> float:
        """The smallest host - b * x over the kept windows."""
        kept = len(self)
        return float(np.min(self._host[:kept] - b * self._x[:kept]))


class _HostClock:
    """Maps sensor time x (s since the anchor) to host time; the pure numerics of both timers."""

    __slots__ = (
        "_a",
        "_b",
        "_best",
        "_max_drift",
        "_max_slew",
        "_minima",
        "_t_last",
        "_win_start",
        "_x_last",
        "drift_known",
        "t_out",
    )

    def __init__(self, max_slew: float, max_drift: float) -> None:
        self._max_slew = max_slew
        self._max_drift = max_drift
        self._a = 0.0
        self._b = 1.0
        self._minima = _WindowMinima()
        self._win_start = 0.0
        self._best: tuple[float, float] | None = None  # (x, host) of the window's minimum
        self._x_last: float | None = None  # last emitted sample within this anchor
        self._t_last = 0.0
        self.t_out: float | None = None  # last emitted time ever: the invariant's reference
        self.drift_known = False

    @property
    def rate_ratio(self) -> float:
        return self._b

    def anchor(self, host_t_s: float, x_end: float) -> None:
        """Start a new sensor-time origin; the drift estimate survives (same sensor clock)."""
        self._a = host_t_s - self._b * x_end
        self._minima.clear()
        self._win_start = x_end
        self._best = (x_end, host_t_s)
        self._x_last = None

    def latency(self, host_t_s: float, x: float) -> float:
        """Receive time minus the model's time of sensor time ``x``: >= 0 for plausible data."""
        return host_t_s - (self._a + self._b * x)

    def observe(self, host_t_s: float, x_end: float) -> None:
        """Take one delivery (receive time, sensor time of its last sample) into the model."""
        b = self._b
        residual = host_t_s - (self._a + b * x_end)
        if residual < 0:
            self._a += residual
        best = self._best
        if best is None or host_t_s - b * x_end < best[1] - b * best[0]:
            self._best = (x_end, host_t_s)
        if x_end - self._win_start >= DRIFT_WINDOW_S and self._best is not None:
            self.close_window(x_end)

    def close_window(self, x_end: float) -> None:
        """The window's lowest-latency delivery becomes a point of the drift fit."""
        assert self._best is not None
        self._minima.append(*self._best)
        self._best = None
        self._win_start = x_end
        self._refit()

    def _refit(self) -> None:
        minima = self._minima
        if len(minima) < 3 or minima.x_span() < DRIFT_MIN_BASELINE_S:
            return
        slope = minima.theil_sen_slope()
        self._b = b = min(max(slope, 1.0 - self._max_drift), 1.0 + self._max_drift)
        self.drift_known = True
        # The offset under the new rate: the lowest-latency point of the kept history.
        self._a = minima.lowest_offset(b)

    def follow_on_state(self) -> NDArray[np.float64] | None:
        """The state :func:`_follow_on` advances, or None before a block was placed."""
        if self._x_last is None:
            return None
        best_x, best_host = (math.nan, math.nan) if self._best is None else self._best
        return np.array(
            [self._a, self._b, best_x, best_host, self._win_start, self._x_last, self._t_last]
        )

    def set_follow_on_state(self, state: NDArray[np.float64]) -> None:
        a, b, best_x, best_host, win_start, x_last, t_last = state.tolist()
        self._a, self._b, self._win_start = a, b, win_start
        self._best = None if math.isnan(best_host) else (best_x, best_host)
        self._x_last, self._t_last = x_last, t_last
        self.t_out = t_last

    @property
    def max_slew(self) -> float:
        return self._max_slew

    def place(self, x_first: float, x_end: float, min_step_s: float) -> Placement:
        """The map of a block's sensor times (``x_first`` .. ``x_end``, all after the last
        emitted sample's) to host times: strictly increasing, all after the last emitted time.

        Returned as the four numbers of ``((x - p) * r + q) + s``, evaluated the same way for
        one sample here and for a whole array in :func:`apply_placement`, so the array's last
        time is exactly the ``t_out`` kept here (the invariant needs that exactness).
        """
        b = self._b
        if self._x_last is None:
            p, r, q, shift = 0.0, b, self._a, 0.0  # a + b * x
            t_out = self.t_out
            if t_out is not None:
                t_first = (x_first - p) * r + q
                if t_first <= t_out:
                    shift = t_out + min_step_s - t_first
        else:
            x_last, t_last = self._x_last, self._t_last
            span = x_end - x_last
            target_end = self._a + b * x_end
            lo = t_last + span * b * (1.0 - self._max_slew)
            hi = t_last + span * b * (1.0 + self._max_slew)
            t_end = min(max(target_end, lo), hi)
            p, r, q, shift = x_last, (t_end - t_last) / span, t_last, 0.0
        self._x_last = x_end
        self._t_last = self.t_out = ((x_end - p) * r + q) + shift
        return p, r, q, shift


#: ``(p, r, q, s)``: a block's sensor times x map to host times ``((x - p) * r + q) + s``.
Placement = tuple[float, float, float, float]


def apply_placement(x: NDArray[np.float64], placement: Placement) -> NDArray[np.float64]:
    """Host times of sensor times ``x`` (a scratch array, computed in place and returned
    read-only); numpy calls on a block of ~20 samples cost more than the maths."""
    p, r, q, shift = placement
    x -= p
    x *= r
    x += q
    if shift:
        x += shift
    x.setflags(write=False)
    return x


#: What :func:`_follow_on` says when it stops before the end.
_STOP_LATE: Final = 0  # a block whose latency says it does not simply follow on
_STOP_WINDOW: Final = 1  # a block that completes a drift window (observed, not placed)


@jit
def _follow_on(
    host_t_s: NDArray[np.float64],
    k_first: int,
    n: int,
    period_s: float,
    state: NDArray[np.float64],
    start: int,
    observed: bool,
    late_limit_s: float,
    wrap_half_per_rate_s: float,
    max_slew: float,
    t_out: NDArray[np.float64],
) -> tuple[int, int]:
    """:meth:`_HostClock.observe` then :meth:`_HostClock.place` for blocks of ``n`` samples
    that follow each other without a gap, the first starting at sample ``k_first``, from block
    ``start`` on (its observation already done when ``observed``): the same arithmetic in the
    same order as the Python path, so the same bits. ``state`` is
    :meth:`_HostClock.follow_on_state`; the samples' host times go to ``t_out``. Returns (the
    first block not finished, why: ``_STOP_*``); the first is ``len(host_t_s)`` when all are.
    """
    a, b, best_x, best_host = state[0], state[1], state[2], state[3]
    win_start, x_last, t_last = state[4], state[5], state[6]
    stop, why = host_t_s.size, _STOP_LATE
    for i in range(start, host_t_s.size):
        host = host_t_s[i]
        k0 = k_first + i * n
        xe = float(k0 + n - 1) * period_s
        if not (observed and i == start):
            residual = host - (a + b * xe)
            # A latency the sequence logic would question (too late, or wrapped): not ours.
            if residual > late_limit_s or residual > wrap_half_per_rate_s * b:
                stop, why = i, _STOP_LATE
                break
            if residual < 0:
                a += residual
            if math.isnan(best_host) or host - b * xe < best_host - b * best_x:
                best_x, best_host = xe, host
            if xe - win_start >= DRIFT_WINDOW_S:
                stop, why = i, _STOP_WINDOW
                break
        span = xe - x_last
        target_end = a + b * xe
        lo = t_last + span * b * (1.0 - max_slew)
        hi = t_last + span * b * (1.0 + max_slew)
        t_end = min(max(target_end, lo), hi)
        p, r, q = x_last, (t_end - t_last) / span, t_last
        for j in range(n):
            t_out[i * n + j] = (float(k0 + j) * period_s - p) * r + q
        t_last = ((xe - p) * r + q) + 0.0
        x_last = xe
    state[0], state[1], state[2], state[3] = a, b, best_x, best_host
    state[4], state[5], state[6] = win_start, x_last, t_last
    return stop, why


def _check_positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value!r} must be finite and > 0")
    return float(value)


class _Timer:
    """Bookkeeping shared by both timers: stats, gaps, the clock."""

    def __init__(
        self,
        sample_rate_hz: float,
        *,
        max_slew: float,
        max_late_s: float,
        max_early_s: float,
        max_drift_ppm: float,
    ) -> None:
        self.sample_rate_hz = _check_positive("sample_rate_hz", sample_rate_hz)
        if not 0 < max_slew < 1:
            raise ValueError(f"max_slew={max_slew!r} must be in (0, 1)")
        self._max_late_s = _check_positive("max_late_s", max_late_s)
        self._max_early_s = _check_positive("max_early_s", max_early_s)
        max_drift = _check_positive("max_drift_ppm", max_drift_ppm) * 1e-6
        if max_drift >= 1:
            raise ValueError(f"max_drift_ppm={max_drift_ppm!r} must be < 1e6")
        self._clock = _HostClock(max_slew, max_drift)
        self._started = False
        self._blocks = 0
        self._samples = 0
        self._lost = 0
        self._duplicates = 0
        self._out_of_order = 0
        self._trimmed = 0
        self._restarts = 0
        self._gap_count = 0
        self._gaps: deque[Gap] = deque(maxlen=GAPS_KEPT)

    @property
    def stats(self) -> TimingStats:
        clock = self._clock
        return TimingStats(
            blocks=self._blocks,
            samples=self._samples,
            lost_samples=self._lost,
            duplicates=self._duplicates,
            out_of_order=self._out_of_order,
            trimmed_samples=self._trimmed,
            restarts=self._restarts,
            gap_count=self._gap_count,
            gaps=tuple(self._gaps),
            drift_ppm=(clock.rate_ratio - 1.0) * 1e6 if clock.drift_known else None,
        )

    def _emit(
        self,
        host_t_s: float,
        x: NDArray[np.float64],
        *,
        min_step_s: float,
        start: int = 0,
        lost: int = 0,
        anchored: bool = False,
        restart: bool = False,
    ) -> TimedBlock:
        """Observe, place and account one accepted block.

        ``x``: the sensor times it keeps, in a fresh array that becomes the block's ``t_s``.
        """
        clock = self._clock
        t_before = clock.t_out
        x_first, x_end = float(x[0]), float(x[-1])
        clock.observe(host_t_s, x_end)
        placement = clock.place(x_first, x_end, min_step_s)
        t = apply_placement(x, placement)
        gap = None
        if t_before is not None and (lost or restart):
            gap = Gap(host_t_s, t_before, float(t[0]), None if restart else lost)
            self._gap_count += 1
            self._gaps.append(gap)
        self._blocks += 1
        self._samples += len(t)
        self._lost += lost
        self._trimmed += start
        self._restarts += restart
        self._started = True
        return TimedBlock(t, start, gap, anchored)


def _check_block(host_t_s: float, n_samples: SupportsIndex) -> int:
    if not math.isfinite(host_t_s):
        raise ValueError(f"host_t_s={host_t_s!r} must be finite")
    n = operator.index(n_samples)
    if n < 0:
        raise ValueError(f"n_samples={n} must be >= 0")
    return n


class SequenceTimer(_Timer):
    """Times the blocks of a stream numbered by the sequence of each block's first sample.

    ``push`` returns the host times of the block's new samples, or None when the block is
    dropped (duplicate, out of order, empty). See the module docstring for the invariant.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        *,
        sequence_modulus: int = SEQUENCE_MODULUS,
        max_slew: float = 0.05,
        max_late_s: float = 2.0,
        max_early_s: float = 2.0,
        max_drift_ppm: float = 20_000.0,
    ) -> None:
        super().__init__(
            sample_rate_hz,
            max_slew=max_slew,
            max_late_s=max_late_s,
            max_early_s=max_early_s,
            max_drift_ppm=max_drift_ppm,
        )
        self._modulus = operator.index(sequence_modulus)
        if self._modulus < 2:
            raise ValueError(f"sequence_modulus={sequence_modulus} must be >= 2")
        self._period_s = 1.0 / self.sample_rate_hz
        self._next_seq: int | None = None  # expected first sequence of the next block
        self._next_k = 0  # its unwrapped sample index since the anchor
        self._recent: deque[tuple[int, int]] = deque(maxlen=RECENT_BLOCKS)

    def reset(self) -> None:
        """The link was re-established: the next block re-anchors, whatever its sequence."""
        self._next_seq = None
        self._recent.clear()

    def push(
        self, host_t_s: float, first_sequence: SupportsIndex, n_samples: SupportsIndex
    ) -> TimedBlock | None:
        accepted = self._accept(host_t_s, first_sequence, _check_block(host_t_s, n_samples))
        if accepted is None:
            return None
        k0, k_end, trim, lost, anchored, restart = accepted
        x = np.arange(k0, k_end + 1, dtype=np.float64) * self._period_s
        return self._emit(
            host_t_s,
            x,
            min_step_s=self._period_s,
            start=trim,
            lost=lost,
            anchored=anchored,
            restart=restart,
        )

    def push_many(
        self,
        host_t_s: Sequence[float],
        first_sequences: Sequence[int],
        n_samples: Sequence[int],
    ) -> TimedBatch:
        """Blocks in arrival order (a channel's second of notifications): exactly what
        :meth:`push` returns for each in turn, as one array of times. Blocks of one size that
        follow each other without a gap (the usual second) take one compiled pass."""
        done, t_following = self._push_following(host_t_s, first_sequences, n_samples)
        if done == len(host_t_s):
            t_following.setflags(write=False)
            return TimedBatch(t_following, None)
        times, kept = [t_following], [np.arange(t_following.size)]
        offset = t_following.size
        for block in range(done, len(host_t_s)):
            n = operator.index(n_samples[block])
            timed = self.push(host_t_s[block], first_sequences[block], n)
            if timed is not None:
                times.append(timed.t_s)
                kept.append(np.arange(offset + timed.start, offset + n))
            offset += n
        t = np.concatenate(times)
        t.setflags(write=False)
        kept_all = np.concatenate(kept)
        return TimedBatch(t, None if kept_all.size == offset else kept_all)

    def _push_following(
        self, host_t_s: Sequence[float], first_sequences: Sequence[int], n_samples: Sequence[int]
    ) -> tuple[int, NDArray[np.float64]]:
        """The leading blocks that continue the stream's numbering without a gap, all of one
        size, accepted and placed exactly as :meth:`push` would, in one compiled pass. Returns
        how many it took (0 when the batch does not start that way) and their samples' times."""
        nothing = (0, np.empty(0))
        seq, count = self._next_seq, len(host_t_s)
        if seq is None or count == 0:
            return nothing
        n = n_samples[0]
        modulus = self._modulus
        for following, size in zip(first_sequences, n_samples, strict=True):
            if following != seq or size != n:
                return nothing
            seq = (seq + n) % modulus
        clock = self._clock
        state = clock.follow_on_state()
        if n <= 0 or state is None or not all(map(math.isfinite, host_t_s)):
            return nothing  # push() says what is wrong
        hosts = np.array(host_t_s, dtype=np.float64)
        t_out = np.empty(count * n)
        period = self._period_s
        done, observed = 0, False
        while True:
            done, why = _follow_on(
                hosts,
                self._next_k,
                n,
                period,
                state,
                done,
                observed,
                self._max_late_s,
                modulus * period / 2,
                clock.max_slew,
                t_out,
            )
            clock.set_follow_on_state(state)
            if done == count or why == _STOP_LATE:
                break
            # The drift fit (Python's) before that block is placed.
            clock.close_window((self._next_k + (done + 1) * n - 1) * period)
            state = clock.follow_on_state()
            assert state is not None
            observed = True
        if done:
            # The sequence bookkeeping of the blocks taken, as _accept and _emit keep it.
            self._next_k += done * n
            self._next_seq = (first_sequences[done - 1] + n) % modulus
            self._recent.extend((first_sequences[b], n) for b in range(done))
            self._blocks += done
            self._samples += done * n
            self._started = True
        return done, t_out[: done * n]

    def _accept(
        self, host_t_s: float, first_sequence: SupportsIndex, n: int
    ) -> tuple[int, int, int, int, bool, bool] | None:
        """Place a block in the stream's numbering: (first and last sample index since the
        anchor, samples trimmed, samples lost, anchored, restart), or None when dropped."""
        seq = operator.index(first_sequence)
        modulus = self._modulus
        if not 0 <= seq < modulus:
            raise ValueError(f"first_sequence={seq} outside 0..{modulus - 1}")
        if n == 0:
            return None
        if self._next_seq is None:
            return self._anchor(host_t_s, seq, n)
        clock, period = self._clock, self._period_s
        diff = (seq - self._next_seq) % modulus
        if diff >= modulus // 2:
            diff -= modulus
        k0 = self._next_k + diff
        trim = 0
        if diff < 0:
            if k0 + n <= self._next_k:  # wholly older than what was passed on
                if clock.latency(host_t_s, (k0 + n - 1) * period) > self._max_late_s:
                    # Too old to be a late delivery, even of a block seen before: the
                    # numbering restarted (a reconnect within 64 blocks of the start repeats
                    # earlier sequence numbers).
                    return self._anchor(host_t_s, seq, n)
                if (seq, n) in self._recent:
                    self._duplicates += 1
                else:
                    self._out_of_order += 1
                return None
            trim = self._next_k - k0
            k0 = self._next_k
        k_end = k0 + n - trim - 1
        late = clock.latency(host_t_s, k_end * period)
        wrap_s = modulus * period * clock.rate_ratio
        if diff >= 0 and late > wrap_s / 2:
            # The sensor counted through whole wraps while nothing arrived.
            wraps = round(late / wrap_s)
            k0 += wraps * modulus
            k_end += wraps * modulus
            late = clock.latency(host_t_s, k_end * period)
        if late > self._max_late_s or (late < -self._max_early_s and k0 > self._next_k):
            # Later than any delivery can be, or (after a gap) ahead of host time: the
            # numbering is not this stream's any more. Contiguous blocks may arrive early
            # (a burst after a stall): the offset estimate follows them.
            return self._anchor(host_t_s, seq, n)
        lost = k0 - self._next_k
        self._next_k = k_end + 1
        self._next_seq = (seq + n) % modulus
        self._recent.append((seq, n))
        return k0, k_end, trim, lost, False, False

    def _anchor(self, host_t_s: float, seq: int, n: int) -> tuple[int, int, int, int, bool, bool]:
        restart = self._started
        self._next_seq = (seq + n) % self._modulus
        self._next_k = n
        self._recent.clear()
        self._recent.append((seq, n))
        self._clock.anchor(host_t_s, (n - 1) * self._period_s)
        return 0, n - 1, 0, 0, True, restart


class TimestampTimer(_Timer):
    """Times Polar PMD frames from the sensor timestamp (ns) of each frame's last sample.

    Spacing inside a frame follows Polar's SDK (``PmdTimeStampUtils``): the interval since the
    previous frame's last sample divided by the frame's samples; the first frame and frames after
    a gap use the sensor's measured sample period (nominal until measured). A frame is contiguous
    when that interval is 0.5..1.5 frames long, a gap when longer (lost samples = interval in
    periods minus the frame's samples), an overlap when shorter (its older samples trimmed).
    """

    def __init__(
        self,
        sample_rate_hz: float,
        *,
        max_slew: float = 0.05,
        max_late_s: float = 2.0,
        max_early_s: float = 2.0,
        max_drift_ppm: float = 20_000.0,
    ) -> None:
        super().__init__(
            sample_rate_hz,
            max_slew=max_slew,
            max_late_s=max_late_s,
            max_early_s=max_early_s,
            max_drift_ppm=max_drift_ppm,
        )
        self._nominal_ns = 1e9 / self.sample_rate_hz
        self._period_ns = self._nominal_ns
        self._anchor_ns: int | None = None  # last sample of the anchor frame: x = 0
        self._last_ns = 0  # last sample passed on
        self._count = 0  # samples (kept and lost) since the anchor frame's last one
        self._recent: deque[tuple[int, int]] = deque(maxlen=RECENT_BLOCKS)

    @property
    def sample_period_ns(self) -> float:
        """The sensor's sample period on its own clock, as measured (nominal at first)."""
        return self._period_ns

    def reset(self) -> None:
        """The link was re-established: the next frame re-anchors, whatever its timestamp."""
        self._anchor_ns = None
        self._recent.clear()

    def push(
        self, host_t_s: float, timestamp_ns: SupportsIndex, n_samples: SupportsIndex
    ) -> TimedBlock | None:
        n = _check_block(host_t_s, n_samples)
        ts = operator.index(timestamp_ns)
        if ts < 0:
            raise ValueError(f"timestamp_ns={ts} must be >= 0")
        if n == 0:
            return None
        if self._anchor_ns is None:
            return self._anchor(host_t_s, ts, n)
        clock = self._clock
        x_end = (ts - self._anchor_ns) * 1e-9
        dt_ns = ts - self._last_ns
        if dt_ns <= 0:
            if clock.latency(host_t_s, x_end) > self._max_late_s:
                return self._anchor(host_t_s, ts, n)  # the sensor clock went back: a restart
            if dt_ns == 0 or (ts, n) in self._recent:
                self._duplicates += 1
            else:
                self._out_of_order += 1
            return None
        period_ns = self._period_ns
        frames = dt_ns / (n * period_ns)
        keep, lost, step_ns = n, 0, period_ns
        if frames < 0.5:
            keep = max(1, round(dt_ns / period_ns))
        elif frames < 1.5:
            step_ns = dt_ns / n
        else:
            lost = max(1, round(dt_ns / period_ns) - n)
        late = clock.latency(host_t_s, x_end)
        if late > self._max_late_s or (late < -self._max_early_s and lost):
            return self._anchor(host_t_s, ts, n)  # the sensor clock jumped
        x = x_end - np.arange(keep - 1, -1, -1, dtype=np.float64) * (step_ns * 1e-9)
        self._last_ns = ts
        self._count += lost + keep
        # The sensor's own period, bounded: no real sensor is off by 2x, and the bound keeps
        # sample spacing far above float resolution whatever the timestamps claim.
        self._period_ns = min(
            max((ts - self._anchor_ns) / self._count, 0.5 * self._nominal_ns), 2 * self._nominal_ns
        )
        self._recent.append((ts, n))
        return self._emit(host_t_s, x, min_step_s=step_ns * 1e-9, start=n - keep, lost=lost)

    def _anchor(self, host_t_s: float, ts: int, n: int) -> TimedBlock:
        restart = self._started
        self._anchor_ns = self._last_ns = ts
        self._count = 0
        self._recent.clear()
        self._recent.append((ts, n))
        step_s = self._period_ns * 1e-9
        x = np.arange(1 - n, 1, dtype=np.float64) * step_s
        self._clock.anchor(host_t_s, 0.0)
        return self._emit(host_t_s, x, min_step_s=step_s, anchored=True, restart=restart)
