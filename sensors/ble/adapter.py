"""Which Bluetooth adapter a process talks through: the OS stack, or bumble on a transport.

bleak picks its backend per call (``backend=``); everything that scans or connects in runmon takes
a :class:`BleBackend` instead of deciding for itself, so ``--ble-transport`` is one injection
seam (as httpx has its transport): ``None`` is the system's bleak backend (BlueZ on Linux), a
bumble transport spec (``tcp-client:127.0.0.1:9001``, ``usb:0``) or an in-process
:class:`~sensors.ble.virtual.VirtualRadio` opens a :class:`~sensors.ble.BumbleAdapter`.

A :class:`BleBackend` also carries the adapter's connect lock: BlueZ fails a second LE connect
while one is pending ("Operation already in progress"), so every connect through one adapter
takes this lock, whichever runner or sensor it is for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason

from sensors.ble.bumble_backend import BumbleAdapter
from sensors.ble.errors import BleTransportError
from sensors.ble.virtual import VirtualRadio

__all__ = ["BleBackend", "open_backend", "os_stack_errors"]

#: What ``--ble-transport`` accepts: nothing (the OS stack), a bumble spec, or a radio in process.
Transport = str | VirtualRadio | None


@dataclass(frozen=True, slots=True)
class BleBackend:
    """bleak backend classes for one adapter (None: bleak's default) and its connect lock."""

    description: str
    scanner_backend: type[BaseBleakScanner] | None = None
    client_backend: type[BaseBleakClient] | None = None
    connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def scanner_kwargs(self, service_uuids: list[str] | None = None) -> dict[str, Any]:
        """Keyword arguments for bleak's scanner entry points (``backend=`` only when set)."""
        kwargs: dict[str, Any] = {}
        if self.scanner_backend is not None:
            kwargs["backend"] = self.scanner_backend
        if service_uuids is not None:
            kwargs["service_uuids"] = service_uuids
        return kwargs


@contextlib.contextmanager
def os_stack_errors(backend: BleBackend, operation: str) -> Iterator[None]:
    """The OS stack's ways of saying "no Bluetooth here", as :class:`BleTransportError`.

    bleak lets them through raw: an ``OSError`` when the system bus has no BlueZ behind it (no
    D-Bus socket), ``BleakBluetoothNotAvailableError`` without an adapter or permission. A
    powered-off adapter stays a ``BleakError``: it may come back, the client retries. The
    bumble backend translates its own errors already.
    """
    if backend.client_backend is not None:
        yield
        return
    try:
        yield
    except BleakBluetoothNotAvailableError as error:
        if error.reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            raise
        raise BleTransportError(
            backend.description, f"{operation}: Bluetooth is not available: {error.args[0]}"
        ) from error
    except OSError as error:
        raise BleTransportError(
            backend.description,
            f"{operation}: cannot reach the system's Bluetooth service ({error}); "
            "is BlueZ running? (--ble-transport usb:0 drives a dongle without it)",
        ) from error


@contextlib.asynccontextmanager
async def open_backend(transport: Transport = None) -> AsyncIterator[BleBackend]:
    """The system adapter (``None``), or a bumble adapter on ``transport``, open for the block.

    Raises :class:`~sensors.ble.errors.BleTransportError` when a bumble transport cannot be
    opened.
    """
    if transport is None:
        yield BleBackend("system Bluetooth")
        return
    async with BumbleAdapter(transport) as adapter:
        yield BleBackend(
            f"bumble on {adapter.description}",
            scanner_backend=adapter.scanner_backend,
            client_backend=adapter.client_backend,
        )
