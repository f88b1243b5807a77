"""runmon IMU profile (DESIGN §3.1): data notification ``a28d0002-…`` and config ``a28d0003-…``.

Data notification, little-endian::

    version u8 (= 1) | flags u8 (bit 0 gyro present, bits 1-7 must be 0)
    | sequence u16 (of the first sample, mod 65536) | sample rate u16 Hz (1..2000) | n u8
    | n sample records

Reading of "n samples of acc x,y,z, followed (if gyro) by gyro x,y,z": the samples are
*interleaved per sample*. Each record is acc x,y,z i16 (1/2048 g), then, when the gyro flag is
set, that same sample's gyro x,y,z i16 (1/16 °/s): 12 bytes per record with gyro, 6 without.
It is the array-of-structs an IMU FIFO yields, so firmware can stream it without reordering.
The payload must be exactly 7 + n * (12 or 6) bytes. n = 0 is well-formed and decodes to empty
arrays.

Config (read), little-endian: version u8 (= 1) | sample rate u16 Hz (1..2000) | placement u8
(0 unknown, 1 chest/sternum, 2 pelvis/sacrum, 3 upper back).

Axes as worn: x forward, y left, z up (right-handed); gyro positive by the right-hand rule.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from sensors.errors import DecodeError
from sensors.gatt import _wire

IMU_DATA_WHAT: Final = "runmon IMU data"
IMU_CONFIG_WHAT: Final = "runmon IMU config"

FLAG_GYRO: Final = 0x01
ACC_LSB_PER_G: Final = 2048
GYRO_LSB_PER_DPS: Final = 16
_I16_MIN: Final = -0x8000
_I16_MAX: Final = 0x7FFF
_AXES: Final = 3
_WIRE_I16: Final = np.dtype("<i2")
# Powers of two: scaling by the reciprocal is exact, and a multiply is cheaper than a divide.
_G_PER_LSB: Final = 1.0 / ACC_LSB_PER_G
_DPS_PER_LSB: Final = 1.0 / GYRO_LSB_PER_DPS
# One wire record as a subarray dtype: np.frombuffer yields (n, 3) acc, or (n, 2, 3) acc, gyro.
_ACC_RECORD: Final = np.dtype((_WIRE_I16, (_AXES,)))
_ACC_GYRO_RECORD: Final = np.dtype((_WIRE_I16, (2, _AXES)))
#: Scale of each (acc, gyro) plane of a (2, n, 3) array.
_ACC_GYRO_SCALE: Final = np.array([_G_PER_LSB, _DPS_PER_LSB]).reshape(2, 1, 1)


@dataclass(frozen=True, slots=True, eq=False)
class ImuBlock:
    """One notification's samples; arrays are read-only float64 of shape (n, 3).

    Equality is exact (same sequence, rate and array contents); instances are unhashable, like
    the arrays they hold.
    """

    sequence: int
    sample_rate_hz: int
    acc_g: NDArray[np.float64]
    gyro_dps: NDArray[np.float64] | None

    def __post_init__(self) -> None:
        # The decoder's arrays (float64, frozen) come back as they went in: nothing to set.
        acc_g = _wire.frozen_float_array("acc_g", self.acc_g, _AXES)
        if acc_g is not self.acc_g:
            object.__setattr__(self, "acc_g", acc_g)
        if self.gyro_dps is not None:
            gyro_dps = _wire.frozen_float_array("gyro_dps", self.gyro_dps, _AXES)
            if gyro_dps.shape != acc_g.shape:
                raise ValueError(
                    f"gyro_dps shape {gyro_dps.shape} differs from acc_g shape {acc_g.shape}"
                )
            if gyro_dps is not self.gyro_dps:
                object.__setattr__(self, "gyro_dps", gyro_dps)

    @property
    def n_samples(self) -> int:
        return int(self.acc_g.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImuBlock):
            return NotImplemented
        if self.gyro_dps is None or other.gyro_dps is None:
            gyro_equal = self.gyro_dps is None and other.gyro_dps is None
        else:
            gyro_equal = np.array_equal(self.gyro_dps, other.gyro_dps)
        return (
            self.sequence == other.sequence
            and self.sample_rate_hz == other.sample_rate_hz
            and gyro_equal
            and np.array_equal(self.acc_g, other.acc_g)
        )


def decode_imu_block(payload: bytes) -> ImuBlock:
    flags, sequence, sample_rate_hz, n = _wire.decode_block_header(
        IMU_DATA_WHAT, payload, allowed_flags=FLAG_GYRO
    )
    has_gyro = flags & FLAG_GYRO
    record = _ACC_GYRO_RECORD if has_gyro else _ACC_RECORD
    expected = _wire.BLOCK_HEADER.size + n * record.itemsize
    if len(payload) != expected:
        raise _wire.length_error(
            IMU_DATA_WHAT,
            payload,
            expected,
            f"header declares {_wire.plural(n, 'sample')} of acc{'+gyro' if has_gyro else ''} "
            f"({record.itemsize} bytes each)",
        )
    raw = np.frombuffer(payload, dtype=record, count=n, offset=_wire.BLOCK_HEADER.size)
    gyro_dps: NDArray[np.float64] | None
    if has_gyro:
        # One multiply for both: planes (acc, gyro) in C order, each a contiguous (n, 3) array.
        planes = np.multiply(raw.transpose(1, 0, 2), _ACC_GYRO_SCALE, order="C")
        planes.setflags(write=False)  # before indexing: the views inherit read-only
        acc_g, gyro_dps = planes[0], planes[1]
    else:
        acc_g = np.multiply(raw, _G_PER_LSB, dtype=np.float64)
        acc_g.setflags(write=False)
        gyro_dps = None
    return ImuBlock(sequence, sample_rate_hz, acc_g, gyro_dps)


def encode_imu_block(block: ImuBlock) -> bytes:
    """Wire form, rounded to 1/2048 g and 1/16 °/s; values beyond i16 raise ``ValueError``.

    The i16 range is ±16 g and ±2048 °/s. A notification must also fit the negotiated ATT MTU
    (at most 512 bytes: 42 samples with gyro, 84 without); that is the sender's concern.
    """
    acc_raw = _wire.to_raw_array("acc_g", block.acc_g, ACC_LSB_PER_G, _I16_MIN, _I16_MAX)
    flags = 0
    records = acc_raw
    if block.gyro_dps is not None:
        flags |= FLAG_GYRO
        gyro_raw = _wire.to_raw_array(
            "gyro_dps", block.gyro_dps, GYRO_LSB_PER_DPS, _I16_MIN, _I16_MAX
        )
        records = np.hstack((acc_raw, gyro_raw))
    header = _wire.encode_block_header(flags, block.sequence, block.sample_rate_hz, len(acc_raw))
    return header + records.astype(_WIRE_I16).tobytes()


Placement = Literal["unknown", "chest", "pelvis", "upper_back"]
PLACEMENT_CODES: Final[dict[Placement, int]] = {
    "unknown": 0,
    "chest": 1,
    "pelvis": 2,
    "upper_back": 3,
}
_PLACEMENT_BY_CODE: Final[dict[int, Placement]] = {
    code: name for name, code in PLACEMENT_CODES.items()
}
CONFIG_VERSION: Final = 1
_CONFIG: Final = struct.Struct("<BHB")  # version, sample rate, placement


@dataclass(frozen=True, slots=True)
class ImuConfig:
    """The strap's own idea of its rate and placement (names match recording headers)."""

    sample_rate_hz: int
    placement: Placement


