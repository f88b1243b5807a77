"""Sensor profiles: which characteristics each one notifies, and its default mounting.

A profile name is what a recording header's ``sensors[].profile`` says; it is a public contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from sensors import uuids

ProfileName = Literal["rsc", "heart_rate", "runmon_imu", "runmon_breath", "polar_pmd"]
PROFILE_NAMES: Final[tuple[ProfileName, ...]] = (
    "rsc",
    "heart_rate",
    "runmon_imu",
    "runmon_breath",
    "polar_pmd",
)

#: Characteristics a sensor of each profile may send (notifications and read values). Battery
#: Level is common to all: every strap may report it.
PROFILE_CHARACTERISTICS: Final[Mapping[ProfileName, frozenset[str]]] = MappingProxyType(
    {
        "rsc": frozenset({uuids.RSC_MEASUREMENT, uuids.RSC_FEATURE, uuids.BATTERY_LEVEL}),
        "heart_rate": frozenset({uuids.HEART_RATE_MEASUREMENT, uuids.BATTERY_LEVEL}),
        "runmon_imu": frozenset(
            {uuids.RUNMON_IMU_DATA, uuids.RUNMON_IMU_CONFIG, uuids.BATTERY_LEVEL}
        ),
        "runmon_breath": frozenset({uuids.RUNMON_BREATH_DATA, uuids.BATTERY_LEVEL}),
        "polar_pmd": frozenset(
            {
                uuids.PMD_DATA,
                uuids.PMD_CONTROL_POINT,
                uuids.HEART_RATE_MEASUREMENT,
                uuids.BATTERY_LEVEL,
            }
        ),
    }
)

#: Service UUIDs a sensor of each profile advertises (used to identify it in a scan).
PROFILE_SERVICES: Final[Mapping[ProfileName, str]] = MappingProxyType(
    {
        "rsc": uuids.RSC_SERVICE,
        "heart_rate": uuids.HEART_RATE_SERVICE,
        "runmon_imu": uuids.RUNMON_IMU_SERVICE,
        "runmon_breath": uuids.RUNMON_BREATH_SERVICE,
        "polar_pmd": uuids.PMD_SERVICE,
    }
)

Axis = Literal["+x", "-x", "+y", "-y", "+z", "-z"]

#: Which sensor axis points forward, left and up when the runner stands upright.
DEFAULT_MOUNTS: Final[Mapping[ProfileName, Mapping[str, Axis]]] = MappingProxyType(
    {
        "runmon_imu": MappingProxyType({"forward": "+x", "left": "+y", "up": "+z"}),
        # Polar H10 worn on the chest: z out of the chest, x to the runner's left, y up.
        "polar_pmd": MappingProxyType({"forward": "+z", "left": "+x", "up": "+y"}),
    }
)
