"""Scenario events (pain, control), the footpod's battery and link, and scenarios using them."""

from __future__ import annotations

import io

import numpy as np
import pytest

from sensors import uuids
from sensors.gatt.battery import decode_battery_level
from sensors.gatt.heart_rate import decode_heart_rate_measurement
from sensors.gatt.rsc import decode_rsc_measurement
from sensors.recording import (
    ConnectionEvent,
    ControlEvent,
    Notification,
    PainEvent,
    Record,
    RecordingReader,
)
from simulators.errors import ScenarioError
from simulators.scenario import FootpodSpec, Scenario, load_scenario, parse_scenario
from simulators.session import simulated_records, write_recording

NEW_SCENARIOS = ("warmup_full", "traffic_lights", "pain_reports", "footpod_dies")

TIMELINE = """
[[timeline]]
t_s = 0
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 10
speed_mps = 3.2
cadence_spm = 172
"""


def toml(extra: str, sensors: str = '[sensors.foot]\nprofile = "rsc"') -> str:
    return f'name = "t"\nduration_s = 100\n{sensors}\n{TIMELINE}\n{extra}'


def _records(s: Scenario, seed: int = 0) -> list[Record]:
    return list(simulated_records(s, s.duration_s, seed))


def _t(record: Record) -> float:
    assert record.t is not None
    return record.t


def _levels(records: list[Record]) -> list[int]:
    notes = _of(records, "foot", uuids.BATTERY_LEVEL)
    return [decode_battery_level(n.payload).level_pct for n in notes]


def _of(records: list[Record], sensor: str, char: str) -> list[Notification]:
    return [
        r for r in records if isinstance(r, Notification) and r.sensor == sensor and r.char == char
    ]


def _speeds(records: list[Record], sensor: str = "foot") -> tuple[np.ndarray, np.ndarray]:
    notes = _of(records, sensor, uuids.RSC_MEASUREMENT)
    t = np.array([n.t for n in notes])
    v = np.array([decode_rsc_measurement(n.payload).speed_mps for n in notes])
    return t, v


# --- events ---------------------------------------------------------------------------------


def test_events_become_pain_and_control_records_in_time_order() -> None:
    s = parse_scenario(
        toml(
            """
[[events]]
t_s = 60
pain = { level = 6, location = "hip", radiating = true }

[[events]]
t_s = 20.5
control = { action = "snooze", minutes = 5 }

[[events]]
t_s = 30
control = { action = "mute" }
"""
        )
    )
    records = _records(s)
    assert [_t(r) for r in records] == sorted(_t(r) for r in records)
    events = [r for r in records if isinstance(r, PainEvent | ControlEvent)]
    assert events == [
        ControlEvent(20.5, "snooze", 5.0),
        ControlEvent(30.0, "mute", None),
        PainEvent(60.0, 6, "hip", True),
    ]
    # --duration cuts events after it; the recording writer writes them and they read back.
    assert not [r for r in simulated_records(s, 25.0, 0) if isinstance(r, PainEvent)]
    out = io.StringIO()
    write_recording(s, out)
    with RecordingReader(io.StringIO(out.getvalue())) as reader:
        read = [r for r in reader if isinstance(r, PainEvent | ControlEvent)]
    assert [(type(r), r.t) for r in read] == [(type(r), r.t) for r in events]
    assert read[2] == PainEvent(60.0, 6, "hip", True, line_no=read[2].line_no)


