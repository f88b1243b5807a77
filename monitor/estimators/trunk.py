"""Trunk metrics from an IMU strap: cadence, lean, rotation, bounce, contact time, sway.

Streaming and causal. Blocks of samples (already timed by :mod:`sensors.timing`) are queued as
they arrive and processed together when metrics are asked for, once per second of data time:
one pass over ~200 samples costs far less than ten small ones, and the row of second ``k``
still uses only samples up to ``k``. The per-sample and per-step loops are compiled
(:mod:`.trunk_numerics`); this class holds the state and the bookkeeping around them.

Per sample: the declared mount turns sensor axes into body axes (forward, left, up); VQF gives
the body's orientation against the vertical; from it come the world-vertical specific force
(foot contacts, bounce), the lean against the reference posture, where the body's forward axis
points (rotation) and the acceleration across the running direction (sway). The last few
seconds are kept with running integrals, so each step's and stride's numbers are one pass over
a slice (see :mod:`.gait` for the definitions they implement).

Calibration: while the runner stands still before running (``calibrate_stand``), the mean
acceleration is the body's "up" in its standing posture and the mean gyro the gyro's bias.
Lean is then measured against that posture (quality ``ok``); without a standing phase the
declared mount is the reference and lean is ``uncalibrated``. A strap without a gyro (a Polar
H10) low-passes the acceleration instead: its lean is biased by the trunk's within-stride pitch
swing (DESIGN §3.3), so it is ``relative``, and rotation and sway cannot be measured at all.

Lost packets: the orientation filter is fed linearly interpolated samples across a gap of up
to ``BRIDGE_GAP_S`` (so its integration does not skip the rotation that happened meanwhile);
those samples are not measured from, and steps or strides spanning a gap are not counted.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.signal import lfilter, lfilter_zi

from monitor.estimators.gait import (
    MAX_STEP_S,
    Contact,
    ContactDetector,
    FloatArray,
)
from monitor.estimators.orientation import OrientationFilter, mount_matrix
from monitor.estimators.trunk_numerics import (
    AZIMUTH_DEG,
    LATERAL_G,
    LEAN_DEG,
    N_COLUMNS,
    VERTICAL_G,
    body_columns,
    detrended_std,
    integrate,
    mean_lean,
    step_figures,
)
from monitor.metrics import STALE_AFTER_S, MetricName, MetricValue, Quality
from sensors.recording import MountSpec

#: Gait metrics are averaged over the steps and strides of the last few seconds.
GAIT_WINDOW_S: Final = 5.0
#: Samples kept for per-step numerics: the window plus a stride and margin.
BUFFER_S: Final = 8.0
#: Standing still: acceleration within this of 1 g, rotation under this rate ...
STILL_ACC_TOLERANCE_G: Final = 0.04
STILL_GYRO_DPS: Final = 8.0
#: ... for at least this long (the coach asks for five seconds).
STILL_MIN_S: Final = 2.0
#: Gaps up to this long are bridged for the orientation filter; longer ones restart the gait.
BRIDGE_GAP_S: Final = 0.5
#: Time constant of the accelerometer-only gravity estimate.
ACC_ONLY_TAU_S: Final = 2.0
#: Time constant of the running direction (the trunk's own yaw swings around it every stride).
HEADING_TAU_S: Final = 0.7
#: Lean variability: spread of stride-averaged lean over this long (DESIGN §1: 30 s) ...
LEAN_VARIABILITY_WINDOW_S: Final = 30.0
#: ... from at least this many strides (two steps each, one starting at every touchdown).
LEAN_VARIABILITY_MIN_STRIDES: Final = 12
#: Fewer samples than this in a step: nothing to integrate.
MIN_SAMPLES: Final = 8

UP: Final = np.array([0.0, 0.0, 1.0])
FORWARD: Final = np.array([1.0, 0.0, 0.0])


@dataclass(frozen=True, slots=True)
class _Step:
    touchdown_s: float
    start_s: float  # previous touchdown
    contact_s: float | None
    oscillation_m: float | None
    # Of the stride (two steps) ending at this touchdown:
    rotation_deg: float | None
    sway_m: float | None
    lean_deg: float | None
    #: Weinberg's step-length feature: (peak-to-peak vertical acceleration, m/s²)^¼.
    length_feature: float


class _Samples:
    """At least the last ``BUFFER_S`` of samples: times and the columns of
    :mod:`.trunk_numerics` (measured values and their running integrals), in arrays that grow
    in place and are compacted only when full."""

    def __init__(self) -> None:
        capacity = 4096
        self._t = np.empty(capacity)
        self._data = np.empty((capacity, N_COLUMNS))
        self.size = 0
        self._reserved = 0  # rows handed out by reserve(), not yet committed
        self.gaps: deque[tuple[float, float]] = deque()

    @property
    def t(self) -> FloatArray:
        return self._t[: self.size]

    @property
    def data(self) -> FloatArray:
        return self._data[: self.size]

    def reserve(self, t_s: FloatArray) -> FloatArray:
        """Append the times ``t_s``; returns the rows for their columns, to be filled and then
        :meth:`commit`-ted."""
        n, size = t_s.size, self.size
        if size + n > self._t.size:
            keep = int(np.searchsorted(self._t[:size], t_s[-1] - BUFFER_S))
            size -= keep
            if size + n > self._t.size:
                capacity = 2 * (size + n)
                t, data = np.empty(capacity), np.empty((capacity, N_COLUMNS))
            else:
                t, data = self._t, self._data
            t[:size] = self._t[keep : keep + size]
            data[:size] = self._data[keep : keep + size]
            self._t, self._data = t, data
        self._t[size : size + n] = t_s
        self.size = size
        self._reserved = n
        return self._data[size : size + n]

    def commit(self, period_s: float) -> None:
        """Integrate the reserved rows and note where samples are missing."""
        start, stop = self.size, self.size + self._reserved
        self.size = stop
        longest = integrate(self._t, self._data, start, stop)
        if longest > 1.5 * period_s:
            t = self._t[max(start - 1, 0) : stop]
            for i in np.flatnonzero(np.diff(t) > 1.5 * period_s):
                self.gaps.append((float(t[i]), float(t[i + 1])))
        oldest = self._t[stop - 1] - BUFFER_S
        while self.gaps and self.gaps[0][1] < oldest:
            self.gaps.popleft()

    def gap_between(self, start_s: float, end_s: float) -> bool:
        return any(a < end_s and b > start_s for a, b in self.gaps)


class _TimedValues:
    """(time, value) pairs appended in time order, the recent ones readable as array slices."""

    def __init__(self) -> None:
        self._t = np.empty(256)
        self._v = np.empty(256)
        self._start = self._stop = 0

    def append(self, t_s: float, value: float, *, keep_s: float) -> None:
        """Append; pairs older than ``keep_s`` before ``t_s`` may be dropped to make room."""
        if self._stop == self._t.size:
            start = self._start + int(np.searchsorted(self._t[self._start :], t_s - keep_s))
            kept = self._stop - start
            size = max(self._t.size, 2 * kept + 2)
            t, v = np.empty(size), np.empty(size)
            t[:kept], v[:kept] = self._t[start : self._stop], self._v[start : self._stop]
            self._t, self._v, self._start, self._stop = t, v, 0, kept
        self._t[self._stop] = t_s
        self._v[self._stop] = value
        self._stop += 1

    def since(self, t_s: float) -> tuple[FloatArray, FloatArray]:
        """Times and values of the pairs later than ``t_s``."""
        first = self._start + int(np.searchsorted(self._t[self._start : self._stop], t_s, "right"))
        return self._t[first : self._stop], self._v[first : self._stop]


def _diff(x: FloatArray, before: float) -> FloatArray:
    """``np.diff(x, prepend=before)`` without its generic (and slow) prepend machinery."""
    out = np.empty(x.size)
    out[0] = x[0] - before
    np.subtract(x[1:], x[:-1], out=out[1:])
    return out


class TrunkImuEstimator:
    """One IMU strap on the trunk (chest, upper back) or the pelvis."""

    def __init__(
        self,
        *,
        mount: MountSpec,
        sample_rate_hz: float,
        placement: str | None = "chest",
        window_s: float = GAIT_WINDOW_S,
    ) -> None:
        self.body_from_sensor = mount_matrix(mount)
        self.sample_rate_hz = sample_rate_hz
        self.period_s = 1.0 / sample_rate_hz
        self.placement = placement or "chest"
        self.measures_lean = self.placement != "pelvis"
        self.window_s = window_s
        self._pending: list[tuple[FloatArray, FloatArray, FloatArray | None]] = []
        #: Called before queued blocks are processed (a channel that decodes lazily feeds them).
        self.before_processing: Callable[[], None] | None = None
        self._orientation = OrientationFilter(sample_rate_hz)
        self._has_gyro: bool | None = None
        self._acc_state: FloatArray | None = None  # accelerometer-only low-pass state
        self._heading = np.full(2, np.nan)  # body_columns' state: azimuth and heading, deg
        self._figures = np.empty(5)  # step_figures' output
        self._contacts = ContactDetector()
        self._samples = _Samples()
        self._steps: deque[_Step] = deque()
        self._stride_leans = _TimedValues()
        self._touchdowns: deque[Contact] = deque(maxlen=3)
        self._last_t_s: float | None = None
        self._first_t_s: float | None = None
        self._bridge_from: tuple[float, FloatArray, FloatArray] | None = None
        # Calibration: the standing posture's "up" and "forward" in body axes.
        self.up_ref: FloatArray = UP.copy()
        self.forward_ref: FloatArray = FORWARD.copy()
        self.calibrated = False
        self._still_since_s: float | None = None
        self._still_acc_sum = np.zeros(3)
        self._still_gyro_sum = np.zeros(3)
        self._still_n = 0
        self._running = False

    # -- input -------------------------------------------------------------------------------

    def update(self, t_s: FloatArray, acc_g: FloatArray, gyro_dps: FloatArray | None) -> None:
        """Queue one block of timed samples (sensor axes); processed at the next metrics call."""
        if t_s.size:
            self._pending.append((t_s, acc_g, gyro_dps))

    # -- processing --------------------------------------------------------------------------

    def _process(self) -> None:
        if self.before_processing is not None:
            self.before_processing()
        if not self._pending:
            return
        blocks, self._pending = self._pending, []
        if len(blocks) == 1:  # the usual case: a channel's second of blocks, timed together
            t_s, acc, gyro_sensor = blocks[0]
            gyros = [gyro_sensor]
        else:
            t_s = np.concatenate([b[0] for b in blocks])
            acc = np.concatenate([b[1] for b in blocks])
            gyros = [b[2] for b in blocks]
        acc = acc @ self.body_from_sensor.T
        has_gyro = all(g is not None for g in gyros)
        if self._has_gyro is None:
            self._has_gyro = has_gyro
        if self._first_t_s is None:
            self._first_t_s = float(t_s[0])
        if self._last_t_s is not None and t_s[0] - self._last_t_s > BRIDGE_GAP_S:
            self._contacts.reset()
            self._touchdowns.clear()
            self._bridge_from = None
        self._last_t_s = float(t_s[-1])
        samples = self._samples
        rows = samples.reserve(t_s)
        if self._has_gyro and has_gyro:
            present = [g for g in gyros if g is not None]
            gyro = (present[0] if len(present) == 1 else np.concatenate(present)) @ (
                self.body_from_sensor.T
            )
            self._calibrate(t_s, acc, gyro)
            quat = self._orient(t_s, gyro, acc)
            alpha = 1.0 / (HEADING_TAU_S * self.sample_rate_hz)
            body_columns(quat, acc, self.forward_ref, self.up_ref, alpha, self._heading, rows)
        else:
            self._calibrate(t_s, acc, None)
            gravity = self._acc_only_gravity(acc)
            rows[:, VERTICAL_G] = np.einsum("ij,ij->i", acc, gravity)
            rows[:, LEAN_DEG] = self._lean_deg(gravity)
            rows[:, AZIMUTH_DEG] = np.nan
            rows[:, LATERAL_G] = 0.0
        vertical = rows[:, VERTICAL_G].copy()
        samples.commit(self.period_s)
        for contact in self._contacts.push(t_s, vertical):
            self._on_contact(contact)

    def _orient(self, t_s: FloatArray, gyro: FloatArray, acc: FloatArray) -> FloatArray:
        """VQF quaternions for the samples, bridging lost samples with interpolated ones."""
        bridge = self._bridge_from
        self._bridge_from = (float(t_s[-1]), gyro[-1], acc[-1])
        # Nothing lost (the usual case): no grid to build. Same test as ``slots.max() <= 1``.
        steps = _diff(t_s, t_s[0] if bridge is None else bridge[0])
        if np.rint(steps.max() / self.period_s) <= 1:
            return self._orientation.update(gyro, acc)
        if bridge is not None:
            t_all = np.concatenate(([bridge[0]], t_s))
            gyro_all = np.vstack((bridge[1], gyro))
            acc_all = np.vstack((bridge[2], acc))
        else:
            t_all, gyro_all, acc_all = t_s, gyro, acc
        slots = np.rint(np.diff(t_all) / self.period_s).astype(np.int64)
        # Place the real samples on a full grid and interpolate the missing ones.
        position = np.concatenate(([0], np.cumsum(np.maximum(slots, 1))))
        grid = np.arange(position[-1] + 1)
        gyro_full = np.column_stack([np.interp(grid, position, gyro_all[:, k]) for k in range(3)])
        acc_full = np.column_stack([np.interp(grid, position, acc_all[:, k]) for k in range(3)])
        start = 1 if bridge is not None else 0
        quat = self._orientation.update(gyro_full[start:], acc_full[start:])
        out: FloatArray = quat[position[start:] - start]
        return out

    def _acc_only_gravity(self, acc: FloatArray) -> FloatArray:
        """Low-passed acceleration direction: gravity, biased by the stride's pitch swing."""
        alpha = 1.0 / (ACC_ONLY_TAU_S * self.sample_rate_hz)
        b, a = np.array([alpha]), np.array([1.0, alpha - 1.0])
        if self._acc_state is None:
            self._acc_state = lfilter_zi(b, a)[:, None] * acc[:1]
        smooth, self._acc_state = lfilter(b, a, acc, axis=0, zi=self._acc_state)
        norm = np.linalg.norm(smooth, axis=1, keepdims=True)
        out: FloatArray = smooth / np.where(norm > 0, norm, 1.0)
        return out

    def _lean_deg(self, gravity: FloatArray) -> FloatArray:
        """Forward inclination against the reference posture, per sample."""
        forward, up = gravity @ self.forward_ref, gravity @ self.up_ref
        out: FloatArray = np.degrees(np.arctan2(-forward, up))
        return out

    def _calibrate(self, t_s: FloatArray, acc: FloatArray, gyro: FloatArray | None) -> None:
        """Capture the standing posture and gyro bias while still, before the first step."""
        if self._running:
            return
        still = np.abs(np.linalg.norm(acc, axis=1) - 1.0) < STILL_ACC_TOLERANCE_G
        if gyro is not None:
            still &= np.linalg.norm(gyro, axis=1) < STILL_GYRO_DPS
        if not still.all():
            # Keep only the still run that reaches the end of this block.
            moving = np.flatnonzero(~still)
            self._still_since_s, self._still_n = None, 0
            self._still_acc_sum[:] = 0.0
            self._still_gyro_sum[:] = 0.0
            tail = slice(moving[-1] + 1, None)
            t_s, acc = t_s[tail], acc[tail]
            gyro = None if gyro is None else gyro[tail]
            if t_s.size == 0:
                return
        if self._still_since_s is None:
            self._still_since_s = float(t_s[0])
        self._still_acc_sum += acc.sum(axis=0)
        if gyro is not None:
            self._still_gyro_sum += gyro.sum(axis=0)
        self._still_n += t_s.size
        if t_s[-1] - self._still_since_s >= STILL_MIN_S:
            up = self._still_acc_sum / self._still_n
            self.up_ref = up / np.linalg.norm(up)
            forward = FORWARD - FORWARD.dot(self.up_ref) * self.up_ref
            self.forward_ref = forward / np.linalg.norm(forward)
            if gyro is not None:
                self._orientation.set_gyro_bias(self._still_gyro_sum / self._still_n)
            self.calibrated = True

    def _on_contact(self, contact: Contact) -> None:
        self._running = True
        previous = self._touchdowns[-1] if self._touchdowns else None
        self._touchdowns.append(contact)
        if previous is None:
            return
        start, end = previous.touchdown_s, contact.touchdown_s
        samples = self._samples
        if end - start > MAX_STEP_S or samples.gap_between(start, end):
            return
        stride_start = self._touchdowns[0].touchdown_s
        is_stride = len(self._touchdowns) == 3 and end - stride_start <= 2 * MAX_STEP_S
        figures = self._figures
        if not step_figures(
            samples.t,
            samples.data,
            start,
            end,
            stride_start if is_stride else math.nan,
            self.measures_lean,
            bool(self._has_gyro) and is_stride and not samples.gap_between(stride_start, end),
            MIN_SAMPLES,
            figures,
        ):
            return
        oscillation, length_feature, lean, rotation, sway = figures.tolist()
        if self.measures_lean and is_stride:
            self._stride_leans.append(end, lean, keep_s=LEAN_VARIABILITY_WINDOW_S)
        self._steps.append(
            _Step(
                end,
                start,
                previous.duration_s,
                oscillation,
                None if math.isnan(rotation) else rotation,
                None if math.isnan(sway) else sway,
                None if math.isnan(lean) else lean,
                length_feature,
            )
        )
        while self._steps and self._steps[0].touchdown_s < end - BUFFER_S:
            self._steps.popleft()

    # -- output ------------------------------------------------------------------------------

    @property
    def provides(self) -> tuple[MetricName, ...]:
        names: list[MetricName] = ["cadence_spm", "vertical_oscillation_cm", "ground_contact_ms"]
        if self.measures_lean:
            names += ["trunk_lean_deg", "lean_variability_deg"]
        if self._has_gyro is not False:
            names += ["trunk_rotation_deg", "lateral_sway_cm"]
        return tuple(names)

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]:
        self._process()
        if self._last_t_s is None or self._first_t_s is None:
            return {name: MetricValue(None, "warming_up") for name in self.provides}
        if t_s - self._last_t_s > STALE_AFTER_S:
            return {name: MetricValue(None, "stale") for name in self.provides}
        steps = [s for s in self._steps if t_s - self.window_s < s.start_s and s.touchdown_s <= t_s]
        out: dict[MetricName, MetricValue] = {}
        if steps:
            step_time_s = sum(s.touchdown_s - s.start_s for s in steps) / len(steps)
            out["cadence_spm"] = MetricValue(60.0 / step_time_s, "ok")
        elif self._last_t_s - self._first_t_s < self.window_s:
            out["cadence_spm"] = MetricValue(None, "warming_up")
        else:
            out["cadence_spm"] = MetricValue(0.0, "ok")  # data, but no steps: not running
        out["ground_contact_ms"] = _mean_of([s.contact_s for s in steps], 1000.0)
        out["vertical_oscillation_cm"] = _mean_of([s.oscillation_m for s in steps], 100.0)
        if self._has_gyro is not False:
            out["trunk_rotation_deg"] = _mean_of([s.rotation_deg for s in steps], 1.0)
            out["lateral_sway_cm"] = _mean_of([s.sway_m for s in steps], 100.0)
        if self.measures_lean:
            out["trunk_lean_deg"] = self._lean(steps)
            out["lean_variability_deg"] = self._lean_variability(t_s)
        return out

    def step_length_feature(self, t_s: float) -> float | None:
        """Mean Weinberg feature of the steps in the window (for the IMU speed model)."""
        steps = [s for s in self._steps if t_s - self.window_s < s.start_s and s.touchdown_s <= t_s]
        if not steps or self._last_t_s is None or t_s - self._last_t_s > STALE_AFTER_S:
            return None
        return sum(s.length_feature for s in steps) / len(steps)

    def _lean_quality(self) -> Quality:
        if not self._has_gyro:
            return "relative"
        return "ok" if self.calibrated else "uncalibrated"

    def _lean(self, steps: list[_Step]) -> MetricValue:
        """Mean lean over the whole strides in the window."""
        quality = self._lean_quality()
        if len(steps) < 2:
            return MetricValue(None, quality)
        n_strides = len(steps) // 2
        start, end = steps[-2 * n_strides].start_s, steps[-1].touchdown_s
        lean = mean_lean(self._samples.t, self._samples.data, start, end, MIN_SAMPLES)
        return MetricValue(None if math.isnan(lean) else lean, quality)

    def _lean_variability(self, t_s: float) -> MetricValue:
        """Stride-to-stride spread of the stride-averaged lean over the last 30 s.

        The spread around the window's straight-line trend: a runner who deliberately leans
        more is not unstable. A relative measure (a constant offset does not change it), so it
        is ``ok`` calibrated or not.
        """
        ends, leans = self._stride_leans.since(t_s - LEAN_VARIABILITY_WINDOW_S)
        if ends.size < LEAN_VARIABILITY_MIN_STRIDES:
            return MetricValue(None, "warming_up" if self._running else "ok")
        return MetricValue(detrended_std(ends, leans), "ok")


def _mean_of(values: list[float | None], scale: float) -> MetricValue:
    present = [v for v in values if v is not None]
    if not present:
        return MetricValue(None, "ok")
    return MetricValue(scale * sum(present) / len(present), "ok")
