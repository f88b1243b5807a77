"""bleak on bumble against virtual peripherals, in one process: real ATT/GATT, no radio.

Production bleak calls (``BleakScanner``, ``BleakClient``) with our backend, against
:class:`VirtualPeripheral` GATT servers on a :class:`VirtualRadio`; payloads are made with the
production encoders and checked with the production decoders. Every wait is on an event, bounded
by ``WAIT_S`` so a failure is a clear timeout, not a hung test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from sensors import uuids
from sensors.ble import (
    BleConnectTimeoutError,
    BleError,
    BleGattProtocolError,
    BleNotConnectedError,
    BumbleAdapter,
    VirtualRadio,
    from_bumble_uuid,
    to_bumble_uuid,
)
from sensors.errors import SensorsError
from sensors.gatt import (
    BreathBlock,
    HeartRateMeasurement,
    ImuBlock,
    ImuConfig,
    RscMeasurement,
    decode_battery_level,
    decode_breath_block,
    decode_heart_rate_measurement,
    decode_imu_block,
    decode_imu_config,
    decode_rsc_feature,
    decode_rsc_measurement,
    encode_breath_block,
    encode_heart_rate_measurement,
    encode_imu_block,
    encode_rsc_measurement,
)
from sensors.profiles import PROFILE_SERVICES
from simulators.peripherals import (
    CharacteristicSpec,
    PeripheralError,
    PeripheralSpec,
    ServiceSpec,
    VirtualPeripheral,
    WriteRejectedError,
    derive_address,
)
from simulators.peripherals.profiles import (
    DEFAULT_RSC_FEATURE,
    breath_band,
    footpod,
    heart_rate_strap,
    imu_strap,
)

WAIT_S = 5.0
IMU_CONFIG = ImuConfig(sample_rate_hz=200, placement="chest")


# --------------------------------------------------------------------------- payload makers


def imu_payloads(n: int, seed: int = 1) -> list[bytes]:
    """19 samples with gyro per block: 7 + 19 * 12 = 235 bytes, the largest runmon payload."""
    rng = np.random.default_rng(seed)
    return [
        encode_imu_block(
            ImuBlock(
                sequence=(19 * i) % 65536,
                sample_rate_hz=200,
                acc_g=rng.normal(0.0, 2.0, (19, 3)),
                gyro_dps=rng.normal(0.0, 200.0, (19, 3)),
            )
        )
        for i in range(n)
    ]


def rsc_payloads(n: int) -> list[bytes]:
    return [
        encode_rsc_measurement(
            RscMeasurement(
                speed_mps=3.0 + i / 64,
                cadence_raw_per_min=85 + i % 5,
                stride_length_m=1.25,
                total_distance_m=100.0 + i,
                is_running=True,
            )
        )
        for i in range(n)
    ]


def hr_payloads(n: int) -> list[bytes]:
    return [
        encode_heart_rate_measurement(
            HeartRateMeasurement(130 + i, "contact", None, (0.5 + i / 1024, 0.5))
        )
        for i in range(n)
    ]


def breath_payloads(n: int) -> list[bytes]:
    return [
        encode_breath_block(BreathBlock(10 * i, 25, np.arange(10.0) + 1000.0 * i)) for i in range(n)
    ]


async def from_list(payloads: list[bytes]) -> AsyncIterator[bytes]:
    for payload in payloads:
        yield payload


class Inbox:
    """A notification callback that queues payloads: await them, no polling."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def __call__(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self.queue.put_nowait(bytes(data))

    async def take(self, n: int) -> list[bytes]:
        async with asyncio.timeout(WAIT_S):
            return [await self.queue.get() for _ in range(n)]


def disconnect_event() -> tuple[asyncio.Event, Callable[[BleakClient], None]]:
    event = asyncio.Event()
    return event, lambda _client: event.set()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def radio() -> VirtualRadio:
    return VirtualRadio()


