"""Errors of :mod:`sensors.ble`: children of :class:`sensors.errors.SensorsError`.

Every one is also a :class:`bleak.exc.BleakError`, so code written against bleak's facade catches
them the same way whichever backend is in use; where bleak's own backends raise something more
specific (``TimeoutError`` for a connect that times out, ``BleakGATTProtocolError`` for an ATT
error response), the matching error here derives from that too. bumble's own exceptions never
escape: they are translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations

from bleak.exc import PROTOCOL_ERROR_CODES, BleakError, BleakGATTProtocolError

from sensors.errors import SensorsError


class BleError(SensorsError, BleakError):
    """Root of the BLE errors; ``str()`` says what failed and where."""


class BleTransportError(BleError):
    """The HCI transport (``spec``, e.g. ``tcp-client:127.0.0.1:9001``) cannot be used."""

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"BLE transport {spec!r}: {reason}")


class BleConnectTimeoutError(BleError, TimeoutError):
    """No connection to ``address`` within ``timeout_s``: not advertising, or out of range."""

    def __init__(self, address: str, timeout_s: float) -> None:
        self.address = address
        self.timeout_s = timeout_s
        super().__init__(
            f"{address}: no connection within {timeout_s:g} s "
            "(the sensor is not advertising, out of range, or connected elsewhere)"
        )


class BleConnectError(BleError):
    """The controller refused or failed the connection to ``address``."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{address}: connection failed: {reason}")


class BleNotConnectedError(BleError):
    """``operation`` needs a link to ``address`` that is not (or no longer) up."""

    def __init__(self, address: str, operation: str) -> None:
        self.address = address
        self.operation = operation
        super().__init__(f"{address}: cannot {operation}: not connected")


class BleGattError(BleError):
    """A GATT ``operation`` on ``address`` failed for a reason other than an ATT error."""

    def __init__(self, address: str, operation: str, reason: str) -> None:
        self.address = address
        self.operation = operation
        self.reason = reason
        super().__init__(f"{address}: {operation}: {reason}")


class BleGattProtocolError(BleGattError, BleakGATTProtocolError):
    """The peripheral answered ``operation`` with an ATT error response (``att_error_code``).

    ``code`` (from bleak) is the same number as a ``BleakGATTProtocolErrorCode``.
    """

    def __init__(self, address: str, operation: str, att_error_code: int) -> None:
        name = PROTOCOL_ERROR_CODES.get(att_error_code, "Unknown code")
        # bleak's ``code`` property reads ``args[0]``: let bleak's constructor set ``args``.
        BleakGATTProtocolError.__init__(self, att_error_code)
        self.address = address
        self.operation = operation
        self.reason = f"ATT error 0x{att_error_code:02x} ({name})"
        self.att_error_code = att_error_code

    def __str__(self) -> str:
        return f"{self.address}: {self.operation}: {self.reason}"


class SensorLinkError(BleError):
    """A worn sensor could not be found, connected, set up or kept streaming.

    ``sensor`` is the runner's id for it (``"foot"``), ``where`` its address or advertised name;
    ``str()`` names both, so a status line or log says which strap needs attention.
    """

    def __init__(self, sensor: str, where: str, reason: str) -> None:
        self.sensor = sensor
        self.where = where
        self.reason = reason
        super().__init__(f"sensor {sensor!r} ({where}): {reason}")


class SensorNotFoundError(SensorLinkError):
    """Scanning did not find the sensor (by name or address) within the scan timeout."""


class SensorConnectTimeoutError(SensorLinkError, TimeoutError):
    """The sensor did not answer a connect within the timeout (off, out of range, or busy)."""


class SensorSetupError(SensorLinkError):
    """Connected, but the sensor lacks a characteristic or refused a command (e.g. PMD start)."""


class SensorSilentError(SensorLinkError):
    """The link stayed up but no data arrived for the watchdog's timeout: treated as lost."""
