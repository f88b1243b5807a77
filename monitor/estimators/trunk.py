"""Trunk metrics from an IMU strap: cadence, lean, rotation, vertical oscillation, contact time.

Streaming and causal. Blocks of samples (already timed by :mod:`sensors.timing`) are queued as
they arrive and processed together when metrics are asked for, once per second of data time:
one vectorised pass over ~200 samples costs far less than ten small ones, and the row of second
``k`` still uses only samples up to ``k``.

Per sample: the declared mount turns sensor axes into body axes (forward, left, up); VQF gives
the body's orientation against the vertical; from it come the world-vertical specific force
(foot contacts, bounce), the direction of gravity in the body (lean) and where the body's
forward axis points (rotation). Per step and stride, gait numerics in :mod:`.gait`.

Calibration: while the runner stands still before running (``calibrate_stand``), the mean
acceleration is the body's "up" in its standing posture and the mean gyro the gyro's bias.
Lean is then measured against that posture (quality ``ok``); without a standing phase the
declared mount is the reference and lean is ``uncalibrated``. A strap without a gyro (a Polar
H10) low-passes the acceleration instead: its lean is biased by the trunk's within-stride pitch
swing (DESIGN §3.3), so it is ``relative``, and rotation cannot be measured at all.
"""

from __future__ import annotations

from collections import deque
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
    step_oscillation_m,
    stride_rotation_deg,
)
from monitor.estimators.orientation import OrientationFilter, mount_matrix, rotate, rotate_inverse
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
#: Lean variability: spread of stride-averaged lean over this long (DESIGN §1: 30 s) ...
LEAN_VARIABILITY_WINDOW_S: Final = 30.0
#: ... from at least this many strides (two steps each, one starting at every touchdown).
LEAN_VARIABILITY_MIN_STRIDES: Final = 12

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


# Columns of the processed-sample buffer.
_VERTICAL, _AZIMUTH, _GRAVITY, _HORIZONTAL = 0, 1, slice(2, 5), slice(5, 7)
_COLUMNS = 7


