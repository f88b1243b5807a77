"""The virtual runner obeys physics: what its IMU reports integrates back to its ground truth."""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np
import pytest
from numpy.typing import NDArray

from sensors.gatt.runmon_imu import decode_imu_block
from sensors.recording import Notification
from simulators.body import G_MPS2, evaluate, segment_orientation, vertical_motion, zyx_matrix
from simulators.imu import VirtualImu
from simulators.model import VirtualRunner, simulate
from simulators.scenario import ImuSpec, Scenario, ScenarioMount, parse_scenario
from simulators.truth import Gait, measure_gait, truth_arrays

F64 = NDArray[np.float64]

CLEAN_IMU = """
acc_noise_g = 0.0
acc_bias_g = 0.0
gyro_noise_dps = 0.0
gyro_bias_dps = 0.0
clock_drift_ppm = 0.0
"""


def running_scenario(
    *,
    duration_s: float = 60.0,
    imu: str = "",
    keyframe: str = "",
    course: str = "road",
    speed_mps: float = 3.2,
    cadence_spm: float = 172.0,
) -> Scenario:
    """Standing 8 s, then running from 14 s; a clean chest strap with an odd mount and tilt."""
    return parse_scenario(
        f"""
name = "physics"
duration_s = {duration_s}
course = "{course}"

[sensors.chest]
profile = "runmon_imu"
tilt_forward_deg = 8.0
tilt_side_deg = -5.0
{CLEAN_IMU}
{imu}

[sensors.chest.mount]
forward = "-y"
left = "+z"
up = "-x"

[[timeline]]
t_s = 0
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 8
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 14
speed_mps = {speed_mps}
cadence_spm = {cadence_spm}
{keyframe}
"""
    )


@cache
def _runner(seed: int = 4) -> VirtualRunner:
    return simulate(running_scenario(), 60.0, seed)


@cache
def _gait(seed: int = 4) -> Gait:
    return measure_gait(_runner(seed), "thorax")


def _imu(runner: VirtualRunner) -> VirtualImu:
    spec = runner.scenario.sensors["chest"]
    assert isinstance(spec, ImuSpec)
    return VirtualImu("chest", spec, runner, np.random.SeedSequence([runner.seed, 1]))


def _decoded(imu: VirtualImu) -> tuple[F64, F64, F64]:
    """(sample times, acc g, gyro °/s) of every data notification, timed by sequence number."""
    times, acc, gyro = [], [], []
    for record in imu.records():
        if isinstance(record, Notification) and record.char.endswith(
            "0002-3115-4994-88d7-903e81d4b614"
        ):
            block = decode_imu_block(record.payload)
            assert block.gyro_dps is not None
            index = np.arange(block.sequence, block.sequence + block.n_samples)
            times.append(imu.sample_times(int(index[0]), index.size))
            acc.append(block.acc_g)
            gyro.append(block.gyro_dps)
    return np.concatenate(times), np.concatenate(acc), np.concatenate(gyro)


def _sensor_to_heading(imu: VirtualImu, t_mid: F64) -> F64:
    """(n, 3, 3) true rotation from the strap's axes to the heading frame."""
    motion = evaluate(imu.runner.body, t_mid, imu.segment)
    out: F64 = motion.rotation() @ imu.segment_from_sensor
    return out


def _proper_mounts() -> list[ScenarioMount]:
    axes = ["+x", "-x", "+y", "-y", "+z", "-z"]
    mounts = []
    for forward, left, up in itertools.permutations(axes, 3):
        try:
            mounts.append(
                ScenarioMount.model_validate({"forward": forward, "left": left, "up": up})
            )
        except ValueError:
            continue
    return mounts


def test_there_are_24_proper_mounts() -> None:
    assert len(_proper_mounts()) == 24


