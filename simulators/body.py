"""The virtual runner's trunk: its 3-D motion, from which the IMU readings and truth follow.

Frames. The *heading frame* turns with the running direction: forward, left, up (right-handed),
the world's vertical as up. A *segment* (thorax or pelvis) is oriented relative to it by ZYX
angles: yaw about up (positive to the left), pitch about left (positive = forward lean: the
forward axis dips), roll about forward (positive = left side up). Standing upright the segment
frame coincides with the heading frame, so lean is pitch and the standing posture is zero.

Vertical motion, step by step. A step runs from one flight apex to the next: half a flight,
the stance, half a flight. In flight the trunk is ballistic (specific force 0 g); in stance a
force impulse of exactly ``g * step time`` (so the mean vertical specific force over a step is
1 g and nothing drifts) is spread over the contact time with a symmetric shape: a small
pedestal (the force jumps up at touchdown, so contact is crisp) plus a bump chosen between flat
and sharply peaked to give the step its target vertical oscillation. Symmetry about mid-stance
brings velocity and height back to exactly zero at every apex: closed-form double integrals
give the displacement, which truth uses. Fore-aft, stance brakes then propels (zero net per
step). Steps below ~130 steps/min are scaled down by an *engagement* factor (0 below 80
steps/min: standing still, specific force exactly 1 g up, no rotation).

Everything else (yaw at stride frequency with harmonics, pitch wobble at step frequency, roll
and side-to-side sway at stride frequency, heading) is a smooth function of time; angular rates
and the sway's acceleration are its central differences. Terms of order heading rate times
oscillation velocity (under 3 mg on a 400 m track bend) are neglected; the centripetal
acceleration of running round a bend is included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from scipy.interpolate import PchipInterpolator

from simulators.runner import GRID_HZ, RunnerTrack
from simulators.scenario import Scenario
from simulators.signals import (
    FloatArray,
    ar1,
    central_difference,
    cumulative_integral,
    level_times,
    smoothstep,
)

G_MPS2: Final = 9.80665

Segment = Literal["thorax", "pelvis"]

# --- stance force shapes --------------------------------------------------------------------
# Over the stance, x = (time from mid-stance) / contact time runs over [-1/2, 1/2]; a shape is
# sum_j c_j cos(beta_j x), normalised to a mean of 1 over the stance.
_BETAS: Final = np.array([0.0, math.pi, 2 * math.pi, 4 * math.pi, 6 * math.pi, 8 * math.pi])
#: Flat, sin, sin², sin⁴ and sin⁸ of the stance phase: ever more peaked.
_BASE_SHAPES: Final = np.array(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, math.pi / 2, 0.0, 0.0, 0.0, 0.0],
        [1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        [1.0, 0.0, 4 / 3, 1 / 3, 0.0, 0.0],
        [1.0, 0.0, 8 / 5, 4 / 5, 8 / 35, 1 / 35],
    ]
)
#: Share of the stance force that is a flat pedestal: the force jumps at touchdown, as real
#: ground reaction forces do (the sacral data set's force plate: about 1 body weight within
#: 20 ms of contact), so a contact's edges are crisp at any threshold up to ~0.4 g.
STANCE_PEDESTAL: Final = 0.3


def _first_moments(shapes: FloatArray) -> FloatArray:
    """``∫_0^½ x S(x) dx`` of each shape: what sets the vertical oscillation (see vo_m)."""
    b = _BETAS[1:]
    moment = np.concatenate(([1.0 / 8.0], np.sin(b / 2) / (2 * b) + (np.cos(b / 2) - 1) / b**2))
    out: FloatArray = shapes @ moment
    return out


_BASE_MOMENTS: Final = _first_moments(_BASE_SHAPES)  # decreasing: flat 1/8 ... sin⁸ 0.043


def vertical_oscillation_m(
    step_s: FloatArray, contact_s: FloatArray, moment: FloatArray
) -> FloatArray:
    """Apex-to-mid-stance drop of a step: ``g T (T/8 - Tc m)`` for a shape of first moment m."""
    out: FloatArray = G_MPS2 * step_s * (step_s / 8.0 - contact_s * moment)
    return out


def stance_shape(step_s: FloatArray, contact_s: FloatArray, target_m: FloatArray) -> FloatArray:
    """Shape coefficients (n, 6) that give each step its target vertical oscillation.

    Clipped to the flattest and the most peaked shape: the truth reports what is reached.
    """
    needed = (step_s / 8.0 - target_m / (G_MPS2 * step_s)) / contact_s
    bump = (needed - STANCE_PEDESTAL / 8.0) / (1.0 - STANCE_PEDESTAL)
    bump = np.clip(bump, _BASE_MOMENTS[-1], _BASE_MOMENTS[0])
    # Moments decrease along the chain; find the pair that brackets each step's moment.
    j = np.clip(np.searchsorted(-_BASE_MOMENTS, -bump, side="right") - 1, 0, len(_BASE_MOMENTS) - 2)
    w = (_BASE_MOMENTS[j] - bump) / (_BASE_MOMENTS[j] - _BASE_MOMENTS[j + 1])
    shape = (1.0 - w)[:, None] * _BASE_SHAPES[j] + w[:, None] * _BASE_SHAPES[j + 1]
    out: FloatArray = (1.0 - STANCE_PEDESTAL) * shape
    out[:, 0] += STANCE_PEDESTAL
    return out


# --- the plan -------------------------------------------------------------------------------

#: Engagement: 0 (standing) at and below this cadence, 1 (running with flight) from +50.
ENGAGED_FROM_SPM: Final = 80.0
ENGAGED_SPAN_SPM: Final = 50.0
#: Peak fore-aft specific force in stance relative to the mean stance force.
BRAKING_REL: Final = 0.18
#: Peak-to-peak within-step pitch wobble: the trunk flexes under the stance load.
PITCH_WOBBLE_PP_DEG: Final = 3.0
#: Roll each way per cm of lateral sway.
ROLL_DEG_PER_SWAY_CM: Final = 0.75
#: Stride-to-stride wander has a time constant of about a stride.
_STRIDE_TAU_S: Final = 0.7


def engagement_of(cadence_spm: FloatArray) -> FloatArray:
    """How much the body runs: 0 standing (≤ 80 steps/min), 1 running with flight (≥ 130)."""
    return smoothstep((cadence_spm - ENGAGED_FROM_SPM) / ENGAGED_SPAN_SPM)


#: An AR(1) averaged over its own time constant keeps this share of its std.
_STRIDE_AVERAGE_KEEPS: Final = math.sqrt(2.0 * math.exp(-1.0))

# 400 m track, lane 1: two straights and two bends of radius 36.8 m, turning left.
_TRACK_STRAIGHT_M: Final = 84.39
_TRACK_BEND_M: Final = 115.61


def _yaw_shape(stride_rad: FloatArray) -> FloatArray:
    x = stride_rad - 1.2
    out: FloatArray = -(np.cos(x) + 0.12 * np.cos(3 * x) + 0.06 * np.sin(2 * stride_rad))
    return out


_YAW_SHAPE_PP: Final = float(np.ptp(_yaw_shape(np.linspace(0.0, 2 * math.pi, 8192))))

# Slow channels, interpolated together: index -> meaning.
_LEAN, _ROT_PP, _SWAY_PP, _HEADING, _SPEED, _PHASE, _ENGAGE = range(7)


@dataclass(frozen=True, slots=True)
class StepPlan:
    """Per step k: it runs from ``apex_s[k]`` to ``apex_s[k + 1]``."""

    apex_s: FloatArray  # (n + 1,)
    contact_s: FloatArray  # (n,)
    engagement: FloatArray  # (n,)
    shape: FloatArray  # (n, 6) stance force shape coefficients
    braking_rel: FloatArray  # (n,)

    @property
    def n_steps(self) -> int:
        return int(self.contact_s.size)

    @property
    def step_s(self) -> FloatArray:
        out: FloatArray = np.diff(self.apex_s)
        return out


@dataclass(frozen=True, slots=True)
class BodyPlan:
    """The trunk's motion, ready to be evaluated at any times (see :func:`evaluate`)."""

    steps: StepPlan
    slow: PchipInterpolator  # channels _LEAN.._ENGAGE over time
    duration_s: float


