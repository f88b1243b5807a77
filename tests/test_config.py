"""Runner configuration: the shipped example validates; every error names the file and field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import (
    RunnerConfigError,
    config_for_header,
    dump_runner_config,
    load_runner_config,
    parse_runner_config,
)
from monitor.errors import ConfigError
from sensors.ble.client import PmdStreamRequest, SensorTarget
from sensors.recording import RecordingHeader, parse_header

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "runner.toml"

MINIMAL = """
[runner]
id = "r1"

[sensors.foot]
profile = "rsc"
name = "Stryd"
"""


def test_the_example_validates_and_becomes_a_recording_header() -> None:
    config = load_runner_config(EXAMPLE)
    assert config.runner_id == "r1"
    assert list(config.sensors) == ["foot", "chest", "h10", "band"]
    header = config.recording_header(datetime(2026, 11, 25, 7, tzinfo=UTC))
    # The header line a reader sees: entries exactly as declared, PMD settings spelled out.
    reread = parse_header(json.dumps(header.model_dump(mode="json")))
    assert reread.runner_profile.hr_max_bpm == 190
    entries = [s.model_dump(mode="json", exclude_unset=True) for s in header.sensors]
    assert entries == [
        {"id": "foot", "profile": "rsc", "cadence_unit": "auto", "speed_factor": 1.0},
        {
            "id": "chest",
            "profile": "runmon_imu",
            "placement": "chest",
            "mount": {"forward": "+x", "left": "+y", "up": "+z"},
        },
        {
            "id": "h10",
            "profile": "polar_pmd",
            "placement": "chest",
            "mount": {"forward": "+z", "left": "+x", "up": "+y"},
            "settings": {"acc": {"sample_rate_hz": 200, "range_g": 8, "resolution_bits": 16}},
        },
        {"id": "band", "profile": "runmon_breath"},
    ]
    assert config.targets() == [
        SensorTarget("foot", "rsc", name="Stryd"),
        SensorTarget("chest", "runmon_imu", address="F1:23:45:67:89:AB"),
        SensorTarget(
            "h10",
            "polar_pmd",
            name="Polar H10 0A1B2C3D",
            pmd_streams=(PmdStreamRequest("acc", 200, 8, 16),),
        ),
        SensorTarget("band", "runmon_breath", name="runmon Breath"),
    ]


def test_a_minimal_config_declares_only_what_it_says() -> None:
    config = parse_runner_config(MINIMAL, "r.toml")
    (entry,) = config.header_sensors()
    assert entry.model_dump(mode="json", exclude_unset=True) == {"id": "foot", "profile": "rsc"}
    assert config.recording_header().runner_profile.hr_max_bpm is None


def test_a_pmd_strap_without_streams_gets_the_h10_default_and_gyro_when_asked() -> None:
    text = """
[runner]
id = "r1"
[sensors.h10]
profile = "polar_pmd"
address = "a0:9e:1a:00:11:22"
[sensors.sense]
profile = "polar_pmd"
name = "Polar Sense 1234"
gyro = { sample_rate_hz = 52, range_dps = 1000 }
"""
    config = parse_runner_config(text)
    h10, sense = config.targets()
    assert h10.pmd_streams == (PmdStreamRequest("acc", 200, 8, 16),)
    assert sense.pmd_streams == (PmdStreamRequest("gyro", 52, 1000, 16),)
    assert config.header_sensors()[1].settings == {
        "gyro": {"sample_rate_hz": 52, "range_dps": 1000, "resolution_bits": 16}
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("speed_factor = 5.0", "cfg.toml: sensors.foot.speed_factor: Input should be less than"),
        ("speed_facter = 1.1", "cfg.toml: sensors.foot.speed_facter: Extra inputs are not"),
        ("cadence_unit = 'legs'", "cfg.toml: sensors.foot.cadence_unit: Input should be"),
        ("placement = 'chest'", "cfg.toml: sensors.foot: placement: applies to runmon_imu"),
        ("acc = { sample_rate_hz = 200 }", "cfg.toml: sensors.foot: acc: applies to polar_pmd"),
        (
            "address = 'not-an-address'",
            "cfg.toml: sensors.foot.address: must be a Bluetooth address like",
        ),
        ("profile = 'toaster'", "cfg.toml: sensors.foot.profile: Input should be"),
    ],
)
def test_errors_name_the_file_and_the_field(change: str, expected: str) -> None:
    key = change.split(" = ")[0]
    lines = [line for line in MINIMAL.splitlines() if not line.startswith(f"{key} =")]
    text = "\n".join(lines) + "\n" + change + "\n"
    with pytest.raises(RunnerConfigError) as caught:
        parse_runner_config(text, "cfg.toml")
    assert str(caught.value).startswith(expected), str(caught.value)
    assert isinstance(caught.value, ConfigError)  # the CLI's exit code 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[runner]\nid = "r 1"\n[sensors.a]\nprofile = "rsc"\nname = "x"\n', "runner.id:"),
        ('[runner]\nid = "r1"\n[sensors.a]\nprofile = "rsc"\n', "sensors.a: address or name"),
        ('[runner]\nid = "r1"\n', "sensors: Field required"),
        ('[runner]\nid = "r1"\nhr_max_bpm = 19\n[sensors.a]\nprofile = "rsc"\nname = "x"\n',
         "runner.hr_max_bpm:"),
        ('[runner]\nid = "r1"\n[sensors."a b"]\nprofile = "rsc"\nname = "x"\n',
         "sensors.a b: ids are"),
        (
            '[runner]\nid = "r1"\n[sensors.c]\nprofile = "runmon_imu"\nname = "x"\n'
            'mount = { forward = "+x", left = "+y", up = "-z" }\n',
            "sensors.c.mount: forward=+x, left=+y, up=-z is left-handed",
        ),
        ("[runner\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_more_errors_name_the_field(text: str, expected: str) -> None:
    with pytest.raises(RunnerConfigError, match=r"^cfg\.toml: ") as caught:
        parse_runner_config(text, "cfg.toml")
    assert expected in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(RunnerConfigError, match=re.escape(f"{missing}: cannot read runner config")):
        load_runner_config(missing)


def test_dump_reads_back_and_a_header_becomes_a_config() -> None:
    config = load_runner_config(EXAMPLE)
    text = dump_runner_config(config, "written by a test")
    assert text.startswith("# written by a test\n")
    assert parse_runner_config(text) == config
    header: RecordingHeader = config.recording_header()
    names = {sensor_id: f"served-{sensor_id}" for sensor_id in config.sensors}
    served = config_for_header(header, names)
    assert served.header_sensors() == config.header_sensors()
    assert [t.name for t in served.targets()] == list(names.values())
    assert all(t.address is None for t in served.targets())


def test_the_readme_shows_the_example_as_it_is() -> None:
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    section = readme.split("#### Configuring a runner", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no TOML example under 'Configuring a runner'"
    assert parse_runner_config(match.group(1), "README") == load_runner_config(EXAMPLE)


def test_a_sensor_may_set_its_own_watchdog() -> None:
    config = parse_runner_config(MINIMAL + "silence_timeout_s = 30\n")
    (target,) = config.targets()
    assert target.silence_timeout_s == 30.0
    (entry,) = config.header_sensors()
    assert "silence_timeout_s" not in entry.model_dump(exclude_unset=True)  # not the header's
    with pytest.raises(RunnerConfigError, match=r"sensors\.foot\.silence_timeout_s"):
        parse_runner_config(MINIMAL + "silence_timeout_s = 0\n")
