"""The trunk estimator's per-sample and per-step numerics, compiled (see :mod:`.jit`).

Pure functions over numpy arrays. The sample buffer they read is one (n, ``N_COLUMNS``) array
whose columns are named below: what each sample measures (vertical specific force, azimuth,
lean, lateral specific force) and the running time integrals derived from them, so a step's or
a stride's figure is a handful of operations on a slice (the definitions are in :mod:`.gait`).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from monitor.estimators.gait import G_MPS2, FloatArray
from sensors.jit import jit

# Columns of the sample buffer.
VERTICAL_G: Final = 0  # world-vertical specific force, g
AZIMUTH_DEG: Final = 1  # where the body's forward axis points, unwrapped
LEAN_DEG: Final = 2  # forward inclination against the reference posture
LATERAL_G: Final = 3  # specific force across the running direction, g
# Running trapezoid integrals (their constants cancel in every use):
VERTICAL_V: Final = 4  # ∫ vertical acceleration (gravity removed), m/s
LATERAL_V: Final = 5  # ∫ lateral acceleration, m/s
LEAN_INT: Final = 6  # ∫ lean, deg·s
VERTICAL_X: Final = 7  # ∫∫ vertical acceleration, m
LATERAL_X: Final = 8  # ∫∫ lateral acceleration, m
N_COLUMNS: Final = 9

_RAD_TO_DEG: Final = 180.0 / math.pi
_DEG_TO_RAD: Final = math.pi / 180.0


@jit
def body_columns(
    quat_wxyz: FloatArray,
    acc_body_g: FloatArray,
    forward_ref: FloatArray,
    up_ref: FloatArray,
    heading_alpha: float,
    state: FloatArray,
    out: FloatArray,
) -> None:
    """Fill the measured columns of ``out`` (n, ``N_COLUMNS``) from VQF's quaternions.

    ``state`` carries [last unwrapped azimuth, smoothed heading] across blocks (NaN before the
    first sample). The heading is a first-order low-pass of the azimuth (the trunk's own yaw
    swings around the running direction every stride); lateral force is taken across it.
    """
    last_azimuth, heading = state[0], state[1]
    for i in range(quat_wxyz.shape[0]):
        w, x, y, z = quat_wxyz[i, 0], quat_wxyz[i, 1], quat_wxyz[i, 2], quat_wxyz[i, 3]
        xx, yy, zz = x * x, y * y, z * z
        xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
        # Rotation matrix body -> world (rows: world x, y, z in body axes).
        r00, r01, r02 = 1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy)
        r10, r11, r12 = 2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx)
        r20, r21, r22 = 2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy)
        ax, ay, az = acc_body_g[i, 0], acc_body_g[i, 1], acc_body_g[i, 2]
        world_x = r00 * ax + r01 * ay + r02 * az
        world_y = r10 * ax + r11 * ay + r12 * az
        out[i, VERTICAL_G] = r20 * ax + r21 * ay + r22 * az
        # Row 2 is the world's up in body axes: its tilt towards the reference forward is lean.
        lean_forward = r20 * forward_ref[0] + r21 * forward_ref[1] + r22 * forward_ref[2]
        lean_up = r20 * up_ref[0] + r21 * up_ref[1] + r22 * up_ref[2]
        out[i, LEAN_DEG] = math.atan2(-lean_forward, lean_up) * _RAD_TO_DEG
        fx = r00 * forward_ref[0] + r01 * forward_ref[1] + r02 * forward_ref[2]
        fy = r10 * forward_ref[0] + r11 * forward_ref[1] + r12 * forward_ref[2]
        azimuth = math.atan2(fy, fx) * _RAD_TO_DEG
        if math.isnan(last_azimuth):
            last_azimuth = azimuth
            heading = azimuth
        else:
            step = azimuth - last_azimuth
            step -= 360.0 * np.rint(step / 360.0)
            last_azimuth += step
            heading = heading_alpha * last_azimuth + (1.0 - heading_alpha) * heading
        out[i, AZIMUTH_DEG] = last_azimuth
        h = heading * _DEG_TO_RAD
        out[i, LATERAL_G] = -world_x * math.sin(h) + world_y * math.cos(h)
    state[0], state[1] = last_azimuth, heading


@jit
def integrate(t_s: FloatArray, data: FloatArray, start: int, stop: int) -> float:
    """Fill the integral columns of ``data[start:stop]`` continuing from row ``start - 1``
    (from zero when ``start`` is 0); returns the longest sample interval seen."""
    longest = 0.0
    first = start
    if start == 0:
        for c in range(VERTICAL_V, N_COLUMNS):
            data[0, c] = 0.0
        first = 1
    for i in range(first, stop):
        dt = t_s[i] - t_s[i - 1]
        longest = max(longest, dt)
        half = 0.5 * dt
        prev, row = data[i - 1], data[i]
        a_prev, a_now = (prev[VERTICAL_G] - 1.0) * G_MPS2, (row[VERTICAL_G] - 1.0) * G_MPS2
        row[VERTICAL_V] = prev[VERTICAL_V] + (a_now + a_prev) * half
        l_prev, l_now = prev[LATERAL_G] * G_MPS2, row[LATERAL_G] * G_MPS2
        row[LATERAL_V] = prev[LATERAL_V] + (l_now + l_prev) * half
        row[LEAN_INT] = prev[LEAN_INT] + (row[LEAN_DEG] + prev[LEAN_DEG]) * half
        row[VERTICAL_X] = prev[VERTICAL_X] + (row[VERTICAL_V] + prev[VERTICAL_V]) * half
        row[LATERAL_X] = prev[LATERAL_X] + (row[LATERAL_V] + prev[LATERAL_V]) * half
    return longest


@jit
def nearest_index(t_s: FloatArray, time_s: float) -> int:
    """The sample nearest to ``time_s`` (``t_s`` increasing, non-empty)."""
    i = int(np.searchsorted(t_s, time_s))
    if i >= t_s.size:
        return t_s.size - 1
    if i > 0 and time_s - t_s[i - 1] < t_s[i] - time_s:
        return i - 1
    return i


@jit
def _double_integral_ptp(t_s: FloatArray, data: FloatArray, i0: int, i1: int, axis: int) -> float:
    """Peak-to-peak displacement over samples ``i0..i1`` that start and end at the same place:
    the acceleration's mean is removed and the velocity chosen so the ends meet."""
    v, x = (VERTICAL_V, VERTICAL_X) if axis == 0 else (LATERAL_V, LATERAL_X)
    span = t_s[i1] - t_s[i0]
    mean_acc = (data[i1, v] - data[i0, v]) / span
    v0, x0 = data[i0, v], data[i0, x]
    end = data[i1, x] - x0 - (v0 + 0.5 * mean_acc * span) * span
    lo, hi = math.inf, -math.inf
    for i in range(i0, i1 + 1):
        d = t_s[i] - t_s[i0]
        pos = data[i, x] - x0 - (v0 + 0.5 * mean_acc * d) * d - end * d / span
        lo, hi = min(lo, pos), max(hi, pos)
    return hi - lo


