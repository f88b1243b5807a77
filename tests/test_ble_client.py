"""The BLE client against virtual peripherals over real ATT/GATT (bleak on bumble, no radio).

Every wait is on an event (a record, a status, a peripheral's connection), bounded by ``WAIT_S``
so a failure is a clear timeout, not a hung test.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import numpy as np
import pytest
from bleak import BleakScanner
from bleak.exc import BleakError

from sensors import uuids
from sensors.ble import (
    BleBackend,
    BleTransportError,
    BumbleAdapter,
    SensorLinkError,
    VirtualRadio,
    open_backend,
)
from sensors.ble.client import (
    ClientOptions,
    PmdStreamRequest,
    SensorHub,
    SensorStatus,
    SensorTarget,
    backoff_delay_s,
)
from sensors.ble.scan import identify_profile, scan_with
from sensors.gatt import (
    BreathBlock,
    HeartRateMeasurement,
    ImuBlock,
    ImuConfig,
    RscMeasurement,
    decode_battery_level,
    decode_imu_config,
    decode_pmd_control_point,
    decode_pmd_data,
    encode_breath_block,
    encode_heart_rate_measurement,
    encode_imu_block,
    encode_rsc_measurement,
)
from sensors.gatt.polar_pmd import PmdControlPointResponse, PmdMeasurementType, PmdStatus
from sensors.recording import ConnectionEvent, Notification, Record
from simulators.peripherals import VirtualPeripheral
from simulators.peripherals.polar import PmdControl, polar_h10, synthetic_acc_frames
from simulators.peripherals.profiles import breath_band, footpod, heart_rate_strap, imu_strap

WAIT_S = 5.0
FAST = ClientOptions(
    connect_timeout_s=0.5,
    find_timeout_s=0.5,
    silence_timeout_s=1.0,
    pmd_response_timeout_s=1.0,
    disconnect_timeout_s=1.0,
    backoff_initial_s=0.05,
    backoff_max_s=0.2,
)
ACC = PmdMeasurementType.ACC


# --------------------------------------------------------------------------- payloads


def rsc_payloads(n: int) -> list[bytes]:
    return [
        encode_rsc_measurement(RscMeasurement(3.0 + i / 64, 170 + i % 5, None, None, True))
        for i in range(n)
    ]


def hr_payloads(n: int) -> list[bytes]:
    return [
        encode_heart_rate_measurement(HeartRateMeasurement(130 + i, "contact", None, (0.5,)))
        for i in range(n)
    ]


def imu_payloads(n: int) -> list[bytes]:
    rng = np.random.default_rng(3)
    return [
        encode_imu_block(
            ImuBlock(19 * i, 200, rng.normal(0, 1, (19, 3)), rng.normal(0, 50, (19, 3)))
        )
        for i in range(n)
    ]


def breath_payloads(n: int) -> list[bytes]:
    return [encode_breath_block(BreathBlock(10 * i, 25, np.arange(10.0) + i)) for i in range(n)]


async def from_list(payloads: list[bytes]) -> AsyncIterator[bytes]:
    for payload in payloads:
        yield payload


async def forever(payloads: list[bytes], period_s: float = 0.01) -> AsyncIterator[bytes]:
    """Cycle through ``payloads`` at a steady rate, as a strap streams."""
    i = 0
    while True:
        yield payloads[i % len(payloads)]
        i += 1
        await asyncio.sleep(period_s)


# --------------------------------------------------------------------------- harness


class Collector:
    """Consumes a hub's records and statuses; tests await conditions on them."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.statuses: list[SensorStatus] = []
        self.changed = asyncio.Event()
        self.ended = asyncio.Event()
        self.error: BaseException | None = None

    def on_status(self, status: SensorStatus) -> None:
        self.statuses.append(status)
        self.changed.set()

    async def consume(self, hub: SensorHub) -> None:
        try:
            async for record in hub.records():
                self.records.append(record)
                self.changed.set()
        except BleTransportError as error:
            self.error = error
        finally:
            self.ended.set()
            self.changed.set()

    async def until(self, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    def data(self, sensor: str, char: str) -> list[bytes]:
        return [
            r.payload
            for r in self.records
            if isinstance(r, Notification) and r.sensor == sensor and r.char == char
        ]

    def events(self, sensor: str) -> list[str]:
        return [
            r.kind for r in self.records if isinstance(r, ConnectionEvent) and r.sensor == sensor
        ]

    def states(self, sensor: str) -> list[str]:
        return [s.state for s in self.statuses if s.sensor == sensor]

    def last(self, sensor: str) -> SensorStatus | None:
        mine = [s for s in self.statuses if s.sensor == sensor]
        return mine[-1] if mine else None


@pytest.fixture
def radio() -> VirtualRadio:
    return VirtualRadio()


@pytest.fixture
async def backend(radio: VirtualRadio) -> AsyncIterator[BleBackend]:
    async with open_backend(radio) as backend:
        yield backend


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def start_hub(
    stack: AsyncExitStack,
    targets: list[SensorTarget],
    backend: BleBackend,
    options: ClientOptions = FAST,
    **kwargs: Any,
) -> tuple[SensorHub, Collector]:
    collector = Collector()
    hub = SensorHub(
        targets,
        backend,
        options=options,
        on_status=collector.on_status,
        rng=random.Random(1),
        **kwargs,
    )
    await stack.enter_async_context(hub)
    group = await stack.enter_async_context(asyncio.TaskGroup())
    stack.callback(hub.close)  # runs before the group waits for the consumer
    group.create_task(collector.consume(hub), name="consume")
    return hub, collector


async def add(stack: AsyncExitStack, peripheral: VirtualPeripheral) -> VirtualPeripheral:
    return await stack.enter_async_context(peripheral)


def spawn(stack: AsyncExitStack, coroutine: Any, name: str) -> asyncio.Task[Any]:
    """A background task (a peripheral's stream), cancelled and awaited when the test ends."""
    task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
    task.set_name(name)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    return task


# --------------------------------------------------------------------------- streaming


async def test_discovers_connects_reads_and_streams_by_name_and_by_address(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    pod = await add(stack, VirtualPeripheral(footpod("Stryd", battery_pct=87), radio))
    strap = await add(stack, VirtualPeripheral(heart_rate_strap("HRM-Pro"), radio))
    rsc, hr = rsc_payloads(6), hr_payloads(6)
    spawn(stack, pod.stream(uuids.RSC_MEASUREMENT, from_list(rsc)), "pod")
    spawn(stack, strap.stream(uuids.HEART_RATE_MEASUREMENT, from_list(hr)), "strap")
    hub, got = await start_hub(
        stack,
        [
            SensorTarget("foot", "rsc", name="Stryd"),
            SensorTarget("hr", "heart_rate", address=strap.address),
        ],
        backend,
    )
    await got.until(
        lambda: (
            len(got.data("foot", uuids.RSC_MEASUREMENT)) == 6
            and len(got.data("hr", uuids.HEART_RATE_MEASUREMENT)) == 6
        )
    )
    assert got.data("foot", uuids.RSC_MEASUREMENT) == rsc
    assert got.data("hr", uuids.HEART_RATE_MEASUREMENT) == hr
    # What a recording holds: the connect, the battery read, then the data, on one clock.
    foot = [r for r in got.records if getattr(r, "sensor", None) == "foot"]
    assert isinstance(foot[0], ConnectionEvent)
    assert foot[0].kind == "connect"
    assert isinstance(foot[1], Notification)
    assert foot[1].char == uuids.BATTERY_LEVEL
    assert decode_battery_level(foot[1].payload).level_pct == 87
    times = [r.t for r in got.records if r.t is not None]
    assert times == sorted(times)
    assert got.states("foot")[:2] == ["connecting", "streaming"]
    status = hub.status("foot")
    assert (status.state, status.battery_pct, status.connects) == ("streaming", 87, 1)
    assert 0.0 < status.t_s <= hub.now()  # when it started streaming, on the hub's clock
    assert hub.notification_count("foot", uuids.RSC_MEASUREMENT) == 6


@pytest.mark.parametrize("count", [2, 4])
async def test_several_sensors_stream_at_once(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack, count: int
) -> None:
    makers = [
        ("chest", "runmon_imu", imu_strap("imu", config=ImuConfig(200, "chest")),
         uuids.RUNMON_IMU_DATA, imu_payloads(12)),
        ("foot", "rsc", footpod("pod"), uuids.RSC_MEASUREMENT, rsc_payloads(12)),
        ("hr", "heart_rate", heart_rate_strap("hr"), uuids.HEART_RATE_MEASUREMENT,
         hr_payloads(12)),
        ("band", "runmon_breath", breath_band("band"), uuids.RUNMON_BREATH_DATA,
         breath_payloads(12)),
    ][:count]  # fmt: skip
    targets = []
    for sensor_id, profile, spec, char, payloads in makers:
        peripheral = await add(stack, VirtualPeripheral(spec, radio))
        spawn(stack, peripheral.stream(char, from_list(payloads)), sensor_id)
        targets.append(SensorTarget(sensor_id, profile, address=peripheral.address))  # type: ignore[arg-type]
    hub, got = await start_hub(stack, targets, backend)
    await got.until(lambda: all(len(got.data(m[0], m[3])) == 12 for m in makers))
    for sensor_id, _, _, char, payloads in makers:
        assert got.data(sensor_id, char) == payloads
        assert hub.status(sensor_id).state == "streaming"
    if count == 4:
        # The IMU config is read on connect and recorded, as the simulator's recordings have it.
        (config,) = got.data("chest", uuids.RUNMON_IMU_CONFIG)
        assert decode_imu_config(config) == ImuConfig(200, "chest")


# --------------------------------------------------------------------------- link loss


async def test_reconnects_after_the_peripheral_drops_the_link_and_data_resumes(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    pod = await add(stack, VirtualPeripheral(footpod("pod", battery_pct=55), radio))
    first, second = rsc_payloads(8)[:4], rsc_payloads(8)[4:]
    hub, got = await start_hub(stack, [SensorTarget("foot", "rsc", address=pod.address)], backend)
    await pod.wait_subscribed(uuids.RSC_MEASUREMENT)
    for payload in first:
        await pod.notify(uuids.RSC_MEASUREMENT, payload)
    await got.until(lambda: len(got.data("foot", uuids.RSC_MEASUREMENT)) == 4)

    assert await pod.drop_link() == 1
    await got.until(lambda: got.events("foot") == ["connect", "disconnect", "connect"])
    async with asyncio.timeout(WAIT_S):
        await pod.wait_subscribed(uuids.RSC_MEASUREMENT)
    for payload in second:
        await pod.notify(uuids.RSC_MEASUREMENT, payload)
    await got.until(lambda: len(got.data("foot", uuids.RSC_MEASUREMENT)) == 8)

    assert got.data("foot", uuids.RSC_MEASUREMENT) == first + second
    assert len(got.data("foot", uuids.BATTERY_LEVEL)) == 2  # read again on the reconnect
    states = got.states("foot")
    assert states[:4] == ["connecting", "streaming", "lost", "connecting"]
    lost = next(s for s in got.statuses if s.state == "lost")
    assert "sensor 'foot'" in (lost.reason or "")
    assert "link lost" in (lost.reason or "")
    assert hub.status("foot").connects == 2


async def test_pmd_streams_start_with_the_configured_settings_and_restart_after_a_drop(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    control = PmdControl(factor=1.0)
    strap = await add(stack, VirtualPeripheral(polar_h10(control=control), radio))
    control.attach(strap)
    frames = synthetic_acc_frames(4)
    spawn(stack, strap.stream(uuids.PMD_DATA, control.gate(forever(frames))), "pmd")
    request = PmdStreamRequest("acc", sample_rate_hz=100, range=4, resolution_bits=16)
    hub, got = await start_hub(
        stack,
        [SensorTarget("h10", "polar_pmd", name=strap.spec.name, pmd_streams=(request,))],
        backend,
    )
    await got.until(lambda: len(got.data("h10", uuids.PMD_DATA)) >= 3)
    assert control.start_requests(ACC) == 1
    settings = control.started[ACC]
    assert (settings.sample_rate_hz, settings.range, settings.resolution_bits) == (
        (100,),
        (4,),
        (16,),
    )
    # The control point's answers are recorded too (the start response carries FACTOR).
    answers = [decode_pmd_control_point(p) for p in got.data("h10", uuids.PMD_CONTROL_POINT)]
    responses = [a for a in answers if isinstance(a, PmdControlPointResponse)]
    assert [(r.op_code, r.measurement_type, r.status) for r in responses] == [
        (2, ACC, PmdStatus.SUCCESS)
    ]
    assert responses[0].settings().factor == (1.0,)
    assert decode_pmd_data(got.data("h10", uuids.PMD_DATA)[0]).n_samples == 36

    before = len(got.data("h10", uuids.PMD_DATA))
    await strap.drop_link()  # the strap forgets its streams with the link
    await got.until(lambda: got.events("h10") == ["connect", "disconnect", "connect"])
    await got.until(lambda: len(got.data("h10", uuids.PMD_DATA)) >= before + 3)
    assert control.start_requests(ACC) == 2  # the client started the stream again
    assert hub.status("h10").state == "streaming"


async def test_watchdog_treats_a_silent_link_as_lost_and_reconnects(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    quiet = await add(stack, VirtualPeripheral(breath_band("band"), radio))
    options = ClientOptions(
        connect_timeout_s=1.0, silence_timeout_s=0.3, backoff_initial_s=0.05, backoff_max_s=0.1
    )
    hub, got = await start_hub(
        stack, [SensorTarget("band", "runmon_breath", address=quiet.address)], backend, options
    )
    await got.until(lambda: hub.status("band").connects >= 2)
    lost = next(s for s in got.statuses if s.state == "lost")
    assert lost.reason == f"sensor 'band' ({quiet.address}): no data for 0.3 s"
    assert got.events("band")[:3] == ["connect", "disconnect", "connect"]


# --------------------------------------------------------------------------- failures


async def test_a_sensor_that_never_answers_times_out_naming_it_and_the_others_carry_on(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    ghost = await add(stack, VirtualPeripheral(footpod("ghost"), radio, advertise=False))
    strap = await add(stack, VirtualPeripheral(heart_rate_strap("hr"), radio))
    spawn(stack, strap.stream(uuids.HEART_RATE_MEASUREMENT, forever(hr_payloads(5))), "hr")
    hub, got = await start_hub(
        stack,
        [
            SensorTarget("ghost", "rsc", address=ghost.address),
            SensorTarget("nowhere", "runmon_imu", name="no such strap"),
            SensorTarget("hr", "heart_rate", address=strap.address),
        ],
        backend,
    )
    await got.until(
        lambda: (
            got.states("ghost").count("lost") >= 2
            and "lost" in got.states("nowhere")
            and len(got.data("hr", uuids.HEART_RATE_MEASUREMENT)) >= 10
        )
    )
    ghost_lost = next(s for s in got.statuses if s.sensor == "ghost" and s.state == "lost")
    assert ghost_lost.reason is not None
    assert ghost_lost.reason.startswith(f"sensor 'ghost' ({ghost.address}): no connection within")
    nowhere = next(s for s in got.statuses if s.sensor == "nowhere" and s.state == "lost")
    assert nowhere.reason == (
        "sensor 'nowhere' (name 'no such strap'): not found within 0.5 s of scanning "
        "(switched off, out of range, or connected to another device)"
    )
    assert hub.status("hr").state == "streaming"
    assert got.events("ghost") == []  # never connected: no events in the recording
    # Still retrying: it connects as soon as it speaks up.
    await ghost.start_advertising()
    await got.until(lambda: hub.status("ghost").connects == 1)


async def test_a_refused_pmd_start_is_reported_with_the_sensors_answer(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    control = PmdControl()
    strap = await add(stack, VirtualPeripheral(polar_h10(control=control), radio))
    request = PmdStreamRequest("acc", sample_rate_hz=300, range=8)
    _, got = await start_hub(
        stack,
        [SensorTarget("h10", "polar_pmd", address=strap.address, pmd_streams=(request,))],
        backend,
    )
    await got.until(lambda: "lost" in got.states("h10"))
    lost = next(s for s in got.statuses if s.state == "lost")
    assert lost.reason == (
        f"sensor 'h10' ({strap.address}): PMD refused to start ACC at 300 Hz, range 8, "
        "16 bits: INVALID_SAMPLE_RATE"
    )
    assert ACC not in control.started


async def test_a_pmd_stream_the_strap_does_not_offer_is_reported_before_any_start(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    control = PmdControl()  # an H10: accelerometer only
    strap = await add(stack, VirtualPeripheral(polar_h10(control=control), radio))
    gyro = PmdStreamRequest("gyro", sample_rate_hz=52, range=2000)
    _, got = await start_hub(
        stack,
        [SensorTarget("h10", "polar_pmd", address=strap.address, pmd_streams=(gyro,))],
        backend,
    )
    await got.until(lambda: "lost" in got.states("h10"))
    lost = next(s for s in got.statuses if s.state == "lost")
    assert lost.reason == f"sensor 'h10' ({strap.address}): PMD does not offer GYRO (it offers ACC)"
    assert control.requests == []


async def test_a_sensor_of_the_wrong_kind_is_a_setup_error(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    pod = await add(stack, VirtualPeripheral(footpod("pod"), radio))
    _, got = await start_hub(
        stack, [SensorTarget("chest", "runmon_imu", address=pod.address)], backend
    )
    await got.until(lambda: "lost" in got.states("chest"))
    lost = next(s for s in got.statuses if s.state == "lost")
    assert "has no runmon IMU data characteristic" in (lost.reason or "")


async def test_a_dead_adapter_ends_the_records_with_the_transport_error(
    radio: VirtualRadio, stack: AsyncExitStack
) -> None:
    pod = await add(stack, VirtualPeripheral(footpod("pod"), radio))
    spawn(stack, pod.stream(uuids.RSC_MEASUREMENT, forever(rsc_payloads(3))), "pod")
    server = await radio.serve_hci()
    stack.push_async_callback(server.aclose)
    remote = await stack.enter_async_context(open_backend(server.transport_spec))
    hub, got = await start_hub(stack, [SensorTarget("foot", "rsc", address=pod.address)], remote)
    await got.until(lambda: hub.status("foot").state == "streaming")
    await server.aclose()  # the served radio goes away (a `simulate --serve` that exits)
    async with asyncio.timeout(WAIT_S):
        await got.ended.wait()
    assert isinstance(got.error, BleTransportError)
    assert "HCI transport closed" in str(got.error)
    assert got.events("foot") == ["connect", "disconnect"]


async def test_a_hub_on_an_adapter_already_gone_ends_at_once_for_every_sensor(
    radio: VirtualRadio, stack: AsyncExitStack
) -> None:
    """The first sensor's failure cancels the others before they ever ran: the records must
    still end (a regression: a count kept in the tasks' own finally never reached zero)."""
    server = await radio.serve_hci()
    remote = await stack.enter_async_context(open_backend(server.transport_spec))
    await server.aclose()
    async with asyncio.timeout(WAIT_S):
        while True:  # until the adapter has noticed
            try:
                await BleakScanner.discover(0.01, **remote.scanner_kwargs())
            except BleTransportError:
                break
    targets = [SensorTarget(f"s{i}", "rsc", address=f"C0:00:00:00:00:0{i}") for i in range(3)]
    _, got = await start_hub(stack, targets, remote)
    async with asyncio.timeout(WAIT_S):
        await got.ended.wait()
    assert isinstance(got.error, BleTransportError)
    assert got.records == []


# --------------------------------------------------------------------------- concurrency


async def test_connects_through_one_adapter_never_overlap(
    radio: VirtualRadio, stack: AsyncExitStack
) -> None:
    adapter = await stack.enter_async_context(BumbleAdapter(radio))
    active = 0
    overlaps: list[int] = []
    connects = 0

    class Watched(adapter.client_backend):  # type: ignore[name-defined,misc]
        async def connect(self, pair: bool, **kwargs: Any) -> None:
            nonlocal active, connects
            active += 1
            connects += 1
            overlaps.append(active)
            try:
                # Yield to the loop first: without the client's lock a second connect of the
                # hub would start here, before this one reaches the adapter.
                await asyncio.sleep(0.02)
                await super().connect(pair, **kwargs)
            finally:
                active -= 1

    backend = BleBackend("watched", adapter.scanner_backend, Watched)
    specs = [footpod("a"), heart_rate_strap("b"), breath_band("c"), footpod("d")]
    targets = []
    for i, spec in enumerate(specs):
        peripheral = await add(stack, VirtualPeripheral(spec, radio))
        profile = {"a": "rsc", "b": "heart_rate", "c": "runmon_breath", "d": "rsc"}[spec.name]
        targets.append(SensorTarget(f"s{i}", profile, address=peripheral.address))  # type: ignore[arg-type]
    options = ClientOptions(connect_timeout_s=2.0, silence_timeout_s=5.0)
    hub, _ = await start_hub(stack, targets, backend, options)
    async with asyncio.timeout(WAIT_S):  # every sensor's battery read: all connected
        await hub.wait_notified({(t.id, uuids.BATTERY_LEVEL): 1 for t in targets})
    assert connects == 4
    assert max(overlaps) == 1


async def test_closing_disconnects_every_sensor_and_records_it(
    radio: VirtualRadio, backend: BleBackend
) -> None:
    control = PmdControl()
    async with AsyncExitStack() as peripherals:
        pod = await add(peripherals, VirtualPeripheral(footpod("pod"), radio))
        strap = await add(peripherals, VirtualPeripheral(polar_h10(control=control), radio))
        control.attach(strap)
        got = Collector()
        hub = SensorHub(
            [
                SensorTarget("foot", "rsc", address=pod.address),
                SensorTarget("h10", "polar_pmd", address=strap.address),
            ],
            backend,
            options=FAST,
            on_status=got.on_status,
        )
        async with hub, asyncio.TaskGroup() as group:
            group.create_task(got.consume(hub))
            await got.until(lambda: hub.status("foot").connects == hub.status("h10").connects == 1)
            await got.until(lambda: ACC in control.started)
            hub.close()
        assert got.ended.is_set()
        async with asyncio.timeout(WAIT_S):
            await pod.wait_disconnected()
            await strap.wait_disconnected()
        assert got.events("foot") == got.events("h10") == ["connect", "disconnect"]
        assert isinstance(got.records[-1], ConnectionEvent)
        # The PMD stream was stopped politely before the link went down.
        assert [r.op_code.name for r in control.requests][-1] == "STOP_MEASUREMENT"


async def test_cancelling_the_task_that_runs_the_hub_disconnects_cleanly(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    """Ctrl-C cancels the main task: the sensors must still be let go."""
    pod = await add(stack, VirtualPeripheral(footpod("pod"), radio))
    connected = asyncio.Event()

    async def run() -> None:
        def on_status(status: SensorStatus) -> None:
            if status.state == "connecting" and hub.status("foot").connects:
                connected.set()

        hub = SensorHub([SensorTarget("foot", "rsc", address=pod.address)], backend, options=FAST,
                        on_status=on_status)  # fmt: skip
        async with hub:
            async for _ in hub.records():
                if hub.status("foot").connects:
                    connected.set()

    task = asyncio.create_task(run())
    async with asyncio.timeout(WAIT_S):
        await pod.wait_connected()
        await connected.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(WAIT_S):
        await pod.wait_disconnected()


async def test_a_consumer_that_falls_behind_loses_the_oldest_notifications_only(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    pod = await add(stack, VirtualPeripheral(footpod("pod"), radio))
    payloads = rsc_payloads(40)
    options = ClientOptions(queue_size=16, silence_timeout_s=30.0, connect_timeout_s=1.0)
    hub = await stack.enter_async_context(
        SensorHub([SensorTarget("foot", "rsc", address=pod.address)], backend, options=options)
    )
    async with asyncio.timeout(WAIT_S):
        await pod.wait_subscribed(uuids.RSC_MEASUREMENT)
    for payload in payloads:
        await pod.notify(uuids.RSC_MEASUREMENT, payload)
    async with asyncio.timeout(WAIT_S):
        await hub.wait_notified({("foot", uuids.RSC_MEASUREMENT): 40})
    hub.close()
    records = [r async for r in hub.records()]
    # The connect and disconnect are kept; of the notifications (battery + 40), the newest.
    assert isinstance(records[0], ConnectionEvent)
    assert isinstance(records[-1], ConnectionEvent)
    notes = [r for r in records if isinstance(r, Notification)]
    assert [n.payload for n in notes] == payloads[-len(notes) :]
    assert len(records) <= 17
    assert hub.status("foot").dropped == 41 - len(notes)


# --------------------------------------------------------------------------- scanning


async def test_scan_identifies_each_sensors_profile_from_its_advertisement(
    radio: VirtualRadio, backend: BleBackend, stack: AsyncExitStack
) -> None:
    pod = await add(stack, VirtualPeripheral(footpod("Stryd"), radio))
    h10 = await add(stack, VirtualPeripheral(polar_h10(control=PmdControl()), radio))
    imu = await add(stack, VirtualPeripheral(imu_strap(config=ImuConfig(200, "chest")), radio))
    results = await scan_with(backend, 0.3)
    found = {r.address: (r.profile, r.name) for r in results}
    assert found == {
        pod.address: ("rsc", "Stryd"),
        imu.address: ("runmon_imu", "runmon IMU"),
        h10.address: ("polar_pmd", "Polar H10 0A1B2C3D"),  # heart rate + Polar name
    }
    assert all(-100 <= r.rssi <= 0 for r in results)
    assert identify_profile([uuids.HEART_RATE_SERVICE], "Garmin HRM") == "heart_rate"
    assert identify_profile([uuids.HEART_RATE_SERVICE, uuids.PMD_SERVICE]) == "polar_pmd"
    assert identify_profile(["0000feed-0000-1000-8000-00805f9b34fb"]) is None


# --------------------------------------------------------------------------- small pieces


def test_backoff_is_exponential_capped_and_jittered_downwards() -> None:
    options = ClientOptions(backoff_initial_s=0.5, backoff_max_s=8.0, backoff_jitter=0.5)
    rng = random.Random(7)
    delays = [[backoff_delay_s(a, options, rng) for a in range(10)] for _ in range(200)]
    for attempt in range(10):
        ceiling = min(8.0, 0.5 * 2**attempt)
        column = [d[attempt] for d in delays]
        assert all(ceiling / 2 <= d <= ceiling for d in column)
        assert len(set(column)) > 100  # jittered: no lockstep
    no_jitter = ClientOptions(backoff_jitter=0.0)
    assert backoff_delay_s(3, no_jitter, rng) == 4.0
    assert backoff_delay_s(10_000, no_jitter, rng) == 30.0


def test_targets_and_options_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="address or a name"):
        SensorTarget("x", "rsc")
    with pytest.raises(ValueError, match="polar_pmd"):
        SensorTarget("x", "rsc", name="a", pmd_streams=(PmdStreamRequest("acc", 200, 8),))
    assert SensorTarget("h", "polar_pmd", name="Polar H10").pmd_streams == (
        PmdStreamRequest("acc", 200, 8, 16),
    )
    with pytest.raises(ValueError, match="silence_timeout_s"):
        ClientOptions(silence_timeout_s=0)
    with pytest.raises(ValueError, match="unique"):
        SensorHub([SensorTarget("a", "rsc", name="x")] * 2, BleBackend("none"))
    assert issubclass(SensorLinkError, BleakError)
