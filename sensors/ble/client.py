"""The BLE client: a runner's sensors found, connected, subscribed and kept streaming.

A :class:`SensorHub` runs one supervised task per :class:`SensorTarget` in a TaskGroup and turns
everything the sensors send into :mod:`sensors.recording` records, in receive order::

    async with open_backend(transport) as backend, SensorHub(targets, backend) as hub:
        async for record in hub.records():      # Notification / ConnectionEvent
            ...

These are exactly the records a recording holds (``t`` = host receive time in seconds since the
hub started, by its ``clock``), so a live run, a capture and a replay share one path downstream.

Per sensor, and again after every loss:

1. find it: by address directly, or by scanning for its advertised name (scan filtered by the
   profile's service UUID), remembering what was found for later reconnects;
2. connect, serialised with every other connect through the same adapter (``BleBackend.
   connect_lock``: BlueZ refuses concurrent LE connects), within ``connect_timeout_s``;
3. negotiate the ATT MTU (bleak's bumble backend does on connect; on BlueZ the MTU is acquired);
4. read what the profile reads on connect (battery, IMU config): recorded like notifications;
5. subscribe to the profile's notify characteristics (and Battery Level where it notifies);
6. Polar PMD: subscribe to the control point, read its features (a stream the strap does not
   offer is a :class:`SensorSetupError`), send a start request per configured stream and check
   the response (a refusal is one too);
7. watch: a dropped link, or no data for ``silence_timeout_s`` (the watchdog), ends the
   session; it is reported ``lost`` and retried after a jittered, capped exponential backoff.

A sensor that never answers is reported ``lost`` with a message naming it, and retried; the
other sensors carry on. Only a dead adapter (:class:`BleTransportError`: the HCI transport went
away) ends the hub, and :meth:`SensorHub.records` raises it once the records before it are out.

State changes (``connecting`` / ``streaming`` / ``lost``, battery) go to ``on_status`` as
:class:`SensorStatus` values, for the ``sensors/{sensor}`` topic and for terminals.

Back-pressure: records wait in a buffer of ``queue_size``. Notification callbacks cannot wait, so
when the consumer falls that far behind the *oldest* notification is dropped (counted per sensor
in :attr:`SensorStatus.dropped`, logged once per overflow episode): a live coach wants the
present, and the timing layer sees the hole as lost packets. Connection events are never
dropped.

Shutdown: :meth:`SensorHub.close`, leaving the ``async with``, or cancellation (Ctrl-C) cancels
the sensor tasks; each stops its PMD streams, disconnects (bounded by ``disconnect_timeout_s``,
shielded from a second cancellation) and records its ``disconnect`` before the records end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, Literal, Self

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from sensors import uuids
from sensors.ble.adapter import BleBackend, os_stack_errors
from sensors.ble.errors import (
    BleTransportError,
    SensorConnectTimeoutError,
    SensorLinkError,
    SensorNotFoundError,
    SensorSetupError,
    SensorSilentError,
)
from sensors.errors import DecodeError
from sensors.gatt.battery import decode_battery_level
from sensors.gatt.polar_pmd import (
    PmdControlPointResponse,
    PmdFeatures,
    PmdMeasurementType,
    PmdOpCode,
    PmdStatus,
    decode_pmd_control_point,
    pmd_start_request,
    pmd_stop_request,
)
from sensors.profiles import PROFILE_SERVICES, ProfileName
from sensors.recording import ConnectionEvent, Notification, Record

__all__ = [
    "ClientOptions",
    "PmdStreamRequest",
    "SensorHub",
    "SensorState",
    "SensorStatus",
    "SensorTarget",
    "backoff_delay_s",
]

logger = logging.getLogger(__name__)

SensorState = Literal["connecting", "streaming", "lost"]
PmdMeasurement = Literal["acc", "gyro"]

_PMD_TYPES: Final[Mapping[PmdMeasurement, PmdMeasurementType]] = {
    "acc": PmdMeasurementType.ACC,
    "gyro": PmdMeasurementType.GYRO,
}
#: Payloads larger than 20 bytes: a link left at the default MTU of 23 would cut them.
_BATCHED_PROFILES: Final = frozenset({"runmon_imu", "runmon_breath", "polar_pmd"})
_DEFAULT_ATT_MTU: Final = 23


@dataclass(frozen=True, slots=True)
class _ProfilePlan:
    """What the client does with a sensor of one profile on every connect."""

    reads: tuple[str, ...]  # read and recorded, in this order, when the sensor has them
    data: tuple[str, ...]  # notify characteristics the sensor must have (the watchdog's food)
    optional_data: tuple[str, ...] = ()  # subscribed when present


_PLANS: Final[Mapping[ProfileName, _ProfilePlan]] = {
    "rsc": _ProfilePlan((uuids.BATTERY_LEVEL,), (uuids.RSC_MEASUREMENT,)),
    "heart_rate": _ProfilePlan((uuids.BATTERY_LEVEL,), (uuids.HEART_RATE_MEASUREMENT,)),
    "runmon_imu": _ProfilePlan(
        (uuids.RUNMON_IMU_CONFIG, uuids.BATTERY_LEVEL), (uuids.RUNMON_IMU_DATA,)
    ),
    "runmon_breath": _ProfilePlan((uuids.BATTERY_LEVEL,), (uuids.RUNMON_BREATH_DATA,)),
    "polar_pmd": _ProfilePlan(
        (uuids.BATTERY_LEVEL,), (uuids.PMD_DATA,), (uuids.HEART_RATE_MEASUREMENT,)
    ),
}
_CHAR_NAMES: Final = {
    uuids.RSC_MEASUREMENT: "RSC Measurement",
    uuids.HEART_RATE_MEASUREMENT: "Heart Rate Measurement",
    uuids.RUNMON_IMU_DATA: "runmon IMU data",
    uuids.RUNMON_BREATH_DATA: "runmon Breath data",
    uuids.PMD_DATA: "Polar PMD data",
    uuids.PMD_CONTROL_POINT: "Polar PMD control point",
}


def _scan_services(profile: ProfileName) -> list[str]:
    """Service UUIDs to filter a scan for a sensor of ``profile`` on (any one matches)."""
    if profile == "polar_pmd":
        # A Polar strap advertises Heart Rate only; it serves PMD once connected.
        return [uuids.PMD_SERVICE, uuids.HEART_RATE_SERVICE]
    return [PROFILE_SERVICES[profile]]


@dataclass(frozen=True, slots=True)
class PmdStreamRequest:
    """One Polar PMD stream to start: ``range`` in g (acc) or deg/s (gyro)."""

    measurement: PmdMeasurement
    sample_rate_hz: int
    range: int
    resolution_bits: int = 16

    @property
    def measurement_type(self) -> PmdMeasurementType:
        return _PMD_TYPES[self.measurement]

    def start_request(self) -> bytes:
        return pmd_start_request(
            self.measurement_type,
            sample_rate_hz=self.sample_rate_hz,
            resolution_bits=self.resolution_bits,
            range_=self.range,
        )


#: What a Polar H10 streams by default in runmon: accelerometer at 200 Hz, ±8 g, 16 bits.
DEFAULT_PMD_STREAMS: Final = (PmdStreamRequest("acc", 200, 8, 16),)


@dataclass(frozen=True, slots=True)
class SensorTarget:
    """One worn sensor to connect to: ``address`` or advertised ``name`` (at least one).

    ``silence_timeout_s`` overrides the watchdog's for this sensor (a footpod that sleeps while
    the runner stands still at a traffic light needs longer).
    """

    id: str
    profile: ProfileName
    address: str | None = None
    name: str | None = None
    pmd_streams: tuple[PmdStreamRequest, ...] = ()
    silence_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.address is None and self.name is None:
            raise ValueError(f"sensor {self.id!r}: give an address or a name")
        if self.silence_timeout_s is not None and not self.silence_timeout_s > 0:
            raise ValueError(f"sensor {self.id!r}: silence_timeout_s must be > 0")
        if self.pmd_streams and self.profile != "polar_pmd":
            raise ValueError(f"sensor {self.id!r}: PMD streams need profile polar_pmd")
        if self.profile == "polar_pmd" and not self.pmd_streams:
            object.__setattr__(self, "pmd_streams", DEFAULT_PMD_STREAMS)

    @property
    def where(self) -> str:
        """How error messages point at it: the address, else the advertised name."""
        if self.address is not None and self.name is not None:
            return f"{self.name}, {self.address}"
        return self.address if self.address is not None else f"name {self.name!r}"


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """A sensor's state for the ``sensors/{sensor}`` topic; ``t_s`` on the hub's clock.

    ``reason`` says why it is ``lost``; ``connects`` counts links made; ``dropped`` counts
    notifications dropped because the consumer fell behind.
    """

    sensor: str
    state: SensorState
    t_s: float
    battery_pct: int | None = None
    reason: str | None = None
    connects: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timing of the client; the defaults suit real straps (tests shorten them)."""

    connect_timeout_s: float = 10.0
    #: How long a scan for a sensor known by name may take before it counts as not found.
    find_timeout_s: float = 10.0
    #: The watchdog: a link with no data for this long is treated as lost.
    silence_timeout_s: float = 5.0
    #: Time a PMD control point has to answer a start request.
    pmd_response_timeout_s: float = 5.0
    disconnect_timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: Each delay is drawn from [1 - jitter, 1] times the exponential value.
    backoff_jitter: float = 0.5
    queue_size: int = 4096

    def __post_init__(self) -> None:
        for name in (
            "connect_timeout_s",
            "find_timeout_s",
            "silence_timeout_s",
            "pmd_response_timeout_s",
            "disconnect_timeout_s",
            "backoff_initial_s",
            "backoff_max_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.backoff_jitter <= 1.0:
            raise ValueError(f"backoff_jitter must be within 0..1, got {self.backoff_jitter!r}")
        if self.queue_size < 16:
            raise ValueError(f"queue_size must be at least 16, got {self.queue_size}")


def backoff_delay_s(attempt: int, options: ClientOptions, rng: random.Random) -> float:
    """Delay before retry ``attempt`` (0-based): capped exponential, jittered downwards.

    Jitter keeps several sensors (or several runners' hubs) that lost their links together from
    retrying in lockstep.
    """
    ceiling = min(options.backoff_max_s, options.backoff_initial_s * 2.0 ** min(attempt, 32))
    return ceiling * (1.0 - options.backoff_jitter * rng.random())


# --------------------------------------------------------------------------------------------
# Buffer


class _RecordBuffer:
    """Bounded FIFO of records with a drop-oldest-notification policy (module docstring)."""

    def __init__(self, capacity: int, on_drop: Callable[[Notification], None]) -> None:
        self._items: deque[Record] = deque()
        self._capacity = capacity
        self._on_drop = on_drop
        self._ready = asyncio.Event()
        self._closed = False
        self.overflowing = False

    def put(self, record: Record) -> None:
        if self._closed:
            return
        if len(self._items) >= self._capacity:
            self._drop_oldest_notification()
        self._items.append(record)
        self._ready.set()

    def _drop_oldest_notification(self) -> None:
        for index, item in enumerate(self._items):
            if isinstance(item, Notification):
                del self._items[index]
                self._on_drop(item)
                return

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def get(self) -> Record | None:
        """The next record; None once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if len(self._items) < self._capacity // 2:
            self.overflowing = False
        return self._items.popleft()


# --------------------------------------------------------------------------------------------
# Hub


class SensorHub:
    """Keeps a runner's sensors connected and streaming; an async iterator of their records.

    ``clock`` gives the records' ``t`` (default: seconds since the hub was entered, on the loop's
    monotonic clock; ``runmon demo`` passes a sped-up one). ``rng`` draws the backoff jitter.
    :meth:`records` has one consumer: every record is delivered once.
    """

    def __init__(
        self,
        targets: Sequence[SensorTarget],
        backend: BleBackend,
        *,
        clock: Callable[[], float] | None = None,
        options: ClientOptions | None = None,
        on_status: Callable[[SensorStatus], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        ids = [t.id for t in targets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"sensor ids must be unique, got {ids}")
        self.targets = tuple(targets)
        self.backend = backend
        self.options = options or ClientOptions()
        self._clock = clock
        self._on_status = on_status
        self._rng = rng or random.Random()
        self._buffer = _RecordBuffer(self.options.queue_size, self._dropped)
        self._statuses = {t.id: SensorStatus(t.id, "connecting", 0.0) for t in targets}
        self._counts: dict[tuple[str, str], int] = {}
        self._counted = asyncio.Event()
        self._stack: contextlib.AsyncExitStack | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        self._fatal: BleTransportError | None = None
        self._start_s = 0.0

    # -- life cycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("a SensorHub runs once")
        loop = asyncio.get_running_loop()
        self._start_s = loop.time()
        stack = contextlib.AsyncExitStack()
        group = await stack.enter_async_context(asyncio.TaskGroup())
        self._stack = stack
        self._running = len(self.targets)
        for target in self.targets:
            link = _SensorLink(self, target)
            task = group.create_task(link.run(), name=f"sensor-{target.id}")
            # A callback, not a finally: a task cancelled before its first step runs no code.
            task.add_done_callback(self._finished)
            self._tasks.append(task)
        if not self.targets:
            self._buffer.close()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    def close(self) -> None:
        """Stop every sensor (clean disconnects); :meth:`records` ends once they are done."""
        for task in self._tasks:
            task.cancel()

    def now(self) -> float:
        """The hub's clock: what ``t`` a record received now gets."""
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time() - self._start_s

    async def records(self) -> AsyncIterator[Record]:
        """Records in receive order, until the hub is closed (or its adapter dies: raises)."""
        while (record := await self._buffer.get()) is not None:
            yield record
        if self._fatal is not None:
            raise self._fatal

    # -- observation ------------------------------------------------------------------------

    def status(self, sensor: str) -> SensorStatus:
        return self._statuses[sensor]

    @property
    def statuses(self) -> Mapping[str, SensorStatus]:
        return dict(self._statuses)

    def notification_count(self, sensor: str, char: str) -> int:
        """Notifications (and read values) received so far from ``sensor`` on ``char``."""
        return self._counts.get((sensor, char), 0)

    async def wait_notified(self, expected: Mapping[tuple[str, str], int]) -> None:
        """Until at least ``expected[(sensor, char)]`` notifications have arrived for each key."""
        while any(self._counts.get(key, 0) < n for key, n in expected.items()):
            self._counted.clear()
            await self._counted.wait()

    # -- what sensor links call -------------------------------------------------------------

    def _emit(self, record: Record) -> None:
        if isinstance(record, Notification):
            key = (record.sensor, record.char)
            self._counts[key] = self._counts.get(key, 0) + 1
            self._counted.set()
        self._buffer.put(record)

    def _dropped(self, note: Notification) -> None:
        status = self._statuses[note.sensor]
        self._statuses[note.sensor] = replace(status, dropped=status.dropped + 1)
        if not self._buffer.overflowing:
            self._buffer.overflowing = True
            logger.warning(
                "records: the consumer fell %d records behind; dropping the oldest notifications",
                self.options.queue_size,
            )

    def _update(self, sensor: str, **changes: Any) -> None:
        status = self._statuses[sensor]
        new = replace(status, **changes)
        if new == status:
            return
        new = replace(new, t_s=self.now())
        self._statuses[sensor] = new
        if new.state != status.state:
            # Info, not warning: on_status is the reporting channel (terminal, MQTT topic).
            logger.info(
                "sensor %r %s%s", sensor, new.state, f": {new.reason}" if new.reason else ""
            )
        if self._on_status is not None and (
            new.state != status.state
            or new.battery_pct != status.battery_pct
            or new.reason != status.reason
        ):
            self._on_status(new)

    def _fail(self, error: BleTransportError) -> None:
        """The adapter is gone: nothing can reconnect. End the hub, raise from records()."""
        if self._fatal is None:
            self._fatal = error
        self.close()

    def _finished(self, _task: asyncio.Task[None]) -> None:
        self._running -= 1
        if self._running == 0:
            self._buffer.close()


