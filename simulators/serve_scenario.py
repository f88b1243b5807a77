"""A scenario's sensors as virtual BLE peripherals: the simulated runner, over the air.

:func:`plan_sensors` splits a simulated record stream (:func:`simulators.session.
simulated_records`, the bytes a recording of the scenario holds) per sensor into what a
peripheral serves:

- notifications of notify characteristics become that characteristic's payload stream, paced on
  the records' data time (``t``) divided by ``speedup``;
- values the host reads on each connect (Battery Level, IMU config) become the characteristic's
  read value, set anew on each reconnect;
- a ``disconnect`` ... ``connect`` pair (a link drop of the scenario) becomes the peripheral
  dropping the link and staying silent until the connect time;
- pain and control events are not BLE: they come back in :attr:`ScenarioPlan.other_records` for a
  caller that feeds a service directly (``runmon demo``).

:class:`ScenarioServer` hosts one :class:`~simulators.peripherals.VirtualPeripheral` per sensor
on a :class:`~sensors.ble.VirtualRadio`. Each stream waits for a subscriber before its next
payload (nothing is lost while a central connects or reconnects; late payloads go out at once to
catch up), and the scenario's clock starts when the first central subscribes. A Polar PMD sensor
is a :func:`~simulators.peripherals.polar.polar_h10` whose data flows only while its stream is
started. :func:`serve_over_tcp` runs it all for centrals in other processes (``runmon simulate
--serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from sensors import uuids
from sensors.ble import HciServer, VirtualRadio
from sensors.gatt import ImuConfig
from sensors.recording import ConnectionEvent, Notification, Record, RecordingHeader, SensorSpec
from simulators.errors import SimulatorError
from simulators.peripherals.gatt_server import (
    PeripheralSpec,
    StreamStats,
    VirtualPeripheral,
    derive_address,
)
from simulators.peripherals.polar import PmdControl, polar_h10
from simulators.peripherals.profiles import breath_band, footpod, heart_rate_strap, imu_strap

__all__ = [
    "LinkDrop",
    "ScenarioPlan",
    "ScenarioServer",
    "ServedScenarioSensor",
    "peripheral_name",
    "plan_sensors",
    "serve_over_tcp",
    "served_counts",
]

logger = logging.getLogger(__name__)


def peripheral_name(runner: str, sensor: str) -> str:
    """The advertised name of a scenario's sensor (what a runner configuration names)."""
    return f"runmon-{runner}-{sensor}"


@dataclass(frozen=True, slots=True)
class LinkDrop:
    """The link is down from ``down_t_s`` until ``up_t_s`` (None: not again in this run)."""

    down_t_s: float
    up_t_s: float | None
    reads: tuple[tuple[str, bytes], ...] = ()  # values read on the reconnect


@dataclass(slots=True)
class ServedScenarioSensor:
    """One scenario sensor as a peripheral: its GATT layout, read values, streams and drops."""

    spec: SensorSpec
    peripheral: PeripheralSpec
    initial_values: dict[str, bytes] = field(default_factory=dict)
    streams: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)
    drops: list[LinkDrop] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.peripheral.name

    @property
    def address(self) -> str:
        return self.peripheral.address or derive_address(self.peripheral.name)


@dataclass(slots=True)
class ScenarioPlan:
    """Every sensor of a scenario as a peripheral, plus the records BLE cannot carry."""

    header: RecordingHeader
    sensors: list[ServedScenarioSensor]
    other_records: list[Record] = field(default_factory=list)

    @property
    def notification_counts(self) -> dict[tuple[str, str], int]:
        """(sensor, char) -> how many notifications the peripherals will send."""
        return {
            (sensor.id, char): len(items)
            for sensor in self.sensors
            for char, items in sensor.streams.items()
        }


def _peripheral_spec(header: RecordingHeader, spec: SensorSpec) -> PeripheralSpec:
    name = peripheral_name(header.runner, spec.id)
    match spec.profile:
        case "rsc":
            return footpod(name)
        case "heart_rate":
            return heart_rate_strap(name)
        case "runmon_imu":
            placement = spec.placement or "unknown"
            return imu_strap(name, config=ImuConfig(200, placement))
        case "runmon_breath":
            return breath_band(name)
        case "polar_pmd":
            # The control point's logic is the server's (one per peripheral): a placeholder here.
            return polar_h10(name, control=PmdControl(), advertise_pmd=True)


