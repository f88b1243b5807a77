"""A bleak backend on Google's bumble: production bleak code over real ATT/GATT, no OS Bluetooth.

bleak picks its backend per call (``BleakScanner(backend=...)``, ``BleakClient(backend=...)``).
A :class:`BumbleAdapter` is one bumble host, the "Bluetooth adapter" that all scanners and clients
of a process share, on one HCI transport: an in-process :class:`~sensors.ble.virtual.VirtualRadio`
(tests), another process's radio (``tcp-client:127.0.0.1:PORT``), or a real controller (``usb:0``,
``serial:/dev/ttyACM0,1000000``, ``hci-socket:0``). Its :attr:`~BumbleAdapter.scanner_backend` and
:attr:`~BumbleAdapter.client_backend` are backend classes bound to it, so every bleak API,
classmethods included, works with nothing but ``backend=``::

    async with BumbleAdapter("tcp-client:127.0.0.1:9001") as adapter:
        devices = await BleakScanner.discover(2.0, backend=adapter.scanner_backend)
        async with BleakClient(devices[0], backend=adapter.client_backend) as client:
            battery = await client.read_gatt_char(uuids.BATTERY_LEVEL)

What the backend does the way bleak's OS backends do: ``connect`` also exchanges the ATT MTU
(517 asked, as BlueZ does; notifications are otherwise cut to 20 bytes) and discovers all
services; the disconnected callback fires on every disconnection, ours or the peripheral's;
connects are serialised per adapter (one LE connection may be pending per controller); a connect
that times out raises ``TimeoutError`` (:class:`~sensors.ble.errors.BleConnectTimeoutError`).
Pairing is not supported (runmon's sensors need none): ``pair=True`` is logged and ignored.

bumble's exceptions are translated here into :mod:`sensors.ble.errors`; ``Any`` from bumble's
partly typed API stays inside this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid as std_uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Final, Literal, Self, cast

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName, gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bumble import att, core, hci
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR
from bumble.gatt_client import CharacteristicProxy
from bumble.host import Host
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from sensors.ble.errors import (
    BleConnectError,
    BleConnectTimeoutError,
    BleError,
    BleGattError,
    BleGattProtocolError,
    BleNotConnectedError,
    BleTransportError,
)
from sensors.ble.virtual import VirtualController, VirtualRadio

__all__ = [
    "DEFAULT_MTU",
    "BumbleAdapter",
    "BumbleClientBackend",
    "BumbleDeviceDetails",
    "BumbleScannerBackend",
    "from_bumble_uuid",
    "parse_address",
    "to_bumble_uuid",
]

logger = logging.getLogger(__name__)

#: The ATT MTU a central asks for (BlueZ's and bumble's maximum): room for any runmon payload.
DEFAULT_MTU: Final = 517
#: How long powering on a controller may take before the transport is deemed dead.
POWER_ON_TIMEOUT_S: Final = 5.0
#: How long a disconnect may take before the link is abandoned (BlueZ's backend uses 10 s too).
DISCONNECT_TIMEOUT_S: Final = 10.0
#: Extra time a controller gets to complete a cancelled connection before we stop waiting.
_CANCEL_GRACE_S: Final = 2.0

_SIG_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
_CCCD: Final = GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR

# Tasks that must finish even if whoever started them is cancelled (link teardown).
_detached_tasks: set[asyncio.Task[None]] = set()


def to_bumble_uuid(value: str) -> core.UUID:
    """bumble UUID for a bleak-style string; Bluetooth-base UUIDs become 16-bit, as on air."""
    text = str(std_uuid.UUID(value)) if len(value) > 8 else value.lower()
    if text.startswith("0000") and text.endswith(_SIG_BASE_SUFFIX):
        return core.UUID(text[4:8])
    return core.UUID(text)


def from_bumble_uuid(value: core.UUID) -> str:
    """Full lowercase 128-bit form of a bumble UUID (the form bleak and recordings use)."""
    return str(std_uuid.UUID(bytes=bytes(reversed(value.uuid_128_bytes))))


def parse_address(address: str) -> hci.Address:
    """``AA:BB:CC:DD:EE:FF`` (random, as most sensors use) or ``AA:BB:CC:DD:EE:FF/P`` (public)."""
    try:
        return hci.Address(address)
    except (core.InvalidArgumentError, ValueError) as error:
        raise BleError(f"{address!r} is not a Bluetooth address: {error}") from error


@dataclass(frozen=True, slots=True)
class BumbleDeviceDetails:
    """``BLEDevice.details`` for devices this backend found: the typed address to connect to."""

    address: hci.Address
    advertisement: Advertisement


class BumbleAdapter:
    """One bumble host on one HCI transport, shared by this backend's scanners and clients.

    ``transport`` is a :class:`VirtualRadio` (the adapter attaches its own controller to it) or a
    bumble transport spec. ``address`` is this central's own address (default: a fresh random
    static one). Open with ``async with`` (or :meth:`open` / :meth:`aclose`); closing disconnects
    every link of the adapter.
    """

    def __init__(
        self,
        transport: VirtualRadio | str,
        *,
        address: str | None = None,
        mtu: int = DEFAULT_MTU,
        name: str = "runmon",
    ) -> None:
        if not 23 <= mtu <= 517:
            raise ValueError(f"mtu={mtu} outside the ATT range 23..517")
        self._transport_arg = transport
        self.description = transport if isinstance(transport, str) else "virtual radio (in process)"
        self._address = parse_address(address) if address else None
        self.mtu = mtu
        self._name = name
        self._device: Device | None = None
        self._controller: VirtualController | None = None
        self._transport: Transport | None = None
        self._lost: str | None = None
        self._connect_lock = asyncio.Lock()
        self._scan_lock = asyncio.Lock()
        self._scanners: set[BumbleScannerBackend] = set()
        # Backend classes bound to this adapter: bleak instantiates them itself, and a class
        # attribute is the one thing every bleak entry point (discover(), find_device_by_*(),
        # BleakClient(address)) passes through unchanged.
        self.scanner_backend: type[BumbleScannerBackend] = type(
            "BumbleScannerBackend", (BumbleScannerBackend,), {"adapter": self}
        )
        self.client_backend: type[BumbleClientBackend] = type(
            "BumbleClientBackend", (BumbleClientBackend,), {"adapter": self}
        )

    def __repr__(self) -> str:
        return f"BumbleAdapter({self.description!r})"

    @property
    def is_open(self) -> bool:
        return self._device is not None and self._lost is None

    @property
    def address(self) -> str:
        """This central's own address (once open)."""
        return self._require_device("read the address").random_address.to_string(False)

    async def open(self) -> None:
        """Open the transport and power the controller on (HCI reset, address, LE setup)."""
        if self._device is not None:
            return
        self._lost = None
        address = self._address or hci.Address.generate_static_address()
        if isinstance(self._transport_arg, VirtualRadio):
            controller = self._transport_arg.attach(f"{self._name}-central")
            host = Host(controller, AsyncPipeSink(controller))
            self._controller = controller
        else:
            spec = self._transport_arg
            try:
                self._transport = await open_transport(spec)
            except (core.BaseBumbleError, OSError, ValueError) as error:
                raise BleTransportError(spec, f"cannot open: {error}") from error
            self._transport.source.terminated.add_done_callback(self._on_transport_terminated)
            host = Host(self._transport.source, self._transport.sink)
        device = Device(name=self._name, address=address, host=host)
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            async with asyncio.timeout(POWER_ON_TIMEOUT_S):
                await device.power_on()
        except BaseException as error:
            await self._release()
            if isinstance(error, TimeoutError):
                raise BleTransportError(
                    self.description, f"no HCI controller answered within {POWER_ON_TIMEOUT_S} s"
                ) from error
            if isinstance(error, core.BaseBumbleError):
                raise BleTransportError(self.description, f"power on: {error}") from error
            raise
        self._device = device
        logger.info("bumble adapter %s up on %s", self.address, self.description)

    async def aclose(self) -> None:
        """Disconnect every link, stop scanning, power off, release the transport."""
        device = self._device
        if device is None:
            return
        self._device = None
        try:
            if self._lost is None:
                for connection in list(device.connections.values()):
                    await _disconnect_quietly(connection)
                if device.is_scanning:
                    with contextlib.suppress(core.BaseBumbleError):
                        await device.stop_scanning()
                await device.power_off()
        finally:
            self._scanners.clear()
            await self._release()

    async def _release(self) -> None:
        if self._controller is not None and isinstance(self._transport_arg, VirtualRadio):
            self._transport_arg.detach(self._controller)
            self._controller = None
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _on_transport_terminated(self, _future: asyncio.Future[None]) -> None:
        # bumble's host flushes on its own (every connection reports a disconnection); we only
        # remember why, so later calls fail with a message that says so.
        if self._device is not None:
            self._lost = "the HCI transport closed (the virtual radio or dongle went away)"
            logger.warning("bumble adapter on %s: %s", self.description, self._lost)

    def _require_device(self, operation: str) -> Device:
        if self._lost is not None:
            raise BleTransportError(self.description, f"cannot {operation}: {self._lost}")
        if self._device is None:
            raise BleTransportError(self.description, f"cannot {operation}: adapter not open")
        return self._device

    # -- scanning ---------------------------------------------------------------------------

    async def _start_scan(self, scanner: BumbleScannerBackend) -> None:
        async with self._scan_lock:
            device = self._require_device("scan")
            self._scanners.add(scanner)
            if not device.is_scanning:
                with _translate_hci(self.description, "start scanning"):
                    await device.start_scanning(active=scanner.active, filter_duplicates=False)

    async def _stop_scan(self, scanner: BumbleScannerBackend) -> None:
        async with self._scan_lock:
            self._scanners.discard(scanner)
            device = self._device
            if device is None or self._lost is not None or self._scanners:
                return
            if device.is_scanning:
                with _translate_hci(self.description, "stop scanning"):
                    await device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for scanner in list(self._scanners):
            scanner.on_advertisement(advertisement)

    # -- connecting -------------------------------------------------------------------------

    async def _connect(self, address: hci.Address, timeout_s: float) -> Connection:
        """One LE connection, serialised with the adapter's other connects; the timeout covers
        the wait for the lock too."""
        text = address.to_string(False)
        device = self._require_device(f"connect to {text}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                await self._connect_lock.acquire()
        except TimeoutError as error:
            raise BleConnectTimeoutError(text, timeout_s) from error
        try:
            if device.find_connection_by_bd_addr(address) is not None:
                raise BleConnectError(text, "already connected through this adapter")
            remaining = max(deadline - loop.time(), 0.001)
            # bumble cancels the pending connection at ``remaining``; the outer timeout only
            # guards against a controller that never completes the cancel.
            try:
                async with asyncio.timeout(remaining + _CANCEL_GRACE_S):
                    return await device.connect(address, timeout=remaining)
            except asyncio.CancelledError:
                # bumble leaves the controller connecting when its caller is cancelled.
                await _detached(_abandon_connect(device, address))
                raise
        except (TimeoutError, core.TimeoutError) as error:
            raise BleConnectTimeoutError(text, timeout_s) from error
        except (core.BaseBumbleError, hci.HCI_Error) as error:
            raise BleConnectError(text, str(error)) from error
        finally:
            self._connect_lock.release()


class BumbleScannerBackend(BaseBleakScanner):
    """bleak scanner backend; use the class bound to an adapter: ``adapter.scanner_backend``."""

    adapter: ClassVar[BumbleAdapter | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if self.adapter is None:
            raise BleError(
                "BumbleScannerBackend is not bound to an adapter: "
                "pass backend=BumbleAdapter(...).scanner_backend"
            )
        self._adapter: BumbleAdapter = self.adapter
        self.active = scanning_mode == "active"

    async def start(self) -> None:
        self.seen_devices = {}
        await self._adapter._start_scan(self)

    async def stop(self) -> None:
        await self._adapter._stop_scan(self)

    def on_advertisement(self, advertisement: Advertisement) -> None:
        """One advertising report from the adapter: into bleak's device map and callbacks."""
        data = advertisement.data
        service_uuids = _advertised_uuids(advertisement)
        if not self.is_allowed_uuid(service_uuids):
            return
        local_name = data.get(core.AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get(
            core.AdvertisingData.Type.SHORTENED_LOCAL_NAME
        )
        service_data: dict[str, bytes] = {}
        for type_id in (
            core.AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID,
            core.AdvertisingData.Type.SERVICE_DATA_32_BIT_UUID,
            core.AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID,
        ):
            for service_uuid, payload in data.get_all(type_id):
                service_data[from_bumble_uuid(service_uuid)] = payload
        manufacturer_data = dict(data.get_all(core.AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA))
        tx_power = data.get(core.AdvertisingData.Type.TX_POWER_LEVEL)
        advertisement_data = AdvertisementData(
            local_name=local_name,
            manufacturer_data=manufacturer_data,
            service_data=service_data,
            service_uuids=service_uuids,
            tx_power=tx_power,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        address = advertisement.address.to_string(False)
        previous = self.seen_devices.get(address)
        name = local_name or (previous[0].name if previous else None)
        device = self.create_or_update_device(
            address,
            address,
            name,
            BumbleDeviceDetails(advertisement.address, advertisement),
            advertisement_data,
        )
        self.call_detection_callbacks(device, advertisement_data)


def _advertised_uuids(advertisement: Advertisement) -> list[str]:
    # Reports can repeat a list (bumble's virtual controller echoes the advertising data as its
    # scan response): keep each UUID once, in order.
    found: dict[str, None] = {}
    for type_id in (
        core.AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        core.AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        core.AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        core.AdvertisingData.Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        core.AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        core.AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        for uuid_list in advertisement.data.get_all(type_id):
            for value in uuid_list:
                found[from_bumble_uuid(value)] = None
    return list(found)


class BumbleClientBackend(BaseBleakClient):
    """bleak client backend; use the class bound to an adapter: ``adapter.client_backend``."""

    adapter: ClassVar[BumbleAdapter | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        if self.adapter is None:
            raise BleError(
                "BumbleClientBackend is not bound to an adapter: "
                "pass backend=BumbleAdapter(...).client_backend"
            )
        self._adapter: BumbleAdapter = self.adapter
        self._advertised_name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._advertised_name = address_or_ble_device.name
            details = address_or_ble_device.details
            self._peer_address = (
                details.address
                if isinstance(details, BumbleDeviceDetails)
                else parse_address(address_or_ble_device.address)
            )
        else:
            self._peer_address = parse_address(address_or_ble_device)
        self.address = self._peer_address.to_string(False)
        self._service_filter = services
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._ready = False  # connect() completed: a disconnection is news for the callback
        self.disconnect_reason: int | None = None

    # -- connectivity -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._advertised_name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        connection = self._connection
        return connection.att_mtu if connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the MTU, discover services: ready to use when this returns."""
        if self._connection is not None:
            raise BleError(f"{self.address}: already connected")
        if pair:
            logger.info("%s: pairing is not supported by the bumble backend; ignored", self.address)
        timeout_s = float(kwargs.get("timeout", self._timeout))
        connection = await self._adapter._connect(self._peer_address, timeout_s)
        self._connection = connection
        self.disconnect_reason = None
        on_disconnection = functools.partial(self._on_disconnection, connection)
        connection.on(connection.EVENT_DISCONNECTION, on_disconnection)
        try:
            peer = Peer(connection)
            self._peer = peer
            with self._translate("exchange the ATT MTU"):
                await peer.request_mtu(self._adapter.mtu)
            self.services = await self._discover(peer)
        except BaseException:
            # A half-made connection is no use to anyone: drop it even if we are cancelled.
            # connect() raising is the whole report; the disconnected callback stays silent.
            connection.remove_listener(connection.EVENT_DISCONNECTION, on_disconnection)
            if self._connection is connection:
                self._forget_link(hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)
            await _detached(_disconnect_quietly(connection))
            raise
        self._ready = True
        logger.debug("%s: connected, ATT MTU %d", self.address, connection.att_mtu)

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        wanted = [to_bumble_uuid(u) for u in self._service_filter or ()]
        with self._translate("discover services"):
            for service in await peer.discover_services(wanted):
                bleak_service = BleakGATTService(
                    service, service.handle, from_bumble_uuid(service.uuid)
                )
                collection.add_service(bleak_service)
                for characteristic in await service.discover_characteristics():
                    bleak_characteristic = BleakGATTCharacteristic(
                        characteristic,
                        characteristic.handle,
                        from_bumble_uuid(characteristic.uuid),
                        _property_names(characteristic.properties),
                        self._max_write_without_response_size,
                        bleak_service,
                    )
                    collection.add_characteristic(bleak_characteristic)
                    for descriptor in await characteristic.discover_descriptors():
                        collection.add_descriptor(
                            BleakGATTDescriptor(
                                descriptor,
                                descriptor.handle,
                                from_bumble_uuid(descriptor.type),
                                bleak_characteristic,
                            )
                        )
        return collection

    def _max_write_without_response_size(self) -> int:
        return self.mtu_size - 3

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if connection is not self._connection:
            return  # a late event for a link this client has already given up
        report = self._ready
        self._forget_link(reason)
        logger.info("%s: disconnected (%s)", self.address, _hci_error_name(reason))
        if report and self._disconnected_callback is not None:
            try:
                self._disconnected_callback()
            except Exception:
                logger.exception("%s: disconnected callback raised", self.address)

    def _forget_link(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        self._ready = False
        self._subscribers.clear()
        self.services = None
        self.disconnect_reason = reason

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await connection.disconnect()
        except TimeoutError:
            logger.warning(
                "%s: no disconnection complete within %g s; link abandoned",
                self.address,
                DISCONNECT_TIMEOUT_S,
            )
            self._on_disconnection(
                connection, hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR
            )
        except (core.BaseBumbleError, hci.HCI_Error) as error:
            # The link went down on its own in the meantime: the callback has run already.
            logger.debug("%s: disconnect: %s", self.address, error)
            self._on_disconnection(
                connection, hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR
            )

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleError(f"{self.address}: pairing is not supported by the bumble backend")

    async def unpair(self) -> None:
        raise BleError(f"{self.address}: pairing is not supported by the bumble backend")

    # -- GATT -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, operation: str) -> Iterator[None]:
        """bumble's errors -> ours; a request cut short by a dropped link -> not connected."""
        try:
            yield
        except att.ATT_Error as error:
            raise BleGattProtocolError(self.address, operation, error.error_code) from error
        except core.TimeoutError as error:
            raise BleGattError(self.address, operation, "no response (ATT timeout)") from error
        except asyncio.CancelledError:
            # bumble cancels a pending request's future when the link drops; only a real
            # cancellation of our task (cancelling() > 0) may pass as such.
            task = asyncio.current_task()
            if self._connection is None and task is not None and not task.cancelling():
                raise BleNotConnectedError(self.address, operation) from None
            raise
        except (core.BaseBumbleError, hci.HCI_Error) as error:
            raise BleGattError(self.address, operation, str(error)) from error

    def _require_peer(self, operation: str) -> Peer:
        peer = self._peer
        if peer is None:
            raise BleNotConnectedError(self.address, operation)
        return peer

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        operation = f"read {characteristic.uuid}"
        peer = self._require_peer(operation)
        if use_cached and (cached := peer.gatt_client.cached_values.get(characteristic.handle)):
            return bytearray(cached[1])
        with self._translate(operation):
            return bytearray(await peer.read_value(characteristic.handle))

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        operation = f"read descriptor {descriptor.uuid} of {descriptor.characteristic_uuid}"
        peer = self._require_peer(operation)
        if use_cached and (cached := peer.gatt_client.cached_values.get(descriptor.handle)):
            return bytearray(cached[1])
        with self._translate(operation):
            return bytearray(await peer.read_value(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        operation = f"write {characteristic.uuid}"
        peer = self._require_peer(operation)
        with self._translate(operation):
            await peer.write_value(characteristic.handle, bytes(data), with_response=response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        operation = f"write descriptor {descriptor.uuid} of {descriptor.characteristic_uuid}"
        peer = self._require_peer(operation)
        with self._translate(operation):
            await peer.write_value(descriptor.handle, bytes(data), with_response=True)

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        """Subscribe (notifications preferred over indications, as bleak asks)."""
        operation = f"subscribe to {characteristic.uuid}"
        peer = self._require_peer(operation)
        proxy = _characteristic_proxy(characteristic)
        if not any(d.uuid == from_bumble_uuid(_CCCD) for d in characteristic.descriptors):
            # bumble would only log a warning and return as if subscribed.
            raise BleGattError(
                self.address, operation, "no Client Characteristic Configuration descriptor"
            )
        address = self.address

        def deliver(value: bytes) -> None:
            try:
                callback(bytearray(value))
            except Exception:
                logger.exception("%s: notification callback for %s raised", address, proxy.uuid)

        previous = self._subscribers.pop(characteristic.handle, None)
        self._subscribers[characteristic.handle] = deliver
        with self._translate(operation):
            if previous is not None:
                await peer.unsubscribe(proxy, previous)
            await peer.subscribe(proxy, deliver, prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        operation = f"unsubscribe from {characteristic.uuid}"
        peer = self._require_peer(operation)
        proxy = _characteristic_proxy(characteristic)
        subscriber = self._subscribers.pop(characteristic.handle, None)
        with self._translate(operation):
            # force: write the CCCD back to 0 even if this client never subscribed.
            await peer.gatt_client.unsubscribe(proxy, subscriber, force=subscriber is None)


def _characteristic_proxy(characteristic: BleakGATTCharacteristic) -> CharacteristicProxy[bytes]:
    proxy = characteristic.obj
    if not isinstance(proxy, CharacteristicProxy):
        raise BleError(
            f"characteristic {characteristic.uuid} was not discovered by the bumble backend"
        )
    return cast(CharacteristicProxy[bytes], proxy)


def _property_names(properties: int) -> list[CharacteristicPropertyName]:
    return sorted(gatt_char_props_to_strs(properties))


def _hci_error_name(code: int) -> str:
    try:
        return f"{hci.HCI_ErrorCode(code).name} (0x{code:02x})"
    except ValueError:
        return f"HCI error 0x{code:02x}"


@contextlib.contextmanager
def _translate_hci(where: str, operation: str) -> Iterator[None]:
    try:
        yield
    except (core.BaseBumbleError, hci.HCI_Error) as error:
        raise BleTransportError(where, f"{operation}: {error}") from error


async def _disconnect_quietly(connection: Connection) -> None:
    """Best-effort disconnect for teardown paths: never raises for a link already gone."""
    try:
        async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
            await connection.disconnect()
    except (TimeoutError, core.BaseBumbleError, hci.HCI_Error) as error:
        logger.debug("disconnect %s: %s", connection.peer_address, error)


async def _abandon_connect(device: Device, address: hci.Address) -> None:
    """Cancel a pending LE connection, and drop it if it completed in the meantime."""
    with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error):
        await device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
    if (orphan := device.find_connection_by_bd_addr(address)) is not None:
        await _disconnect_quietly(orphan)


async def _detached(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` to completion even if the caller is cancelled while waiting for it."""
    task = asyncio.ensure_future(coroutine)
    _detached_tasks.add(task)
    task.add_done_callback(_detached_tasks.discard)
    await asyncio.shield(task)
