"""Pure GATT payload decoders (``bytes -> frozen dataclass``) and their encoder twins.

Every decoder takes one payload and either returns a value or raises
:class:`sensors.errors.DecodeError`, never anything else. Encoders take values from our own code
(simulators, tests) and raise ``ValueError`` for a value the wire cannot hold.

:func:`decoder_for` maps a characteristic's full lowercase 128-bit UUID to its decoder. The table
is one literal: a new profile adds its result type to :data:`Decoded` and one line to the table.
Polar PMD data is registered with the SDK's default scale (factor 1.0: exact for uncompressed ACC,
the H10's frame type); a stream whose start response sends a FACTOR decodes its frames with a
decoder bound to it, :func:`sensors.gatt.polar_pmd.pmd_data_decoder`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, TypeAlias

from sensors import uuids
from sensors.gatt.battery import BatteryLevel, decode_battery_level, encode_battery_level
from sensors.gatt.heart_rate import (
    Contact,
    HeartRateMeasurement,
    decode_heart_rate_measurement,
    encode_heart_rate_measurement,
)
from sensors.gatt.polar_pmd import (
    PmdControlPointResponse,
    PmdFeatures,
    PmdFrame,
    PmdMeasurementStopped,
    decode_pmd_control_point,
    decode_pmd_data,
    encode_pmd_data,
)
from sensors.gatt.rsc import (
    RscFeature,
    RscMeasurement,
    decode_rsc_feature,
    decode_rsc_measurement,
    encode_rsc_feature,
    encode_rsc_measurement,
)
from sensors.gatt.runmon_breath import BreathBlock, decode_breath_block, encode_breath_block
from sensors.gatt.runmon_imu import (
    ImuBlock,
    ImuConfig,
    Placement,
    decode_imu_block,
    decode_imu_config,
    encode_imu_block,
    encode_imu_config,
)

__all__ = [
    "DECODERS",
    "BatteryLevel",
    "BreathBlock",
    "Contact",
    "Decoded",
    "Decoder",
    "HeartRateMeasurement",
    "ImuBlock",
    "ImuConfig",
    "Placement",
    "PmdFrame",
    "RscFeature",
    "RscMeasurement",
    "decode_battery_level",
    "decode_breath_block",
    "decode_heart_rate_measurement",
    "decode_imu_block",
    "decode_imu_config",
    "decode_pmd_control_point",
    "decode_pmd_data",
    "decode_rsc_feature",
    "decode_rsc_measurement",
    "decoder_for",
    "encode_battery_level",
    "encode_breath_block",
    "encode_heart_rate_measurement",
    "encode_imu_block",
    "encode_imu_config",
    "encode_pmd_data",
    "encode_rsc_feature",
    "encode_rsc_measurement",
]

#: Everything a registered decoder can return.
Decoded: TypeAlias = (
    RscMeasurement
    | RscFeature
    | HeartRateMeasurement
    | BatteryLevel
    | ImuBlock
    | ImuConfig
    | BreathBlock
    | PmdFrame
    | PmdControlPointResponse
    | PmdFeatures
    | PmdMeasurementStopped
)
Decoder: TypeAlias = Callable[[bytes], Decoded]

#: Characteristic UUID (full, lowercase) -> decoder. Read-only: one table for the whole process.
DECODERS: Final[Mapping[str, Decoder]] = MappingProxyType(
    {
        uuids.RSC_MEASUREMENT: decode_rsc_measurement,
        uuids.RSC_FEATURE: decode_rsc_feature,
        uuids.HEART_RATE_MEASUREMENT: decode_heart_rate_measurement,
        uuids.BATTERY_LEVEL: decode_battery_level,
        uuids.RUNMON_IMU_DATA: decode_imu_block,
        uuids.RUNMON_IMU_CONFIG: decode_imu_config,
        uuids.RUNMON_BREATH_DATA: decode_breath_block,
        uuids.PMD_DATA: decode_pmd_data,
        uuids.PMD_CONTROL_POINT: decode_pmd_control_point,
    }
)


def decoder_for(char_uuid: str) -> Decoder | None:
    """The decoder for a characteristic, or ``None`` if runmon does not speak it.

    ``None`` rather than an exception: an unknown characteristic in a recording is a warning that
    the reader counts and goes past (DESIGN §3.2). Case is ignored, as bleak and recordings may
    differ in it.
    """
    return DECODERS.get(char_uuid.lower())