@jit
def _chord_ptp(t_s: FloatArray, data: FloatArray, i0: int, i1: int, column: int) -> float:
    """Peak-to-peak of a column over ``i0..i1`` after removing the straight line between its
    ends (a bend's turn, a gyro bias)."""
    span = t_s[i1] - t_s[i0]
    x0 = data[i0, column]
    slope = (data[i1, column] - x0) / span
    lo, hi = math.inf, -math.inf
    for i in range(i0, i1 + 1):
        rel = data[i, column] - slope * (t_s[i] - t_s[i0])
        lo, hi = min(lo, rel), max(hi, rel)
    return hi - lo


@jit
def mean_lean(t_s: FloatArray, data: FloatArray, start_s: float, end_s: float, min_n: int) -> float:
    """Time mean of the lean between the samples nearest ``start_s`` and ``end_s``; NaN when
    fewer than ``min_n`` intervals lie between them."""
    i0, i1 = nearest_index(t_s, start_s), nearest_index(t_s, end_s)
    if i1 - i0 < min_n:
        return math.nan
    mean: float = (data[i1, LEAN_INT] - data[i0, LEAN_INT]) / (t_s[i1] - t_s[i0])
    return mean


@jit
def step_figures(
    t_s: FloatArray,
    data: FloatArray,
    start_s: float,
    end_s: float,
    stride_start_s: float,
    with_lean: bool,
    with_gyro: bool,
    min_n: int,
    out: FloatArray,
) -> bool:
    """One step (``start_s`` to ``end_s``, touchdown to touchdown) and, when ``stride_start_s``
    is not NaN, the stride of two steps ending with it: False when the step has fewer than
    ``min_n`` sample intervals. ``out`` gets [oscillation m, Weinberg feature, stride lean deg,
    stride rotation deg, stride sway m], NaN where not measured."""
    i0, i1 = nearest_index(t_s, start_s), nearest_index(t_s, end_s)
    if i1 - i0 < min_n:
        return False
    out[0] = _double_integral_ptp(t_s, data, i0, i1, 0)
    lo, hi = math.inf, -math.inf
    for i in range(i0, i1 + 1):
        lo, hi = min(lo, data[i, VERTICAL_G]), max(hi, data[i, VERTICAL_G])
    # Weinberg's step-length feature: (peak-to-peak vertical acceleration, m/s²)^¼.
    out[1] = (G_MPS2 * (hi - lo)) ** 0.25
    out[2] = out[3] = out[4] = math.nan
    if not math.isnan(stride_start_s):
        s0 = nearest_index(t_s, stride_start_s)
        # Lean changes slowly: a bridged gap in a stride barely moves its mean.
        if with_lean:
            out[2] = (data[i1, LEAN_INT] - data[s0, LEAN_INT]) / (t_s[i1] - t_s[s0])
        if with_gyro:
            out[3] = _chord_ptp(t_s, data, s0, i1, AZIMUTH_DEG)
            out[4] = _double_integral_ptp(t_s, data, s0, i1, 1)
    return True


@jit
def detrended_std(t: FloatArray, x: FloatArray) -> float:
    """Standard deviation of ``x`` around its least-squares line over ``t`` (n - 2 dof)."""
    n = t.size
    t_mean, x_mean = t.mean(), x.mean()
    stt = stx = 0.0
    for i in range(n):
        tc = t[i] - t_mean
        stt += tc * tc
        stx += tc * (x[i] - x_mean)
    slope = stx / stt if stt > 0 else 0.0
    sum_sq = 0.0
    for i in range(n):
        residual = (x[i] - x_mean) - slope * (t[i] - t_mean)
        sum_sq += residual * residual
    return math.sqrt(sum_sq / (n - 2))