@pytest.mark.parametrize(
    ("events", "names"),
    [
        ('t_s = 5\npain = { level = 11, location = "hip" }', ["events.0.pain.level"]),
        ('t_s = 5\npain = { level = 2, location = "knee" }', ["events.0.pain.location"]),
        ('t_s = 5\npain = { level = 2.5, location = "hip" }', ["events.0.pain.level"]),
        ('t_s = 5\ncontrol = { action = "pause" }', ["events.0.control.action"]),
        ('t_s = 5\ncontrol = { action = "snooze", minutes = -1 }', ["events.0.control.minutes"]),
        ("t_s = 5", ["events.0", "exactly one of pain and control"]),
        (
            't_s = 5\npain = { level = 2, location = "hip" }\ncontrol = { action = "mute" }',
            ["events.0", "exactly one"],
        ),
        ('t_s = 500\ncontrol = { action = "mute" }', ["events.0.t_s", "after the scenario"]),
        ('t_s = 5\nsound = { action = "mute" }', ["events.0.sound"]),
    ],
)
def test_event_errors_name_the_bad_field(events: str, names: list[str]) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(toml(f"[[events]]\n{events}\n"), "ev.toml")
    message = str(info.value)
    assert message.startswith("ev.toml: ")
    for name in names:
        assert name in message, message


# --- footpod --------------------------------------------------------------------------------


def test_footpod_battery_falls_then_dies_with_a_disconnect() -> None:
    s = parse_scenario(
        toml("", '[sensors.foot]\nprofile = "rsc"\nbattery_pct = 20\nbattery_dies_at_s = 70')
    )
    records = _records(s)
    foot = [r for r in records if getattr(r, "sensor", None) == "foot"]
    assert isinstance(foot[-1], ConnectionEvent)
    assert foot[-1].kind == "disconnect"
    assert foot[-1].t == 70.0
    assert all(_t(r) < 70.0 for r in foot[:-1])
    t, _ = _speeds(records)
    assert t[-1] > 68.0
    levels = _levels(records)
    assert levels[0] == 20  # the read on connect
    assert levels == sorted(levels, reverse=True)
    assert levels[-1] <= 1
    with pytest.raises(ScenarioError, match=r"sensors\.foot\.battery_dies_at_s"):
        parse_scenario(toml("", '[sensors.foot]\nprofile = "rsc"\nbattery_dies_at_s = 200'))


def test_footpod_link_loss_and_drops() -> None:
    s = parse_scenario(
        toml(
            "",
            '[sensors.foot]\nprofile = "rsc"\nlink.packet_loss = 0.2\n'
            "link.drops = [{ t_s = 40, duration_s = 15 }]",
        )
    )
    records = _records(s, seed=2)
    kinds = [(r.kind, r.t) for r in records if isinstance(r, ConnectionEvent)]
    assert [k for k, _ in kinds] == ["connect", "disconnect", "connect"]
    assert kinds[1][1] == 40.0
    assert kinds[2][1] == 55.0
    t, _ = _speeds(records)
    assert not ((t >= 40.0) & (t < 55.0)).any()
    assert 0.55 * 85 < t.size < 0.95 * 85  # about a fifth lost, and 15 s of drop
    assert np.all(np.diff(t) > 0)


def test_footpod_without_a_link_keeps_its_simple_timing() -> None:
    s = parse_scenario(toml(""))
    spec = s.sensors["foot"]
    assert isinstance(spec, FootpodSpec)
    assert spec.link is None
    assert spec.battery_dies_at_s is None
    t, _ = _speeds(_records(s))
    assert np.allclose(np.diff(t), 1.0, atol=0.03)


# --- shipped scenarios ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NEW_SCENARIOS)
def test_new_scenarios_ship_validate_and_simulate_in_order(name: str) -> None:
    s = load_scenario(name)
    assert s.name == name
    assert len(s.description) > 40
    records = _records(s)
    assert [_t(r) for r in records] == sorted(_t(r) for r in records)
    assert max(r.t or 0.0 for r in records) > s.duration_s - 2.0


