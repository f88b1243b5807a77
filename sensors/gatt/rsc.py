"""Running Speed and Cadence service 0x1814: RSC Measurement 0x2A53 and RSC Feature 0x2A54.

Layouts per the Bluetooth SIG GATT Specification Supplement, little-endian::

    RSC Measurement  flags u8 | speed u16 (1/256 m/s) | cadence u8 (1/min)
                     | stride length u16 (1/100 m), if flags bit 0
                     | total distance u32 (1/10 m), if flags bit 1
                     flags bit 2: 0 walking, 1 running; bits 3-7 reserved
    RSC Feature      u16 bits: 0 stride length, 1 total distance, 2 walking/running status,
                     3 calibration procedure, 4 multiple sensor locations; 5-15 reserved

Cadence stays in the device's own unit (steps or strides per minute, devices disagree): the
per-sensor ``cadence_unit`` setting normalises it later, not here.

Decoder policy: reserved flag bits are ignored, as the specification asks of receivers (a future
revision may use them for fields we would then see as trailing bytes and reject). A payload must
be exactly as long as its flags declare: truncated or trailing bytes are a :class:`DecodeError`.
Speed above 15 m/s (faster than any human sprint) is absurd and rejected. Stride length and
total distance get no plausibility bound: stride length is recorded but not trusted, and throwing
away speed and cadence over it would lose good data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from sensors.errors import DecodeError
from sensors.gatt import _wire

RSC_MEASUREMENT_WHAT: Final = "RSC Measurement"
RSC_FEATURE_WHAT: Final = "RSC Feature"

FLAG_STRIDE_LENGTH: Final = 0x01
FLAG_TOTAL_DISTANCE: Final = 0x02
FLAG_RUNNING: Final = 0x04

SPEED_LSB_PER_MPS: Final = 256
STRIDE_LSB_PER_M: Final = 100
DISTANCE_LSB_PER_M: Final = 10
#: Faster than any human sprint (Bolt's peak was ~12.4 m/s).
MAX_SPEED_MPS: Final = 15.0
_MAX_SPEED_RAW: Final = int(MAX_SPEED_MPS * SPEED_LSB_PER_MPS)

_HEAD: Final = struct.Struct("<BHB")  # flags, speed, cadence
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_FEATURE: Final = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class RscMeasurement:
    """One RSC Measurement; ``None`` marks a field the device did not send."""

    speed_mps: float
    cadence_raw_per_min: int
    stride_length_m: float | None
    total_distance_m: float | None
    is_running: bool


def _layout(flags: int) -> str:
    present = [
        name
        for bit, name in (
            (FLAG_STRIDE_LENGTH, "stride length"),
            (FLAG_TOTAL_DISTANCE, "total distance"),
        )
        if flags & bit
    ]
    declared = " and ".join(present) if present else "neither stride length nor total distance"
    return f"flags 0x{flags:02x} declare {declared}"


def decode_rsc_measurement(payload: bytes) -> RscMeasurement:
    if not payload:
        raise DecodeError(
            RSC_MEASUREMENT_WHAT, "empty: need at least 4 bytes (flags, speed, cadence)", payload
        )
    flags = payload[0]
    has_stride = bool(flags & FLAG_STRIDE_LENGTH)
    has_distance = bool(flags & FLAG_TOTAL_DISTANCE)
    expected = _HEAD.size + _U16.size * has_stride + _U32.size * has_distance
    if len(payload) != expected:
        raise _wire.length_error(RSC_MEASUREMENT_WHAT, payload, expected, _layout(flags))

    _, speed_raw, cadence = _HEAD.unpack_from(payload)
    if speed_raw > _MAX_SPEED_RAW:
        raise DecodeError(
            RSC_MEASUREMENT_WHAT,
            f"absurd speed {speed_raw / SPEED_LSB_PER_MPS:.2f} m/s at offset 1 "
            f"(above {MAX_SPEED_MPS:g} m/s)",
            payload,
        )
    offset = _HEAD.size
    stride_length_m: float | None = None
    if has_stride:
        (stride_raw,) = _U16.unpack_from(payload, offset)
        stride_length_m = stride_raw / STRIDE_LSB_PER_M
        offset += _U16.size
    total_distance_m: float | None = None
    if has_distance:
        (distance_raw,) = _U32.unpack_from(payload, offset)
        total_distance_m = distance_raw / DISTANCE_LSB_PER_M
    return RscMeasurement(
        speed_mps=speed_raw / SPEED_LSB_PER_MPS,
        cadence_raw_per_min=cadence,
        stride_length_m=stride_length_m,
        total_distance_m=total_distance_m,
        is_running=bool(flags & FLAG_RUNNING),
    )


def encode_rsc_measurement(measurement: RscMeasurement) -> bytes:
    """Wire form, rounded to the wire resolution; a value that does not fit is a ``ValueError``."""
    speed_raw = _wire.to_raw(
        "speed_mps", measurement.speed_mps, SPEED_LSB_PER_MPS, 0, _MAX_SPEED_RAW
    )
    cadence = _wire.check_int("cadence_raw_per_min", measurement.cadence_raw_per_min, 0, 0xFF)
    flags = FLAG_RUNNING if measurement.is_running else 0
    tail = b""
    if measurement.stride_length_m is not None:
        flags |= FLAG_STRIDE_LENGTH
        tail += _U16.pack(
            _wire.to_raw(
                "stride_length_m", measurement.stride_length_m, STRIDE_LSB_PER_M, 0, 0xFFFF
            )
        )
    if measurement.total_distance_m is not None:
        flags |= FLAG_TOTAL_DISTANCE
        tail += _U32.pack(
            _wire.to_raw(
                "total_distance_m",
                measurement.total_distance_m,
                DISTANCE_LSB_PER_M,
                0,
                0xFFFF_FFFF,
            )
        )
    return _HEAD.pack(flags, speed_raw, cadence) + tail


FEATURE_STRIDE_LENGTH: Final = 1 << 0
FEATURE_TOTAL_DISTANCE: Final = 1 << 1
FEATURE_RUNNING_STATUS: Final = 1 << 2
FEATURE_CALIBRATION: Final = 1 << 3
FEATURE_MULTIPLE_SENSOR_LOCATIONS: Final = 1 << 4
FEATURE_RESERVED_MASK: Final = 0xFFFF & ~0x1F


@dataclass(frozen=True, slots=True)
class RscFeature:
    """What the footpod can measure; ``reserved_bits`` keeps bits 5-15 as sent (in place).

    The named booleans are the single source of truth, so they cannot disagree with a raw copy;
    :attr:`raw_bits` rebuilds the u16.
    """

    stride_length_supported: bool
    total_distance_supported: bool
    running_status_supported: bool
    calibration_supported: bool
    multiple_sensor_locations_supported: bool
    reserved_bits: int = 0

    def __post_init__(self) -> None:
        if self.reserved_bits & ~FEATURE_RESERVED_MASK:
            raise ValueError(
                f"reserved_bits=0x{self.reserved_bits:x} outside the reserved bits 5-15 "
                f"(mask 0x{FEATURE_RESERVED_MASK:04x})"
            )

    @classmethod
    def from_raw_bits(cls, bits: int) -> RscFeature:
        bits = _wire.check_int("RSC Feature bits", bits, 0, 0xFFFF)
        return cls(
            stride_length_supported=bool(bits & FEATURE_STRIDE_LENGTH),
            total_distance_supported=bool(bits & FEATURE_TOTAL_DISTANCE),
            running_status_supported=bool(bits & FEATURE_RUNNING_STATUS),
            calibration_supported=bool(bits & FEATURE_CALIBRATION),
            multiple_sensor_locations_supported=bool(bits & FEATURE_MULTIPLE_SENSOR_LOCATIONS),
            reserved_bits=bits & FEATURE_RESERVED_MASK,
        )

    @property
    def raw_bits(self) -> int:
        return (
            (FEATURE_STRIDE_LENGTH if self.stride_length_supported else 0)
            | (FEATURE_TOTAL_DISTANCE if self.total_distance_supported else 0)
            | (FEATURE_RUNNING_STATUS if self.running_status_supported else 0)
            | (FEATURE_CALIBRATION if self.calibration_supported else 0)
            | (FEATURE_MULTIPLE_SENSOR_LOCATIONS if self.multiple_sensor_locations_supported else 0)
            | self.reserved_bits
        )


def decode_rsc_feature(payload: bytes) -> RscFeature:
    if len(payload) != _FEATURE.size:
        raise _wire.length_error(
            RSC_FEATURE_WHAT, payload, _FEATURE.size, "the feature field is a u16"
        )
    (bits,) = _FEATURE.unpack_from(payload)
    return RscFeature.from_raw_bits(bits)


def encode_rsc_feature(feature: RscFeature) -> bytes:
    return _FEATURE.pack(feature.raw_bits)