@pytest.mark.parametrize("mount", _proper_mounts(), ids=lambda m: f"{m.forward}{m.left}{m.up}")
def test_specific_force_at_rest_is_one_g_up_in_any_mount(mount: ScenarioMount) -> None:
    scenario = running_scenario(duration_s=6.0)
    spec = scenario.sensors["chest"]
    assert isinstance(spec, ImuSpec)
    scenario = scenario.model_copy(
        update={"sensors": {"chest": spec.model_copy(update={"mount": mount})}}
    )
    imu = _imu(simulate(scenario, 6.0, 1))
    _, acc_g, gyro_dps = _decoded(imu)
    assert acc_g.shape[0] > 900
    norms = np.linalg.norm(acc_g, axis=1)
    assert np.abs(norms - 1.0).max() < 1e-3  # wire resolution 1/2048 g per axis
    # Exactly gravity's direction, seen through the mount and the tilt; no rotation at all.
    up_in_sensor = imu.segment_from_sensor.T @ np.array([0.0, 0.0, 1.0])
    assert np.abs(acc_g - up_in_sensor).max() <= 0.5 / 2048 + 1e-12
    assert not gyro_dps.any()


def test_rest_is_exact_before_quantisation() -> None:
    motion = evaluate(_runner().body, np.linspace(0.0, 7.9, 500))
    f = motion.specific_force_mps2() / G_MPS2
    assert np.array_equal(f, np.tile([0.0, 0.0, 1.0], (500, 1)))
    assert not motion.rates_rps.any()


