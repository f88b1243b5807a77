"""Virtual peripherals for centrals in other processes, with synthetic payloads.

``runmon simulate --serve`` serves a scenario's sensors (:mod:`simulators.serve_scenario`); this
module is the scenario-free version, for trying the wiring with well-formed payloads.

This process owns a :class:`~sensors.ble.VirtualRadio`, runs the peripherals on it and serves HCI
over TCP; another process's central opens ``tcp-client:HOST:PORT`` as its bumble transport and
finds them by scanning, exactly as it would real sensors::

    python -m simulators.peripherals.serve --port 9001      # prints tcp-client:127.0.0.1:9001
    # elsewhere: BumbleAdapter("tcp-client:127.0.0.1:9001") -> BleakScanner / BleakClient

Each TCP connection gets a controller of its own, so several centrals (``runmon scan`` next to
``runmon record``) can be attached at once; a central that exits drops its links and the sensors
advertise again. :func:`serve_peripherals` is the library entry point; ``python -m`` runs it
with :func:`demo_sensors`, synthetic but well-formed payloads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sensors import uuids
from sensors.ble import HciServer, VirtualRadio
from sensors.gatt import (
    HeartRateMeasurement,
    ImuBlock,
    ImuConfig,
    RscMeasurement,
    encode_heart_rate_measurement,
    encode_imu_block,
    encode_rsc_measurement,
)
from simulators.peripherals.gatt_server import PeripheralSpec, VirtualPeripheral
from simulators.peripherals.profiles import footpod, heart_rate_strap, imu_strap

__all__ = ["ServedSensor", "demo_sensors", "main", "serve_peripherals"]

logger = logging.getLogger(__name__)

#: A payload source, started afresh for each :func:`serve_peripherals` run.
SourceFactory = Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True, slots=True)
class ServedSensor:
    """A peripheral and, per notifying characteristic UUID, where its payloads come from."""

    spec: PeripheralSpec
    streams: Mapping[str, SourceFactory] = field(default_factory=dict)


async def serve_peripherals(
    sensors: Sequence[ServedSensor],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[HciServer], None] | None = None,
) -> None:
    """Serve ``sensors`` until cancelled; ``on_ready`` gets the server once all advertise.

    Streams wait for a subscriber before taking the next payload (see
    :meth:`VirtualPeripheral.stream`), so a central that connects late misses nothing.
    """
    radio = VirtualRadio()
    async with contextlib.AsyncExitStack() as stack:
        server = await radio.serve_hci(host, port)
        stack.push_async_callback(server.aclose)
        peripherals = [
            await stack.enter_async_context(VirtualPeripheral(sensor.spec, radio))
            for sensor in sensors
        ]
        async with asyncio.TaskGroup() as group:
            for peripheral, sensor in zip(peripherals, sensors, strict=True):
                for char_uuid, factory in sensor.streams.items():
                    group.create_task(
                        peripheral.stream(char_uuid, factory()),
                        name=f"{peripheral.spec.name}: stream {char_uuid}",
                    )
            if on_ready is not None:
                on_ready(server)
            await asyncio.Event().wait()  # until cancelled


def demo_sensors(rate_hz: float = 10.0) -> list[ServedSensor]:
    """A footpod, an HR strap and a chest IMU strap with synthetic payloads at ``rate_hz``.

    Deterministic: payload ``i`` of the footpod has speed ``3 + i/100`` m/s and cadence
    ``170 + i % 10``; of the HR strap, ``140 + i % 20`` bpm; IMU block ``i`` has sequence
    ``19 i`` and 19 samples with gyro (the largest runmon payload, 235 bytes).
    """
    period_s = 1.0 / rate_hz

    async def rsc() -> AsyncIterator[bytes]:
        for i in range(sys.maxsize):
            yield encode_rsc_measurement(
                RscMeasurement(
                    speed_mps=3.0 + i / 100,
                    cadence_raw_per_min=170 + i % 10,
                    stride_length_m=None,
                    total_distance_m=None,
                    is_running=True,
                )
            )
            await asyncio.sleep(period_s)

    async def heart_rate() -> AsyncIterator[bytes]:
        for i in range(sys.maxsize):
            yield encode_heart_rate_measurement(
                HeartRateMeasurement(140 + i % 20, "contact", None, (0.421875,))
            )
            await asyncio.sleep(period_s)

    async def imu() -> AsyncIterator[bytes]:
        t = np.arange(19, dtype=np.float64)[:, None]
        for i in range(sys.maxsize):
            acc = np.hstack((0.1 * np.sin(t / 3 + i), 0.05 * np.cos(t / 3), 1.0 + 0 * t))
            gyro = np.hstack((10 * np.sin(t / 5 + i), 0 * t, 5 * np.cos(t / 5)))
            yield encode_imu_block(ImuBlock((19 * i) % 65536, 200, acc, gyro))
            await asyncio.sleep(period_s)

    return [
        ServedSensor(footpod(), {uuids.RSC_MEASUREMENT: rsc}),
        ServedSensor(heart_rate_strap(), {uuids.HEART_RATE_MEASUREMENT: heart_rate}),
        ServedSensor(imu_strap(config=ImuConfig(200, "chest")), {uuids.RUNMON_IMU_DATA: imu}),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Prototype CLI: serve :func:`demo_sensors`; prints the transport spec as its first line."""
    parser = argparse.ArgumentParser(prog="python -m simulators.peripherals.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    def ready(server: HciServer) -> None:
        print(server.transport_spec, flush=True)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve_peripherals(
                demo_sensors(args.rate_hz), host=args.host, port=args.port, on_ready=ready
            )

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
