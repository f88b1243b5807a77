"""A scenario served over virtual BLE and captured by the client is the simulator's recording.

The Done-when of issue 4: a recording captured through the bumble path and one written directly
by the simulator decode to the same samples — the same payload bytes per characteristic, in the
same order per sensor; only the receive times differ.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.config import config_for_header
from sensors import uuids
from sensors.ble import VirtualRadio, open_backend
from sensors.ble.client import ClientOptions, SensorHub, SensorTarget
from sensors.gatt import (
    BatteryLevel,
    RscMeasurement,
    decode_pmd_data,
    decoder_for,
    encode_battery_level,
    encode_rsc_measurement,
)
from sensors.gatt.polar_pmd import PmdMeasurementType
from sensors.recording import (
    ConnectionEvent,
    Notification,
    PainEvent,
    Record,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
    SensorSpec,
)
from simulators.peripherals.polar import synthetic_acc_frames
from simulators.scenario import load_scenario
from simulators.serve_scenario import ScenarioPlan, ScenarioServer, plan_sensors
from simulators.session import recording_header, simulated_records, write_recording

WAIT_S = 10.0
OPTIONS = ClientOptions(connect_timeout_s=2.0, backoff_initial_s=0.02, backoff_max_s=0.1)


def per_sensor(records: Iterable[Record]) -> dict[str, list[tuple[str, bytes]]]:
    """Each sensor's notifications (and read values), in order: (char, payload)."""
    out: dict[str, list[tuple[str, bytes]]] = {}
    for record in records:
        if isinstance(record, Notification):
            out.setdefault(record.sensor, []).append((record.char, record.payload))
    return out