def test_vertical_force_balances_over_whole_strides_and_looks_like_running() -> None:
    gait = _gait()
    td = gait.touchdown_s[(gait.touchdown_s > 25.0) & (gait.touchdown_s < 55.0)]
    td = td[: 1 + 2 * ((td.size - 1) // 2)]  # whole strides
    t = np.linspace(td[0], td[-1], 200_001)
    f = 1.0 + vertical_motion(_runner().body.steps, t).accel_mps2 / G_MPS2
    mean = np.sum((f[1:] + f[:-1]) / 2.0 * np.diff(t)) / (t[-1] - t[0])
    assert mean == pytest.approx(1.0, abs=2e-4)
    # Stance peaks of about 2-3 g; flight is free fall (0 g) for a good share of every step.
    starts = np.searchsorted(t, td)
    peaks = np.maximum.reduceat(f, starts[:-1])
    assert peaks.min() > 2.0
    assert peaks.max() < 3.3
    assert f.min() == pytest.approx(0.0, abs=1e-12)
    assert 0.15 < np.mean(f < 1e-9) < 0.4


def test_imu_vertical_specific_force_averages_one_g_over_strides() -> None:
    runner = _runner()
    imu = _imu(runner)
    t, acc_g, _ = _decoded(imu)
    gait = _gait()
    td = gait.touchdown_s[(gait.touchdown_s > 25.0) & (gait.touchdown_s < 55.0)]
    td = td[: 1 + 2 * ((td.size - 1) // 2)]
    inside = (t > td[0]) & (t <= td[-1])
    rot = _sensor_to_heading(imu, t[inside] - imu.sample_period_s / 2.0)
    vertical = np.einsum("nij,nj->ni", rot, acc_g[inside])[:, 2]
    assert vertical.mean() == pytest.approx(1.0, abs=2e-3)
    assert 2.0 < vertical.max() < 3.2
    assert vertical.min() < 0.05


def test_double_integral_of_imu_vertical_acceleration_gives_truth_oscillation() -> None:
    runner = _runner()
    imu = _imu(runner)
    t, acc_g, _ = _decoded(imu)
    gait = _gait()
    td = gait.touchdown_s[(gait.touchdown_s > 30.0) & (gait.touchdown_s < 42.0)]
    inside = (t > td[0]) & (t <= td[-1])
    t_in = t[inside]
    rot = _sensor_to_heading(imu, t_in - imu.sample_period_s / 2.0)
    accel = (np.einsum("nij,nj->ni", rot, acc_g[inside])[:, 2] - 1.0) * G_MPS2
    # Each sample is its interval's mean: summing gives the velocity exactly at sample times.
    velocity = np.cumsum(accel) * imu.sample_period_s
    velocity -= velocity.mean()  # whole steps: the trunk ends where it started
    height = np.concatenate(([0.0], np.cumsum((velocity[1:] + velocity[:-1]) / 2.0)))
    height *= imu.sample_period_s
    height -= np.polyval(np.polyfit(t_in, height, 1), t_in)
    starts = np.searchsorted(t_in, td)
    integrated = np.maximum.reduceat(height, starts[:-1]) - np.minimum.reduceat(height, starts[:-1])
    first = np.searchsorted(gait.touchdown_s, td[0])
    truth = gait.step_vo_m[first : first + td.size - 1]
    assert np.abs(integrated[:-1] - truth[:-1]).max() < 1e-3
    # And the per-second truth row is their mean over its window.
    rows = truth_arrays(runner)
    window = (td[1:] <= 42.0) & (td[:-1] > 37.0)
    assert rows["vertical_oscillation_cm"][41] == pytest.approx(
        100.0 * integrated[window].mean(), abs=0.1
    )


def _skew(v: F64) -> F64:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _rotation_step(omega_rad: F64) -> F64:
    angle = float(np.linalg.norm(omega_rad))
    if angle == 0.0:
        return np.eye(3)
    k = _skew(omega_rad / angle)
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


@pytest.mark.parametrize("course", ["road", "track_400m"])
def test_integrated_gyro_gives_truth_rotation(course: str) -> None:
    runner = simulate(running_scenario(course=course, speed_mps=4.0), 60.0, 9)
    imu = _imu(runner)
    t, _, gyro = _decoded(imu)
    gait = measure_gait(runner, "thorax")
    td = gait.touchdown_s[(gait.touchdown_s > 20.0) & (gait.touchdown_s < 50.0)]
    start = int(np.searchsorted(t, td[0]))
    stop = int(np.searchsorted(t, td[-1]))
    # Start from the true orientation at a sample, then only the gyro.
    heading = segment_orientation(runner.body, t[start - 1 : start], "thorax")
    azimuth0 = float(heading[0, 0])
    truth_rot = zyx_matrix(heading)[0] @ imu.segment_from_sensor
    orientation = truth_rot
    azimuth = [azimuth0]
    for omega in np.deg2rad(gyro[start:stop]) * imu.sample_period_s:
        orientation = orientation @ _rotation_step(omega)
        forward = orientation @ imu.segment_from_sensor.T[:, 0]
        azimuth.append(math.atan2(forward[1], forward[0]))
    az = np.unwrap(np.array(azimuth))
    t_az = t[start - 1 : stop]
    first = int(np.searchsorted(gait.touchdown_s, td[0]))
    for i in range(td.size - 2):
        a, b = td[i], td[i + 2]
        inside = (t_az >= a) & (t_az < b)
        line = np.interp(t_az[inside], [a, b], np.interp([a, b], t_az, az))
        ptp = math.degrees(float(np.ptp(az[inside] - line)))
        assert ptp == pytest.approx(gait.stride_rotation_deg[first + i], abs=0.1)
    if course == "track_400m":  # a bend turns the runner
        assert az[-1] - az[0] > 0.5


def test_gyro_rates_are_the_derivative_of_the_orientation() -> None:
    runner = _runner()
    t = np.linspace(20.0, 22.0, 41)
    h = 1e-5
    motion = evaluate(runner.body, t)
    world = segment_orientation(runner.body, t, "thorax")
    r_lo = zyx_matrix(segment_orientation(runner.body, t - h, "thorax"))
    r_hi = zyx_matrix(segment_orientation(runner.body, t + h, "thorax"))
    r = zyx_matrix(world)
    d = np.einsum("nji,njk->nik", r, (r_hi - r_lo) / (2 * h))  # R^T dR/dt = [ω]x
    omega = np.column_stack((d[:, 2, 1], d[:, 0, 2], d[:, 1, 0]))
    # 2e-4 rad/s = 0.01 °/s, six times finer than the wire (1/16 °/s); the slow channels are
    # C¹ splines, so at their knots a central difference is good to ~1e-4 rad/s, elsewhere 1e-7.
    assert np.abs(omega - motion.rates_rps).max() < 2e-4
    assert np.median(np.abs(omega - motion.rates_rps)) < 1e-5
    assert np.abs(motion.rates_rps).max() > 0.5  # it does rotate


def test_contact_time_from_the_force_profile_is_the_planned_one() -> None:
    runner = _runner()
    gait = _gait()
    steps = runner.body.steps
    running = steps.engagement == 1.0
    planned_touchdown = steps.apex_s[:-1] + (steps.step_s - steps.contact_s) / 2.0
    measured = gait.touchdown_s[np.isfinite(gait.contact_s)]
    contact = gait.contact_s[np.isfinite(gait.contact_s)]
    k = np.searchsorted(planned_touchdown, measured - 1e-3)
    ok = running[k]
    assert ok.sum() > 100
    assert np.abs(measured[ok] - planned_touchdown[k[ok]]).max() < 1e-6
    assert np.abs(contact[ok] - steps.contact_s[k[ok]]).max() < 1e-6


@pytest.mark.parametrize(
    ("cadence_spm", "contact_ms", "vo_cm"), [(172.0, 250.0, 8.0), (182.0, 215.0, 6.5)]
)
def test_truth_follows_the_targets(cadence_spm: float, contact_ms: float, vo_cm: float) -> None:
    scenario = running_scenario(
        duration_s=80.0,
        cadence_spm=cadence_spm,
        keyframe=f"ground_contact_ms = {contact_ms}\nvertical_oscillation_cm = {vo_cm}\n"
        "trunk_lean_deg = 9\ntrunk_rotation_deg = 18",
    )
    rows = truth_arrays(simulate(scenario, 80.0, 2))
    steady = slice(25, 80)
    assert np.abs(rows["cadence_spm"][steady] - cadence_spm).max() < 4.0
    assert np.mean(rows["cadence_spm"][steady]) == pytest.approx(cadence_spm, abs=1.5)
    assert np.mean(rows["ground_contact_ms"][steady]) == pytest.approx(contact_ms, abs=6.0)
    assert np.mean(rows["vertical_oscillation_cm"][steady]) == pytest.approx(vo_cm, abs=0.5)
    assert np.mean(rows["trunk_lean_deg"][steady]) == pytest.approx(9.0, abs=1.0)
    assert np.mean(rows["trunk_rotation_deg"][steady]) == pytest.approx(18.0, abs=1.5)


def test_a_400m_track_turns_the_runner_round_with_centripetal_force() -> None:
    scenario = running_scenario(duration_s=130.0, course="track_400m", speed_mps=4.0)
    runner = simulate(scenario, 130.0, 3)
    t = np.array([20.0, 120.0])
    distance = np.interp(t, runner.track.t_s, runner.track.distance_m)
    laps = (distance[1] // 400.0) - (distance[0] // 400.0)
    turned = np.diff(segment_orientation(runner.body, t, "thorax")[:, 0])[0]
    expected = 2 * math.pi * (distance[1] - distance[0]) / 400.0
    assert laps >= 1
    assert turned == pytest.approx(expected, abs=math.pi / 2)  # straights vs bends at the ends
    # Mid-bend the heading frame feels v²/r to the left (averaged over whole strides).
    pos = distance[0] % 400.0
    to_bend = (84.39 + 115.61 / 2 - pos) % 400.0
    mid_bend = float(np.interp(distance[0] + to_bend, runner.track.distance_m, runner.track.t_s))
    window = np.linspace(mid_bend - 1.4, mid_bend + 1.4, 2001)
    lateral = evaluate(runner.body, window).accel_mps2[:, 1]
    speed = float(np.interp(mid_bend, runner.track.t_s, runner.track.speed_mps))
    assert lateral.mean() == pytest.approx(speed**2 / 36.8, rel=0.1)