def _course_heading_rad(course: str, distance_m: FloatArray) -> FloatArray:
    if course != "track_400m":
        return np.zeros(distance_m.size)
    laps, pos = np.divmod(distance_m, 400.0)
    s1, b1 = _TRACK_STRAIGHT_M, _TRACK_STRAIGHT_M + _TRACK_BEND_M
    s2 = b1 + _TRACK_STRAIGHT_M
    half_turns = np.clip((pos - s1) / _TRACK_BEND_M, 0.0, 1.0) + np.clip(
        (pos - s2) / _TRACK_BEND_M, 0.0, 1.0
    )
    out: FloatArray = math.pi * (2.0 * laps + half_turns)
    return out


def plan_body(scenario: Scenario, track: RunnerTrack, rng: np.random.Generator) -> BodyPlan:
    """The trunk's motion for a track, with a real runner's wander; deterministic per rng."""
    t = track.t_s
    n = t.size
    cadence = track.cadence_spm
    phase = cumulative_integral(cadence / 60.0, GRID_HZ)
    engagement = engagement_of(cadence)

    def target(name: str) -> FloatArray:
        return scenario.target(name, t)

    # Slow wander (tens of seconds) and stride-to-stride variability (about a stride).
    lean = (
        target("trunk_lean_deg")
        + ar1(rng, n, 0.4, 60.0, GRID_HZ)
        + target("lean_variability_deg")
        / _STRIDE_AVERAGE_KEEPS
        * ar1(rng, n, 1.0, _STRIDE_TAU_S, GRID_HZ)
    )
    rotation_pp = target("trunk_rotation_deg") * (
        1.0 + ar1(rng, n, 0.04, 30.0, GRID_HZ) + ar1(rng, n, 0.05, _STRIDE_TAU_S, GRID_HZ)
    )
    sway_pp_m = (
        target("lateral_sway_cm")
        / 100.0
        * (1.0 + ar1(rng, n, 0.05, 30.0, GRID_HZ) + ar1(rng, n, 0.06, _STRIDE_TAU_S, GRID_HZ))
    )
    heading = np.deg2rad(cumulative_integral(target("heading_rate_dps"), GRID_HZ))
    heading = heading + _course_heading_rad(scenario.course, track.distance_m)
    slow_values = np.column_stack(
        (
            lean,
            np.clip(rotation_pp, 0.0, None),
            np.clip(sway_pp_m, 0.0, None),
            heading,
            track.speed_mps,
            phase,
            engagement,
        )
    )
    slow = PchipInterpolator(t, slow_values, axis=0, extrapolate=True)

    # Steps: apexes where the step phase passes whole numbers.
    end_rate = float(cadence[-1]) / 60.0
    levels = np.arange(0.0, math.floor(phase[-1]) + 2.0)
    apex = level_times(phase, t, levels, end_rate)
    apex = apex[np.isfinite(apex)]
    step_s = np.diff(apex)
    mid = apex[:-1] + step_s / 2.0
    m = step_s.size
    own_cadence = 60.0 / np.maximum(step_s, 1e-9)
    e = np.minimum(
        np.interp(mid, t, engagement),
        engagement_of(own_cadence),
    )
    contact_slow = 1.0 + ar1(rng, n, 0.015, 30.0, GRID_HZ)
    contact_s = (
        np.interp(mid, t, target("ground_contact_ms") * contact_slow)
        / 1000.0
        * (1.0 + rng.normal(0.0, 0.015, m))
    )
    contact_s = np.clip(contact_s, 0.3 * step_s, 0.9 * step_s)
    vo_slow = 1.0 + ar1(rng, n, 0.02, 30.0, GRID_HZ)
    vo_m = (
        np.interp(mid, t, target("vertical_oscillation_cm") * vo_slow)
        / 100.0
        * (1.0 + rng.normal(0.0, 0.03, m))
    )
    steps = StepPlan(
        apex_s=apex,
        contact_s=contact_s,
        engagement=e,
        shape=stance_shape(step_s, contact_s, vo_m),
        braking_rel=np.full(m, BRAKING_REL),
    )
    return BodyPlan(steps=steps, slow=slow, duration_s=float(t[-1]))