class _Buffer:
    """The last ``BUFFER_S`` of processed samples: times and a (n, 7) array per chunk."""

    def __init__(self) -> None:
        self.chunks: deque[tuple[FloatArray, FloatArray]] = deque()

    def append(self, t_s: FloatArray, columns: FloatArray) -> None:
        self.chunks.append((t_s, columns))
        while self.chunks and self.chunks[0][0][-1] < t_s[-1] - BUFFER_S:
            self.chunks.popleft()

    def between(self, start_s: float, end_s: float) -> tuple[FloatArray, FloatArray]:
        """Samples with ``start_s <= t <= end_s`` (concatenated over chunks)."""
        parts = [c for c in self.chunks if c[0][-1] >= start_s and c[0][0] <= end_s]
        if not parts:
            return np.empty(0), np.empty((0, _COLUMNS))
        t = np.concatenate([p[0] for p in parts])
        keep = (t >= start_s) & (t <= end_s)
        return t[keep], np.concatenate([p[1] for p in parts])[keep]


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
        self.placement = placement or "chest"
        self.measures_lean = self.placement != "pelvis"
        self.window_s = window_s
        self._pending: list[tuple[FloatArray, FloatArray, FloatArray | None]] = []
        self._orientation = OrientationFilter(sample_rate_hz)
        self._has_gyro: bool | None = None
        self._acc_state: FloatArray | None = None  # accelerometer-only low-pass state (3, 1)
        self._contacts = ContactDetector()
        self._buffer = _Buffer()
        self._steps: deque[_Step] = deque()
        self._stride_leans: deque[tuple[float, float]] = deque()
        self._touchdowns: deque[Contact] = deque(maxlen=3)
        self._last_t_s: float | None = None
        self._first_t_s: float | None = None
        self._azimuth_offset_deg = 0.0
        self._last_azimuth_deg: float | None = None
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
        gap_before = self._last_t_s is not None and t_s[0] - self._last_t_s > BRIDGE_GAP_S
        if gap_before:
            self._contacts.reset()
            self._touchdowns.clear()
        self._last_t_s = float(t_s[-1])
        columns = np.empty((t_s.size, _COLUMNS))
        if self._has_gyro and has_gyro:
            gyro = np.concatenate([g for g in gyros if g is not None]) @ self.body_from_sensor.T
            self._calibrate(t_s, acc, gyro)
            quat = self._orientation.update(gyro, acc)
            acc_world = rotate(quat, acc)
            columns[:, _VERTICAL] = acc_world[:, 2]
            columns[:, _HORIZONTAL] = acc_world[:, :2]
            columns[:, _GRAVITY] = rotate_inverse(quat, np.broadcast_to(UP, acc.shape).copy())
            forward_w = rotate(quat, np.broadcast_to(self.forward_ref, acc.shape).copy())
            azimuth = np.degrees(np.arctan2(forward_w[:, 1], forward_w[:, 0]))
            columns[:, _AZIMUTH] = self._unwrap(azimuth)
        else:
            self._calibrate(t_s, acc, None)
            gravity = self._acc_only_gravity(acc)
            columns[:, _GRAVITY] = gravity
            columns[:, _VERTICAL] = np.einsum("ij,ij->i", acc, gravity)
            columns[:, _HORIZONTAL] = np.nan
            columns[:, _AZIMUTH] = np.nan
        self._buffer.append(t_s, columns)
        for contact in self._contacts.push(t_s, columns[:, _VERTICAL]):
            self._on_contact(contact)

    def _unwrap(self, azimuth_deg: FloatArray) -> FloatArray:
        """Continuous azimuth across blocks (no jumps at ±180°)."""
        if self._last_azimuth_deg is not None:
            azimuth_deg = np.concatenate(([self._last_azimuth_deg], azimuth_deg))
            out = np.degrees(np.unwrap(np.radians(azimuth_deg)))[1:]
            out += self._azimuth_offset_deg
            # np.unwrap starts from the previous (raw) value: carry the accumulated offset.
        else:
            out = np.degrees(np.unwrap(np.radians(azimuth_deg)))
        self._last_azimuth_deg = float(azimuth_deg[-1])
        self._azimuth_offset_deg = float(out[-1] - self._last_azimuth_deg)
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
        if end - start > MAX_STEP_S:
            return
        t, columns = self._buffer.between(start, end)
        oscillation = step_oscillation_m(t, (columns[:, _VERTICAL] - 1.0) * G_MPS2)
        rotation = sway = lean = None
        stride_start = self._touchdowns[0].touchdown_s
        if len(self._touchdowns) == 3 and end - stride_start <= 2 * MAX_STEP_S:
            ts, stride = self._buffer.between(stride_start, end)
            if self.measures_lean and ts.size >= 8:
                lean = float(_time_mean(ts, self._lean_deg(stride[:, _GRAVITY])))
                self._stride_leans.append((end, lean))
            if self._has_gyro:
                rotation = stride_rotation_deg(ts, stride[:, _AZIMUTH])
                sway = _stride_sway_m(ts, stride)
        self._steps.append(
            _Step(end, start, previous.duration_s, oscillation, rotation, sway, lean)
        )
        while self._steps and self._steps[0].touchdown_s < end - BUFFER_S:
            self._steps.popleft()
        while self._stride_leans and self._stride_leans[0][0] < end - LEAN_VARIABILITY_WINDOW_S:
            self._stride_leans.popleft()

    def _lean_deg(self, gravity: FloatArray) -> FloatArray:
        """Forward inclination against the reference posture, per sample."""
        out: FloatArray = np.degrees(np.arctan2(-gravity @ self.forward_ref, gravity @ self.up_ref))
        return out

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
        t, columns = self._buffer.between(start, end)
        if t.size < 8:
            return MetricValue(None, quality)
        return MetricValue(_time_mean(t, self._lean_deg(columns[:, _GRAVITY])), quality)

    def _lean_variability(self, t_s: float) -> MetricValue:
        """Standard deviation of stride-averaged lean over the last 30 s (a relative measure:
        a constant lean offset does not change it, so it is ``ok`` calibrated or not)."""
        leans = [lean for end, lean in self._stride_leans if end > t_s - LEAN_VARIABILITY_WINDOW_S]
        if len(leans) < LEAN_VARIABILITY_MIN_STRIDES:
            return MetricValue(None, "warming_up" if self._running else "ok")
        return MetricValue(float(np.std(leans, ddof=1)), "ok")


def _mean_of(values: list[float | None], scale: float) -> MetricValue:
    present = [v for v in values if v is not None]
    if not present:
        return MetricValue(None, "ok")
    return MetricValue(scale * sum(present) / len(present), "ok")


def _time_mean(t_s: FloatArray, x: FloatArray) -> float:
    span = t_s[-1] - t_s[0]
    if span <= 0:
        return float(x.mean())
    return float(np.sum(0.5 * (x[1:] + x[:-1]) * np.diff(t_s)) / span)


def _stride_sway_m(t_s: FloatArray, stride: FloatArray) -> float | None:
    """Peak-to-peak side-to-side displacement over a stride, across the running direction.

    The running direction is the straight line of the stride's azimuth (the trunk's own yaw
    oscillates around it); the horizontal acceleration across it, double-integrated with the
    same drift removal as the vertical, is the sway.
    """
    azimuth = stride[:, _AZIMUTH]
    span = t_s[-1] - t_s[0]
    if t_s.size < 8 or span <= 0 or np.isnan(azimuth).any():
        return None
    heading = np.radians(azimuth[0] + (azimuth[-1] - azimuth[0]) * (t_s - t_s[0]) / span)
    horizontal = stride[:, _HORIZONTAL]
    lateral_g = -horizontal[:, 0] * np.sin(heading) + horizontal[:, 1] * np.cos(heading)
    return step_oscillation_m(t_s, lateral_g * G_MPS2)