@pytest.fixture
async def sensors(radio: VirtualRadio) -> AsyncIterator[dict[str, VirtualPeripheral]]:
    """A footpod, an HR strap and a chest IMU strap, advertising."""
    peripherals = {
        "footpod": VirtualPeripheral(footpod(battery_pct=87), radio),
        "hr": VirtualPeripheral(heart_rate_strap(), radio),
        "imu": VirtualPeripheral(imu_strap(config=IMU_CONFIG, battery_pct=64), radio),
    }
    async with AsyncExitStack() as stack:
        for peripheral in peripherals.values():
            await stack.enter_async_context(peripheral)
        yield peripherals


@pytest.fixture
async def adapter(radio: VirtualRadio) -> AsyncIterator[BumbleAdapter]:
    async with BumbleAdapter(radio) as adapter:
        yield adapter


# --------------------------------------------------------------------------- scanning


async def test_scan_finds_sensors_with_names_service_uuids_and_rssi(
    sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    expected = {
        sensors["footpod"].address: ("runmon Footpod", PROFILE_SERVICES["rsc"]),
        sensors["hr"].address: ("runmon HR", PROFILE_SERVICES["heart_rate"]),
        sensors["imu"].address: ("runmon IMU", PROFILE_SERVICES["runmon_imu"]),
    }
    seen: dict[str, tuple[str | None, list[str], int]] = {}
    async with BleakScanner(backend=adapter.scanner_backend) as scanner, asyncio.timeout(WAIT_S):
        async for device, advertisement in scanner.advertisement_data():
            seen[device.address] = (
                device.name,
                advertisement.service_uuids,
                advertisement.rssi,
            )
            if seen.keys() >= expected.keys():
                break
    for address, (name, service) in expected.items():
        seen_name, seen_services, rssi = seen[address]
        assert seen_name == name
        assert seen_services == [service]
        assert -100 <= rssi <= 0


async def test_scan_filters_by_service_uuid(
    sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    footpod_address = sensors["footpod"].address
    footpod_reports = 0
    async with (
        BleakScanner(service_uuids=[uuids.RSC_SERVICE], backend=adapter.scanner_backend) as scanner,
        asyncio.timeout(WAIT_S),
    ):
        # All three advertise every 20 ms: by the footpod's 5th report the others have
        # advertised several times too, and must have been filtered out.
        async for device, _ in scanner.advertisement_data():
            assert device.address == footpod_address
            footpod_reports += 1
            if footpod_reports == 5:
                break
    assert [d.address for d in scanner.discovered_devices] == [footpod_address]


async def test_find_device_by_name_through_bleak_classmethod(
    sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    device = await BleakScanner.find_device_by_name(
        "runmon HR", timeout=WAIT_S, backend=adapter.scanner_backend
    )
    assert device is not None
    assert device.address == sensors["hr"].address


# --------------------------------------------------------------------------- one connection


async def test_connect_negotiates_mtu_and_discovers_services(
    sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    device = await BleakScanner.find_device_by_name(
        "runmon IMU", timeout=WAIT_S, backend=adapter.scanner_backend
    )
    assert device is not None
    async with BleakClient(device, backend=adapter.client_backend, timeout=WAIT_S) as client:
        assert client.is_connected
        assert client.mtu_size == 517
        assert client.name == "runmon IMU"
        service_uuids = {service.uuid for service in client.services}
        assert {uuids.RUNMON_IMU_SERVICE, uuids.BATTERY_SERVICE} <= service_uuids
        data = client.services.get_characteristic(uuids.RUNMON_IMU_DATA)
        config = client.services.get_characteristic(uuids.RUNMON_IMU_CONFIG)
        assert data is not None
        assert config is not None
        assert data.properties == ["notify"]
        assert config.properties == ["read"]
        assert data.service_uuid == uuids.RUNMON_IMU_SERVICE
        assert [d.uuid for d in data.descriptors] == [from_bumble_uuid(to_bumble_uuid("2902"))]
        assert data.max_write_without_response_size == 514


async def test_reads_battery_imu_config_and_rsc_feature(
    sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    async with BleakClient(
        sensors["imu"].address, backend=adapter.client_backend, timeout=WAIT_S
    ) as imu:
        battery = decode_battery_level(bytes(await imu.read_gatt_char(uuids.BATTERY_LEVEL)))
        config = decode_imu_config(bytes(await imu.read_gatt_char(uuids.RUNMON_IMU_CONFIG)))
    assert battery.level_pct == 64
    assert config == IMU_CONFIG
    async with BleakClient(
        sensors["footpod"].address, backend=adapter.client_backend, timeout=WAIT_S
    ) as pod:
        assert decode_rsc_feature(bytes(await pod.read_gatt_char(uuids.RSC_FEATURE))) == (
            DEFAULT_RSC_FEATURE
        )
        sensors["footpod"].set_value(uuids.BATTERY_LEVEL, bytes([12]))
        assert (
            decode_battery_level(bytes(await pod.read_gatt_char(uuids.BATTERY_LEVEL))).level_pct
            == 12
        )


@pytest.mark.parametrize(
    ("sensor", "char_uuid", "payloads", "decode"),
    [
        ("imu", uuids.RUNMON_IMU_DATA, imu_payloads(25), decode_imu_block),
        ("footpod", uuids.RSC_MEASUREMENT, rsc_payloads(25), decode_rsc_measurement),
        ("hr", uuids.HEART_RATE_MEASUREMENT, hr_payloads(25), decode_heart_rate_measurement),
    ],
)
async def test_notifications_arrive_whole_and_in_order(
    sensors: dict[str, VirtualPeripheral],
    adapter: BumbleAdapter,
    sensor: str,
    char_uuid: str,
    payloads: list[bytes],
    decode: Callable[[bytes], object],
) -> None:
    peripheral = sensors[sensor]
    inbox = Inbox()
    async with (
        BleakClient(peripheral.address, backend=adapter.client_backend, timeout=WAIT_S) as client,
        asyncio.TaskGroup() as group,
    ):
        stream = group.create_task(
            peripheral.stream(char_uuid, from_list(payloads)), name=f"stream {sensor}"
        )
        await client.start_notify(char_uuid, inbox)
        received = await inbox.take(len(payloads))
        stats = await stream
        await client.stop_notify(char_uuid)
        assert peripheral.subscriber_count(char_uuid) == 0
    assert stats.sent == len(payloads)
    assert stats.dropped == 0
    assert received == payloads
    assert [decode(p) for p in received] == [decode(p) for p in payloads]
    if sensor == "imu":
        assert {len(p) for p in received} == {235}
        assert all(decode_imu_block(p).n_samples == 19 for p in received)


async def test_without_mtu_exchange_notifications_are_cut_to_20_bytes(
    radio: VirtualRadio, sensors: dict[str, VirtualPeripheral]
) -> None:
    """Why connect() negotiates the MTU: at the default 23 a 235-byte block loses 215 bytes."""
    payload = imu_payloads(1)[0]
    inbox = Inbox()
    async with (
        BumbleAdapter(radio, mtu=23) as small,
        BleakClient(sensors["imu"].address, backend=small.client_backend) as client,
    ):
        assert client.mtu_size == 23
        await client.start_notify(uuids.RUNMON_IMU_DATA, inbox)
        assert await sensors["imu"].notify(uuids.RUNMON_IMU_DATA, payload) == 1
        (received,) = await inbox.take(1)
    assert received == payload[:20]


# --------------------------------------------------------------------------- link loss


async def test_peripheral_drops_link_then_accepts_a_reconnect(
    sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    footpod_sensor = sensors["footpod"]
    dropped, on_disconnect = disconnect_event()
    client = BleakClient(
        footpod_sensor.address,
        disconnected_callback=on_disconnect,
        backend=adapter.client_backend,
        timeout=WAIT_S,
    )
    await client.connect()
    await client.start_notify(uuids.RSC_MEASUREMENT, Inbox())
    assert await footpod_sensor.drop_link() == 1
    async with asyncio.timeout(WAIT_S):
        await dropped.wait()
    assert not client.is_connected
    assert footpod_sensor.subscriber_count(uuids.RSC_MEASUREMENT) == 0

    # The sensor advertises again; the same client object reconnects and streams.
    dropped.clear()
    inbox = Inbox()
    await client.connect()
    try:
        await client.start_notify(uuids.RSC_MEASUREMENT, inbox)
        payloads = rsc_payloads(3)
        for payload in payloads:
            assert await footpod_sensor.notify(uuids.RSC_MEASUREMENT, payload) == 1
        assert await inbox.take(3) == payloads
    finally:
        await client.disconnect()
    assert dropped.is_set()  # bleak's backends report our own disconnect too


async def test_sensor_that_vanishes_ends_the_link(
    radio: VirtualRadio, adapter: BumbleAdapter
) -> None:
    gone, on_disconnect = disconnect_event()
    sensor = VirtualPeripheral(breath_band(), radio)
    await sensor.start()
    try:
        client = BleakClient(
            sensor.address,
            disconnected_callback=on_disconnect,
            backend=adapter.client_backend,
            timeout=WAIT_S,
        )
        await client.connect()
    finally:
        await sensor.aclose()  # battery dead: no goodbye, the link times out
    async with asyncio.timeout(WAIT_S):
        await gone.wait()
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.read_gatt_char(uuids.BATTERY_LEVEL)


# --------------------------------------------------------------------------- several at once


@pytest.mark.parametrize("count", [2, 4])
async def test_several_sensors_stream_at_once_to_one_central(
    radio: VirtualRadio, adapter: BumbleAdapter, count: int
) -> None:
    makers = [
        (imu_strap(config=IMU_CONFIG), uuids.RUNMON_IMU_DATA, imu_payloads(15, seed=7)),
        (footpod(), uuids.RSC_MEASUREMENT, rsc_payloads(15)),
        (heart_rate_strap(), uuids.HEART_RATE_MEASUREMENT, hr_payloads(15)),
        (breath_band(), uuids.RUNMON_BREATH_DATA, breath_payloads(15)),
    ][:count]
    async with AsyncExitStack() as stack:
        peripherals = [
            await stack.enter_async_context(VirtualPeripheral(spec, radio)) for spec, _, _ in makers
        ]
        clients = [
            BleakClient(p.address, backend=adapter.client_backend, timeout=WAIT_S)
            for p in peripherals
        ]
        # Connect all at once: the adapter serialises them, as BlueZ requires.
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(client.connect(), name=f"connect {client.address}")
        for client in clients:
            stack.push_async_callback(client.disconnect)
        assert all(client.is_connected for client in clients)

        inboxes = [Inbox() for _ in makers]
        for client, inbox, (_, char_uuid, _) in zip(clients, inboxes, makers, strict=True):
            await client.start_notify(char_uuid, inbox)
        async with asyncio.TaskGroup() as group:
            streams = [
                group.create_task(
                    p.stream(char_uuid, from_list(payloads)), name=f"stream {p.spec.name}"
                )
                for p, (_, char_uuid, payloads) in zip(peripherals, makers, strict=True)
            ]
            received = [
                await inbox.take(len(payloads))
                for inbox, (_, _, payloads) in zip(inboxes, makers, strict=True)
            ]
        assert [s.result().sent for s in streams] == [15] * count
        assert received == [payloads for _, _, payloads in makers]
    assert decode_breath_block(breath_payloads(1)[0]).n_samples == 10


# --------------------------------------------------------------------------- errors


async def test_sensor_that_never_answers_times_out_with_a_clear_error(
    radio: VirtualRadio, sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    silent = VirtualPeripheral(footpod("silent pod"), radio, advertise=False)
    async with silent:
        client = BleakClient(silent.address, backend=adapter.client_backend, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(BleConnectTimeoutError) as caught:
            await client.connect()
        elapsed = time.monotonic() - started
        error = caught.value
        assert isinstance(error, TimeoutError)  # what bleak's own backends raise
        assert isinstance(error, BleakError)
        assert isinstance(error, SensorsError)
        assert error.address == silent.address
        assert silent.address in str(error)
        assert "not advertising" in str(error)
        assert 0.25 <= elapsed < 2.0
        assert not client.is_connected

        # The controller is not left stuck "connecting": other connects still work...
        async with BleakClient(
            sensors["hr"].address, backend=adapter.client_backend, timeout=WAIT_S
        ) as hr:
            assert hr.is_connected
        # ...and so does this one, once the sensor speaks up.
        await silent.start_advertising()
        async with BleakClient(
            silent.address, backend=adapter.client_backend, timeout=WAIT_S
        ) as late:
            assert late.is_connected


async def test_cancelled_connect_leaves_no_pending_connection_behind(
    radio: VirtualRadio, sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    """A caller's own timeout cancels connect(): the controller must stop connecting too."""
    silent = VirtualPeripheral(footpod("silent pod"), radio, advertise=False)
    async with silent:
        client = BleakClient(silent.address, backend=adapter.client_backend, timeout=WAIT_S)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.connect(), 0.2)
        # A stuck "connection pending" would refuse this connect (Command Disallowed)...
        async with BleakClient(
            sensors["hr"].address, backend=adapter.client_backend, timeout=WAIT_S
        ) as hr:
            assert hr.is_connected
        # ...or complete on its own as soon as the sensor advertises, behind our back.
        await silent.start_advertising()
        async with BleakClient(
            silent.address, backend=adapter.client_backend, timeout=WAIT_S
        ) as late:
            assert late.is_connected
            assert silent.connection_count == 1


async def test_reading_a_notify_only_characteristic_is_an_att_error(
    sensors: dict[str, VirtualPeripheral], adapter: BumbleAdapter
) -> None:
    async with BleakClient(
        sensors["hr"].address, backend=adapter.client_backend, timeout=WAIT_S
    ) as client:
        with pytest.raises(BleGattProtocolError) as caught:
            await client.read_gatt_char(uuids.HEART_RATE_MEASUREMENT)
    assert isinstance(caught.value, BleakGATTProtocolError)
    assert caught.value.code == 0x02  # Read Not Permitted
    assert uuids.HEART_RATE_MEASUREMENT in str(caught.value)


async def test_request_cut_short_by_a_dropped_link_fails_as_not_connected(
    radio: VirtualRadio, adapter: BumbleAdapter
) -> None:
    """bumble cancels a pending ATT request when the link drops; that must not look like our
    task being cancelled (a TaskGroup would swallow it), but like a lost link."""
    slow_uuid = "0000ff11-0000-1000-8000-00805f9b34fb"
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_read(_connection: Connection) -> bytes:
        entered.set()
        await release.wait()
        return b"late"

    controller = radio.attach("slow")
    device = Device(
        name="slow",
        address=Address(derive_address("slow")),
        host=Host(controller, AsyncPipeSink(controller)),
    )
    device.add_service(
        Service(
            to_bumble_uuid("0000ff10-0000-1000-8000-00805f9b34fb"),
            [
                Characteristic(
                    to_bumble_uuid(slow_uuid),
                    Characteristic.Properties.READ,
                    Characteristic.Permissions.READABLE,
                    CharacteristicValue(read=slow_read),
                )
            ],
        )
    )
    await device.power_on()
    await device.start_advertising(advertising_interval_min=20.0)
    try:
        async with BleakClient(
            derive_address("slow"), backend=adapter.client_backend, timeout=WAIT_S
        ) as client:
            read = asyncio.create_task(client.read_gatt_char(slow_uuid), name="slow read")
            async with asyncio.timeout(WAIT_S):
                await entered.wait()
                for connection in list(device.connections.values()):
                    await connection.disconnect()
                with pytest.raises(BleNotConnectedError, match="not connected"):
                    await read
    finally:
        release.set()
        radio.detach(controller)
        await device.power_off()


# --------------------------------------------------------------------------- writes


CONTROL_POINT = "0000ff01-0000-1000-8000-00805f9b34fb"
COMMAND_SINK = "0000ff02-0000-1000-8000-00805f9b34fb"
CONTROL_SERVICE = "0000ff00-0000-1000-8000-00805f9b34fb"


async def test_control_point_answers_writes_and_rejects_bad_commands(
    radio: VirtualRadio, adapter: BumbleAdapter
) -> None:
    """The shape of Polar PMD: write a command with response, get the answer as an indication."""
    sunk: asyncio.Queue[bytes] = asyncio.Queue()

    def control(command: bytes) -> bytes:
        if command[:1] not in (b"\x02", b"\x03"):  # start / stop a stream
            raise WriteRejectedError(0x80, f"unknown opcode {command[:1].hex()}")
        return b"\xf0" + command[:2] + b"\x00"  # response: opcode, type, status success

    def sink(command: bytes) -> None:
        sunk.put_nowait(command)

    spec = PeripheralSpec(
        name="control",
        services=(
            ServiceSpec(
                CONTROL_SERVICE,
                (
                    CharacteristicSpec(
                        CONTROL_POINT, value=b"\x0f", write=True, indicate=True, on_write=control
                    ),
                    CharacteristicSpec(COMMAND_SINK, write_without_response=True, on_write=sink),
                ),
            ),
        ),
    )
    inbox = Inbox()
    async with (
        VirtualPeripheral(spec, radio) as peripheral,
        BleakClient(peripheral.address, backend=adapter.client_backend, timeout=WAIT_S) as client,
    ):
        point = client.services.get_characteristic(CONTROL_POINT)
        assert point is not None
        assert point.properties == ["indicate", "read", "write"]
        await client.start_notify(CONTROL_POINT, inbox)
        await client.write_gatt_char(CONTROL_POINT, b"\x02\x05", response=True)
        assert await inbox.take(1) == [b"\xf0\x02\x05\x00"]
        with pytest.raises(BleGattProtocolError) as caught:
            await client.write_gatt_char(CONTROL_POINT, b"\x7f", response=True)
        assert caught.value.code == 0x80

        await client.write_gatt_char(COMMAND_SINK, b"\x01\x02\x03", response=False)
        async with asyncio.timeout(WAIT_S):
            assert await sunk.get() == b"\x01\x02\x03"
        assert await client.read_gatt_char(CONTROL_POINT) == b"\x0f"


# --------------------------------------------------------------------------- small pieces


async def test_stream_drop_mode_discards_payloads_nobody_subscribed_to(
    sensors: dict[str, VirtualPeripheral],
) -> None:
    stats = await sensors["hr"].stream(
        uuids.HEART_RATE_MEASUREMENT, from_list(hr_payloads(5)), when_unsubscribed="drop"
    )
    assert (stats.sent, stats.dropped) == (0, 5)
    with pytest.raises(PeripheralError, match="no characteristic"):
        await sensors["hr"].notify(uuids.RSC_MEASUREMENT, b"\x00")
    with pytest.raises(PeripheralError, match="not readable"):
        sensors["hr"].set_value(uuids.HEART_RATE_MEASUREMENT, b"\x00")


def test_uuid_conversions_round_trip_and_use_16_bit_form_for_sig_uuids() -> None:
    assert len(to_bumble_uuid(uuids.RSC_SERVICE).uuid_bytes) == 2
    assert len(to_bumble_uuid(uuids.RUNMON_IMU_SERVICE).uuid_bytes) == 16
    for value in (uuids.RSC_MEASUREMENT, uuids.RUNMON_IMU_DATA, uuids.PMD_CONTROL_POINT):
        assert from_bumble_uuid(to_bumble_uuid(value)) == value
        assert from_bumble_uuid(to_bumble_uuid(value.upper())) == value


def test_derived_addresses_are_stable_random_static_addresses() -> None:
    address = derive_address("runmon IMU")
    assert address == derive_address("runmon IMU") != derive_address("runmon HR")
    assert int(address[:2], 16) >> 6 == 0b11


async def test_backend_classes_need_an_adapter() -> None:
    from sensors.ble import BumbleClientBackend

    with pytest.raises(BleError, match="not bound to an adapter"):
        BleakClient("C0:00:00:00:00:01", backend=BumbleClientBackend)