# --- evaluation -----------------------------------------------------------------------------


def _stance_integrals(
    shape: FloatArray, s_abs: FloatArray, contact_s: FloatArray, ratio: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Vertical velocity and height at ``s_abs`` ≤ Tc/2 after mid-stance (both 0 there).

    The double integral of ``g (T/Tc) S(s/Tc) - g`` in closed form, per cosine term.
    """
    bx = _BETAS[1:] * (s_abs / contact_s)[:, None]
    inv_b = 1.0 / _BETAS[1:]
    sin_sum = np.sum(shape[:, 1:] * np.sin(bx) * inv_b, axis=1)
    vers_sum = np.sum(shape[:, 1:] * (1.0 - np.cos(bx)) * inv_b**2, axis=1)
    c0 = shape[:, 0]
    v = G_MPS2 * (ratio * (c0 * s_abs + contact_s * sin_sum) - s_abs)
    z = G_MPS2 * (ratio * (c0 * s_abs**2 / 2.0 + contact_s**2 * vers_sum) - s_abs**2 / 2.0)
    return v, z


def _apex_height_m(steps_s: FloatArray, contact_s: FloatArray, shape: FloatArray) -> FloatArray:
    """Height of each step's apex above its mid-stance, at full engagement."""
    half = contact_s / 2.0
    v_off, z_off = _stance_integrals(shape, half, contact_s, steps_s / contact_s)
    flight_half = steps_s / 2.0 - half
    out: FloatArray = z_off + v_off * flight_half - G_MPS2 * flight_half**2 / 2.0
    return out


@dataclass(frozen=True, slots=True)
class VerticalMotion:
    """The sensor point's vertical motion at some times, and its stance acceleration fore-aft.

    ``height_m`` is relative to the flight apex (0 at every apex, negative below).
    """

    accel_mps2: FloatArray
    velocity_mps: FloatArray
    height_m: FloatArray
    braking_mps2: FloatArray


def vertical_motion(steps: StepPlan, t_s: FloatArray) -> VerticalMotion:
    """The closed-form vertical motion (and fore-aft stance force) at the times ``t_s``."""
    k = np.searchsorted(steps.apex_s, t_s, side="right") - 1
    valid = (k >= 0) & (k < steps.n_steps)
    if steps.n_steps == 0 or not valid.any():
        zeros = np.zeros(t_s.size)
        return VerticalMotion(zeros, zeros, zeros, zeros)
    kk = np.where(valid, k, 0)
    step = steps.step_s[kk]
    tc = steps.contact_s[kk]
    e = np.where(valid, steps.engagement[kk], 0.0)
    shape = steps.shape[kk]
    ratio = step / tc
    s = t_s - steps.apex_s[kk] - step / 2.0  # time from mid-stance
    s_abs = np.abs(s)
    in_stance = np.minimum(s_abs, tc / 2.0)
    flight = s_abs - in_stance
    v_c, z_c = _stance_integrals(shape, in_stance, tc, ratio)
    v_abs = v_c - G_MPS2 * flight
    z = z_c + v_c * flight - G_MPS2 * flight**2 / 2.0
    apex = _apex_height_m(step, tc, shape)
    stance = flight == 0.0
    x = s / tc
    force_rel = ratio * np.sum(shape * np.cos(_BETAS * x[:, None]), axis=1)
    accel = np.where(stance, G_MPS2 * (force_rel - 1.0), -G_MPS2)
    braking = np.where(
        stance, G_MPS2 * steps.braking_rel[kk] * ratio * np.sin(2.0 * math.pi * x), 0.0
    )
    return VerticalMotion(
        accel_mps2=e * accel,
        velocity_mps=e * np.sign(s) * v_abs,
        height_m=e * (z - apex),
        braking_mps2=e * braking,
    )


@dataclass(frozen=True, slots=True)
class SegmentMotion:
    """A body segment at some times: its kinematics in the heading frame.

    ``accel_mps2``: the sensor point's acceleration (forward, left, up) in the heading frame;
    ``angles_rad``: (yaw relative to the heading, pitch, roll), ZYX; ``heading_rad``: the
    running direction (unwrapped); ``rates_rps``: angular velocity in the segment's own frame
    (what a gyro aligned with the segment reads); ``height_m``: below the flight apex.
    """

    t_s: FloatArray
    accel_mps2: FloatArray
    angles_rad: FloatArray
    heading_rad: FloatArray
    rates_rps: FloatArray
    height_m: FloatArray

    @property
    def azimuth_rad(self) -> FloatArray:
        """Where the segment's forward axis points, about the vertical (heading + yaw)."""
        out: FloatArray = self.heading_rad + self.angles_rad[:, 0]
        return out

    def rotation(self) -> FloatArray:
        """(n, 3, 3) rotation from the segment frame to the heading frame: Rz(yaw) Ry Rx."""
        return zyx_matrix(self.angles_rad)

    def specific_force_mps2(self) -> FloatArray:
        """(n, 3) specific force in the segment frame: acceleration minus gravity, rotated."""
        f_heading = self.accel_mps2 + np.array([0.0, 0.0, G_MPS2])
        out: FloatArray = np.einsum("nji,nj->ni", self.rotation(), f_heading)
        return out


def zyx_matrix(angles_rad: FloatArray) -> FloatArray:
    """(n, 3, 3) ``Rz(a0) Ry(a1) Rx(a2)`` for rows of (yaw, pitch, roll)."""
    cy, sy = np.cos(angles_rad[:, 0]), np.sin(angles_rad[:, 0])
    cp, sp = np.cos(angles_rad[:, 1]), np.sin(angles_rad[:, 1])
    cr, sr = np.cos(angles_rad[:, 2]), np.sin(angles_rad[:, 2])
    out = np.empty((angles_rad.shape[0], 3, 3))
    out[:, 0, 0] = cy * cp
    out[:, 0, 1] = cy * sp * sr - sy * cr
    out[:, 0, 2] = cy * sp * cr + sy * sr
    out[:, 1, 0] = sy * cp
    out[:, 1, 1] = sy * sp * sr + cy * cr
    out[:, 1, 2] = sy * sp * cr - cy * sr
    out[:, 2, 0] = -sp
    out[:, 2, 1] = cp * sr
    out[:, 2, 2] = cp * cr
    return out


def body_rates(angles_rad: FloatArray, angle_rates: FloatArray) -> FloatArray:
    """Angular velocity in the body frame from ZYX angles (yaw, pitch, roll) and their rates."""
    _, pitch, roll = angles_rad.T
    d_yaw, d_pitch, d_roll = angle_rates.T
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    return np.column_stack(
        (
            d_roll - d_yaw * sp,
            d_pitch * cr + d_yaw * cp * sr,
            -d_pitch * sr + d_yaw * cp * cr,
        )
    )


def _smooth_channels(plan: BodyPlan, segment: Segment, t_s: FloatArray) -> FloatArray:
    """(n, 5): world azimuth of the segment, pitch, roll (rad), lateral sway (m), heading."""
    slow = plan.slow(t_s)
    e = np.clip(slow[:, _ENGAGE], 0.0, 1.0)
    step_phase = slow[:, _PHASE]
    stride = math.pi * step_phase  # 2π per stride, 0 at the apex before a right-foot step
    yaw = e * np.deg2rad(slow[:, _ROT_PP]) / _YAW_SHAPE_PP * _yaw_shape(stride)
    wobble = np.deg2rad(PITCH_WOBBLE_PP_DEG / 2.0) * np.sin(
        2.0 * math.pi * step_phase - 0.7 * math.pi
    )
    roll = np.deg2rad(ROLL_DEG_PER_SWAY_CM * 100.0 * slow[:, _SWAY_PP]) * np.sin(stride)
    if segment == "thorax":
        pitch = e * (np.deg2rad(slow[:, _LEAN]) + wobble)
    else:  # the pelvis counter-rotates, tilts with the load but carries no lean
        yaw, pitch, roll = -yaw, e * wobble, -roll
    sway = -e * slow[:, _SWAY_PP] / 2.0 * np.sin(stride)
    heading = slow[:, _HEADING]
    return np.column_stack((heading + yaw, pitch, e * roll, sway, heading))


def lateral_sway_m(plan: BodyPlan, t_s: FloatArray, segment: Segment) -> FloatArray:
    """The segment's side-to-side displacement across the running direction, m."""
    out: FloatArray = _smooth_channels(plan, segment, np.asarray(t_s, dtype=np.float64))[:, 3]
    return out


def segment_orientation(plan: BodyPlan, t_s: FloatArray, segment: Segment) -> FloatArray:
    """(n, 3): the segment's world azimuth (heading + yaw, unwrapped), pitch and roll, rad."""
    out: FloatArray = _smooth_channels(plan, segment, np.asarray(t_s, dtype=np.float64))[:, :3]
    return out


def evaluate(
    plan: BodyPlan, t_s: FloatArray, segment: Segment = "thorax", *, average_over_s: float = 0.0
) -> SegmentMotion:
    """The segment's motion at the times ``t_s`` (any times, e.g. a drifting sensor clock).

    With ``average_over_s`` the vertical acceleration is its exact mean over that interval
    centred on each time (the velocity difference over it), as an averaging, decimating ADC
    reports it: the stance force jumps at touchdown, and an instantaneous sample of a jump
    would make the double integral wrong by up to a millimetre. The smooth parts, whose mean
    over 5 ms differs from the centre value by under 1e-4 g, are taken at the centre.
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    smooth, d_smooth, dd_smooth = central_difference(
        lambda tt: _smooth_channels(plan, segment, tt), t_s
    )
    vertical = vertical_motion(plan.steps, t_s)
    vertical_accel = vertical.accel_mps2
    if average_over_s > 0.0:
        half = average_over_s / 2.0
        vertical_accel = (
            vertical_motion(plan.steps, t_s + half).velocity_mps
            - vertical_motion(plan.steps, t_s - half).velocity_mps
        ) / average_over_s
    slow = plan.slow(t_s)
    d_slow = plan.slow(t_s, 1)
    speed = slow[:, _SPEED]
    forward = d_slow[:, _SPEED] + vertical.braking_mps2
    left = speed * d_slow[:, _HEADING] + dd_smooth[:, 3]
    accel = np.column_stack((forward, left, vertical_accel))
    heading = smooth[:, 4]
    angles = smooth[:, :3].copy()
    angles[:, 0] -= heading
    # ZYX rates with the world azimuth as the yaw: the heading's turn is part of the rotation.
    world_angles = smooth[:, :3]
    rates = body_rates(world_angles, d_smooth[:, :3])
    return SegmentMotion(
        t_s=t_s,
        accel_mps2=accel,
        angles_rad=angles,
        heading_rad=heading,
        rates_rps=rates,
        height_m=vertical.height_m,
    )