@dataclass(slots=True)
class _Splitter:
    """Walks one sensor's records in time order (see the module docstring)."""

    sensor: ServedScenarioSensor
    reading: bool = True  # since the last connect, no data yet: readable values are reads
    pending_down_s: float | None = None
    connected_once: bool = False

    def take(self, record: Notification | ConnectionEvent) -> None:
        sensor = self.sensor
        if isinstance(record, ConnectionEvent):
            if record.kind == "disconnect":
                self.pending_down_s = record.t
            else:
                if self.pending_down_s is not None:
                    sensor.drops.append(LinkDrop(self.pending_down_s, record.t))
                    self.pending_down_s = None
                self.reading = True
                self.connected_once = True
            return
        try:
            char = sensor.peripheral.characteristic(record.char)
        except SimulatorError:
            logger.warning("%s: no characteristic %s to serve; skipped", sensor.name, record.char)
            return
        if record.char == uuids.PMD_CONTROL_POINT:
            return  # the control point answers for itself
        if char.value is not None and (self.reading or not char.notify):
            if sensor.drops and sensor.drops[-1].up_t_s is not None:
                last = sensor.drops[-1]
                sensor.drops[-1] = LinkDrop(
                    last.down_t_s, last.up_t_s, (*last.reads, (record.char, record.payload))
                )
            else:
                sensor.initial_values[record.char] = record.payload
            return
        if char.notify:
            self.reading = False
            sensor.streams.setdefault(record.char, []).append((record.t, record.payload))

    def finish(self) -> None:
        if self.pending_down_s is not None:
            self.sensor.drops.append(LinkDrop(self.pending_down_s, None))


def plan_sensors(header: RecordingHeader, records: Iterable[Record]) -> ScenarioPlan:
    """Split a simulated run's records per sensor into what its peripheral serves."""
    splitters = {
        spec.id: _Splitter(ServedScenarioSensor(spec, _peripheral_spec(header, spec)))
        for spec in header.sensors
    }
    plan = ScenarioPlan(header, [s.sensor for s in splitters.values()])
    for record in records:
        if isinstance(record, Notification | ConnectionEvent):
            splitter = splitters.get(record.sensor)
            if splitter is None:
                raise SimulatorError(f"record for sensor {record.sensor!r}, not in the header")
            splitter.take(record)
        else:
            plan.other_records.append(record)
    for splitter in splitters.values():
        splitter.finish()
    return plan


class _ScenarioClock:
    """Data time of the served scenario: starts when the first central subscribes.

    With ``max_lag_s`` the clock is elastic: a stream more than that (wall seconds) behind its
    schedule holds the clock back, so data time never runs ahead of what the radio delivers
    (``runmon demo`` at a speedup the in-process radio cannot carry). It stays monotonic.
    """

    def __init__(self, speedup: float, max_lag_s: float | None = None) -> None:
        if not speedup > 0:
            raise ValueError(f"speedup must be > 0, got {speedup!r}")
        self.speedup = speedup
        self.max_lag_s = max_lag_s
        self.started = asyncio.Event()
        self._start_s = 0.0
        self._latest_s = 0.0

    def begin(self) -> None:
        if not self.started.is_set():
            self._start_s = asyncio.get_running_loop().time()
            self.started.set()

    def now_s(self) -> float:
        """Scenario seconds since the start (0 before it); never goes back."""
        if self.started.is_set() and not math.isinf(self.speedup):
            elapsed_s = asyncio.get_running_loop().time() - self._start_s
            self._latest_s = max(self._latest_s, elapsed_s * self.speedup)
        return self._latest_s

    async def sleep_until(self, t_s: float) -> None:
        await self.started.wait()
        if math.isinf(self.speedup):
            self._latest_s = max(self._latest_s, t_s)
            return
        late_s = asyncio.get_running_loop().time() - (self._start_s + t_s / self.speedup)
        if self.max_lag_s is not None and late_s > self.max_lag_s:
            self._start_s += late_s - self.max_lag_s
        if late_s < -0.0005:
            await asyncio.sleep(-late_s)


