"""Scenario TOML: sensors as a tagged union, body targets with defaults, errors naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from rules.catalog import FORM_CODES
from simulators.errors import ScenarioError
from simulators.scenario import (
    BODY_TARGETS,
    FootpodSpec,
    HeartRateSpec,
    ImuSpec,
    builtin_scenario_names,
    load_scenario,
    parse_scenario,
)

TIMELINE = """
[[timeline]]
t_s = 0
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 60
speed_mps = 3.2
cadence_spm = 172
"""


def toml(sensors: str, timeline: str = TIMELINE) -> str:
    return f'name = "t"\nduration_s = 100\n{sensors}\n{timeline}'


def test_sensors_are_told_apart_by_profile() -> None:
    s = parse_scenario(
        toml(
            """
[sensors.foot]
profile = "rsc"
[sensors.chest]
profile = "runmon_imu"
placement = "pelvis"
[sensors.hr]
profile = "heart_rate"
"""
        )
    )
    assert isinstance(s.sensors["foot"], FootpodSpec)
    assert isinstance(s.sensors["chest"], ImuSpec)
    assert s.sensors["chest"].placement == "pelvis"
    assert isinstance(s.sensors["hr"], HeartRateSpec)
    assert list(s.sensors_of("runmon_imu")) == ["chest"]


@pytest.mark.parametrize(
    ("sensors", "names"),
    [
        (
            '[sensors.chest]\nprofile = "runmon_imu"\nsample_rate_hz = 5',
            ["sensors.chest", "sample_rate_hz"],
        ),
        (
            '[sensors.chest]\nprofile = "runmon_imu"\ntilt_fwd_deg = 3',
            ["sensors.chest", "tilt_fwd_deg"],
        ),
        ('[sensors.chest]\nprofile = "imu"', ["sensors.chest", "profile"]),
        ("[sensors.chest]\nsample_rate_hz = 100", ["sensors.chest", "profile"]),
        (
            '[sensors.chest]\nprofile = "runmon_imu"\ntilt_forward_deg = 12\ntilt_side_deg = 12',
            ["sensors.chest", "tilt_forward_deg"],
        ),
        (
            '[sensors.chest]\nprofile = "runmon_imu"\n[sensors.chest.mount]\n'
            'forward = "+x"\nleft = "+y"\nup = "-z"',
            ["sensors.chest", "mount", "left-handed"],
        ),
        (
            '[sensors.band]\nprofile = "runmon_breath"\nlink.packet_loss = 0.9',
            ["sensors.band", "link", "packet_loss"],
        ),
        ('[sensors.hr]\nprofile = "heart_rate"\ninterval_s = 0', ["sensors.hr", "interval_s"]),
    ],
)
def test_sensor_errors_name_the_bad_field(sensors: str, names: list[str]) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(toml(sensors), "my.toml")
    message = str(info.value)
    assert message.startswith("my.toml: ")
    for name in names:
        assert name in message, message


def test_keyframe_errors_name_the_bad_target() -> None:
    bad = TIMELINE + "\n[[timeline]]\nt_s = 90\ntrunk_lean_deg = 45\n"
    with pytest.raises(ScenarioError, match=r"timeline\.2\.trunk_lean_deg"):
        parse_scenario(toml('[sensors.foot]\nprofile = "rsc"', bad))


def test_body_targets_default_to_a_normal_runner_until_set() -> None:
    timeline = TIMELINE + "\n[[timeline]]\nt_s = 80\ntrunk_lean_deg = 3\n"
    s = parse_scenario(toml('[sensors.foot]\nprofile = "rsc"', timeline))
    t = np.array([0.0, 40.0, 80.0, 99.0])
    assert s.target("trunk_lean_deg", t).tolist() == [7.0, 5.0, 3.0, 3.0]
    assert s.target("vertical_oscillation_cm", t).tolist() == [8.0] * 4
    for name, info in BODY_TARGETS.items():
        if info.default is None:
            assert not s.sets(name)
            with pytest.raises(ValueError, match=name):
                s.target(name, t)
        else:
            assert s.target(name, t)[0] == info.default


def test_shipped_scenarios_load_and_the_demo_runner_stays_footpod_only() -> None:
    names = builtin_scenario_names()
    assert {"steady", "stride_shorten", "fatigue", *FORM_CODES} <= set(names)
    for name in names:
        load_scenario(name)
    assert {spec.profile for spec in load_scenario("stride_shorten").sensors.values()} == {"rsc"}
    steady = {spec.profile for spec in load_scenario("steady").sensors.values()}
    assert steady == {"rsc", "runmon_imu", "heart_rate", "runmon_breath"}
    imu = load_scenario("steady").sensors_of("runmon_imu")
    assert imu
    assert all(isinstance(spec, ImuSpec) for spec in imu.values())