def events(records: Iterable[Record]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for record in records:
        if isinstance(record, ConnectionEvent):
            out.setdefault(record.sensor, []).append(record.kind)
    return out


async def capture(
    plan: ScenarioPlan, out: Path | None = None, *, speedup: float = math.inf
) -> list[Record]:
    """Serve the plan on a virtual radio; record what the client receives until all is in."""
    radio = VirtualRadio()
    config = config_for_header(plan.header, {s.id: s.name for s in plan.sensors})
    captured: list[Record] = []
    async with (
        ScenarioServer(radio, plan, speedup=speedup) as server,
        open_backend(radio) as backend,
        SensorHub(config.targets(), backend, options=OPTIONS, clock=server.now_s) as hub,
        asyncio.TaskGroup() as group,
    ):

        async def finish() -> None:
            async with asyncio.timeout(WAIT_S):
                await server.wait_done()
                await hub.wait_notified(plan.notification_counts)
            hub.close()

        group.create_task(finish())
        captured.extend([record async for record in hub.records()])
    if out is not None:
        header = config.recording_header(datetime(2026, 1, 1, tzinfo=UTC))
        with RecordingWriter(out, header) as writer:
            for record in captured:
                writer.write_record(record)
    return captured


async def test_a_capture_through_ble_decodes_to_the_same_samples_as_the_simulators_recording(
    tmp_path: Path,
) -> None:
    scenario = load_scenario("lean_forward")  # a footpod, a chest IMU, an HR strap, a band
    duration_s, seed = 20.0, 5
    direct_path, captured_path = tmp_path / "direct.jsonl", tmp_path / "captured.jsonl"
    write_recording(scenario, direct_path, duration_s=duration_s, seed=seed)
    header = recording_header(scenario)
    plan = plan_sensors(header, simulated_records(scenario, duration_s, seed))
    await capture(plan, captured_path)

    with RecordingReader(direct_path) as direct_reader:
        direct = list(direct_reader)
        direct_header = direct_reader.header
    with RecordingReader(captured_path) as captured_reader:
        captured = list(captured_reader)
        captured_header = captured_reader.header
    # The same sensors, declared the same way (the config made from the header round-trips).
    assert [s.model_dump() for s in captured_header.sensors] == [
        s.model_dump() for s in direct_header.sensors
    ]
    expected, got = per_sensor(direct), per_sensor(captured)
    assert set(got) == {"foot", "chest", "hr", "band"}
    for sensor, items in expected.items():
        assert got[sensor] == items, sensor  # same bytes, same order, reads included
        for char, payload in items:
            decoder = decoder_for(char)
            assert decoder is not None
            decoder(payload)  # and they decode (equal bytes decode to equal samples)
    assert sum(len(v) for v in got.values()) > 250  # 20 s of four sensors
    assert events(captured) == {s: ["connect", "disconnect"] for s in expected}
    # Times differ (they are this host's receive times), but run forward.
    times = [r.t for r in captured if r.t is not None]
    assert times == sorted(times)
    assert times != [r.t for r in direct if r.t is not None]


def _footpod_run() -> tuple[RecordingHeader, list[Record]]:
    """A hand-made run: the link drops at 5.5 s and is back at 8 s, battery 87 -> 50 %."""
    header = RecordingHeader(
        format="runmon-recording",
        version=1,
        runner="r9",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        sensors=[SensorSpec(id="pod", profile="rsc", cadence_unit="steps")],
    )

    def rsc(i: int) -> Notification:
        payload = encode_rsc_measurement(RscMeasurement(3.0 + i / 100, 170, None, None, True))
        return Notification(float(i), "pod", uuids.RSC_MEASUREMENT, payload)

    def battery(t: float, pct: int) -> Notification:
        return Notification(t, "pod", uuids.BATTERY_LEVEL, encode_battery_level(BatteryLevel(pct)))

    records: list[Record] = [
        ConnectionEvent(0.1, "pod", "connect"),
        battery(0.13, 87),
        *[rsc(i) for i in range(1, 6)],
        ConnectionEvent(5.5, "pod", "disconnect"),
        ConnectionEvent(8.0, "pod", "connect"),
        battery(8.03, 50),
        *[rsc(i) for i in range(9, 13)],
        PainEvent(10.0, 4, "low_back", False),
    ]
    return header, records


async def test_a_link_drop_of_the_run_is_replayed_over_the_air() -> None:
    header, records = _footpod_run()
    plan = plan_sensors(header, records)
    (pod,) = plan.sensors
    assert [(d.down_t_s, d.up_t_s) for d in pod.drops] == [(5.5, 8.0)]
    assert plan.other_records == [records[-1]]  # pain is not BLE: handed back
    captured = await capture(plan, speedup=40.0)
    assert per_sensor(captured) == per_sensor(records)  # both battery reads, all the data
    assert events(captured) == {"pod": ["connect", "disconnect", "connect", "disconnect"]}
    reconnect = [r for r in captured if isinstance(r, ConnectionEvent)][2]
    assert reconnect.t >= 8.0  # on the scenario's clock: not before the sensor came back


async def test_a_served_pmd_strap_streams_only_once_the_client_starts_it() -> None:
    header = RecordingHeader(
        format="runmon-recording",
        version=1,
        runner="r1",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        sensors=[
            SensorSpec(
                id="h10",
                profile="polar_pmd",
                settings={"acc": {"sample_rate_hz": 200, "range_g": 8, "resolution_bits": 16}},
            )
        ],
    )
    frames = synthetic_acc_frames(8)
    records: list[Record] = [
        Notification(0.1, "h10", uuids.BATTERY_LEVEL, bytes([77])),
        *[Notification(0.2 + 0.18 * i, "h10", uuids.PMD_DATA, f) for i, f in enumerate(frames)],
    ]
    plan = plan_sensors(header, records)
    radio = VirtualRadio()
    async with (
        ScenarioServer(radio, plan, speedup=math.inf) as server,
        open_backend(radio) as backend,
    ):
        control = server.controls["h10"]
        (target,) = config_for_header(header, {"h10": "runmon-r1-h10"}).targets()
        assert target.pmd_streams[0].sample_rate_hz == 200
        # A central that subscribes but never starts the stream gets no data.
        without_start = SensorTarget("h10", "heart_rate", address=server.plan.sensors[0].address)
        async with SensorHub([without_start], backend, options=OPTIONS) as idle:
            async with asyncio.timeout(WAIT_S):
                await idle.wait_notified({("h10", uuids.BATTERY_LEVEL): 1})
                await server.peripherals["h10"].wait_subscribed(uuids.HEART_RATE_MEASUREMENT)
            assert idle.notification_count("h10", uuids.PMD_DATA) == 0
            assert control.start_requests(PmdMeasurementType.ACC) == 0
        async with SensorHub([target], backend, options=OPTIONS) as hub:
            async with asyncio.timeout(WAIT_S):
                await hub.wait_notified({("h10", uuids.PMD_DATA): len(frames)})
            assert control.start_requests(PmdMeasurementType.ACC) == 1
            started = control.started[PmdMeasurementType.ACC]
            assert (started.sample_rate_hz, started.range) == ((200,), (8,))
            hub.close()
            got = [r async for r in hub.records()]
        await server.wait_done()
    data = [r.payload for r in got if isinstance(r, Notification) and r.char == uuids.PMD_DATA]
    assert data == frames
    first = decode_pmd_data(data[0])
    assert np.allclose(first.samples.mean(axis=0), [0.0, 1.0, 0.0], atol=0.02)
