"""GATT layouts of runmon's sensor profiles (DESIGN §3.1), as :class:`PeripheralSpec` builders.

Each sensor advertises its profile's service (what ``runmon scan`` identifies it by) and also
serves Battery. Static values (RSC Feature, IMU config, battery level) are encoded here with the
production encoders; streaming payloads come from the simulators at run time.
"""

from __future__ import annotations

from typing import Final

from sensors import uuids
from sensors.gatt import (
    BatteryLevel,
    ImuConfig,
    RscFeature,
    encode_battery_level,
    encode_imu_config,
    encode_rsc_feature,
)
from sensors.profiles import PROFILE_SERVICES, ProfileName
from simulators.peripherals.gatt_server import (
    CharacteristicSpec,
    PeripheralSpec,
    ServiceSpec,
    WriteHandler,
)

__all__ = [
    "DEFAULT_RSC_FEATURE",
    "battery_service",
    "breath_band",
    "footpod",
    "heart_rate_strap",
    "imu_strap",
    "pmd_service",
]

#: What a typical running footpod reports: stride length, total distance, walking/running.
DEFAULT_RSC_FEATURE: Final = RscFeature(
    stride_length_supported=True,
    total_distance_supported=True,
    running_status_supported=True,
    calibration_supported=False,
    multiple_sensor_locations_supported=False,
)


def battery_service(level_pct: int = 100) -> ServiceSpec:
    """Battery 0x180F: Battery Level, read and notify (set it with ``set_value``/``notify``)."""
    return ServiceSpec(
        uuids.BATTERY_SERVICE,
        (
            CharacteristicSpec(
                uuids.BATTERY_LEVEL,
                value=encode_battery_level(BatteryLevel(level_pct)),
                notify=True,
            ),
        ),
    )


def _strap(
    name: str,
    profile: ProfileName,
    service: ServiceSpec,
    battery_pct: int,
    address: str | None,
) -> PeripheralSpec:
    """A sensor of ``profile``: its own service plus Battery, advertising the profile's UUID."""
    return PeripheralSpec(
        name=name,
        services=(service, battery_service(battery_pct)),
        advertised_services=(PROFILE_SERVICES[profile],),
        address=address,
    )


def footpod(
    name: str = "runmon Footpod",
    *,
    feature: RscFeature = DEFAULT_RSC_FEATURE,
    battery_pct: int = 100,
    address: str | None = None,
) -> PeripheralSpec:
    """RSC 0x1814: RSC Measurement (notify), RSC Feature (read); plus Battery."""
    service = ServiceSpec(
        uuids.RSC_SERVICE,
        (
            CharacteristicSpec(uuids.RSC_MEASUREMENT, notify=True),
            CharacteristicSpec(uuids.RSC_FEATURE, value=encode_rsc_feature(feature)),
        ),
    )
    return _strap(name, "rsc", service, battery_pct, address)


def heart_rate_strap(
    name: str = "runmon HR", *, battery_pct: int = 100, address: str | None = None
) -> PeripheralSpec:
    """Heart Rate 0x180D: Heart Rate Measurement (notify); plus Battery."""
    service = ServiceSpec(
        uuids.HEART_RATE_SERVICE,
        (CharacteristicSpec(uuids.HEART_RATE_MEASUREMENT, notify=True),),
    )
    return _strap(name, "heart_rate", service, battery_pct, address)


def imu_strap(
    name: str = "runmon IMU",
    *,
    config: ImuConfig,
    battery_pct: int = 100,
    address: str | None = None,
) -> PeripheralSpec:
    """runmon IMU: data (notify), config (read); plus Battery."""
    service = ServiceSpec(
        uuids.RUNMON_IMU_SERVICE,
        (
            CharacteristicSpec(uuids.RUNMON_IMU_DATA, notify=True),
            CharacteristicSpec(uuids.RUNMON_IMU_CONFIG, value=encode_imu_config(config)),
        ),
    )
    return _strap(name, "runmon_imu", service, battery_pct, address)


def breath_band(
    name: str = "runmon Breath", *, battery_pct: int = 100, address: str | None = None
) -> PeripheralSpec:
    """runmon Breath: data (notify); plus Battery."""
    service = ServiceSpec(
        uuids.RUNMON_BREATH_SERVICE,
        (CharacteristicSpec(uuids.RUNMON_BREATH_DATA, notify=True),),
    )
    return _strap(name, "runmon_breath", service, battery_pct, address)


def pmd_service(control: WriteHandler, *, features: bytes) -> ServiceSpec:
    """Polar Measurement Data: control point (read ``features``, write, indicate), data (notify).

    ``control`` answers the control point's commands (start/stop a stream, get settings): its
    return value is indicated back, as a Polar sensor does. The PMD protocol itself (command and
    response layouts) belongs with the PMD codec in :mod:`sensors.gatt`, not here.
    """
    return ServiceSpec(
        uuids.PMD_SERVICE,
        (
            CharacteristicSpec(
                uuids.PMD_CONTROL_POINT, value=features, write=True, indicate=True, on_write=control
            ),
            CharacteristicSpec(uuids.PMD_DATA, notify=True),
        ),
    )