# --------------------------------------------------------------------------------------------
# One sensor


class _Session:
    """One connection's state: ends with the link."""

    def __init__(self) -> None:
        self.lost = asyncio.Event()
        self.last_data_s = 0.0
        self.streaming = False
        self.pmd_responses: asyncio.Queue[PmdControlPointResponse] = asyncio.Queue(maxsize=16)
        self.pmd_started: list[PmdStreamRequest] = []


class _SensorLink:
    """Finds, connects and supervises one sensor, forever (until cancelled)."""

    def __init__(self, hub: SensorHub, target: SensorTarget) -> None:
        self.hub = hub
        self.target = target
        self.plan = _PLANS[target.profile]
        self.options = hub.options
        self._found: BLEDevice | None = None
        self._connects = 0
        self._streamed = False  # the current session delivered data: the backoff starts over

    def _error(self, kind: type[SensorLinkError], reason: str) -> SensorLinkError:
        return kind(self.target.id, self.target.where, reason)

    async def run(self) -> None:
        attempt = 0
        while True:
            self.hub._update(self.target.id, state="connecting", reason=None)
            self._streamed = False
            try:
                await self._session()
                reason = str(self._error(SensorLinkError, "link lost"))
            except BleTransportError as error:
                self.hub._update(self.target.id, state="lost", reason=str(error))
                self.hub._fail(error)
                return
            except SensorLinkError as error:
                reason = str(error)
            except (BleakError, TimeoutError) as error:
                reason = str(self._error(SensorLinkError, str(error) or type(error).__name__))
            self.hub._update(self.target.id, state="lost", reason=reason)
            if self._streamed:
                attempt = 0
            delay_s = backoff_delay_s(attempt, self.options, self.hub._rng)
            attempt += 1
            logger.info("sensor %r: retrying in %.2f s", self.target.id, delay_s)
            await asyncio.sleep(delay_s)

    # -- one session ------------------------------------------------------------------------

    async def _session(self) -> None:
        """Connect and stream until the link drops (return) or fails (raise why)."""
        device = await self._find()
        session = _Session()
        client = BleakClient(
            device,
            disconnected_callback=lambda _client: session.lost.set(),
            timeout=self.options.connect_timeout_s,
            backend=self.hub.backend.client_backend,
        )
        connected = False
        try:
            await self._connect(client)
            connected = True
            self._connects += 1
            self.hub._update(self.target.id, connects=self._connects)
            self.hub._emit(ConnectionEvent(self.hub.now(), self.target.id, "connect"))
            await self._negotiate_mtu(client)
            await self._setup(client, session)
            await self._watch(session)
        except (BleTransportError, SensorLinkError):
            raise
        except (BleakError, TimeoutError) as error:
            if session.lost.is_set() or not client.is_connected:
                raise self._error(SensorLinkError, f"link lost ({error})") from error
            raise self._error(SensorLinkError, str(error)) from error
        finally:
            if connected:
                await _shielded(self._teardown(client, session))
                self.hub._emit(ConnectionEvent(self.hub.now(), self.target.id, "disconnect"))

    async def _find(self) -> BLEDevice | str:
        """What to connect to: the address, or the device a scan for its name found."""
        if self._found is not None:
            return self._found
        if self.target.name is None:
            assert self.target.address is not None
            return self.target.address
        address = self.target.address.upper() if self.target.address else None
        name = self.target.name

        def matches(device: BLEDevice, advertisement: AdvertisementData) -> bool:
            if address is not None and device.address.upper() != address:
                return False
            return (advertisement.local_name or device.name) == name

        try:
            with os_stack_errors(self.hub.backend, "scan"):
                device = await BleakScanner.find_device_by_filter(
                    matches,
                    timeout=self.options.find_timeout_s,
                    **self.hub.backend.scanner_kwargs(_scan_services(self.target.profile)),
                )
        except BleTransportError:
            raise
        except BleakError as error:
            raise self._error(SensorNotFoundError, f"scan failed: {error}") from error
        if device is None:
            raise self._error(
                SensorNotFoundError,
                f"not found within {self.options.find_timeout_s:g} s of scanning "
                "(switched off, out of range, or connected to another device)",
            )
        self._found = device
        return device

    async def _connect(self, client: BleakClient) -> None:
        lock = self.hub.backend.connect_lock
        timeout_s = self.options.connect_timeout_s
        async with lock:
            try:
                # The bumble backend bounds its own connect; BlueZ's may not: bound it here too,
                # with room for the backend's own timeout to speak first.
                async with asyncio.timeout(timeout_s + 1.0):
                    with os_stack_errors(self.hub.backend, f"connect to {self.target.where}"):
                        await client.connect()
            except BleTransportError:
                raise
            except TimeoutError as error:
                self._found = None  # scan again next time: the sensor may have a new address
                raise self._error(
                    SensorConnectTimeoutError,
                    f"no connection within {timeout_s:g} s "
                    "(switched off, out of range, or connected to another device)",
                ) from error
            except BleakError as error:
                self._found = None
                raise self._error(SensorLinkError, f"connect failed: {error}") from error

    async def _negotiate_mtu(self, client: BleakClient) -> None:
        """Make sure the link carries whole payloads: the ATT MTU must be above the default."""
        # BlueZ negotiates on its own but bleak only learns the result through this private
        # call (bleak's documented way, see its mtu_size example); bumble's backend exchanged it
        # on connect already.
        acquire = getattr(client._backend, "_acquire_mtu", None)
        if acquire is not None:
            try:
                await acquire()
            except BleakError as error:
                logger.info("sensor %r: could not acquire the MTU: %s", self.target.id, error)
        mtu = client.mtu_size
        if mtu <= _DEFAULT_ATT_MTU and self.target.profile in _BATCHED_PROFILES:
            logger.warning(
                "sensor %r: ATT MTU %d: notifications longer than %d bytes will be cut",
                self.target.id,
                mtu,
                mtu - 3,
            )
        logger.debug("sensor %r: ATT MTU %d", self.target.id, mtu)

    async def _setup(self, client: BleakClient, session: _Session) -> None:
        services = client.services
        for char in self.plan.reads:
            if services.get_characteristic(char) is not None:
                payload = bytes(await client.read_gatt_char(char))
                self._on_value(session, char, payload)
        for char in self.plan.data:
            if services.get_characteristic(char) is None:
                raise self._error(
                    SensorSetupError,
                    f"has no {_CHAR_NAMES.get(char, char)} characteristic: is it a "
                    f"{self.target.profile} sensor?",
                )
        subscribe = [*self.plan.data]
        subscribe += [c for c in self.plan.optional_data if services.get_characteristic(c)]
        battery = services.get_characteristic(uuids.BATTERY_LEVEL)
        if battery is not None and "notify" in battery.properties:
            subscribe.append(uuids.BATTERY_LEVEL)
        if self.target.profile == "polar_pmd":
            subscribe.insert(0, uuids.PMD_CONTROL_POINT)
        session.last_data_s = asyncio.get_running_loop().time()
        for char in subscribe:
            await client.start_notify(char, self._callback(session, char))
        if self.target.profile == "polar_pmd":
            await self._start_pmd(client, session)
        session.last_data_s = asyncio.get_running_loop().time()

    def _callback(
        self, session: _Session, char: str
    ) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def on_notification(_characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
            self._on_value(session, char, bytes(data))

        return on_notification

    def _on_value(self, session: _Session, char: str, payload: bytes) -> None:
        """A notification or read value: record it, feed the watchdog, note the battery."""
        hub = self.hub
        hub._emit(Notification(hub.now(), self.target.id, char, payload))
        if char == uuids.BATTERY_LEVEL:
            try:
                hub._update(self.target.id, battery_pct=decode_battery_level(payload).level_pct)
            except DecodeError as error:
                logger.info("sensor %r: battery level: %s", self.target.id, error)
        elif char == uuids.PMD_CONTROL_POINT:
            self._on_pmd_control(session, payload)
        elif char in self.plan.data or char in self.plan.optional_data:
            session.last_data_s = asyncio.get_running_loop().time()
            if not session.streaming:
                session.streaming = self._streamed = True
                hub._update(self.target.id, state="streaming", reason=None)

    def _on_pmd_control(self, session: _Session, payload: bytes) -> None:
        try:
            message = decode_pmd_control_point(payload)
        except DecodeError as error:
            logger.warning("sensor %r: %s", self.target.id, error)
            return
        if isinstance(message, PmdControlPointResponse):
            with contextlib.suppress(asyncio.QueueFull):
                session.pmd_responses.put_nowait(message)
        else:
            logger.info("sensor %r: PMD control point says %s", self.target.id, message)

    async def _start_pmd(self, client: BleakClient, session: _Session) -> None:
        """Start each configured stream the strap offers; its response must say success."""
        offered = await self._pmd_features(client)
        for stream in self.target.pmd_streams:
            if offered is not None and stream.measurement_type not in offered:
                names = ", ".join(sorted(t.name for t in offered)) or "nothing"
                raise self._error(
                    SensorSetupError,
                    f"PMD does not offer {stream.measurement_type.name} (it offers {names})",
                )
        for stream in self.target.pmd_streams:
            measurement = stream.measurement_type
            await client.write_gatt_char(
                uuids.PMD_CONTROL_POINT, stream.start_request(), response=True
            )
            response = await self._pmd_response(
                session, PmdOpCode.REQUEST_MEASUREMENT_START, stream
            )
            if response.status not in (PmdStatus.SUCCESS, PmdStatus.ALREADY_IN_STATE):
                raise self._error(
                    SensorSetupError,
                    f"PMD refused to start {measurement.name} at {stream.sample_rate_hz} Hz, "
                    f"range {stream.range}, {stream.resolution_bits} bits: "
                    f"{response.status.name}",
                )
            session.pmd_started.append(stream)
            logger.info("sensor %r: PMD %s streaming", self.target.id, measurement.name)

    async def _pmd_features(self, client: BleakClient) -> frozenset[PmdMeasurementType] | None:
        """What the control point's read value says the strap offers (None: unreadable)."""
        payload = bytes(await client.read_gatt_char(uuids.PMD_CONTROL_POINT))
        try:
            features = decode_pmd_control_point(payload)
        except DecodeError as error:
            logger.info("sensor %r: PMD features: %s", self.target.id, error)
            return None
        return features.measurement_types if isinstance(features, PmdFeatures) else None

    async def _pmd_response(
        self, session: _Session, op_code: PmdOpCode, stream: PmdStreamRequest
    ) -> PmdControlPointResponse:
        timeout_s = self.options.pmd_response_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    response = await session.pmd_responses.get()
                    if (
                        response.op_code == op_code
                        and response.measurement_type == stream.measurement_type
                    ):
                        return response
        except TimeoutError as error:
            raise self._error(
                SensorSetupError,
                f"PMD control point did not answer {op_code.name} "
                f"{stream.measurement_type.name} within {timeout_s:g} s",
            ) from error

    async def _watch(self, session: _Session) -> None:
        """Until the link drops (return) or falls silent (raise: the watchdog)."""
        loop = asyncio.get_running_loop()
        silence_s = self.target.silence_timeout_s or self.options.silence_timeout_s
        while True:
            remaining_s = session.last_data_s + silence_s - loop.time()
            if remaining_s <= 0:
                raise self._error(SensorSilentError, f"no data for {silence_s:g} s")
            try:
                async with asyncio.timeout(remaining_s):
                    await session.lost.wait()
            except TimeoutError:
                continue
            return

    async def _teardown(self, client: BleakClient, session: _Session) -> None:
        """Stop PMD streams (politely, if the link is still up) and disconnect, bounded."""
        try:
            async with asyncio.timeout(self.options.disconnect_timeout_s):
                if client.is_connected:
                    for stream in session.pmd_started:
                        await client.write_gatt_char(
                            uuids.PMD_CONTROL_POINT,
                            pmd_stop_request(stream.measurement_type),
                            response=True,
                        )
                await client.disconnect()
        except (BleakError, TimeoutError) as error:
            logger.info("sensor %r: disconnect: %s", self.target.id, error)


_detached: set[asyncio.Task[None]] = set()


async def _shielded(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a teardown to completion even if the caller is cancelled again meanwhile."""
    task = asyncio.ensure_future(coroutine)
    _detached.add(task)
    task.add_done_callback(_detached.discard)
    await asyncio.shield(task)