class ScenarioServer:
    """Hosts a :class:`ScenarioPlan`'s peripherals on ``radio`` and streams them, paced.

    ``max_lag_s`` makes the scenario's clock elastic (see :class:`_ScenarioClock`): for a central
    in this process that must see data time and delivery agree; centrals in other processes get
    a strict clock, so one that subscribes late cannot stall the others.

    ``async with`` starts the peripherals (advertising) and their streams; :meth:`wait_done`
    returns once every payload has been served; leaving the block stops the streams and takes the
    peripherals off the radio (their centrals see the links time out).
    """

    def __init__(
        self,
        radio: VirtualRadio,
        plan: ScenarioPlan,
        *,
        speedup: float = 1.0,
        max_lag_s: float | None = None,
    ) -> None:
        self.radio = radio
        self.plan = plan
        self.clock = _ScenarioClock(speedup, max_lag_s)
        self.peripherals: dict[str, VirtualPeripheral] = {}
        self.controls: dict[str, PmdControl] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self._streams: dict[tuple[str, str], asyncio.Task[StreamStats]] = {}
        self._schedules: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            for sensor in self.plan.sensors:
                spec = sensor.peripheral
                if sensor.spec.profile == "polar_pmd":
                    control = PmdControl()
                    spec = polar_h10(
                        sensor.name, control=control, advertise_pmd=True, address=sensor.address
                    )
                    self.controls[sensor.id] = control
                peripheral = VirtualPeripheral(spec, self.radio, advertise=False)
                await stack.enter_async_context(peripheral)
                for char, value in sensor.initial_values.items():
                    peripheral.set_value(char, value)
                if sensor.id in self.controls:
                    self.controls[sensor.id].attach(peripheral)
                await peripheral.start_advertising()
                self.peripherals[sensor.id] = peripheral
            group = await stack.enter_async_context(asyncio.TaskGroup())
            for sensor in self.plan.sensors:
                peripheral = self.peripherals[sensor.id]
                for char, items in sensor.streams.items():
                    self._streams[(sensor.id, char)] = group.create_task(
                        peripheral.stream(char, self._source(sensor.id, char, items)),
                        name=f"{sensor.name}: stream {char}",
                    )
                if sensor.drops:
                    self._schedules.append(
                        group.create_task(
                            self._replay_drops(peripheral, sensor.drops),
                            name=f"{sensor.name}: link drops",
                        )
                    )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in [*self._streams.values(), *self._schedules]:
            task.cancel()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    def now_s(self) -> float:
        """The scenario's data time: seconds since the first central subscribed, sped up."""
        return self.clock.now_s()

    async def sleep_until(self, t_s: float) -> None:
        """Until the scenario's data time reaches ``t_s``."""
        await self.clock.sleep_until(t_s)

    async def wait_done(self) -> dict[tuple[str, str], StreamStats]:
        """Until every stream has served its last payload (and every drop is over)."""
        await asyncio.gather(*self._schedules)
        return {key: await task for key, task in self._streams.items()}

    async def _source(
        self, sensor_id: str, char: str, items: Sequence[tuple[float, bytes]]
    ) -> AsyncIterator[bytes]:
        async def paced() -> AsyncIterator[bytes]:
            for t_s, payload in items:
                # The stream asks for a payload only with a subscriber: the runner starts now.
                self.clock.begin()
                await self.clock.sleep_until(t_s)
                yield payload

        control = self.controls.get(sensor_id)
        source = paced() if control is None or char != uuids.PMD_DATA else control.gate(paced())
        peripheral = self.peripherals[sensor_id]
        async for payload in source:
            # The link may have dropped while this payload waited for its time: wait for the
            # central to come back rather than send it into the void.
            await peripheral.wait_subscribed(char)
            yield payload

    async def _replay_drops(self, peripheral: VirtualPeripheral, drops: Sequence[LinkDrop]) -> None:
        for drop in drops:
            await self.clock.sleep_until(drop.down_t_s)
            await peripheral.stop_advertising()
            await peripheral.drop_link()
            logger.info("%s: link dropped at %.1f s", peripheral.spec.name, drop.down_t_s)
            if drop.up_t_s is None:
                return
            await self.clock.sleep_until(drop.up_t_s)
            for char, value in drop.reads:
                peripheral.set_value(char, value)
            await peripheral.start_advertising()


async def serve_over_tcp(
    plan: ScenarioPlan,
    *,
    speedup: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[HciServer, ScenarioServer], None] | None = None,
    on_done: Callable[[dict[tuple[str, str], StreamStats]], None] | None = None,
) -> None:
    """Serve ``plan`` to centrals in other processes, until cancelled.

    ``on_ready`` runs once every sensor advertises, ``on_done`` once the last payload is served.
    The sensors then stay up, connected and quiet, as real ones do when the runner stops: a
    recorder decides itself when it has enough.
    """
    radio = VirtualRadio()
    async with (
        await radio.serve_hci(host, port) as hci_server,
        ScenarioServer(radio, plan, speedup=speedup) as server,
    ):
        if on_ready is not None:
            on_ready(hci_server, server)
        stats = await server.wait_done()
        if on_done is not None:
            on_done(stats)
        await asyncio.Event().wait()  # until cancelled


def served_counts(stats: Mapping[tuple[str, str], StreamStats]) -> tuple[int, int]:
    """(sent, dropped) over every stream."""
    return sum(s.sent for s in stats.values()), sum(s.dropped for s in stats.values())
