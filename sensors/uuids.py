"""GATT UUIDs of the profiles runmon speaks, as full lowercase 128-bit strings."""

from __future__ import annotations

from typing import Final

_BLUETOOTH_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"


def sig_uuid(short: int) -> str:
    """Full 128-bit form of a Bluetooth SIG 16-bit UUID (the form recordings use)."""
    return f"{short:08x}{_BLUETOOTH_BASE_SUFFIX}"


# Running Speed and Cadence
RSC_SERVICE: Final = sig_uuid(0x1814)
RSC_MEASUREMENT: Final = sig_uuid(0x2A53)
RSC_FEATURE: Final = sig_uuid(0x2A54)

# Heart Rate
HEART_RATE_SERVICE: Final = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT: Final = sig_uuid(0x2A37)

# Battery
BATTERY_SERVICE: Final = sig_uuid(0x180F)
BATTERY_LEVEL: Final = sig_uuid(0x2A19)

# Polar Measurement Data
PMD_SERVICE: Final = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT: Final = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA: Final = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

# runmon open profiles
RUNMON_IMU_SERVICE: Final = "a28d0001-3115-4994-88d7-903e81d4b614"
RUNMON_IMU_DATA: Final = "a28d0002-3115-4994-88d7-903e81d4b614"
RUNMON_IMU_CONFIG: Final = "a28d0003-3115-4994-88d7-903e81d4b614"
RUNMON_BREATH_SERVICE: Final = "a28d0010-3115-4994-88d7-903e81d4b614"
RUNMON_BREATH_DATA: Final = "a28d0011-3115-4994-88d7-903e81d4b614"
