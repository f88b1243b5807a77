"""Trunk metrics from an IMU strap: cadence, lean, rotation, bounce, contact time, sway.

Streaming and causal. Blocks of samples (already timed by :mod:`sensors.timing`) are queued as
they arrive and processed together when metrics are asked for, once per second of data time:
one vectorised pass over ~200 samples costs far less than ten small ones, and the row of second
``k`` still uses only samples up to ``k``.

Per sample: the declared mount turns sensor axes into body axes (forward, left, up); VQF gives
the body's orientation against the vertical; from it come the world-vertical specific force
(foot contacts, bounce), the lean against the reference posture, where the body's forward axis
points (rotation) and the acceleration across the running direction (sway). The last few
seconds are kept with running integrals, so each step's and stride's numbers are a handful of
array operations on a slice (see :mod:`.gait` for the definitions they implement).

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

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.signal import lfilter, lfilter_zi

from monitor.estimators.gait import (
    G_MPS2,
    MAX_STEP_S,
    Contact,
    ContactDetector,
    FloatArray,
)
from monitor.estimators.orientation import OrientationFilter, mount_matrix, rotation_matrices
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

# Columns of the sample buffer; the running integrals are derived from them.
_VERTICAL, _AZIMUTH, _LEAN, _LATERAL = 0, 1, 2, 3
_COLUMNS: Final = 4


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
    """The last ``BUFFER_S`` of samples as contiguous arrays, with running integrals.

    ``a1``/``a2``: first and second time integrals of the vertical acceleration (m/s², gravity
    removed); ``l1``/``l2`` the same across the running direction; ``lean_int`` of the lean.
    Recomputed over the buffer after each append (a few thousand samples: cheap).
    """

    def __init__(self) -> None:
        self.t = np.empty(0)
        self.cols = np.empty((0, _COLUMNS))
        # Rows a1, l1, lean_int, a2, l2 (in the order they are integrated); the named arrays
        # below are views of its rows.
        self._ints = np.empty((5, 0))
        self.a1 = self.a2 = self.l1 = self.l2 = self.lean_int = np.empty(0)
        self.gaps: deque[tuple[float, float]] = deque()
        self._last = np.zeros(3)  # the last sample's vertical, lateral and lean

    def append(self, t_s: FloatArray, cols: FloatArray, period_s: float) -> None:
        # The integrals continue from the buffer's last sample (their constants cancel in every
        # use below), so only the new samples are integrated.
        x = np.empty((3, t_s.size))  # vertical and lateral acceleration (m/s²), lean
        np.multiply(cols[:, _VERTICAL] - 1.0, G_MPS2, out=x[0])
        np.multiply(cols[:, _LATERAL], G_MPS2, out=x[1])
        x[2] = cols[:, _LEAN]
        if self.t.size:
            if t_s[0] - self.t[-1] > 1.5 * period_s:
                self.gaps.append((float(self.t[-1]), float(t_s[0])))
            dt = _diff(t_s, float(self.t[-1]))
            last = self._ints[:, -1]
            first = _continue(last[:3], self._last, x, dt)
            second = _continue(last[3:], last[:2], first[:2], dt)
            keep = int(np.searchsorted(self.t, t_s[-1] - BUFFER_S))
            self.t = np.concatenate((self.t[keep:], t_s))
            self.cols = np.concatenate((self.cols[keep:], cols))
            new = np.concatenate((first, second))
            self._ints = np.concatenate((self._ints[:, keep:], new), axis=1)
        else:
            dt = _diff(t_s, float(t_s[0]))
            first = _continue(np.zeros(3), x[:, 0], x, dt)
            second = _continue(np.zeros(2), np.zeros(2), first[:2], dt)
            self.t, self.cols = t_s, cols
            self._ints = np.concatenate((first, second))
        self.a1, self.l1, self.lean_int, self.a2, self.l2 = self._ints
        self._last = x[:, -1].copy()
        inner = np.flatnonzero(dt[1:] > 1.5 * period_s)
        self.gaps.extend((float(t_s[i]), float(t_s[i + 1])) for i in inner)
        while self.gaps and self.gaps[0][1] < self.t[0]:
            self.gaps.popleft()

    def index(self, t_s: float) -> int:
        """The sample nearest to ``t_s``."""
        i = int(np.searchsorted(self.t, t_s))
        if i >= self.t.size:
            return self.t.size - 1
        if i > 0 and t_s - self.t[i - 1] < self.t[i] - t_s:
            return i - 1
        return i

    def gap_between(self, start_s: float, end_s: float) -> bool:
        return any(a < end_s and b > start_s for a, b in self.gaps)

    def double_integral_ptp(self, i0: int, i1: int, first: FloatArray, second: FloatArray) -> float:
        """Peak-to-peak displacement over samples ``i0..i1`` that start and end at the same
        place: the acceleration's mean is removed and the velocity chosen so the ends meet."""
        span = self.t[i1] - self.t[i0]
        d = self.t[i0 : i1 + 1] - self.t[i0]
        mean_acc = (first[i1] - first[i0]) / span
        pos = second[i0 : i1 + 1] - second[i0] - (first[i0] + 0.5 * mean_acc * d) * d
        pos -= pos[-1] * d / span
        return _ptp(pos)

    def chord_ptp(self, i0: int, i1: int, column: int) -> float:
        """Peak-to-peak of a column over ``i0..i1`` after removing the straight line between
        its ends (a bend's turn, a gyro bias)."""
        x = self.cols[i0 : i1 + 1, column]
        d = self.t[i0 : i1 + 1] - self.t[i0]
        rel = x - (x[-1] - x[0]) * d / (self.t[i1] - self.t[i0])
        return _ptp(rel)

    def mean(self, i0: int, i1: int) -> float:
        """Time mean of the lean over ``i0..i1``."""
        return float((self.lean_int[i1] - self.lean_int[i0]) / (self.t[i1] - self.t[i0]))


