"""The compiled trunk numerics against plain numpy / scipy formulations of the same maths.

The estimator's accuracy is tested against simulator truth elsewhere; these pin each kernel to
an independent reference, so a wrong index or sign in a loop fails here with a clear diff.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.integrate import cumulative_trapezoid
from scipy.spatial.transform import Rotation

from monitor.estimators.gait import G_MPS2, ContactDetector, detect_contacts
from monitor.estimators.trunk_numerics import (
    AZIMUTH_DEG,
    LATERAL_G,
    LEAN_DEG,
    LEAN_INT,
    N_COLUMNS,
    VERTICAL_G,
    VERTICAL_V,
    VERTICAL_X,
    body_columns,
    detrended_std,
    integrate,
    step_figures,
)


def _random_rotations(n: int, seed: int) -> Rotation:
    rng = np.random.default_rng(seed)
    # Smooth yaw (crossing ±180° several times), small pitch and roll: a trunk while running.
    yaw = np.cumsum(rng.normal(0.05, 0.02, n))
    pitch = 0.2 * np.sin(np.linspace(0, 20, n))
    roll = 0.1 * np.cos(np.linspace(0, 13, n))
    return Rotation.from_euler("ZYX", np.column_stack([yaw, pitch, roll]))


def test_body_columns_match_the_rotation_matrix_formulas() -> None:
    n = 500
    rot = _random_rotations(n, 1)
    quat_wxyz = np.roll(rot.as_quat(), 1, axis=1)  # scipy is scalar-last
    acc = np.random.default_rng(2).normal(0, 1, (n, 3)) + np.array([0.0, 0.0, 1.0])
    forward_ref = np.array([0.99, 0.0, -0.141])
    forward_ref /= np.linalg.norm(forward_ref)
    up_ref = np.array([0.141, 0.0, 0.99])
    up_ref /= np.linalg.norm(up_ref)
    alpha = 0.01
    out = np.full((n, N_COLUMNS), np.nan)
    state = np.full(2, np.nan)
    # Two blocks: the state carries across.
    body_columns(quat_wxyz[:200], acc[:200], forward_ref, up_ref, alpha, state, out[:200])
    body_columns(quat_wxyz[200:], acc[200:], forward_ref, up_ref, alpha, state, out[200:])

    matrices = rot.as_matrix()
    world = np.einsum("nij,nj->ni", matrices, acc)
    np.testing.assert_allclose(out[:, VERTICAL_G], world[:, 2], atol=1e-12)
    up_in_body = matrices[:, 2, :]
    lean = np.degrees(np.arctan2(-(up_in_body @ forward_ref), up_in_body @ up_ref))
    np.testing.assert_allclose(out[:, LEAN_DEG], lean, atol=1e-9)
    forward_world = matrices @ forward_ref
    azimuth = np.degrees(np.unwrap(np.arctan2(forward_world[:, 1], forward_world[:, 0])))
    np.testing.assert_allclose(out[:, AZIMUTH_DEG], azimuth, atol=1e-9)
    assert np.ptp(azimuth) > 720  # the unwrapping was exercised
    heading = np.empty(n)
    heading[0] = azimuth[0]
    for i in range(1, n):
        heading[i] = alpha * azimuth[i] + (1 - alpha) * heading[i - 1]
    h = np.radians(heading)
    lateral = -world[:, 0] * np.sin(h) + world[:, 1] * np.cos(h)
    np.testing.assert_allclose(out[:, LATERAL_G], lateral, atol=1e-9)
    np.testing.assert_allclose(state, [azimuth[-1], heading[-1]], atol=1e-9)


def test_integrals_continue_across_blocks_as_one_trapezoid() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.004, 0.006, 400))
    data = np.zeros((400, N_COLUMNS))
    data[:, VERTICAL_G] = 1.0 + rng.normal(0, 0.5, 400)
    data[:, LEAN_DEG] = rng.normal(5, 1, 400)
    for start, stop in [(0, 150), (150, 151), (151, 400)]:
        integrate(t, data, start, stop)
    acc = (data[:, VERTICAL_G] - 1.0) * G_MPS2
    velocity = cumulative_trapezoid(acc, t, initial=0.0)
    np.testing.assert_allclose(data[:, VERTICAL_V], velocity, atol=1e-12)
    np.testing.assert_allclose(
        data[:, VERTICAL_X], cumulative_trapezoid(velocity, t, initial=0.0), atol=1e-12
    )
    np.testing.assert_allclose(
        data[:, LEAN_INT], cumulative_trapezoid(data[:, LEAN_DEG], t, initial=0.0), atol=1e-12
    )


def test_step_figures_of_a_sine_bounce() -> None:
    """A vertical sine of amplitude A moves the body by 2A peak to peak (its double integral),
    whatever the integration constants; lean and azimuth figures are exact for known shapes."""
    rate_hz, step_s, amplitude_m = 200.0, 0.35, 0.04
    t = np.arange(0, 3.0, 1 / rate_hz)
    omega = 2 * np.pi / step_s
    data = np.zeros((t.size, N_COLUMNS))
    # Position A·sin(ωt) → acceleration -A·ω²·sin(ωt); in g, plus gravity.
    data[:, VERTICAL_G] = 1.0 - amplitude_m * omega**2 * np.sin(omega * t) / G_MPS2
    data[:, LEAN_DEG] = 7.0 + 2.0 * np.sin(omega * t)
    # Azimuth: a turn (a straight line) plus a ±10° swing over the stride.
    data[:, AZIMUTH_DEG] = 30.0 * t + 10.0 * np.sin(omega / 2 * t)
    integrate(t, data, 0, t.size)
    out = np.empty(5)
    start, end = 1.0, 1.0 + step_s
    assert step_figures(t, data, start, end, start - step_s, True, True, 8, out)
    oscillation, feature, lean, rotation, sway = out
    assert oscillation == pytest.approx(2 * amplitude_m, rel=0.01)
    assert feature == pytest.approx((2 * amplitude_m * omega**2) ** 0.25, rel=0.01)
    assert lean == pytest.approx(7.0, abs=0.02)
    assert rotation == pytest.approx(20.0, rel=0.01)
    assert sway == pytest.approx(0.0, abs=1e-9)
    # Without a stride, or with too few samples, nothing is made up.
    assert step_figures(t, data, start, end, np.nan, True, True, 8, out)
    assert np.isnan(out[2:]).all()
    assert not step_figures(t, data, start, start + 0.02, np.nan, True, True, 8, out)


def test_detrended_std_is_the_residual_spread_around_the_line() -> None:
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0, 30, 60))
    noise = rng.normal(0, 0.7, 60)
    x = 3.0 + 0.2 * t + noise
    fit = np.polyfit(t, x, 1)
    expected = np.sqrt(np.sum((x - np.polyval(fit, t)) ** 2) / (t.size - 2))
    assert detrended_std(t, x) == pytest.approx(expected, rel=1e-12)


def test_streamed_contacts_equal_the_whole_signal_and_need_no_lookahead() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(0, 20, 0.005)
    # Stances of ~0.25 s every ~0.35 s, each with a brief dip (a heel-strike transient).
    phase = (t % 0.35) / 0.35
    force = np.where(phase < 0.7, 2.0 * np.sin(np.pi * phase / 0.7), 0.0)
    force[(phase > 0.1) & (phase < 0.12)] = 0.1
    force += rng.normal(0, 0.05, t.size)
    whole = detect_contacts(t, force)
    assert 50 <= len(whole) <= 58
    assert all(0.2 < c.duration_s < 0.3 for c in whole)  # dips did not split a stance
    detector = ContactDetector()
    streamed = []
    edges = np.unique(np.concatenate(([0, t.size], rng.integers(0, t.size, 60))))
    for a, b in itertools.pairwise(edges.tolist()):
        for contact in detector.push(t[a:b], force[a:b]):
            assert contact.toeoff_s <= t[b - 1]  # known by the end of its chunk
            streamed.append(contact)
    assert streamed == whole[: len(streamed)]
    assert len(streamed) >= len(whole) - 1  # only the last may still be pending
