"""Sample timing: every anomaly by hand, and the ordering invariant under random abuse."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from sensors.timing import Gap, SequenceTimer, TimedBlock, TimestampTimer

INVARIANT = settings(max_examples=150, deadline=None)
POLAR_DEFAULT_TIME_NS = 599_616_000_000_000_000  # H10 default time, 2019-01-01 (Polar docs)


@dataclass(frozen=True)
class Stream:
    """A simulated sensor: sample k is taken at host time offset_s + k * period * (1 + drift)."""

    rate_hz: float = 100.0
    n: int = 10
    offset_s: float = 5.0
    drift: float = 0.0
    latency_s: float = 0.01

    def true_t(self, k: NDArray[np.int64] | int) -> NDArray[np.float64]:
        return np.asarray(self.offset_s + np.asarray(k) / self.rate_hz * (1 + self.drift))

    def host_t(self, block: int, extra_s: float = 0.0) -> float:
        return float(self.true_t((block + 1) * self.n - 1)) + self.latency_s + extra_s

    def ids(self, block: int) -> NDArray[np.int64]:
        return np.arange(block * self.n, (block + 1) * self.n)


def push_seq(
    timer: SequenceTimer, s: Stream, block: int, extra_s: float = 0.0, seq0: int = 0
) -> TimedBlock | None:
    return timer.push(s.host_t(block, extra_s), (seq0 + block * s.n) % 65536, s.n)


def assert_increasing_after(blocks: list[TimedBlock]) -> None:
    times = np.concatenate([b.t_s for b in blocks])
    assert (np.diff(times) > 0).all()


# --- SequenceTimer by hand ---------------------------------------------------------------------


def test_steady_stream_matches_true_times_plus_latency() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    out = []
    for j in range(50):
        block = push_seq(timer, s, j)
        assert block is not None
        assert block.start == 0
        assert block.gap is None
        assert block.anchored == (j == 0)
        assert not block.t_s.flags.writeable
        out.append(block)
        # Constant latency: the first block's estimate is already the floor.
        np.testing.assert_allclose(block.t_s, s.true_t(s.ids(j)) + s.latency_s, atol=1e-9)
    stats = timer.stats
    assert (stats.blocks, stats.samples, stats.lost_samples, stats.gap_count) == (50, 500, 0, 0)
    assert stats.drift_ppm is None  # 5 s of stream: too short to say
    assert_increasing_after(out)


def test_lost_packets_are_reported_and_timing_continues() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    for j in range(10):
        push_seq(timer, s, j)
    last = push_seq(timer, s, 10)
    assert last is not None
    after = push_seq(timer, s, 14)  # blocks 11, 12 and 13 are lost
    assert after is not None
    assert after.gap == Gap(
        host_t_s=s.host_t(14),
        after_t_s=float(last.t_s[-1]),
        before_t_s=float(after.t_s[0]),
        lost_samples=30,
    )
    np.testing.assert_allclose(after.t_s, s.true_t(s.ids(14)) + s.latency_s, atol=1e-9)
    assert after.gap.before_t_s - after.gap.after_t_s == pytest.approx(31 / s.rate_hz)
    assert timer.stats.lost_samples == 30
    assert timer.stats.gaps == (after.gap,)


def test_duplicates_are_dropped() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    for j in range(5):
        push_seq(timer, s, j)
    assert push_seq(timer, s, 4, extra_s=0.02) is None  # the same block again
    assert push_seq(timer, s, 2, extra_s=0.3) is None  # an older one again
    assert timer.stats.duplicates == 2
    nxt = push_seq(timer, s, 5)
    assert nxt is not None
    assert nxt.gap is None


def test_out_of_order_packets_are_dropped_and_stay_lost() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    for j in range(5):
        push_seq(timer, s, j)
    ahead = push_seq(timer, s, 6)  # block 5 is late
    assert ahead is not None
    assert ahead.gap is not None
    assert ahead.gap.lost_samples == 10
    assert push_seq(timer, s, 5, extra_s=0.2) is None
    stats = timer.stats
    assert (stats.out_of_order, stats.duplicates, stats.lost_samples) == (1, 0, 10)


def test_partial_overlap_is_trimmed() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    first = timer.push(s.host_t(0), 100, 10)
    assert first is not None
    # The sensor re-sent samples 105..109 with 110..114: only the new five pass.
    block = timer.push(s.host_t(0) + 0.05, 105, 10)
    assert block is not None
    assert (block.start, block.n_samples) == (5, 5)
    assert block.t_s[0] > first.t_s[-1]
    assert timer.stats.trimmed_samples == 5


def test_sequence_wraps_around() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    seq0 = 65536 - 25  # wraps inside block 2
    out = [push_seq(timer, s, j, seq0=seq0) for j in range(6)]
    assert all(b is not None and b.gap is None for b in out)
    lost = push_seq(timer, s, 8, seq0=seq0)
    assert lost is not None
    assert lost.gap is not None
    assert lost.gap.lost_samples == 20
    np.testing.assert_allclose(lost.t_s, s.true_t(s.ids(8)) + s.latency_s, atol=1e-9)


def test_wraps_through_a_long_silence_are_counted() -> None:
    # A 200 Hz sensor kept counting through 7 minutes without a delivery (> 1 wrap = 327.68 s).
    s = Stream(rate_hz=200.0, n=20)
    timer = SequenceTimer(s.rate_hz)
    for j in range(20):
        push_seq(timer, s, j)
    later = 20 + 4200  # 84 000 samples later
    block = push_seq(timer, s, later)
    assert block is not None
    assert not block.anchored
    assert block.gap is not None
    assert block.gap.lost_samples == 4200 * 20
    np.testing.assert_allclose(block.t_s, s.true_t(s.ids(later)) + s.latency_s, atol=1e-6)


def test_restart_after_reconnect_reanchors() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    for j in range(30):
        last = push_seq(timer, s, j)
    assert last is not None
    # Link lost for 5 s; the strap restarts its numbering at 0.
    host = s.host_t(29) + 5.0
    block = timer.push(host, 0, 10)
    assert block is not None
    assert block.anchored
    assert block.gap is not None
    assert block.gap.lost_samples is None
    assert block.t_s[0] > last.t_s[-1]
    assert block.t_s[-1] == pytest.approx(host)
    assert timer.stats.restarts == 1
    nxt = timer.push(host + 0.1, 10, 10)
    assert nxt is not None
    assert not nxt.anchored
    assert nxt.t_s[0] - block.t_s[-1] == pytest.approx(0.01)


def test_restart_ahead_of_host_time_reanchors() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    for j in range(30):
        push_seq(timer, s, j)
    # 0.1 s later the sensor claims to be 20 000 samples (200 s) further: not this numbering.
    block = timer.push(s.host_t(30), (300 + 20_000) % 65536, 10)
    assert block is not None
    assert block.anchored
    assert timer.stats.lost_samples == 0


def test_a_duplicate_later_than_max_late_reads_as_a_restart() -> None:
    # By contract: nothing is delivered more than max_late_s late. A copy 5 s late looks like a
    # restarted numbering; the timeline re-anchors, forward only.
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    for j in range(5):
        last = push_seq(timer, s, j)
    stale = push_seq(timer, s, 2, extra_s=5.0)
    assert stale is not None
    assert stale.anchored
    assert last is not None
    assert stale.t_s[0] > last.t_s[-1]


def test_reset_reanchors_even_a_plausible_continuation() -> None:
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    for j in range(5):
        last = push_seq(timer, s, j)
    timer.reset()
    block = push_seq(timer, s, 5)
    assert block is not None
    assert block.anchored
    assert last is not None
    assert block.t_s[0] > last.t_s[-1]
    assert timer.stats.restarts == 1


def test_a_stall_burst_bends_the_timeline_but_never_back() -> None:
    # The first deliveries come 300 ms late, then the link settles at 10 ms: the offset estimate
    # falls by 290 ms and the output slews (at most 5 %) instead of jumping back.
    s = Stream()
    timer = SequenceTimer(s.rate_hz)
    out = []
    for j in range(200):
        block = push_seq(timer, s, j, extra_s=0.29 if j < 3 else 0.0)
        assert block is not None
        out.append(block)
    assert_increasing_after(out)
    times = np.concatenate([b.t_s for b in out])
    spacing = np.diff(times) * s.rate_hz
    assert spacing.min() >= 0.95 - 1e-9
    assert spacing.max() <= 1.05 + 1e-9
    # Converged: 290 ms at 5 % takes 5.8 s of stream (58 blocks).
    np.testing.assert_allclose(out[-1].t_s, s.true_t(s.ids(199)) + s.latency_s, atol=1e-6)


def test_drift_is_estimated_and_tracked() -> None:
    # Sensor clock 300 ppm slow, latency 10 ms + exponential jitter, 2 % loss, 5 minutes.
    rng = np.random.default_rng(3)
    s = Stream(rate_hz=50.0, n=5, drift=300e-6)
    timer = SequenceTimer(s.rate_hz)
    errors = []
    for j in range(3000):
        if rng.random() < 0.02:
            continue
        block = push_seq(timer, s, j, extra_s=float(rng.exponential(0.03)))
        assert block is not None
        errors.append(np.abs(block.t_s - s.true_t(s.ids(j)) - s.latency_s).max())
        if j == 150:
            assert timer.stats.drift_ppm is None  # 15 s: not yet
    drift_ppm = timer.stats.drift_ppm
    assert drift_ppm is not None
    assert drift_ppm == pytest.approx(300, abs=20)
    assert max(errors[-1000:]) < 0.003


def test_drift_fit_follows_a_change_once_old_windows_leave() -> None:
    # The fit keeps the last 10 min of window minima: a sensor clock that changes rate after
    # 15 min (0 -> 500 ppm slow) is tracked once the older windows have left the fit.
    rng = np.random.default_rng(5)
    rate_hz, n, change_k = 50.0, 5, 15 * 60 * 50
    timer = SequenceTimer(rate_hz)

    def host_t(k: int) -> float:
        if k < change_k:
            return 5.0 + k / rate_hz
        return 5.0 + change_k / rate_hz + (k - change_k) / rate_hz * (1 + 500e-6)

    before: float | None = None
    for j in range(2 * change_k // n):
        if rng.random() < 0.02:
            continue
        last = (j + 1) * n - 1
        delay = 0.01 + float(rng.exponential(0.02))
        assert timer.push(host_t(last) + delay, (j * n) % 65536, n) is not None
        if last < change_k:
            before = timer.stats.drift_ppm
    assert before is not None
    assert before == pytest.approx(0, abs=20)
    after = timer.stats.drift_ppm
    assert after is not None
    assert after == pytest.approx(500, abs=20)


def test_emitted_times_are_never_changed_by_later_pushes() -> None:
    # Each block's t_s is its own read-only array: later pushes (gaps, overlaps, a restart,
    # drift refits) must not write into blocks already handed out.
    rng = np.random.default_rng(7)
    s = Stream(rate_hz=50.0, n=5, drift=200e-6)
    timer = SequenceTimer(s.rate_hz)
    kept: list[tuple[TimedBlock, NDArray[np.float64]]] = []
    for j in range(1500):
        if rng.random() < 0.05:
            continue
        block = push_seq(timer, s, j, extra_s=float(rng.exponential(0.02)))
        if j == 700:
            timer.reset()
        if block is not None:
            assert not block.t_s.flags.writeable
            kept.append((block, block.t_s.copy()))
    assert timer.stats.drift_ppm is not None
    for block, copy in kept:
        np.testing.assert_array_equal(block.t_s, copy)
    for (a, _), (b, _) in itertools.pairwise(kept):
        assert not np.shares_memory(a.t_s, b.t_s)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SequenceTimer(0.0), "sample_rate_hz=0.0"),
        (lambda: SequenceTimer(math.nan), "sample_rate_hz=nan"),
        (lambda: SequenceTimer(100.0, max_slew=1.0), "max_slew=1.0"),
        (lambda: SequenceTimer(100.0, max_late_s=-1.0), "max_late_s=-1.0"),
        (lambda: SequenceTimer(100.0, max_early_s=math.inf), "max_early_s=inf"),
        (lambda: SequenceTimer(100.0, max_drift_ppm=1e6), "max_drift_ppm"),
        (lambda: SequenceTimer(100.0, sequence_modulus=1), "sequence_modulus=1"),
        (lambda: TimestampTimer(-200.0), "sample_rate_hz=-200"),
    ],
)
def test_timers_reject_bad_parameters(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_sequence_timer_rejects_bad_blocks() -> None:
    timer = SequenceTimer(100.0)
    with pytest.raises(ValueError, match="first_sequence=65536"):
        timer.push(1.0, 65536, 1)
    with pytest.raises(ValueError, match="n_samples=-1"):
        timer.push(1.0, 0, -1)
    with pytest.raises(ValueError, match="host_t_s=nan"):
        timer.push(math.nan, 0, 1)
    with pytest.raises(TypeError):
        timer.push(1.0, 1.5, 1)  # type: ignore[arg-type]  # deliberately not an int
    assert timer.push(1.0, 0, 0) is None
    assert timer.stats.blocks == 0


# --- TimestampTimer by hand --------------------------------------------------------------------


def polar_ts(s: Stream, block: int, base_ns: int = POLAR_DEFAULT_TIME_NS) -> int:
    """Sensor timestamp of the block's last sample: the sensor's clock runs at its own rate."""
    return base_ns + round(((block + 1) * s.n - 1) * 1e9 / s.rate_hz)


def push_ts(
    timer: TimestampTimer,
    s: Stream,
    block: int,
    extra_s: float = 0.0,
    base_ns: int = POLAR_DEFAULT_TIME_NS,
) -> TimedBlock | None:
    return timer.push(s.host_t(block, extra_s), polar_ts(s, block, base_ns), s.n)


def test_polar_steady_stream_and_sdk_spacing() -> None:
    s = Stream(rate_hz=200.0, n=36)  # an H10 ACC frame of 36 samples
    timer = TimestampTimer(s.rate_hz)
    out = []
    for j in range(40):
        block = push_ts(timer, s, j)
        assert block is not None
        assert block.gap is None
        out.append(block)
        np.testing.assert_allclose(block.t_s, s.true_t(s.ids(j)) + s.latency_s, atol=1e-8)
    assert_increasing_after(out)
    assert timer.sample_period_ns == pytest.approx(5e6)


def test_polar_jittered_timestamps_tile_without_overlap() -> None:
    # PmdTimeStampUtils: samples between two frames are spaced (ts - previous ts) / n.
    s = Stream(rate_hz=52.0, n=12)
    timer = TimestampTimer(s.rate_hz)
    jitter = [0, 900_000, -700_000, 300_000, 0]
    out = []
    for j, dj in enumerate(jitter):
        block = timer.push(s.host_t(j), polar_ts(s, j) + dj, s.n)
        assert block is not None
        out.append(block)
    assert_increasing_after(out)
    steps = np.diff(out[2].t_s)
    assert np.ptp(steps) < 1e-12  # uniform inside a frame
    # (ts - previous ts) / n on the sensor clock; the host mapping bends it by < 1e-6 here.
    assert steps[0] == pytest.approx((12e9 / 52 - 1_600_000) / 12 * 1e-9, rel=1e-6)


def test_polar_lost_frames_duplicates_and_out_of_order() -> None:
    s = Stream(rate_hz=200.0, n=36)
    timer = TimestampTimer(s.rate_hz)
    for j in range(5):
        push_ts(timer, s, j)
    gap = push_ts(timer, s, 7)
    assert gap is not None
    assert gap.gap is not None
    assert gap.gap.lost_samples == 72
    np.testing.assert_allclose(gap.t_s, s.true_t(s.ids(7)) + s.latency_s, atol=1e-8)
    assert push_ts(timer, s, 7, extra_s=0.01) is None  # duplicate
    assert push_ts(timer, s, 6, extra_s=0.3) is None  # late
    stats = timer.stats
    assert (stats.duplicates, stats.out_of_order, stats.lost_samples) == (1, 1, 72)


def test_polar_overlap_is_trimmed() -> None:
    s = Stream(rate_hz=100.0, n=10)
    timer = TimestampTimer(s.rate_hz)
    first = push_ts(timer, s, 0)
    # A frame ending 3 samples after the previous one: its first 7 samples are old.
    block = timer.push(s.host_t(0) + 0.03, polar_ts(s, 0) + 30_000_000, 10)
    assert first is not None
    assert block is not None
    assert (block.start, block.n_samples) == (7, 3)
    assert block.t_s[0] > first.t_s[-1]


def test_polar_sensor_reboot_resets_clock_and_reanchors() -> None:
    # An H10 shut down and back at its default time: timestamps jump back by 10 minutes.
    s = Stream(rate_hz=200.0, n=36)
    timer = TimestampTimer(s.rate_hz)
    for j in range(100):
        last = push_ts(timer, s, j, base_ns=POLAR_DEFAULT_TIME_NS + 600 * 10**9)
    assert last is not None
    block = push_ts(timer, s, 100, extra_s=8.0)
    assert block is not None
    assert block.anchored
    assert block.t_s[0] > last.t_s[-1]
    assert timer.stats.restarts == 1


def test_polar_clock_set_forward_reanchors() -> None:
    # setLocalTime moved the sensor clock ahead by a day mid-stream.
    s = Stream(rate_hz=200.0, n=36)
    timer = TimestampTimer(s.rate_hz)
    for j in range(10):
        push_ts(timer, s, j)
    block = push_ts(timer, s, 10, base_ns=POLAR_DEFAULT_TIME_NS + 86_400 * 10**9)
    assert block is not None
    assert block.anchored
    assert timer.stats.lost_samples == 0


def test_polar_measures_the_sensor_rate_and_drift() -> None:
    # The sensor samples at 200 Hz of its own clock, which runs 150 ppm fast against the host.
    rng = np.random.default_rng(11)
    s = Stream(rate_hz=200.0, n=36, drift=-150e-6)
    timer = TimestampTimer(199.0)  # configured rate slightly wrong: the timestamps know better
    for j in range(1200):  # 3.6 minutes
        block = push_ts(timer, s, j, extra_s=float(rng.exponential(0.02)))
        assert block is not None
    assert timer.sample_period_ns == pytest.approx(5e6, rel=1e-6)
    drift_ppm = timer.stats.drift_ppm
    assert drift_ppm is not None
    assert drift_ppm == pytest.approx(-150, abs=15)
    assert timer.stats.lost_samples == 0


def test_timestamp_timer_rejects_bad_blocks() -> None:
    timer = TimestampTimer(200.0)
    with pytest.raises(ValueError, match="timestamp_ns=-1"):
        timer.push(0.0, -1, 5)
    assert timer.push(0.0, 5, 0) is None


# --- the invariant under random loss, duplication, reordering, jitter and restarts -------------


@dataclass(frozen=True)
class Delivery:
    host_t_s: float
    session: int
    first_id: int  # sample id (within its session) of the block's first sample
    n: int


@st.composite
def abused_streams(draw: st.DrawFn) -> tuple[Stream, list[Delivery], int]:
    """Deliveries of 1-3 sessions, lossy, duplicated, reordered and jittered, in arrival order.

    Returns (stream, deliveries, blocks per session); block sizes vary by block, or (as real
    sensors send them) are all ``n``.
    """
    rate = draw(st.sampled_from([25.0, 52.0, 100.0, 200.0]))
    s = Stream(
        rate_hz=rate,
        n=draw(st.integers(1, 40)),
        offset_s=draw(st.floats(0, 100)),
        drift=draw(st.floats(-500e-6, 500e-6)),
        latency_s=draw(st.floats(0.001, 0.05)),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p_loss = draw(st.floats(0, 0.3))
    p_dup = draw(st.floats(0, 0.3))
    p_late = draw(st.floats(0, 0.3))
    jitter_s = draw(st.floats(0, 0.1))
    blocks = draw(st.integers(1, 120))
    sessions = draw(st.integers(1, 3))
    same_size = draw(st.booleans())
    deliveries = []
    t0 = 0.0
    for session in range(sessions):
        sizes = np.full(blocks, s.n) if same_size else rng.integers(1, s.n + 1, size=blocks)
        firsts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        for first, n in zip(firsts.tolist(), sizes.tolist(), strict=True):
            if rng.random() < p_loss:
                continue
            base = t0 + float(s.true_t(first + n - 1)) + s.latency_s
            # Delays stay under 1.8 s: below max_late_s (2 s), beyond which a block reads as a
            # restart by contract, and below the 3 s pause between sessions, so a session's
            # stragglers never arrive after the next one started (a stale block and a fresh
            # one with the same number are then indistinguishable, by anyone).
            host = base + min(rng.exponential(jitter_s), 3 * jitter_s) if jitter_s else base
            if rng.random() < p_late:
                host += rng.uniform(0.0, 0.7)
            deliveries.append(Delivery(float(host), session, first, n))
            if rng.random() < p_dup:
                deliveries.append(Delivery(float(host + rng.uniform(0, 0.7)), session, first, n))
        # The next session starts after a pause of 3-30 s.
        t0 += float(s.true_t(int(sizes.sum()))) - s.offset_s + rng.uniform(3, 30)
    deliveries.sort(key=lambda d: d.host_t_s)
    return s, deliveries, blocks


def check_invariant(outputs: list[tuple[Delivery, TimedBlock]], *, restarts_possible: bool) -> None:
    times = [b.t_s for _, b in outputs]
    for t in times:
        assert (np.diff(t) > 0).all()
    for earlier, later in itertools.pairwise(times):
        assert later[0] > earlier[-1]
    per_session: dict[int, list[NDArray[np.int64]]] = {}
    for d, b in outputs:
        assert b.n_samples == d.n - b.start
        per_session.setdefault(d.session, []).append(
            np.arange(d.first_id + b.start, d.first_id + d.n)
        )
    for ids in per_session.values():
        flat = np.concatenate(ids)
        assert len(np.unique(flat)) == len(flat)  # no sample passed twice
        if not restarts_possible:
            assert (np.diff(flat) > 0).all()  # and never an older after a newer


@INVARIANT
@given(abused_streams(), st.integers(0, 65535), st.booleans())
def test_sequence_timer_invariant(
    case: tuple[Stream, list[Delivery], int], seq0: int, reset_on_reconnect: bool
) -> None:
    s, deliveries, _ = case
    timer = SequenceTimer(s.rate_hz)
    outputs = []
    session = 0
    for d in deliveries:
        if d.session != session:
            session = d.session
            if reset_on_reconnect:
                timer.reset()
        block = timer.push(d.host_t_s, (seq0 + d.first_id) % 65536, d.n)
        if block is not None:
            outputs.append((d, block))
    sessions = {d.session for d in deliveries}
    check_invariant(outputs, restarts_possible=len(sessions) > 1)
    stats = timer.stats
    assert stats.samples == sum(b.n_samples for _, b in outputs)
    assert stats.blocks + stats.duplicates + stats.out_of_order == len(deliveries)
    if len(sessions) == 1 and outputs:
        # Everything between the first and the last sample passed on was passed on or lost.
        first = outputs[0][0].first_id
        last = max(d.first_id + d.n for d, _ in outputs)
        assert stats.samples + stats.lost_samples == last - first
        assert stats.restarts == 0


@INVARIANT
@given(abused_streams(), st.booleans())
def test_timestamp_timer_invariant(
    case: tuple[Stream, list[Delivery], int], reset_on_reconnect: bool
) -> None:
    s, deliveries, _ = case
    timer = TimestampTimer(s.rate_hz)
    outputs = []
    session = 0
    for d in deliveries:
        if d.session != session:
            session = d.session
            if reset_on_reconnect:
                timer.reset()
        # Each session the sensor clock restarts somewhere (an H10 back at its default time).
        base_ns = POLAR_DEFAULT_TIME_NS + d.session * 7_000_000_000_000 * (-1) ** d.session
        ts = base_ns + round((d.first_id + d.n - 1) * 1e9 / s.rate_hz)
        block = timer.push(d.host_t_s, ts, d.n)
        if block is not None:
            outputs.append((d, block))
    check_invariant(outputs, restarts_possible=len({d.session for d in deliveries}) > 1)
    stats = timer.stats
    assert stats.blocks + stats.duplicates + stats.out_of_order == len(deliveries)


@INVARIANT
@given(abused_streams(), st.integers(0, 65535), st.integers(1, 12))
def test_push_many_is_push_in_turn(
    case: tuple[Stream, list[Delivery], int], seq0: int, batch: int
) -> None:
    """The batch path (a channel's second of notifications at once) gives bit-identical times,
    the same samples and the same stats as pushing the blocks one by one."""
    s, deliveries, _ = case
    one, many = SequenceTimer(s.rate_hz), SequenceTimer(s.rate_hz)
    groups = [deliveries[i : i + batch] for i in range(0, len(deliveries), batch)]
    for group in groups:
        expected_t, expected_kept = [], []
        offset = 0
        for d in group:
            block = one.push(d.host_t_s, (seq0 + d.first_id) % 65536, d.n)
            if block is not None:
                expected_t.append(block.t_s)
                expected_kept.append(np.arange(offset + block.start, offset + d.n))
            offset += d.n
        result = many.push_many(
            [d.host_t_s for d in group],
            [(seq0 + d.first_id) % 65536 for d in group],
            [d.n for d in group],
        )
        want_t = np.concatenate(expected_t) if expected_t else np.empty(0)
        np.testing.assert_array_equal(result.t_s, want_t)
        kept = np.arange(offset) if result.kept is None else result.kept
        want_kept = np.concatenate(expected_kept) if expected_kept else np.empty(0, dtype=np.intp)
        np.testing.assert_array_equal(kept, want_kept)
    assert many.stats == one.stats


@pytest.mark.parametrize(
    ("silence_s", "counting"),
    [
        (3.0, False),  # numbering resumes where it stopped, 3 s late: a restart
        (400.0, True),  # the sensor counted through a wrap while nothing arrived
        (0.5, True),  # a plain gap
    ],
)
def test_push_many_after_a_silence_is_push_in_turn(silence_s: float, counting: bool) -> None:
    rate, n = 200.0, 19
    deliveries: list[tuple[float, int]] = []
    for block in range(120):
        first = block * n
        t = (first + n - 1) / rate + 0.01
        if block >= 60:
            t += silence_s
            if counting:
                first += round(silence_s * rate)
        deliveries.append((t, first % 65536))
    one, many = SequenceTimer(rate), SequenceTimer(rate)
    expected = [b.t_s for h, s in deliveries if (b := one.push(h, s, n)) is not None]
    got = [
        many.push_many([h for h, _ in batch], [s for _, s in batch], [n] * len(batch)).t_s
        for batch in (deliveries[i : i + 10] for i in range(0, len(deliveries), 10))
    ]
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))
    assert many.stats == one.stats
    assert one.stats.restarts == (0 if counting else 1)
