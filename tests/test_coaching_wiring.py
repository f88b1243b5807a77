"""Pain, controls and history wired end to end: recordings, ``--history``, live MQTT and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.analyze import analyze_recording
from monitor.demo import paced
from monitor.history import History
from monitor.listen import parse_cue
from monitor.mqtt.client import BrokerAddress, InboundMessage, MqttLink
from monitor.mqtt.topics import Topics
from monitor.service import RunnerFeed, serve
from rules.catalog import FORM_CODES
from sensors.recording import RecordingReader
from simulators.scenario import load_scenario
from simulators.session import recording_header, simulated_records, write_recording

RUNMON = str(Path(sys.executable).with_name("runmon"))


def _recording(tmp_path: Path, name: str, events: list[dict[str, object]], **kw: object) -> Path:
    """A simulated stride_shorten run with extra event lines merged in by time."""
    path = tmp_path / f"{name}.jsonl"
    write_recording(load_scenario("stride_shorten"), path, seed=3)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header.update(kw)
    body = [json.loads(line) for line in lines[1:]] + events
    body.sort(key=lambda obj: float(obj["t"]))
    path.write_text("\n".join(json.dumps(o) for o in [header, *body]) + "\n")
    return path


def test_analyze_answers_pain_events_in_the_recording(tmp_path: Path) -> None:
    path = _recording(
        tmp_path,
        "pain",
        [
            {"t": 95.2, "event": "pain", "level": 3, "location": "low_back", "radiating": False},
            {"t": 700.4, "event": "pain", "level": 4, "location": "low_back", "radiating": True},
        ],
    )
    cues = analyze_recording(path).cues
    pain = [(c.code, c.t_s) for c in cues if c.code.startswith("pain") or c.code == "see_pt"]
    assert pain == [("pain_start", 96.0), ("see_pt", 701.0), ("pain_mid", 702.0)]


def test_mute_and_snooze_in_the_recording_silence_form_cues(tmp_path: Path) -> None:
    muted = _recording(tmp_path, "mute", [{"t": 300.0, "event": "control", "action": "mute"}])
    assert [c.code for c in analyze_recording(muted).cues if c.code in FORM_CODES] == []
    snoozed = _recording(
        tmp_path, "snooze", [{"t": 470.0, "event": "control", "action": "snooze", "minutes": 4}]
    )
    form = [c for c in analyze_recording(snoozed).cues if c.code in FORM_CODES]
    assert form
    assert form[0].t_s >= 470 + 240


def test_history_carries_baselines_and_pain_across_runs(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    pain = {"event": "pain", "level": 3, "location": "low_back", "radiating": False}
    days = ["2026-03-01", "2026-03-05", "2026-03-09"]
    results = []
    for day in days:
        path = _recording(tmp_path, day, [{"t": 900.0 - 50, **pain}], started_at=f"{day}T07:00:00Z")
        with History(db) as history:
            results.append(analyze_recording(path, history=history))
    codes = [[c.code for c in r.cues if c.code in {"pain_mid", "see_pt"}] for r in results]
    # Back pain on a third run within 14 days: see a physical therapist.
    assert codes == [["pain_mid"], ["pain_mid"], ["see_pt", "pain_mid"]]
    with History(db) as history:
        assert len(history.sessions("r1")) == 3
        assert history.baselines("r1")
    # Analysing the same run again replaces it rather than counting it twice.
    again = _recording(tmp_path, "again", [{"t": 850.0, **pain}], started_at=f"{days[0]}T07:00:00Z")
    with History(db) as history:
        analyze_recording(again, history=history)
        assert len(history.sessions("r1")) == 3


def test_stored_baseline_makes_a_later_run_coachable_from_the_start(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    first = _recording(tmp_path, "first", [], started_at="2026-03-01T07:00:00Z")
    with History(db) as history:
        analyze_recording(first, history=history)
    # A second run that over-strides from minute 3: too early to learn a baseline of its own.
    scenario = load_scenario("stride_shorten").model_copy(update={"fault_onset_s": 180.0})
    early = scenario.model_copy(
        update={
            "timeline": [
                k.model_copy(update={"t_s": k.t_s - 300.0}) if k.t_s >= 480 else k
                for k in scenario.timeline
            ]
        }
    )
    path = tmp_path / "second.jsonl"
    write_recording(early, path, seed=4)
    text = path.read_text().replace("2026-01-01T07:00:00Z", "2026-03-03T07:00:00Z", 1)
    path.write_text(text)
    assert [c.code for c in analyze_recording(path).cues if c.code in FORM_CODES] == []
    with History(db) as history:
        cues = analyze_recording(path, history=history).cues
    stride = [c for c in cues if c.code == "stride_shorten"]
    assert stride
    assert 180 < stride[0].t_s <= 240


async def _collect(link: MqttLink, into: list[InboundMessage]) -> None:
    async for message in link.messages():
        into.append(message)  # noqa: PERF401 - cancelled: keep what arrived


async def test_live_pain_control_and_bad_payloads_over_mqtt(
    mqtt_address: BrokerAddress, topics: Topics
) -> None:
    scenario = load_scenario("stride_shorten")
    loop = asyncio.get_running_loop()
    start = loop.time()
    speedup = 60.0
    feed = RunnerFeed(
        header=recording_header(scenario),
        records=paced(simulated_records(scenario, 240.0, 2), speedup, start),
        data_clock=lambda: (loop.time() - start) * speedup,
    )
    received: list[InboundMessage] = []

    def app(*args: str) -> None:
        result = subprocess.run(
            [RUNMON, *args, "--broker", mqtt_address.url, "--root", topics.root, "--runner", "r1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    async def runner_app() -> None:
        await asyncio.sleep(1.5)  # 90 s into the run
        await asyncio.to_thread(app, "pain", "--level", "8")
        async with MqttLink(mqtt_address) as raw:
            await raw.publish(topics.pain("r1"), b'{"level": "very bad"}', qos=1)
            await raw.publish(topics.control("r1"), b"not json", qos=1)
        await asyncio.to_thread(app, "control", "snooze", "--minutes", "5")

    async with MqttLink(mqtt_address) as watcher:
        await watcher.subscribe(topics.cues("r1"), qos=1)
        await watcher.subscribe(topics.errors("r1"), qos=0)
        async with asyncio.TaskGroup() as group:
            collector = group.create_task(_collect(watcher, received))
            group.create_task(runner_app())
            await serve(mqtt_address, [feed], topics=topics, instance="wiring")
            await asyncio.sleep(0.2)
            collector.cancel()

    cues = [parse_cue(m) for m in received if m.topic == topics.cues("r1")]
    severe = [c for c in cues if c.code == "pain_severe"]
    assert len(severe) == 1
    assert severe[0].priority == 1
    assert 80 <= severe[0].t_s <= 120
    errors = [m.json() for m in received if m.topic == topics.errors("r1")]
    assert len(errors) == 2
    first, second = errors
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["topic"] == topics.pain("r1")
    assert "level" in first["error"]
    assert second["topic"] == topics.control("r1")
    assert "not JSON" in second["error"]
    assert first["count"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pain", "--runner", "r1", "--level", "11"], "invalid choice"),
        (["control", "--runner", "bad/id", "mute"], "runner"),
    ],
)
def test_app_commands_refuse_bad_input(args: list[str], message: str) -> None:
    result = subprocess.run([RUNMON, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert message in result.stderr


async def test_live_run_and_its_replay_decide_the_same_cues(
    mqtt_address: BrokerAddress, topics: Topics, tmp_path: Path
) -> None:
    events = [
        {"t": 300.5, "event": "pain", "level": 3, "location": "low_back", "radiating": False},
        {"t": 400.25, "event": "control", "action": "snooze", "minutes": 1},
    ]
    path = _recording(tmp_path, "live", events)
    # Live: the same records, paced 2000x through the service and the broker.
    with RecordingReader(path) as reader:
        header = reader.header
        records = list(reader)
    loop = asyncio.get_running_loop()
    start = loop.time()
    speedup = 2000.0
    feed = RunnerFeed(
        header=header,
        records=paced(records, speedup, start),
        data_clock=lambda: (loop.time() - start) * speedup,
    )
    live = await serve(mqtt_address, [feed], topics=topics, instance="determinism")
    replay = analyze_recording(path)
    assert [c.to_json() for c in live[0].cues] == [c.to_json() for c in replay.cues]
    assert live[0].rows == len(replay.rows)
    assert {c.code for c in replay.cues} >= {"pain_start", "stride_shorten"}