def decode_imu_config(payload: bytes) -> ImuConfig:
    if len(payload) != _CONFIG.size:
        raise _wire.length_error(
            IMU_CONFIG_WHAT, payload, _CONFIG.size, "version, sample rate and placement"
        )
    version, sample_rate_hz, placement_code = _CONFIG.unpack_from(payload)
    if version != CONFIG_VERSION:
        raise DecodeError(
            IMU_CONFIG_WHAT,
            f"unsupported version {version} at offset 0 (expected {CONFIG_VERSION})",
            payload,
        )
    _wire.check_sample_rate(IMU_CONFIG_WHAT, payload, sample_rate_hz, offset=1)
    placement = _PLACEMENT_BY_CODE.get(placement_code)
    if placement is None:
        raise DecodeError(
            IMU_CONFIG_WHAT,
            f"unknown placement code {placement_code} at offset 3 "
            f"(known: {', '.join(f'{c} {n}' for n, c in PLACEMENT_CODES.items())})",
            payload,
        )
    return ImuConfig(sample_rate_hz=sample_rate_hz, placement=placement)


def encode_imu_config(config: ImuConfig) -> bytes:
    sample_rate_hz = _wire.check_int(
        "sample_rate_hz",
        config.sample_rate_hz,
        _wire.MIN_SAMPLE_RATE_HZ,
        _wire.MAX_SAMPLE_RATE_HZ,
    )
    if config.placement not in PLACEMENT_CODES:
        raise ValueError(f"placement={config.placement!r} is not one of {list(PLACEMENT_CODES)}")
    return _CONFIG.pack(CONFIG_VERSION, sample_rate_hz, PLACEMENT_CODES[config.placement])