def _ptp(x: FloatArray) -> float:
    """``x.max() - x.min()``; the ufuncs' own reductions skip the array methods' overhead."""
    return float(np.maximum.reduce(x)) - float(np.minimum.reduce(x))


def _diff(x: FloatArray, before: float) -> FloatArray:
    """``np.diff(x, prepend=before)`` without its generic (and slow) prepend machinery."""
    out = np.empty(x.size)
    out[0] = x[0] - before
    np.subtract(x[1:], x[:-1], out=out[1:])
    return out


def _continue(start: FloatArray, x_before: FloatArray, x: FloatArray, dt: FloatArray) -> FloatArray:
    """Trapezoid integrals of the rows of ``x`` continuing from ``start`` (``x_before``
    ``dt[0]`` earlier), computed in place in one buffer."""
    out = np.empty_like(x)
    out[:, 0] = x[:, 0] + x_before
    np.add(x[:, 1:], x[:, :-1], out=out[:, 1:])
    out *= 0.5
    out *= dt
    np.cumsum(out, axis=1, out=out)
    out += start[:, None]
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
        self._heading_state: FloatArray | None = None
        self._contacts = ContactDetector()
        self._samples = _Samples()
        self._steps: deque[_Step] = deque()
        self._stride_leans: deque[tuple[float, float]] = deque()
        self._touchdowns: deque[Contact] = deque(maxlen=3)
        self._last_t_s: float | None = None
        self._first_t_s: float | None = None
        self._bridge_from: tuple[float, FloatArray, FloatArray] | None = None
        self._last_azimuth_deg: float | None = None  # unwrapped
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
        t_s = np.concatenate([b[0] for b in blocks])
        acc = np.concatenate([b[1] for b in blocks]) @ self.body_from_sensor.T
        gyros = [b[2] for b in blocks]
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
        cols = np.empty((t_s.size, _COLUMNS))
        if self._has_gyro and has_gyro:
            gyro = np.concatenate([g for g in gyros if g is not None]) @ self.body_from_sensor.T
            self._calibrate(t_s, acc, gyro)
            rot = rotation_matrices(self._orient(t_s, gyro, acc))
            acc_world = np.einsum("nij,nj->ni", rot, acc)
            cols[:, _VERTICAL] = acc_world[:, 2]
            cols[:, _LEAN] = self._lean_deg(rot[:, 2, :])  # row 2: world up in body axes
            forward_w = rot @ self.forward_ref
            azimuth = self._unwrap(np.degrees(np.arctan2(forward_w[:, 1], forward_w[:, 0])))
            cols[:, _AZIMUTH] = azimuth
            heading = np.radians(self._heading(azimuth))
            cols[:, _LATERAL] = -acc_world[:, 0] * np.sin(heading) + acc_world[:, 1] * np.cos(
                heading
            )
        else:
            self._calibrate(t_s, acc, None)
            gravity = self._acc_only_gravity(acc)
            cols[:, _VERTICAL] = np.einsum("ij,ij->i", acc, gravity)
            cols[:, _LEAN] = self._lean_deg(gravity)
            cols[:, _AZIMUTH] = np.nan
            cols[:, _LATERAL] = 0.0
        self._samples.append(t_s, cols, self.period_s)
        for contact in self._contacts.push(t_s, cols[:, _VERTICAL]):
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

    def _unwrap(self, azimuth_deg: FloatArray) -> FloatArray:
        """Continuous azimuth across blocks (no jumps at ±180°)."""
        last = self._last_azimuth_deg
        step = _diff(azimuth_deg, float(azimuth_deg[0]) if last is None else last)
        step -= 360.0 * np.rint(step / 360.0)
        out: FloatArray = (azimuth_deg[0] if last is None else last) + np.cumsum(step)
        self._last_azimuth_deg = float(out[-1])
        return out

    def _heading(self, azimuth_deg: FloatArray) -> FloatArray:
        """The running direction: the azimuth smoothed over about a stride (causal)."""
        alpha = 1.0 / (HEADING_TAU_S * self.sample_rate_hz)
        b, a = np.array([alpha]), np.array([1.0, alpha - 1.0])
        if self._heading_state is None:
            self._heading_state = lfilter_zi(b, a) * azimuth_deg[0]
        out, self._heading_state = lfilter(b, a, azimuth_deg, zi=self._heading_state)
        result: FloatArray = out
        return result

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
        i0, i1 = samples.index(start), samples.index(end)
        if i1 - i0 < MIN_SAMPLES:
            return
        oscillation = samples.double_integral_ptp(i0, i1, samples.a1, samples.a2)
        vertical = samples.cols[i0 : i1 + 1, _VERTICAL]
        length_feature = (G_MPS2 * _ptp(vertical)) ** 0.25
        rotation = sway = lean = None
        stride_start = self._touchdowns[0].touchdown_s
        if len(self._touchdowns) == 3 and end - stride_start <= 2 * MAX_STEP_S:
            s0 = samples.index(stride_start)
            # Lean changes slowly: a bridged gap in a stride barely moves its mean.
            if self.measures_lean:
                lean = samples.mean(s0, i1)
                self._stride_leans.append((end, lean))
            if self._has_gyro and not samples.gap_between(stride_start, end):
                rotation = samples.chord_ptp(s0, i1, _AZIMUTH)
                sway = samples.double_integral_ptp(s0, i1, samples.l1, samples.l2)
        self._steps.append(
            _Step(
                end, start, previous.duration_s, oscillation, rotation, sway, lean, length_feature
            )
        )
        while self._steps and self._steps[0].touchdown_s < end - BUFFER_S:
            self._steps.popleft()
        while self._stride_leans and self._stride_leans[0][0] < end - LEAN_VARIABILITY_WINDOW_S:
            self._stride_leans.popleft()

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
        samples = self._samples
        i0, i1 = samples.index(start), samples.index(end)
        if i1 - i0 < MIN_SAMPLES:
            return MetricValue(None, quality)
        return MetricValue(samples.mean(i0, i1), quality)

    def _lean_variability(self, t_s: float) -> MetricValue:
        """Stride-to-stride spread of the stride-averaged lean over the last 30 s.

        The spread around the window's straight-line trend: a runner who deliberately leans
        more is not unstable. A relative measure (a constant offset does not change it), so it
        is ``ok`` calibrated or not.
        """
        recent = [
            (end, lean) for end, lean in self._stride_leans if end > t_s - LEAN_VARIABILITY_WINDOW_S
        ]
        if len(recent) < LEAN_VARIABILITY_MIN_STRIDES:
            return MetricValue(None, "warming_up" if self._running else "ok")
        ends = np.array([r[0] for r in recent])
        leans = np.array([r[1] for r in recent])
        return MetricValue(detrended_std(ends - ends.mean(), leans), "ok")


def _mean_of(values: list[float | None], scale: float) -> MetricValue:
    present = [v for v in values if v is not None]
    if not present:
        return MetricValue(None, "ok")
    return MetricValue(scale * sum(present) / len(present), "ok")


def detrended_std(t: FloatArray, x: FloatArray) -> float:
    """Standard deviation of ``x`` around its least-squares line over ``t`` (n - 2 dof)."""
    tc, xc = t - t.mean(), x - x.mean()
    stt = float(tc @ tc)
    slope = float(tc @ xc) / stt if stt > 0 else 0.0
    residual = xc - slope * tc
    return float(np.sqrt(residual @ residual / (x.size - 2)))
