"""Virtual BLE peripherals: the simulators' sensors as real GATT servers on a virtual radio.

:mod:`simulators.peripherals.gatt_server` is profile-agnostic (a spec of services and
characteristics, payloads from outside); :mod:`simulators.peripherals.profiles` builds the specs
of runmon's sensor profiles (DESIGN §3.1); :mod:`simulators.peripherals.polar` is a Polar H10
whose PMD control point answers start/stop like the strap; :mod:`simulators.peripherals.serve`
hosts peripherals for centrals in other processes (a scenario's sensors:
:mod:`simulators.serve_scenario`).
"""

from simulators.peripherals.gatt_server import (
    CharacteristicSpec,
    PeripheralError,
    PeripheralSpec,
    ServiceSpec,
    StreamStats,
    VirtualPeripheral,
    WriteHandler,
    WriteRejectedError,
    derive_address,
)

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
