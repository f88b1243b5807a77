"""Ground truth: DESIGN §3.4 shape, causal, deterministic, and quick for a long run."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from monitor.metrics import METRIC_NAMES
from simulators.model import simulate
from simulators.scenario import Scenario, load_scenario, parse_scenario
from simulators.session import write_recording
from simulators.truth import METRIC_NAMES as TRUTH_METRIC_NAMES
from simulators.truth import measure_gait, truth_arrays, truth_series, write_truth


def scenario(
    sensors: str, runner: str = "", keyframe: str = "", duration_s: float = 90.0
) -> Scenario:
    return parse_scenario(
        f"""
name = "truth"
duration_s = {duration_s}
[runner]
{runner}
{sensors}

[[timeline]]
t_s = 0
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 10
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 16
speed_mps = 3.3
cadence_spm = 170
{keyframe}
"""
    )


ALL_SENSORS = """
[sensors.foot]
profile = "rsc"
[sensors.chest]
profile = "runmon_imu"
[sensors.hr]
profile = "heart_rate"
[sensors.band]
profile = "runmon_breath"
"""


def test_truth_has_the_shape_of_an_analysis_series() -> None:
    assert TRUTH_METRIC_NAMES == METRIC_NAMES
    doc = truth_series(scenario(ALL_SENSORS), seed=1)
    json.dumps(doc, allow_nan=False)
    series = doc["series"]
    assert [row["t_s"] for row in series] == list(range(1, 91))
    for row in series:
        assert list(row) == ["t_s", *METRIC_NAMES]
    standing, running = series[4], series[60]
    assert standing["cadence_spm"] == 0.0
    assert standing["trunk_lean_deg"] is None
    assert standing["speed_mps"] == 0.0
    assert standing["stride_length_m"] is None
    assert all(running[name] is not None for name in METRIC_NAMES)
    assert running["stride_length_m"] == pytest.approx(
        running["speed_mps"] / (running["cadence_spm"] / 60.0), rel=1e-3
    )


def test_truth_reports_only_what_the_worn_sensors_measure() -> None:
    footpod_only = truth_series(load_scenario("stride_shorten"), duration_s=120.0, seed=1)
    row = footpod_only["series"][100]
    assert row["cadence_spm"] is not None
    assert row["speed_mps"] is not None
    for name in ("trunk_lean_deg", "vertical_oscillation_cm", "heart_rate_bpm", "breath_depth_rel"):
        assert row[name] is None
    pelvis = scenario('[sensors.hip]\nprofile = "runmon_imu"\nplacement = "pelvis"')
    row = truth_series(pelvis, seed=1)["series"][60]
    assert row["trunk_lean_deg"] is None
    assert row["speed_mps"] is None
    assert row["trunk_rotation_deg"] is not None
    assert row["ground_contact_ms"] is not None
    everything = truth_series(pelvis, seed=1, observable_only=False)["series"][60]
    assert all(everything[name] is not None for name in METRIC_NAMES)


def test_truth_is_causal() -> None:
    runner = simulate(scenario(ALL_SENSORS), 90.0, 3)
    full = truth_arrays(runner)
    part = truth_arrays(dataclasses.replace(runner, duration_s=55.5))
    assert part["t_s"].size == 55
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(part[name], full[name][:55], err_msg=name)


def test_truth_is_deterministic_per_seed() -> None:
    s = scenario(ALL_SENSORS)
    assert truth_series(s, seed=4) == truth_series(s, seed=4)
    assert truth_series(s, seed=4) != truth_series(s, seed=5)


def test_locked_breathing_takes_a_fixed_number_of_steps() -> None:
    rows = truth_arrays(simulate(scenario(ALL_SENSORS, keyframe="steps_per_breath = 3"), 90.0, 2))
    steady = slice(40, 90)
    assert np.abs(rows["steps_per_breath"][steady] - 3.0).max() < 0.1
    assert np.mean(rows["breath_depth_rel"][steady]) == pytest.approx(1.0, abs=0.08)


def test_free_breathing_follows_its_own_rate_and_depth() -> None:
    s = scenario(
        ALL_SENSORS,
        runner='breathing = "free"',
        keyframe="breathing_rate_bpm = 30\nbreath_depth_rel = 0.7",
    )
    rows = truth_arrays(simulate(s, 90.0, 2))
    steady = slice(40, 90)
    assert np.mean(rows["breathing_rate_bpm"][steady]) == pytest.approx(30.0, abs=2.5)
    assert np.mean(rows["breath_depth_rel"][steady]) == pytest.approx(0.7, abs=0.07)
    assert np.ptp(rows["steps_per_breath"][steady]) > 0.2  # drifts against the steps


def test_heart_rate_rises_with_the_effort() -> None:
    s = scenario(ALL_SENSORS, runner="hr_rest_bpm = 55\nhr_max_bpm = 185", duration_s=180.0)
    hr = truth_arrays(simulate(s, 180.0, 2))["heart_rate_bpm"]
    assert np.mean(hr[1:9]) == pytest.approx(55.0, abs=5.0)
    assert np.mean(hr[150:180]) > 120.0
    assert np.all(np.isfinite(hr[1:]))


def test_write_truth_writes_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    rows = write_truth(scenario(ALL_SENSORS), path, duration_s=30.0, seed=2)
    doc = json.loads(path.read_text())
    assert rows == len(doc["series"]) == 30
    assert doc["seed"] == 2
    assert doc["scenario"] == "truth"


def test_a_90_minute_imu_recording_and_its_truth_simulate_quickly(tmp_path: Path) -> None:
    long_run = load_scenario("steady").model_copy(update={"duration_s": 5400.0})
    started = time.perf_counter()
    lines = write_recording(long_run, tmp_path / "long.jsonl", seed=1)
    recording_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = write_truth(long_run, tmp_path / "long.truth.json", seed=1)
    truth_s = time.perf_counter() - started
    print(f"\n90-minute recording: {lines} records in {recording_s:.2f} s; truth {truth_s:.2f} s")
    assert lines > 5400 * 200 / 19
    assert rows == 5400
    assert recording_s < 60.0
    assert truth_s < 60.0


def _mean(values: NDArray[np.float64], first_s: int, last_s: int) -> float:
    return float(np.nanmean(values[first_s - 1 : last_s]))


#: Baseline: minutes 2-5 of steady running (running starts at 60 s); fault: its last 5 minutes.
BASELINE_S = (240, 420)
FAULT_S = (600, 900)


@pytest.mark.parametrize(
    ("name", "metric", "crosses"),
    [
        ("lean_forward", "trunk_lean_deg", lambda base, fault: fault < min(4.0, base - 4.0)),
        ("lean_less", "trunk_lean_deg", lambda base, fault: fault > base + 5.0),
        ("arm_swing", "trunk_rotation_deg", lambda base, fault: fault < 0.6 * base),
        ("rotation_relax", "trunk_rotation_deg", lambda base, fault: fault > 1.6 * base),
        ("breathe_deep", "breath_depth_rel", lambda base, fault: fault < 0.7 * base),
        ("breathe_deep", "breathing_rate_bpm", lambda base, fault: fault > 1.25 * base),
    ],
)
def test_fault_scenarios_cross_their_cue_trigger_after_a_normal_baseline(
    name: str, metric: str, crosses: Callable[[float, float], bool]
) -> None:
    s = load_scenario(name)
    assert s.fault_onset_s is not None
    assert s.fault_onset_s >= 60 + 5 * 60  # at least 5 minutes of normal running first
    assert s.expected_cues == (name,)
    rows = truth_arrays(simulate(s, s.duration_s, 1))
    base, fault = _mean(rows[metric], *BASELINE_S), _mean(rows[metric], *FAULT_S)
    assert crosses(base, fault), (base, fault)
    # Cadence and speed hold: the fault is in the form, not the pace.
    assert _mean(rows["cadence_spm"], *FAULT_S) == pytest.approx(172.0, abs=2.0)


def test_core_engage_scenario_makes_the_lean_unstable() -> None:
    s = load_scenario("core_engage")
    runner = simulate(s, s.duration_s, 1)
    gait = measure_gait(runner, "thorax")
    td = gait.touchdown_s[::2]  # strides from one foot's touchdown to the next
    integral = np.interp(td, gait.lean_t_s, gait.lean_integral_rad_s)
    stride_lean = np.rad2deg(np.diff(integral) / np.diff(td))

    def lean_std(first_s: float, last_s: float) -> float:
        inside = (td[:-1] >= first_s) & (td[1:] <= last_s)
        return float(
            np.median([np.std(stride_lean[inside][i : i + 40]) for i in range(0, 200, 40)])
        )

    baseline, fault = lean_std(*BASELINE_S), lean_std(*FAULT_S)
    assert fault > max(2.0 * baseline, 1.5), (baseline, fault)
