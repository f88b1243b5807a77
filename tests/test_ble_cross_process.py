"""Virtual sensors served by another process, found and streamed over bumble's TCP transport.

The server is ``python -m simulators.peripherals.serve`` (the engine of ``runmon simulate
--serve``); this process is the central, with bleak on our backend over ``tcp-client:...``.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bumble.device import Device
from bumble.hci import Address
from bumble.transport import open_transport

from sensors import uuids
from sensors.ble import BleTransportError, BumbleAdapter, HciServer, VirtualRadio
from sensors.gatt import decode_heart_rate_measurement, decode_imu_block, decode_rsc_measurement
from simulators.peripherals import VirtualPeripheral
from simulators.peripherals.profiles import footpod

REPO_ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 10.0


class Inbox:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def __call__(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self.queue.put_nowait(bytes(data))

    async def take(self, n: int) -> list[bytes]:
        async with asyncio.timeout(WAIT_S):
            return [await self.queue.get() for _ in range(n)]


@pytest.fixture
async def server() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """The serve prototype in a child process; yields it and its transport spec."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.peripherals.serve",
        "--rate-hz",
        "50",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT_S):
            spec = (await process.stdout.readline()).decode().strip()
        assert spec.startswith("tcp-client:127.0.0.1:"), spec
        yield process, spec
    finally:
        if process.returncode is None:
            process.terminate()
        async with asyncio.timeout(WAIT_S):
            await process.wait()


async def test_central_in_this_process_scans_connects_and_streams(
    server: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, spec = server
    async with BumbleAdapter(spec) as adapter:
        names: dict[str, str] = {}
        async with (
            BleakScanner(backend=adapter.scanner_backend) as scanner,
            asyncio.timeout(WAIT_S),
        ):
            async for device, _advertisement in scanner.advertisement_data():
                assert device.name is not None
                names[device.name] = device.address
                if len(names) == 3:
                    break
        assert set(names) == {"runmon Footpod", "runmon HR", "runmon IMU"}

        lost = asyncio.Event()
        inbox = Inbox()
        async with BleakClient(
            names["runmon IMU"],
            disconnected_callback=lambda _client: lost.set(),
            backend=adapter.client_backend,
            timeout=WAIT_S,
        ) as client:
            assert client.mtu_size == 517
            await client.start_notify(uuids.RUNMON_IMU_DATA, inbox)
            blocks = [decode_imu_block(p) for p in await inbox.take(3)]
            # The server waits for a subscriber before its first block: nothing is missed.
            assert [b.sequence for b in blocks] == [0, 19, 38]
            assert all(b.n_samples == 19 and b.gyro_dps is not None for b in blocks)

            # The serving process ends: the central's link drops, the callback fires.
            process.terminate()
            async with asyncio.timeout(WAIT_S):
                await lost.wait()
            assert not client.is_connected
        assert await process.wait() == 0


async def test_scan_prototype_in_a_third_process_lists_profiles(
    server: tuple[asyncio.subprocess.Process, str],
) -> None:
    """``runmon scan`` in miniature: one process serves, another scans."""
    _, spec = server
    scanner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sensors.ble.scan",
        "--transport",
        spec,
        "--timeout",
        "0.5",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WAIT_S):
        out, _ = await scanner.communicate()
    assert scanner.returncode == 0
    rows = [line.split() for line in out.decode().splitlines()]
    assert [(row[0], " ".join(row[1:-3])) for row in rows] == [
        ("rsc", "runmon Footpod"),
        ("heart_rate", "runmon HR"),
        ("runmon_imu", "runmon IMU"),
    ]
    assert all(row[-2:] == ["-50", "dBm"] for row in rows)


async def test_two_centrals_share_the_served_sensors(
    server: tuple[asyncio.subprocess.Process, str],
) -> None:
    """Each TCP connection is a central of its own: one records the footpod, one the strap."""
    _, spec = server
    async with BumbleAdapter(spec) as first, BumbleAdapter(spec) as second:
        assert first.address != second.address
        pod = await BleakScanner.find_device_by_name(
            "runmon Footpod", timeout=WAIT_S, backend=first.scanner_backend
        )
        strap = await BleakScanner.find_device_by_name(
            "runmon HR", timeout=WAIT_S, backend=second.scanner_backend
        )
        assert pod is not None
        assert strap is not None
        pod_inbox, strap_inbox = Inbox(), Inbox()
        async with (
            BleakClient(pod, backend=first.client_backend, timeout=WAIT_S) as pod_client,
            BleakClient(strap, backend=second.client_backend, timeout=WAIT_S) as strap_client,
        ):
            await pod_client.start_notify(uuids.RSC_MEASUREMENT, pod_inbox)
            await strap_client.start_notify(uuids.HEART_RATE_MEASUREMENT, strap_inbox)
            speeds = [decode_rsc_measurement(p).speed_mps for p in await pod_inbox.take(3)]
            rates = [
                decode_heart_rate_measurement(p).heart_rate_bpm for p in await strap_inbox.take(3)
            ]
        assert speeds == pytest.approx([3.0, 3.01, 3.02], abs=1 / 256)
        assert rates == [140, 141, 142]


async def test_in_process_hci_server_survives_a_central_that_goes_away() -> None:
    """A central that exits mid-connection frees the sensor: it advertises again."""
    radio = VirtualRadio()
    async with (
        VirtualPeripheral(footpod(), radio) as sensor,
        await radio.serve_hci() as hci_server,
    ):
        assert isinstance(hci_server, HciServer)
        # A bare bumble central over the TCP transport, closed without a goodbye, as a killed
        # process's would be.
        transport = await open_transport(hci_server.transport_spec)
        central = Device.with_hci(
            "raw", Address.generate_static_address(), transport.source, transport.sink
        )
        async with asyncio.timeout(WAIT_S):
            await central.power_on()
            await central.connect(Address(sensor.address), timeout=WAIT_S)
            await sensor.wait_connected()
        assert hci_server.host_count == 1
        await transport.close()
        async with asyncio.timeout(WAIT_S):
            await sensor.wait_disconnected()
        async with (
            BumbleAdapter(hci_server.transport_spec) as again,
            BleakClient(sensor.address, backend=again.client_backend, timeout=WAIT_S) as client2,
        ):
            assert client2.is_connected


async def test_unreachable_transport_is_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens there any more: connection refused.
    with pytest.raises(BleTransportError, match=rf"tcp-client:127.0.0.1:{port}.*cannot open"):
        async with BumbleAdapter(f"tcp-client:127.0.0.1:{port}"):
            pass
    with pytest.raises(BleTransportError, match="cannot open"):
        async with BumbleAdapter("no-such-transport:x"):
            pass
