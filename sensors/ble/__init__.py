"""BLE for runmon without the OS stack: a bleak backend on bumble, and a virtual radio.

Production code talks to sensors through bleak (``BleakScanner``/``BleakClient``). With no
``backend=`` bleak uses the OS (BlueZ on Linux). :class:`BumbleAdapter` puts bleak on Google's
bumble instead: over a virtual radio (in this process, or another process's over TCP) the
simulators' virtual sensors answer with real ATT/GATT packets; over ``usb:0`` bumble drives a real
HCI dongle. :mod:`sensors.ble.adapter` picks one or the other (``--ble-transport``);
:mod:`sensors.ble.client` keeps a runner's sensors connected and streaming and turns them into
recording records (``runmon record``, ``runmon run``, ``runmon demo``); :mod:`sensors.ble.scan`
lists sensors nearby (``runmon scan``).

Exception tree (in :mod:`sensors.ble.errors`; every one is also a ``bleak.exc.BleakError``)::

    SensorsError
    └── BleError
        ├── BleTransportError        the HCI transport cannot be opened, or went away (spec)
        ├── BleConnectTimeoutError   no connection within the timeout (also TimeoutError)
        ├── BleConnectError          the controller refused or failed the connection
        ├── BleNotConnectedError     an operation on a link that is not (or no longer) up
        ├── BleGattError             a GATT operation failed (ATT timeout, no CCCD, ...)
        │   └── BleGattProtocolError the peer answered with an ATT error (also bleak's
        │                            BleakGATTProtocolError: ``code``)
        └── SensorLinkError          the client lost or could not set up a worn sensor
            │                        (``sensor`` id and ``where``: address or name)
            ├── SensorNotFoundError        a scan did not find it
            ├── SensorConnectTimeoutError  it did not answer a connect (also TimeoutError)
            ├── SensorSetupError           a characteristic missing, a PMD start refused
            └── SensorSilentError          the watchdog: no data for too long
"""

from sensors.ble.adapter import BleBackend, open_backend
from sensors.ble.bumble_backend import (
    DEFAULT_MTU,
    BumbleAdapter,
    BumbleClientBackend,
    BumbleDeviceDetails,
    BumbleScannerBackend,
    from_bumble_uuid,
    parse_address,
    to_bumble_uuid,
)
from sensors.ble.client import (
    ClientOptions,
    PmdStreamRequest,
    SensorHub,
    SensorStatus,
    SensorTarget,
)
from sensors.ble.errors import (
    BleConnectError,
    BleConnectTimeoutError,
    BleError,
    BleGattError,
    BleGattProtocolError,
    BleNotConnectedError,
    BleTransportError,
    SensorConnectTimeoutError,
    SensorLinkError,
    SensorNotFoundError,
    SensorSetupError,
    SensorSilentError,
)
from sensors.ble.virtual import HciServer, VirtualController, VirtualRadio

__all__ = [
    "DEFAULT_MTU",
    "BleBackend",
    "BleConnectError",
    "BleConnectTimeoutError",
    "BleError",
    "BleGattError",
    "BleGattProtocolError",
    "BleNotConnectedError",
    "BleTransportError",
    "BumbleAdapter",
    "BumbleClientBackend",
    "BumbleDeviceDetails",
    "BumbleScannerBackend",
    "ClientOptions",
    "HciServer",
    "PmdStreamRequest",
    "SensorConnectTimeoutError",
    "SensorHub",
    "SensorLinkError",
    "SensorNotFoundError",
    "SensorSetupError",
    "SensorSilentError",
    "SensorStatus",
    "SensorTarget",
    "VirtualController",
    "VirtualRadio",
    "from_bumble_uuid",
    "open_backend",
    "parse_address",
    "to_bumble_uuid",
]
