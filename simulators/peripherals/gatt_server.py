"""Virtual BLE peripherals: real bumble GATT servers that advertise on a virtual radio.

A :class:`VirtualPeripheral` is one sensor as a central sees it over the air: it advertises its
name and service UUIDs, accepts connections, answers MTU exchange, reads, writes and CCCD writes
with real ATT PDUs, sends notifications and indications, and can drop the link. What it serves is
data, not behaviour: a :class:`PeripheralSpec` lists services and characteristics, notification
payloads arrive from outside (:meth:`VirtualPeripheral.notify`, or :meth:`~VirtualPeripheral.
stream` pulling an async iterator), and a control point answers writes through a pure function.
The simulators encode payloads with :mod:`sensors.gatt` encoders; this module never looks inside
them, so it knows nothing of runners.

Like real firmware (and unlike bumble's defaults) a read of a characteristic that is not
readable, or a write to one that is not writable, gets an ATT error; a notification longer than
the negotiated ATT MTU allows (MTU - 3) is cut to fit, which is what a central that skipped the
MTU exchange sees from many sensors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid as std_uuid
from collections.abc import AsyncIterable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self

from bumble import att, core, data_types, hci
from bumble.device import (
    AdvertisingEventProperties,
    AdvertisingParameters,
    AdvertisingSet,
    Connection,
    Device,
)
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from sensors.ble import VirtualController, VirtualRadio, to_bumble_uuid
from simulators.errors import SimulatorError

__all__ = [
    "CharacteristicSpec",
    "PeripheralError",
    "PeripheralSpec",
    "ServiceSpec",
    "StreamStats",
    "VirtualPeripheral",
    "WriteHandler",
    "WriteRejectedError",
    "derive_address",
]

logger = logging.getLogger(__name__)

#: A control point's logic: the written bytes in, the response to send back (as an indication
#: or notification on the same characteristic, if it has one) or None. Raise
#: :class:`WriteRejectedError` to answer with an ATT error instead.
WriteHandler = Callable[[bytes], bytes | None]

#: Legacy advertising PDUs carry at most 31 bytes; longer data goes out as extended advertising.
_LEGACY_ADV_MAX: Final = 31
_FLAGS: Final = (
    core.AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
    | core.AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
)


class PeripheralError(SimulatorError):
    """A virtual peripheral used wrongly (unknown characteristic, not started, ...)."""


class WriteRejectedError(PeripheralError):
    """Raised by a :data:`WriteHandler`: the central gets ATT error ``att_error_code``.

    0x80-0x9F are application errors (Polar's control point uses its own response codes on
    success paths, but a malformed command is a fair 0x80); 0x0D is Invalid Attribute Length.
    """

    def __init__(self, att_error_code: int, reason: str) -> None:
        if not 0x01 <= att_error_code <= 0xFF:
            raise ValueError(f"att_error_code=0x{att_error_code:x} outside 0x01..0xff")
        self.att_error_code = att_error_code
        super().__init__(f"write rejected with ATT error 0x{att_error_code:02x}: {reason}")


def _normalise_uuid(value: str) -> str:
    return str(std_uuid.UUID(value))


@dataclass(frozen=True, slots=True)
class CharacteristicSpec:
    """One characteristic. ``value`` not None makes it readable, with that initial value."""

    uuid: str
    value: bytes | None = None
    notify: bool = False
    indicate: bool = False
    write: bool = False
    write_without_response: bool = False
    on_write: WriteHandler | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "uuid", _normalise_uuid(self.uuid))
        writable = self.write or self.write_without_response
        if self.on_write is not None and not writable:
            raise ValueError(f"{self.uuid}: on_write needs write or write_without_response")
        if self.value is None and not (self.notify or self.indicate or writable):
            raise ValueError(f"{self.uuid}: neither readable, notifying nor writable")

    @property
    def properties(self) -> Characteristic.Properties:
        flags = Characteristic.Properties(0)
        if self.value is not None:
            flags |= Characteristic.Properties.READ
        if self.notify:
            flags |= Characteristic.Properties.NOTIFY
        if self.indicate:
            flags |= Characteristic.Properties.INDICATE
        if self.write:
            flags |= Characteristic.Properties.WRITE
        if self.write_without_response:
            flags |= Characteristic.Properties.WRITE_WITHOUT_RESPONSE
        return flags


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    uuid: str
    characteristics: tuple[CharacteristicSpec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "uuid", _normalise_uuid(self.uuid))


@dataclass(frozen=True, slots=True)
class PeripheralSpec:
    """A sensor as seen over the air.

    ``advertised_services`` defaults to every service's UUID; ``address`` (random static) to one
    derived from ``name``, so a given virtual sensor keeps its address across runs and processes.
    """

    name: str
    services: tuple[ServiceSpec, ...]
    advertised_services: tuple[str, ...] | None = None
    address: str | None = None
    advertising_interval_ms: float = 20.0

    def __post_init__(self) -> None:
        if not self.name or len(self.name.encode()) > 200:
            raise ValueError(f"name {self.name!r}: need 1..200 bytes of UTF-8")
        uuids = [c.uuid for s in self.services for c in s.characteristics]
        if len(set(uuids)) != len(uuids):
            raise ValueError(f"{self.name}: a characteristic UUID appears twice")
        if self.advertised_services is not None:
            object.__setattr__(
                self,
                "advertised_services",
                tuple(_normalise_uuid(u) for u in self.advertised_services),
            )
        if not 20.0 <= self.advertising_interval_ms <= 10_240.0:
            raise ValueError(
                f"advertising_interval_ms={self.advertising_interval_ms} outside 20..10240"
            )

    def characteristic(self, uuid: str) -> CharacteristicSpec:
        wanted = _normalise_uuid(uuid)
        for service in self.services:
            for characteristic in service.characteristics:
                if characteristic.uuid == wanted:
                    return characteristic
        raise PeripheralError(f"{self.name}: no characteristic {wanted}")


def derive_address(name: str) -> str:
    """A random static address (two top bits set) that depends on ``name`` only."""
    raw = bytearray(hashlib.sha256(name.encode()).digest()[:6])
    raw[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in raw)


@dataclass(slots=True)
class StreamStats:
    """What :meth:`VirtualPeripheral.stream` did with its source's payloads."""

    sent: int = 0
    dropped: int = 0


