"""The thin slice live: simulated footpod -> service -> real Mosquitto -> a separate subscriber."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from monitor.demo import paced
from monitor.listen import CuePayload, parse_cue
from monitor.mqtt.client import BrokerAddress, InboundMessage, MqttLink, wait_for_message
from monitor.mqtt.topics import Topics
from monitor.service import CUE_SCHEMA, RunnerFeed, serve
from sensors.recording import ConnectionEvent, Record
from simulators.scenario import load_scenario
from simulators.session import recording_header, simulated_records

RUNMON = str(Path(sys.executable).with_name("runmon"))


async def _collect(link: MqttLink, into: list[InboundMessage]) -> None:
    # Appended one by one: the collector is cancelled, and must keep what it saw so far.
    async for message in link.messages():
        into.append(message)  # noqa: PERF401


def _feed(speedup: float, seed: int = 1, duration_s: float = 600.0) -> RunnerFeed:
    scenario = load_scenario("stride_shorten")
    loop = asyncio.get_running_loop()
    start = loop.time()
    records: AsyncIterator[Record] = paced(
        simulated_records(scenario, duration_s, seed), speedup, start
    )
    return RunnerFeed(
        header=recording_header(scenario),
        records=records,
        data_clock=lambda: (loop.time() - start) * speedup,
    )


async def test_cue_arrives_with_its_mqtt5_properties(
    mqtt_address: BrokerAddress, topics: Topics
) -> None:
    received: list[InboundMessage] = []
    async with MqttLink(mqtt_address) as app:
        await app.subscribe(topics.cues("r1"), qos=1)
        await app.subscribe(topics.session("r1"), qos=1)
        await app.subscribe(topics.status("test"), qos=1)
        await app.subscribe(f"{topics.runner_base('r1')}/sensors/+", qos=1)
        async with asyncio.TaskGroup() as group:
            collector = group.create_task(_collect(app, received))
            results = await serve(
                mqtt_address, [_feed(speedup=1000.0)], topics=topics, instance="test"
            )
            await asyncio.sleep(0.3)
            collector.cancel()

    cues = [m for m in received if m.topic == topics.cues("r1")]
    decided = [c.code for c in results[0].cues]
    assert decided == ["warmup_core", "warmup_incomplete", "stride_shorten"]
    assert [parse_cue(m).code for m in cues] == decided
    assert [parse_cue(m).seq for m in cues] == [1, 2, 3]
    message = cues[2]
    assert message.qos == 1
    assert not message.retain
    assert message.content_type == "application/json"
    assert message.user_property("schema") == CUE_SCHEMA
    assert message.expiry_s is not None
    assert 1 <= message.expiry_s <= 5  # ttl_s of a form cue, minus any time in flight
    cue: CuePayload = parse_cue(message)
    assert cue.code == "stride_shorten"
    assert cue.runner == "r1"
    assert cue.seq == 3
    assert cue.ttl_s == 5
    assert cue.phase == "running"
    assert cue.ts.endswith("Z")
    assert 480 < cue.t_s <= 540
    assert cue.evidence["metric"] == "stride_length_m"
    assert cue.text == "Shorten your stride: quicker, lighter steps."

    statuses = [m.text() for m in received if m.topic == topics.status("test")]
    assert statuses[0] == "online"
    assert statuses[-1] == "offline"
    sessions = [m.json() for m in received if m.topic == topics.session("r1")]
    assert isinstance(sessions[0], dict)
    assert sessions[0]["phase"] == "warmup"
    assert sessions[0]["sensors"] == ["foot"]
    phases = [s["phase"] for s in sessions if isinstance(s, dict)]
    assert "running" in phases
    assert phases[-1] == "ended"
    assert any(isinstance(s, dict) and s["baseline_ready"] for s in sessions)
    sensor_states = [m.json() for m in received if m.topic.endswith("/sensors/foot")]
    assert any(isinstance(s, dict) and s["state"] == "streaming" for s in sensor_states)
    assert any(isinstance(s, dict) and s["battery_pct"] == 87 for s in sensor_states)


async def test_metrics_are_retained_rows_and_report_is_published(
    mqtt_address: BrokerAddress, topics: Topics
) -> None:
    await serve(
        mqtt_address, [_feed(speedup=2000.0, duration_s=200.0)], topics=topics, instance="t2"
    )
    # A dashboard that connects afterwards still gets the last row and the report.
    async with MqttLink(mqtt_address) as late:
        await late.subscribe(topics.metrics("r1"), qos=0)
        await late.subscribe(topics.report("r1"), qos=1)
        seen: dict[str, InboundMessage] = {}
        async with asyncio.timeout(5):
            async for message in late.messages():
                seen[message.topic] = message
                if len(seen) == 2:
                    break
    row = seen[topics.metrics("r1")].json()
    assert isinstance(row, dict)
    assert row["t_s"] == 199
    assert row["phase"] == "running"
    assert set(row["quality"]) >= {"cadence_spm", "trunk_lean_deg"}
    assert seen[topics.metrics("r1")].retain
    report = seen[topics.report("r1")].json()
    assert isinstance(report, dict)
    assert report["runner"] == "r1"
    assert report["metrics"]["cadence_spm"]["mean"] > 100


async def test_killed_service_goes_offline_through_its_will(
    mqtt_address: BrokerAddress, topics: Topics
) -> None:
    status_topic = topics.status("killme")
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; we never block on it
        [
            RUNMON,
            "demo",
            "--broker",
            mqtt_address.url,
            "--root",
            topics.root,
            "--instance",
            "killme",
            "--speedup",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with MqttLink(mqtt_address) as watcher:
            await watcher.subscribe(status_topic, qos=1)
            online = await wait_for_message(
                watcher, lambda m: m.topic == status_topic and m.payload == b"online", timeout_s=30
            )
            assert online.payload == b"online"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            offline = await wait_for_message(
                watcher, lambda m: m.topic == status_topic, timeout_s=15
            )
            assert offline.payload == b"offline"
        # Retained: a dashboard connecting later sees the service is gone.
        async with MqttLink(mqtt_address) as later:
            await later.subscribe(status_topic, qos=1)
            retained = await wait_for_message(later, lambda m: m.topic == status_topic, timeout_s=5)
            assert retained.retain
            assert retained.payload == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_dropped_link_is_reported_lost_at_once(
    mqtt_address: BrokerAddress, topics: Topics
) -> None:
    scenario = load_scenario("stride_shorten")
    records: list[Record] = []
    for record in simulated_records(scenario, 200.0, 3):
        if 100.5 < record.t < 150.0:  # type: ignore[operator]
            continue
        records.append(record)
    records.append(ConnectionEvent(100.5, "foot", "disconnect"))
    records.append(ConnectionEvent(150.0, "foot", "connect"))
    records.sort(key=lambda r: r.t or 0.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    speedup = 400.0
    feed = RunnerFeed(
        header=recording_header(scenario),
        records=paced(records, speedup, start),
        data_clock=lambda: (loop.time() - start) * speedup,
    )
    received: list[InboundMessage] = []
    async with MqttLink(mqtt_address) as app:
        await app.subscribe(topics.sensor("r1", "foot"), qos=1)
        async with asyncio.TaskGroup() as group:
            collector = group.create_task(_collect(app, received))
            await serve(mqtt_address, [feed], topics=topics, instance="drop")
            await asyncio.sleep(0.3)
            collector.cancel()
    states = [m.json() for m in received]
    lost = [s for s in states if isinstance(s, dict) and s["state"] == "lost"]
    assert lost, states
    assert lost[0]["last_data_age_s"] < 3.0  # reported on the disconnect, not after 3 s silence
    assert isinstance(states[-1], dict)
    assert states[-1]["state"] == "streaming"