def test_warmup_full_warms_up_past_60_percent_then_runs_and_cools_down() -> None:
    s = load_scenario("warmup_full")
    assert {spec.profile for spec in s.sensors.values()} == {"runmon_imu", "heart_rate"}
    t = np.arange(0.0, s.duration_s, 1.0)
    speed = s.target("speed_mps", t)
    assert (speed[:60] == 0).all()  # stands
    warmup = (t >= 70) & (t < 600)
    assert (speed[warmup] > 1.0).all()  # walking and drills
    assert (speed[warmup] < 2.5).all()
    assert (speed[(t >= 610) & (t < 1230)] >= 3.0).all()  # runs 10 minutes
    assert (speed[t >= 1240] == 0).all()  # stands 5 minutes
    assert s.duration_s - 1240 >= 240
    records = _records(s)
    hr = _of(records, "hr", uuids.HEART_RATE_MEASUREMENT)
    bpm = {round(n.t): decode_heart_rate_measurement(n.payload).heart_rate_bpm for n in hr}
    limit = 0.6 * s.runner.hr_max_bpm
    assert max(v for k, v in bpm.items() if k < 120) < limit
    assert max(v for k, v in bpm.items() if 540 < k < 606) > limit  # past 60 % in the warm-up
    assert min(v for k, v in bpm.items() if k > 1490) < max(bpm.values()) - 30  # recovering


def _zero_runs(t: np.ndarray, v: np.ndarray) -> list[tuple[float, float]]:
    """(first, last) receive times of each run of zero speed after the runner started."""
    runs: list[tuple[float, float]] = []
    start = None
    started = False
    for ti, vi in zip(t.tolist(), v.tolist(), strict=True):
        if vi > 1.0:
            started = True
            if start is not None:
                runs.append((start, ti))
                start = None
        elif vi == 0.0 and started and start is None:
            start = ti
    if start is not None:
        runs.append((start, float(t[-1])))
    return runs


def test_traffic_lights_stop_twice_then_for_real() -> None:
    s = load_scenario("traffic_lights")
    t, v = _speeds(_records(s))
    runs = _zero_runs(t, v)
    assert len(runs) == 3, runs
    (a0, a1), (b0, b1), (c0, c1) = runs
    assert 720 <= a0 <= 730
    assert 60 <= a1 - a0 <= 90
    assert 1080 <= b0 <= 1090
    assert 60 <= b1 - b0 <= 90
    assert 1500 <= c0 <= 1510
    assert c1 - c0 >= 290
    between = (t > 810) & (t < 1075)
    assert (v[between] > 2.5).all()


def test_pain_reports_are_sent_as_specified() -> None:
    s = load_scenario("pain_reports")
    pains = [r for r in _records(s) if isinstance(r, PainEvent)]
    assert len(pains) == 5
    times = np.array([p.t for p in pains])
    speed = s.target("speed_mps", times)
    running_from = 60.0
    early = pains[0]
    assert early.t - running_from < 600
    assert early.location == "low_back"
    assert early.level <= 3
    assert any(p.radiating for p in pains)
    assert any(p.level >= 7 for p in pains)
    assert any(abs(p.t - s.duration_s / 2) < 300 for p in pains)  # one mid-run
    assert (speed[:-1] > 2.0).all()  # four while running
    last = pains[-1]
    run_over = s.target("speed_mps", np.arange(last.t - 60.0, last.t + 1.0))
    assert (run_over == 0).all()  # the last after the run ended, standing


def test_footpod_dies_at_20_minutes_while_the_chest_strap_keeps_going() -> None:
    s = load_scenario("footpod_dies")
    records = _records(s)
    foot = [r for r in records if getattr(r, "sensor", None) == "foot"]
    assert foot[-1] == ConnectionEvent(1200.0, "foot", "disconnect")
    t, _ = _speeds(records)
    assert 1198.0 < t[-1] < 1200.0
    chest = _of(records, "chest", uuids.RUNMON_IMU_DATA)
    assert chest[-1].t > s.duration_s - 1.0
    assert sum(1 for n in chest if n.t > 1200.0) > 500
    levels = _levels(records)
    assert levels[0] == 12
    assert levels[-1] == 0