@dataclass(slots=True)
class _Subscription:
    notify: set[Connection] = field(default_factory=set)
    indicate: set[Connection] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def count(self) -> int:
        return len(self.notify | self.indicate)


class VirtualPeripheral:
    """One virtual sensor on a :class:`VirtualRadio`; ``async with`` starts and stops it.

    ``advertise=False`` powers it on silent: it will never answer a connect until
    :meth:`start_advertising`.
    """

    def __init__(
        self, spec: PeripheralSpec, radio: VirtualRadio, *, advertise: bool = True
    ) -> None:
        self.spec = spec
        self.address = spec.address or derive_address(spec.name)
        self._radio = radio
        self._advertise_on_start = advertise
        self._device: Device | None = None
        self._controller: VirtualController | None = None
        self._advertising_set: AdvertisingSet | None = None
        self._values: dict[str, bytes] = {}
        self._characteristics: dict[str, Characteristic[bytes]] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._connections: set[Connection] = set()
        self._connections_changed = asyncio.Event()
        self._truncation_warned: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._disconnection_listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"VirtualPeripheral({self.spec.name!r}, {self.address})"

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the radio, build the GATT database, power on, advertise (if asked)."""
        if self._device is not None:
            return
        self._closing = False
        controller = self._radio.attach(self.spec.name)
        device = Device(
            name=self.spec.name,
            address=hci.Address(self.address),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        device.add_services([self._build_service(s) for s in self.spec.services])
        device.on(device.EVENT_CONNECTION, self._on_connection)
        device.gatt_server.on(
            device.gatt_server.EVENT_CHARACTERISTIC_SUBSCRIPTION, self._on_subscription
        )
        self._controller = controller
        self._device = device
        try:
            await device.power_on()
            if self._advertise_on_start:
                await self.start_advertising()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Vanish from the radio (centrals see a supervision timeout) and power off."""
        device, controller = self._device, self._controller
        if device is None or controller is None:
            return
        self._closing = True
        try:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._radio.detach(controller)
            # The controller has queued a Disconnection Complete per link for our host: let
            # them arrive before the host is flushed, or it reports them as unknown handles.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.wait_disconnected()
            self._device = self._controller = None
            self._advertising_set = None
            await device.power_off()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _require_device(self) -> Device:
        if self._device is None:
            raise PeripheralError(f"{self.spec.name}: not started")
        return self._device

    # -- advertising ------------------------------------------------------------------------

    def advertising_data(self) -> bytes:
        """Flags, complete local name and the complete lists of advertised service UUIDs."""
        advertised = self.spec.advertised_services
        if advertised is None:
            advertised = tuple(s.uuid for s in self.spec.services)
        short = [u for u in map(to_bumble_uuid, advertised) if len(u.uuid_bytes) == 2]
        long = [u for u in map(to_bumble_uuid, advertised) if len(u.uuid_bytes) != 2]
        structures: list[core.DataType] = [
            data_types.Flags(_FLAGS),
            data_types.CompleteLocalName(self.spec.name),
        ]
        if short:
            structures.append(data_types.CompleteListOf16BitServiceUUIDs(short))
        if long:
            structures.append(data_types.CompleteListOf128BitServiceUUIDs(long))
        return bytes(core.AdvertisingData(structures))

    async def start_advertising(self) -> None:
        """Advertise (connectable; again after each disconnection, until stopped).

        Data that fits 31 bytes goes out in legacy PDUs, as a typical sensor sends it; a longer
        name with a 128-bit UUID goes out as extended advertising (BLE 5).
        """
        device = self._require_device()
        if self._advertising_set is not None:
            return
        data = self.advertising_data()
        properties = AdvertisingEventProperties(
            is_connectable=True,
            is_scannable=len(data) <= _LEGACY_ADV_MAX,
            is_legacy=len(data) <= _LEGACY_ADV_MAX,
        )
        self._advertising_set = await device.create_advertising_set(
            advertising_parameters=AdvertisingParameters(
                advertising_event_properties=properties,
                primary_advertising_interval_min=self.spec.advertising_interval_ms,
                primary_advertising_interval_max=self.spec.advertising_interval_ms,
            ),
            advertising_data=data,
            # Restarted by _on_disconnection instead: bumble's own restart races a power-off.
            auto_restart=False,
        )

    async def stop_advertising(self) -> None:
        """Stop advertising: from now on a central's connect attempts go unanswered."""
        advertising_set, self._advertising_set = self._advertising_set, None
        if advertising_set is not None and self._device is not None:
            if advertising_set.enabled:
                await advertising_set.stop()
            await advertising_set.remove()

    # -- connections ------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def wait_connected(self, count: int = 1) -> None:
        """Until at least ``count`` centrals are connected."""
        while len(self._connections) < count:
            self._connections_changed.clear()
            await self._connections_changed.wait()

    async def wait_disconnected(self) -> None:
        """Until no central is connected."""
        while self._connections:
            self._connections_changed.clear()
            await self._connections_changed.wait()

    async def drop_link(
        self, reason: int = hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR
    ) -> int:
        """Disconnect every central (the peripheral ends the link); returns how many."""
        connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error):
                await connection.disconnect(reason)
        return len(connections)

    def _on_connection(self, connection: Connection) -> None:
        self._connections.add(connection)
        self._connections_changed.set()
        connection.on(
            connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )
        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE, self._log_mtu(connection))
        logger.info("%s: connected to %s", self.spec.name, connection.peer_address)

    def _log_mtu(self, connection: Connection) -> Callable[[], None]:
        def log() -> None:
            logger.debug("%s: ATT MTU %d", self.spec.name, connection.att_mtu)

        return log

    def on_disconnection(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a central's link ends (firmware state that dies with it,
        such as Polar's running PMD streams)."""
        self._disconnection_listeners.append(listener)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        self._connections.discard(connection)
        for listener in self._disconnection_listeners:
            listener()
        for subscription in self._subscriptions.values():
            if connection in subscription.notify or connection in subscription.indicate:
                subscription.notify.discard(connection)
                subscription.indicate.discard(connection)
                subscription.changed.set()
        self._connections_changed.set()
        logger.info(
            "%s: %s disconnected (reason 0x%02x)", self.spec.name, connection.peer_address, reason
        )
        advertising_set = self._advertising_set
        if advertising_set is not None and not advertising_set.enabled and not self._closing:
            self._spawn(self._restart_advertising(advertising_set), "restart advertising")

    async def _restart_advertising(self, advertising_set: AdvertisingSet) -> None:
        if advertising_set is self._advertising_set and not advertising_set.enabled:
            with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error):
                await advertising_set.start()

    # -- GATT -------------------------------------------------------------------------------

    def _build_service(self, spec: ServiceSpec) -> Service:
        characteristics: list[Characteristic[bytes]] = []
        for char_spec in spec.characteristics:
            if char_spec.value is not None:
                self._values[char_spec.uuid] = char_spec.value
            permissions = Characteristic.Permissions(0)
            if char_spec.value is not None:
                permissions |= Characteristic.Permissions.READABLE
            if char_spec.write or char_spec.write_without_response:
                permissions |= Characteristic.Permissions.WRITEABLE
            characteristic: Characteristic[bytes] = Characteristic(
                to_bumble_uuid(char_spec.uuid),
                char_spec.properties,
                permissions,
                CharacteristicValue(read=self._reader(char_spec), write=self._writer(char_spec)),
            )
            self._characteristics[char_spec.uuid] = characteristic
            self._subscriptions[char_spec.uuid] = _Subscription()
            characteristics.append(characteristic)
        return Service(to_bumble_uuid(spec.uuid), characteristics)

    def _reader(self, spec: CharacteristicSpec) -> Callable[[Connection], bytes]:
        def read(_connection: Connection) -> bytes:
            if spec.value is None:
                raise att.ATT_Error(att.ErrorCode.READ_NOT_PERMITTED)
            return self._values[spec.uuid]

        return read

    def _writer(self, spec: CharacteristicSpec) -> Callable[[Connection, bytes], None]:
        def write(connection: Connection, value: bytes) -> None:
            if not (spec.write or spec.write_without_response):
                raise att.ATT_Error(att.ErrorCode.WRITE_NOT_PERMITTED)
            if spec.on_write is None:
                self._values[spec.uuid] = bytes(value)
                return
            try:
                response = spec.on_write(bytes(value))
            except WriteRejectedError as error:
                logger.info("%s: %s: %s", self.spec.name, spec.uuid, error)
                raise att.ATT_Error(error.att_error_code, message=str(error)) from error
            if response is not None and (spec.indicate or spec.notify):
                # After this returns bumble sends the Write Response; the answer follows it.
                self._spawn(self._respond(connection, spec.uuid, response), f"respond {spec.uuid}")

        return write

    async def _respond(self, connection: Connection, uuid: str, response: bytes) -> None:
        subscription = self._subscriptions[uuid]
        if connection in subscription.notify or connection in subscription.indicate:
            await self._send(connection, uuid, response)
        else:
            logger.info("%s: %s: response not sent, central not subscribed", self.spec.name, uuid)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.spec.name}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_subscription(
        self,
        connection: Connection,
        characteristic: Characteristic[bytes],
        notify_enabled: bool,
        indicate_enabled: bool,
    ) -> None:
        uuid = next((u for u, c in self._characteristics.items() if c is characteristic), None)
        if uuid is None:
            return  # a characteristic of the default GATT service
        subscription = self._subscriptions[uuid]
        (subscription.notify.add if notify_enabled else subscription.notify.discard)(connection)
        (subscription.indicate.add if indicate_enabled else subscription.indicate.discard)(
            connection
        )
        subscription.changed.set()
        logger.debug(
            "%s: %s notify=%s indicate=%s for %s",
            self.spec.name,
            uuid,
            notify_enabled,
            indicate_enabled,
            connection.peer_address,
        )

    def _subscription(self, uuid: str) -> _Subscription:
        try:
            return self._subscriptions[_normalise_uuid(uuid)]
        except KeyError:
            raise PeripheralError(f"{self.spec.name}: no characteristic {uuid}") from None

    def subscriber_count(self, uuid: str) -> int:
        return self._subscription(uuid).count

    async def wait_subscribed(self, uuid: str, count: int = 1) -> None:
        """Until at least ``count`` centrals have enabled notifications or indications."""
        subscription = self._subscription(uuid)
        while subscription.count < count:
            subscription.changed.clear()
            await subscription.changed.wait()

    def set_value(self, uuid: str, value: bytes) -> None:
        """What the next read of a readable characteristic returns (e.g. a new battery level)."""
        spec = self.spec.characteristic(uuid)
        if spec.value is None:
            raise PeripheralError(f"{self.spec.name}: {spec.uuid} is not readable")
        self._values[spec.uuid] = bytes(value)

    async def notify(self, uuid: str, payload: bytes) -> int:
        """Send ``payload`` to every subscribed central; returns how many got it.

        A notification where the central enabled notifications, else an indication (returns
        once confirmed). Waits until the link has taken the packets, so a fast source cannot
        queue without bound.
        """
        self._require_device()
        key = _normalise_uuid(uuid)
        subscription = self._subscription(key)
        delivered = 0
        for connection in list(subscription.notify | subscription.indicate):
            delivered += await self._send(connection, key, payload)
        return delivered

    async def _send(self, connection: Connection, uuid: str, payload: bytes) -> bool:
        """One notification or indication to one central; False if its link went away."""
        device = self._require_device()
        characteristic = self._characteristics[uuid]
        limit = connection.att_mtu - 3
        if len(payload) > limit and uuid not in self._truncation_warned:
            self._truncation_warned.add(uuid)
            logger.warning(
                "%s: %d-byte payload for %s cut to %d bytes: ATT MTU %d (no MTU exchange?)",
                self.spec.name,
                len(payload),
                uuid,
                limit,
                connection.att_mtu,
            )
        try:
            if connection in self._subscriptions[uuid].notify:
                await device.notify_subscriber(connection, characteristic, payload)
            else:
                await _until_disconnected(
                    connection, device.indicate_subscriber(connection, characteristic, payload)
                )
            await connection.drain()
        except (core.BaseBumbleError, hci.HCI_Error, TimeoutError) as error:
            logger.info("%s: %s not delivered: %s", self.spec.name, uuid, error)
            return False
        return connection in self._connections

    async def stream(
        self,
        uuid: str,
        source: AsyncIterable[bytes],
        *,
        when_unsubscribed: Literal["wait", "drop"] = "wait",
    ) -> StreamStats:
        """Notify each payload of ``source`` in turn, until it ends; the source sets the pace.

        ``wait``: a payload is taken from the source only once a central is subscribed, so
        nothing is lost across a link drop (a paused sensor). ``drop``: payloads keep coming and
        those with no subscriber are dropped (a sensor that streams into the void, as a real one
        does while its central reconnects).
        """
        stats = StreamStats()
        self._subscription(uuid)  # fail now, not at the first payload, if the UUID is unknown
        iterator = aiter(source)
        while True:
            if when_unsubscribed == "wait":
                await self.wait_subscribed(uuid)
            try:
                payload = await anext(iterator)
            except StopAsyncIteration:
                return stats
            if await self.notify(uuid, payload):
                stats.sent += 1
            else:
                stats.dropped += 1


async def _until_disconnected(connection: Connection, operation: Coroutine[Any, Any, None]) -> None:
    """Await ``operation`` (an indication waiting for its confirmation) or the link's end.

    bumble forgets a pending confirmation when the link drops but leaves the indication waiting
    out its 30 s ATT timeout; a dropped link should end the wait at once.
    """
    task = asyncio.ensure_future(operation)
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_disconnection(_reason: int) -> None:
        if not gone.done():
            gone.set_result(None)

    connection.on(connection.EVENT_DISCONNECTION, on_disconnection)
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        connection.remove_listener(connection.EVENT_DISCONNECTION, on_disconnection)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if gone.done() and task.cancelled():
        raise core.InvalidStateError("link dropped before the indication was confirmed")
