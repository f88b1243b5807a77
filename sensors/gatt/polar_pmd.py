"""Polar Measurement Data (PMD): control point ``…5C81`` and data ``…5C82`` (DESIGN §3.1).

Implemented from Polar's BLE SDK (github.com/polarofficial/polar-ble-sdk), whose Android sources
are the executable form of the PMD specification: ``BlePMDClient.kt`` (delta frames),
``PmdDataFrame.kt``, ``PmdSetting.kt``, ``PmdControlPointResponse.kt``,
``PmdControlPointCommand.kt``, ``PmdMeasurementType.kt``, ``model/AccData.kt`` and
``model/GyrData.kt``. The tests reproduce vectors from the SDK's own unit tests. Little-endian
throughout.

Control point (write a request, get a response notification; read = features)::

    request   op code u8 | measurement type u8 | settings (start only)
              op codes: 0x01 GET_MEASUREMENT_SETTINGS, 0x02 REQUEST_MEASUREMENT_START,
              0x03 STOP_MEASUREMENT (runmon speaks these three)
    settings  repeated: setting type u8 | count u8 | count values
              0 SAMPLE_RATE u16 Hz, 1 RESOLUTION u16 bits, 2 RANGE u16 (g or deg/s),
              3 RANGE_MILLIUNIT u32, 4 CHANNELS u8, 5 FACTOR f32 (sent by the sensor only)
    response  0xF0 | op code u8 | measurement type u8 | error code u8 | more u8 | parameters
    features  0x0F | bitmask, bit i set = measurement type i supported (byte 1 bit 0 = ECG)
    stopped   0x01 | measurement types u8...  (the sensor stopped streams on its own)

A start request's settings select one value each; a settings query's response offers several.
The start response carries the FACTOR that scales compressed frames (see below). ``more`` says
that the parameters continue in the next response notification: concatenate ``parameters``
before :func:`decode_pmd_settings`, as the SDK does.

Data notification::

    measurement type u8 | timestamp u64 ns since 2000-01-01 (sensor clock) of the LAST sample
    | frame type u8 (bit 7 delta-compressed, bits 0-6 type) | samples

    uncompressed ACC  type 0: 3 x i8, type 1: 3 x i16, type 2: 3 x i24 per sample, in mG
    compressed        reference sample (3 x i16; GYRO type 1: 3 x 32-bit float bit patterns),
                      then blocks: delta bit width u8 | sample count u8 | packed deltas
                      (count x 3 channels x width bits, least significant bit first, two's
                      complement, each block padded with ignored bits to a whole byte); a sample
                      is the previous sample plus its delta (GYRO type 1: modulo 2**32 on the
                      bit pattern)

Physical units, as Polar's SDK scales them (``factor`` = the FACTOR setting of the start
response; the SDK falls back to 1.0 when the sensor sent none, and so do the defaults here):

    ACC uncompressed   g = raw / 1000                 (mG; no factor)
    ACC compressed 0   g = raw * acc_factor           (the SDK: "type 0 data arrives in G units")
    ACC compressed 1   g = raw * acc_factor / 1000    (raw * factor is mG)
    GYRO compressed 0  deg/s = raw * gyro_factor
    GYRO compressed 1  deg/s = float32(bits) * gyro_factor

Polar's SDK defines no uncompressed GYRO frame; neither does runmon. ECG, PPG, PPI, MAG and the
other types are recognised and refused with a reason: runmon decodes only ACC and GYRO samples.

Decoder policy: every malformed payload raises :class:`DecodeError` (a truncated block, a delta
width outside 1..32, a reconstructed 16-bit sample outside i16, a non-finite float, reserved bits
in the measurement type byte, trailing bytes). Padding bits are ignored, as the SDK ignores them
(one of its own vectors has one set). A data frame always holds at least one sample: its header
timestamps the last one.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from sensors.errors import DecodeError
from sensors.gatt import _wire

PMD_DATA_WHAT: Final = "Polar PMD data"
PMD_CONTROL_POINT_WHAT: Final = "Polar PMD control point"
PMD_REQUEST_WHAT: Final = "Polar PMD request"
PMD_SETTINGS_WHAT: Final = "Polar PMD settings"


class PmdMeasurementType(IntEnum):
    """Measurement type ids (``PmdMeasurementType.kt``)."""

    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAGNETOMETER = 6
    SKIN_TEMPERATURE = 7
    SDK_MODE = 9
    LOCATION = 10
    PRESSURE = 11
    TEMPERATURE = 12
    OFFLINE_RECORDING = 13
    OFFLINE_HR = 14


class PmdOpCode(IntEnum):
    """Control point op codes, client to sensor (``PmdControlPointCommand.kt``)."""

    GET_MEASUREMENT_SETTINGS = 1
    REQUEST_MEASUREMENT_START = 2
    STOP_MEASUREMENT = 3
    GET_SDK_MODE_MEASUREMENT_SETTINGS = 4
    GET_MEASUREMENT_STATUS = 5
    GET_SDK_MODE_STATUS = 6
    GET_OFFLINE_RECORDING_TRIGGER_STATUS = 7
    SET_OFFLINE_RECORDING_TRIGGER_MODE = 8
    SET_OFFLINE_RECORDING_TRIGGER_SETTINGS = 9


class PmdStatus(IntEnum):
    """Control point response error codes (``PmdControlPointResponse.kt``)."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


class PmdSettingType(IntEnum):
    """Setting types of the settings TLV (``PmdSetting.kt``)."""

    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5


RESPONSE_CODE: Final = 0xF0
FEATURES_CODE: Final = 0x0F
MEASUREMENT_STOPPED_CODE: Final = 0x01
COMPRESSED_BIT: Final = 0x80
FRAME_TYPE_MASK: Final = 0x7F
#: Bits 0-5 of a measurement type byte are the type; bit 7 selects offline recording in requests.
MEASUREMENT_TYPE_MASK: Final = 0x3F
MAX_DELTA_BITS: Final = 32
MAX_BLOCK_SAMPLES: Final = 0xFF
U64_MAX: Final = 2**64 - 1
#: Bytes of each setting type's values; FACTOR is an IEEE 754 float32.
SETTING_SIZES: Final[dict[PmdSettingType, int]] = {
    PmdSettingType.SAMPLE_RATE: 2,
    PmdSettingType.RESOLUTION: 2,
    PmdSettingType.RANGE: 2,
    PmdSettingType.RANGE_MILLIUNIT: 4,
    PmdSettingType.CHANNELS: 1,
    PmdSettingType.FACTOR: 4,
}
_SETTING_FORMATS: Final[dict[PmdSettingType, str]] = {
    PmdSettingType.SAMPLE_RATE: "H",
    PmdSettingType.RESOLUTION: "H",
    PmdSettingType.RANGE: "H",
    PmdSettingType.RANGE_MILLIUNIT: "I",
    PmdSettingType.CHANNELS: "B",
    PmdSettingType.FACTOR: "f",
}
_FLOAT32_MAX: Final = float(np.finfo(np.float32).max)

_DATA_HEADER: Final = struct.Struct("<BQB")  # measurement type, timestamp ns, frame type
_AXES: Final = 3


def _type_name(measurement_type: int) -> str:
    try:
        return f"{PmdMeasurementType(measurement_type).name} ({measurement_type})"
    except ValueError:
        return f"unknown ({measurement_type})"


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PmdSettings:
    """Values per setting type: offered (settings query) or selected (start request/response).

    ``range`` is in g for ACC and deg/s for GYRO; ``factor`` scales compressed frames (module
    docstring). An empty tuple means the setting was not sent.
    """

    sample_rate_hz: tuple[int, ...] = ()
    resolution_bits: tuple[int, ...] = ()
    range: tuple[int, ...] = ()
    range_milliunit: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    factor: tuple[float, ...] = ()

    def int_values(self) -> dict[PmdSettingType, tuple[int, ...]]:
        """The integer settings by type (all but FACTOR), in setting-type order."""
        return {
            PmdSettingType.SAMPLE_RATE: self.sample_rate_hz,
            PmdSettingType.RESOLUTION: self.resolution_bits,
            PmdSettingType.RANGE: self.range,
            PmdSettingType.RANGE_MILLIUNIT: self.range_milliunit,
            PmdSettingType.CHANNELS: self.channels,
        }


def _decode_settings_at(what: str, payload: bytes, offset: int) -> PmdSettings:
    """Settings TLV from ``payload[offset:]``; offsets in errors are into ``payload``."""
    if len(payload) - offset <= 1:
        # PmdSetting.parsePmdSettingsData treats one byte as "no settings"; so do we.
        return PmdSettings()
    found: dict[PmdSettingType, tuple[int, ...]] = {}
    factor: tuple[float, ...] | None = None
    pos = offset
    while pos < len(payload):
        if len(payload) - pos < 2:
            raise DecodeError(
                what,
                f"truncated: setting at offset {pos} needs 2 bytes (type, count), got 1",
                payload,
            )
        code, count = payload[pos], payload[pos + 1]
        try:
            setting_type = PmdSettingType(code)
        except ValueError:
            raise DecodeError(
                what,
                f"unknown setting type {code} at offset {pos} (known: 0..5): its size is unknown",
                payload,
            ) from None
        if setting_type in found or (setting_type is PmdSettingType.FACTOR and factor is not None):
            raise DecodeError(
                what, f"setting {setting_type.name} at offset {pos} appears twice", payload
            )
        size = SETTING_SIZES[setting_type]
        start = pos + 2
        if len(payload) - start < count * size:
            raise DecodeError(
                what,
                f"truncated: setting {setting_type.name} at offset {pos} declares "
                f"{_wire.plural(count, 'value')} of {size} bytes, got {len(payload) - start} bytes",
                payload,
            )
        values = struct.unpack_from(f"<{count}{_SETTING_FORMATS[setting_type]}", payload, start)
        if setting_type is PmdSettingType.FACTOR:
            if not all(math.isfinite(v) for v in values):
                raise DecodeError(what, f"non-finite FACTOR at offset {start}", payload)
            factor = values
        else:
            found[setting_type] = values
        pos = start + count * size
    return PmdSettings(
        sample_rate_hz=found.get(PmdSettingType.SAMPLE_RATE, ()),
        resolution_bits=found.get(PmdSettingType.RESOLUTION, ()),
        range=found.get(PmdSettingType.RANGE, ()),
        range_milliunit=found.get(PmdSettingType.RANGE_MILLIUNIT, ()),
        channels=found.get(PmdSettingType.CHANNELS, ()),
        factor=factor or (),
    )


def decode_pmd_settings(parameters: bytes) -> PmdSettings:
    """Settings TLV as in a settings-query or start response's ``parameters``."""
    return _decode_settings_at(PMD_SETTINGS_WHAT, parameters, 0)


def encode_pmd_settings(settings: PmdSettings) -> bytes:
    """Wire form in setting-type order; empty settings are left out."""
    out = bytearray()
    for setting_type, values in settings.int_values().items():
        if not values:
            continue
        _wire.check_int(f"number of {setting_type.name} values", len(values), 1, 0xFF)
        hi = 2 ** (8 * SETTING_SIZES[setting_type]) - 1
        for value in values:
            _wire.check_int(setting_type.name.lower(), value, 0, hi)
        out += bytes((setting_type, len(values)))
        out += struct.pack(f"<{len(values)}{_SETTING_FORMATS[setting_type]}", *values)
    if settings.factor:
        _wire.check_int("number of FACTOR values", len(settings.factor), 1, 0xFF)
        for factor in settings.factor:
            if not (math.isfinite(factor) and abs(factor) <= _FLOAT32_MAX):
                raise ValueError(f"factor={factor!r} does not fit a float32")
        out += bytes((PmdSettingType.FACTOR, len(settings.factor)))
        out += struct.pack(f"<{len(settings.factor)}f", *settings.factor)
    return bytes(out)


# --- control point: requests -------------------------------------------------------------------

_REQUEST_OPS: Final = (
    PmdOpCode.GET_MEASUREMENT_SETTINGS,
    PmdOpCode.REQUEST_MEASUREMENT_START,
    PmdOpCode.STOP_MEASUREMENT,
)


@dataclass(frozen=True, slots=True)
class PmdRequest:
    """A control point write: query settings, start (with selected settings) or stop a stream.

    Online streaming only: the offline-recording bit of the type byte is not runmon's business.
    """

    op_code: PmdOpCode
    measurement_type: int
    settings: PmdSettings = PmdSettings()


def pmd_get_settings_request(measurement_type: int) -> bytes:
    return encode_pmd_request(PmdRequest(PmdOpCode.GET_MEASUREMENT_SETTINGS, measurement_type))


def pmd_start_request(
    measurement_type: int,
    *,
    sample_rate_hz: int,
    resolution_bits: int,
    range_: int | None = None,
    channels: int | None = None,
) -> bytes:
    """REQUEST_MEASUREMENT_START with one value per setting (H10 ACC: 200 Hz, 16 bits, 8 g)."""
    settings = PmdSettings(
        sample_rate_hz=(sample_rate_hz,),
        resolution_bits=(resolution_bits,),
        range=() if range_ is None else (range_,),
        channels=() if channels is None else (channels,),
    )
    return encode_pmd_request(
        PmdRequest(PmdOpCode.REQUEST_MEASUREMENT_START, measurement_type, settings)
    )


def pmd_stop_request(measurement_type: int) -> bytes:
    return encode_pmd_request(PmdRequest(PmdOpCode.STOP_MEASUREMENT, measurement_type))


def encode_pmd_request(request: PmdRequest) -> bytes:
    if request.op_code not in _REQUEST_OPS:
        raise ValueError(f"op code {request.op_code!r} is not a request runmon sends")
    _wire.check_int("measurement_type", request.measurement_type, 0, MEASUREMENT_TYPE_MASK)
    head = bytes((request.op_code, request.measurement_type))
    if request.op_code is not PmdOpCode.REQUEST_MEASUREMENT_START:
        if request.settings != PmdSettings():
            raise ValueError(f"{request.op_code.name} carries no settings")
        return head
    if request.settings.factor:
        raise ValueError("FACTOR is chosen by the sensor, never requested")
    for setting_type, values in request.settings.int_values().items():
        if len(values) > 1:
            raise ValueError(f"a start request selects one {setting_type.name}, not several")
    return head + encode_pmd_settings(request.settings)


def decode_pmd_request(payload: bytes) -> PmdRequest:
    """What a virtual sensor (simulators) reads from a control point write."""
    what = PMD_REQUEST_WHAT
    if len(payload) < 2:
        raise DecodeError(
            what,
            f"truncated: need 2 bytes (op code, measurement type), got {len(payload)}",
            payload,
        )
    code, type_byte = payload[0], payload[1]
    try:
        op_code = PmdOpCode(code)
    except ValueError:
        raise DecodeError(what, f"unknown op code 0x{code:02x} at offset 0", payload) from None
    if op_code not in _REQUEST_OPS:
        raise DecodeError(
            what,
            f"op code 0x{code:02x} ({op_code.name}) at offset 0 is not one runmon speaks "
            "(0x01 settings, 0x02 start, 0x03 stop)",
            payload,
        )
    if type_byte & ~MEASUREMENT_TYPE_MASK:
        raise DecodeError(
            what,
            f"measurement type byte 0x{type_byte:02x} at offset 1 has bits 6-7 set "
            "(offline recording is not supported)",
            payload,
        )
    if op_code is not PmdOpCode.REQUEST_MEASUREMENT_START:
        if len(payload) != 2:
            raise _wire.length_error(what, payload, 2, f"{op_code.name} is op code and type")
        return PmdRequest(op_code, type_byte)
    settings = _decode_settings_at(what, payload, 2)
    for setting_type, values in settings.int_values().items():
        if len(values) > 1:
            raise DecodeError(
                what, f"a start request selects one {setting_type.name}, not several", payload
            )
    if settings.factor:
        raise DecodeError(what, "a start request cannot choose FACTOR", payload)
    return PmdRequest(op_code, type_byte, settings)


# --- control point: responses, features, stop notices ------------------------------------------


@dataclass(frozen=True, slots=True)
class PmdControlPointResponse:
    """A response notification. ``op_code`` and ``measurement_type`` echo the request's bytes.

    On an error status Polar's SDK ignores ``more`` and ``parameters``; callers should too.
    """

    op_code: int
    measurement_type: int
    status: PmdStatus
    more: bool = False
    parameters: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is PmdStatus.SUCCESS

    def settings(self) -> PmdSettings:
        """This frame's parameters as settings (settings query and start responses)."""
        return decode_pmd_settings(self.parameters)


@dataclass(frozen=True, slots=True)
class PmdFeatures:
    """The control point's read value: which measurement types the sensor offers."""

    mask: int

    @property
    def measurement_types(self) -> frozenset[PmdMeasurementType]:
        return frozenset(t for t in PmdMeasurementType if self.mask >> t & 1)

    @classmethod
    def of(cls, measurement_types: frozenset[PmdMeasurementType]) -> PmdFeatures:
        return cls(sum(1 << t for t in measurement_types))


@dataclass(frozen=True, slots=True)
class PmdMeasurementStopped:
    """The sensor stopped these streams on its own (e.g. another client took them)."""

    measurement_types: tuple[int, ...]


def decode_pmd_control_point_response(payload: bytes) -> PmdControlPointResponse:
    what = PMD_CONTROL_POINT_WHAT
    if len(payload) < 4:
        raise DecodeError(
            what,
            f"truncated response: need 4 bytes (0xF0, op code, measurement type, error code), "
            f"got {len(payload)}",
            payload,
        )
    if payload[0] != RESPONSE_CODE:
        raise DecodeError(
            what, f"response code 0x{payload[0]:02x} at offset 0 (expected 0xf0)", payload
        )
    try:
        status = PmdStatus(payload[3])
    except ValueError:
        raise DecodeError(
            what, f"unknown error code {payload[3]} at offset 3 (known: 0..14)", payload
        ) from None
    # A 4-byte response (no "more" byte) is what PmdControlPointResponse.kt accepts too.
    more = len(payload) > 4 and payload[4] != 0
    return PmdControlPointResponse(payload[1], payload[2], status, more, bytes(payload[5:]))


def encode_pmd_control_point_response(response: PmdControlPointResponse) -> bytes:
    _wire.check_int("op_code", response.op_code, 0, 0xFF)
    _wire.check_int("measurement_type", response.measurement_type, 0, 0xFF)
    return (
        bytes(
            (
                RESPONSE_CODE,
                response.op_code,
                response.measurement_type,
                PmdStatus(response.status),
                int(response.more),
            )
        )
        + response.parameters
    )


def decode_pmd_features(payload: bytes) -> PmdFeatures:
    what = PMD_CONTROL_POINT_WHAT
    if len(payload) < 2:
        raise DecodeError(
            what, f"truncated features: need 2 bytes (0x0f, bitmask), got {len(payload)}", payload
        )
    if payload[0] != FEATURES_CODE:
        raise DecodeError(
            what, f"features code 0x{payload[0]:02x} at offset 0 (expected 0x0f)", payload
        )
    return PmdFeatures(int.from_bytes(payload[1:], "little"))


def encode_pmd_features(features: PmdFeatures) -> bytes:
    """``0x0F`` and the mask, at least two bytes of it (the SDK reads bytes 1 and 2)."""
    if features.mask < 0:
        raise ValueError(f"mask={features.mask} must be >= 0")
    return bytes((FEATURES_CODE,)) + features.mask.to_bytes(
        max(2, (features.mask.bit_length() + 7) // 8), "little"
    )


def encode_pmd_measurement_stopped(stopped: PmdMeasurementStopped) -> bytes:
    for t in stopped.measurement_types:
        _wire.check_int("measurement type", t, 0, 0xFF)
    return bytes((MEASUREMENT_STOPPED_CODE, *stopped.measurement_types))


def decode_pmd_control_point(
    payload: bytes,
) -> PmdControlPointResponse | PmdFeatures | PmdMeasurementStopped:
    """Anything the control point says, told apart by its first byte."""
    if not payload:
        raise DecodeError(PMD_CONTROL_POINT_WHAT, "empty: need at least 2 bytes", payload)
    if payload[0] == RESPONSE_CODE:
        return decode_pmd_control_point_response(payload)
    if payload[0] == FEATURES_CODE:
        return decode_pmd_features(payload)
    if payload[0] == MEASUREMENT_STOPPED_CODE:
        return PmdMeasurementStopped(tuple(payload[1:]))
    raise DecodeError(
        PMD_CONTROL_POINT_WHAT,
        f"unknown first byte 0x{payload[0]:02x} (0xf0 response, 0x0f features, 0x01 stopped)",
        payload,
    )


# --- data frames -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class PmdFrame:
    """One data notification: read-only float64 samples of shape (n, 3), g (ACC) or deg/s (GYRO).

    ``timestamp_ns`` is the sensor clock's time of the last sample, ns since 2000-01-01;
    ``frame_type`` is bits 0-6 of the frame type byte and ``compressed`` its bit 7. Equality is
    exact; instances are unhashable, like the arrays they hold.
    """

    measurement_type: int
    timestamp_ns: int
    frame_type: int
    compressed: bool
    samples: NDArray[np.float64]

    def __post_init__(self) -> None:
        samples = _wire.frozen_float_array("samples", self.samples, _AXES)
        if samples is not self.samples:  # a decoded array comes back as it went in
            object.__setattr__(self, "samples", samples)

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PmdFrame):
            return NotImplemented
        return (
            self.measurement_type == other.measurement_type
            and self.timestamp_ns == other.timestamp_ns
            and self.frame_type == other.frame_type
            and self.compressed == other.compressed
            and np.array_equal(self.samples, other.samples)
        )


@dataclass(frozen=True, slots=True)
class _Layout:
    """How one (measurement type, compressed, frame type) is laid out and scaled.

    physical value = raw * factor / per_unit, raw being an integer or (floats) a float32.
    """

    value_bytes: int  # bytes per channel value (uncompressed) or reference value (compressed)
    is_float: bool  # 32-bit float bit patterns (GYRO compressed type 1)
    factor: float
    per_unit: float  # 1000 where raw * factor is in mG


_UNCOMPRESSED_ACC_BYTES: Final = {0: 1, 1: 2, 2: 3}
_SUPPORTED: Final = {
    PmdMeasurementType.ACC: "0x00, 0x01, 0x02 (uncompressed) and 0x80, 0x81 (compressed)",
    PmdMeasurementType.GYRO: "0x80, 0x81 (compressed; the SDK defines no uncompressed GYRO)",
}


@functools.lru_cache(maxsize=64, typed=True)  # a stream's every frame asks the same
def _layout(
    measurement_type: int, compressed: bool, frame_type: int, acc_factor: float, gyro_factor: float
) -> _Layout | None:
    if measurement_type == PmdMeasurementType.ACC:
        if not compressed:
            size = _UNCOMPRESSED_ACC_BYTES.get(frame_type)
            return None if size is None else _Layout(size, False, 1.0, 1000.0)
        if frame_type == 0:
            return _Layout(2, False, acc_factor, 1.0)
        if frame_type == 1:
            return _Layout(2, False, acc_factor, 1000.0)
        return None
    if measurement_type == PmdMeasurementType.GYRO and compressed:
        if frame_type == 0:
            return _Layout(2, False, gyro_factor, 1.0)
        if frame_type == 1:
            return _Layout(4, True, gyro_factor, 1.0)
    return None


def _check_factor(name: str, factor: float) -> None:
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"{name}={factor!r} must be finite and > 0")


_I8_SAMPLE: Final = np.dtype(("i1", (_AXES,)))
_I16_SAMPLE: Final = np.dtype(("<i2", (_AXES,)))
_BIT_WEIGHTS: Final = np.left_shift(np.int64(1), np.arange(MAX_DELTA_BITS, dtype=np.int64))
_I16_MIN: Final = -0x8000
_I16_MAX: Final = 0x7FFF
_U32_MASK: Final = 0xFFFF_FFFF


def _unpack_deltas(payload: bytes, start: int, n_fields: int, width: int) -> NDArray[np.int64]:
    """``n_fields`` signed ``width``-bit fields, least significant bit first, as int64."""
    n_bits = n_fields * width
    bits = np.unpackbits(
        np.frombuffer(payload, dtype=np.uint8, count=(n_bits + 7) // 8, offset=start),
        bitorder="little",
        count=n_bits,  # the padding bits are never looked at
    )
    fields = bits.reshape(n_fields, width).astype(np.int64)
    values: NDArray[np.int64] = fields @ _BIT_WEIGHTS[:width]
    # Two's complement: subtract 2**width where the top bit is set.
    values -= (values >> (width - 1)) << width
    return values


def _decode_compressed(payload: bytes, layout: _Layout) -> NDArray[np.int64]:
    """Raw integer samples (n, 3): the reference, then each block's running sum of deltas."""
    what = PMD_DATA_WHAT
    offset = _DATA_HEADER.size
    ref_bytes = _AXES * layout.value_bytes
    if len(payload) - offset < ref_bytes:
        raise DecodeError(
            what,
            f"truncated: reference sample at offset {offset} needs {ref_bytes} bytes, "
            f"got {len(payload) - offset}",
            payload,
        )
    ref_dtype = "<u4" if layout.is_float else "<i2"
    ref = np.frombuffer(payload, dtype=ref_dtype, count=_AXES, offset=offset).astype(np.int64)
    parts: list[NDArray[np.int64]] = [ref.reshape(1, _AXES)]
    pos = offset + ref_bytes
    block = 0
    while pos < len(payload):  # one iteration per block, not per sample
        block += 1
        if len(payload) - pos < 2:
            raise DecodeError(
                what,
                f"truncated: block {block} at offset {pos} needs 2 header bytes "
                "(delta bit width, sample count), got 1",
                payload,
            )
        width, count = payload[pos], payload[pos + 1]
        if not 1 <= width <= MAX_DELTA_BITS:
            raise DecodeError(
                what,
                f"block {block}: delta bit width {width} at offset {pos} outside "
                f"1..{MAX_DELTA_BITS}",
                payload,
            )
        n_bytes = (width * count * _AXES + 7) // 8
        start = pos + 2
        if len(payload) - start < n_bytes:
            raise DecodeError(
                what,
                f"truncated: block {block} at offset {pos} declares "
                f"{_wire.plural(count, 'sample')} of {width}-bit deltas, need {n_bytes} bytes, "
                f"got {len(payload) - start}",
                payload,
            )
        if count:
            parts.append(_unpack_deltas(payload, start, count * _AXES, width).reshape(count, _AXES))
        pos = start + n_bytes
    raw: NDArray[np.int64] = np.cumsum(np.concatenate(parts), axis=0)
    if not layout.is_float and (raw.min() < _I16_MIN or raw.max() > _I16_MAX):
        bad = (raw < _I16_MIN) | (raw > _I16_MAX)
        sample, channel = (int(i) for i in np.argwhere(bad)[0])
        raise DecodeError(
            what,
            f"sample {sample} channel {channel} = {int(raw[sample, channel])} outside the "
            "16-bit range: the deltas are inconsistent",
            payload,
        )
    return raw


def _decode_uncompressed(
    payload: bytes, layout: _Layout, frame_byte: int
) -> NDArray[np.signedinteger[Any]]:
    what = PMD_DATA_WHAT
    offset = _DATA_HEADER.size
    record = _AXES * layout.value_bytes
    content = len(payload) - offset
    if content == 0:
        raise DecodeError(
            what, "no samples after the header: a frame carries at least one", payload
        )
    if content % record:
        raise DecodeError(
            what,
            f"{_wire.plural(content % record, 'trailing byte')} at offset "
            f"{len(payload) - content % record}: frame type 0x{frame_byte:02x} holds samples of "
            f"3 x {8 * layout.value_bytes}-bit values ({record} bytes each)",
            payload,
        )
    n = content // record
    if layout.value_bytes == 3:
        b = np.frombuffer(payload, dtype=np.uint8, count=content, offset=offset).astype(np.int64)
        b = b.reshape(n * _AXES, 3)
        raw24 = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        raw24 -= (raw24 >> 23) << 24
        return raw24.reshape(n, _AXES)
    # The wire's own integers, (n, 3) straight from a subarray dtype: the float scaling casts them.
    dtype = _I8_SAMPLE if layout.value_bytes == 1 else _I16_SAMPLE
    return np.frombuffer(payload, dtype=dtype, count=n, offset=offset)


def decode_pmd_data(
    payload: bytes, *, acc_factor: float = 1.0, gyro_factor: float = 1.0
) -> PmdFrame:
    """Decode one data notification; the factors are the stream's FACTOR (module docstring).

    The defaults are the SDK's fallback of 1.0: right for uncompressed ACC (the H10's frame type
    0x01) and for sensors whose start response sends no factor. Bind the start response's factor
    with :func:`pmd_data_decoder` otherwise.
    """
    what = PMD_DATA_WHAT
    if len(payload) < _DATA_HEADER.size:
        raise DecodeError(
            what,
            f"truncated: header needs {_DATA_HEADER.size} bytes (measurement type, timestamp, "
            f"frame type), got {len(payload)}",
            payload,
        )
    _check_factor("acc_factor", acc_factor)
    _check_factor("gyro_factor", gyro_factor)
    type_byte, timestamp_ns, frame_byte = _DATA_HEADER.unpack_from(payload)
    if type_byte & ~MEASUREMENT_TYPE_MASK:
        raise DecodeError(
            what,
            f"reserved bits 6-7 set in measurement type 0x{type_byte:02x} at offset 0",
            payload,
        )
    if type_byte not in _SUPPORTED:
        raise DecodeError(
            what,
            f"measurement type {_type_name(type_byte)} at offset 0: runmon decodes ACC (2) and "
            "GYRO (5) frames only",
            payload,
        )
    compressed = bool(frame_byte & COMPRESSED_BIT)
    frame_type = frame_byte & FRAME_TYPE_MASK
    layout = _layout(type_byte, compressed, frame_type, acc_factor, gyro_factor)
    if layout is None:
        raise DecodeError(
            what,
            f"frame type 0x{frame_byte:02x} at offset 9 is not defined for "
            f"{PmdMeasurementType(type_byte).name}: expected {_SUPPORTED[type_byte]}",
            payload,
        )
    raw: NDArray[np.signedinteger[Any]]
    if compressed:
        raw = _decode_compressed(payload, layout)
    else:
        raw = _decode_uncompressed(payload, layout, frame_byte)
    samples: NDArray[np.float64]
    if layout.is_float:
        as_f32 = (raw & _U32_MASK).astype(np.uint32).view(np.float32)
        if not np.isfinite(as_f32).all():
            raise DecodeError(what, "a reconstructed float sample is not finite", payload)
        samples = np.multiply(as_f32, layout.factor, dtype=np.float64)
    else:
        # With factor 1 this is raw / 1000 correctly rounded: mG -> g round-trips exactly.
        samples = np.multiply(raw, layout.factor, dtype=np.float64)
        samples /= layout.per_unit
    samples.setflags(write=False)
    return PmdFrame(type_byte, timestamp_ns, frame_type, compressed, samples)


def pmd_data_decoder(
    *, acc_factor: float = 1.0, gyro_factor: float = 1.0
) -> Callable[[bytes], PmdFrame]:
    """:func:`decode_pmd_data` bound to one stream's factors (from its start response)."""
    _check_factor("acc_factor", acc_factor)
    _check_factor("gyro_factor", gyro_factor)
    return functools.partial(decode_pmd_data, acc_factor=acc_factor, gyro_factor=gyro_factor)


def _min_delta_bits(deltas: NDArray[np.int64]) -> int:
    """Fewest two's-complement bits holding every delta (at least 1)."""
    magnitude = int(np.max(np.maximum(deltas, ~deltas)))  # ~d = -d-1: the bits a negative needs
    return magnitude.bit_length() + 1


def _pack_deltas(deltas: NDArray[np.int64], width: int) -> bytes:
    fields = deltas.ravel() & ((1 << width) - 1)
    bits = ((fields[:, None] >> np.arange(width, dtype=np.int64)) & 1).astype(np.uint8)
    return np.packbits(bits.ravel(), bitorder="little").tobytes()


def encode_pmd_data(
    frame: PmdFrame,
    *,
    acc_factor: float = 1.0,
    gyro_factor: float = 1.0,
    delta_bits: int | None = None,
    max_block_samples: int = MAX_BLOCK_SAMPLES,
) -> bytes:
    """Wire form of ``frame`` in its own frame type, scaled back by the same factors.

    Compressed frames go in blocks of at most ``max_block_samples`` deltas, each with the fewest
    bits its deltas need, or ``delta_bits`` for every block (Polar's sensors do not always pick
    the fewest: one of the SDK's vectors uses 10 where 9 would do). Padding bits are 0. Values
    that do not fit raise ``ValueError``.
    """
    _check_factor("acc_factor", acc_factor)
    _check_factor("gyro_factor", gyro_factor)
    _wire.check_int("max_block_samples", max_block_samples, 1, MAX_BLOCK_SAMPLES)
    if delta_bits is not None:
        _wire.check_int("delta_bits", delta_bits, 1, MAX_DELTA_BITS)
    _wire.check_int("timestamp_ns", frame.timestamp_ns, 0, U64_MAX)
    _wire.check_int("frame_type", frame.frame_type, 0, FRAME_TYPE_MASK)
    layout = _layout(
        frame.measurement_type, frame.compressed, frame.frame_type, acc_factor, gyro_factor
    )
    if layout is None:
        raise ValueError(
            f"no wire layout for measurement type {_type_name(frame.measurement_type)}, "
            f"frame type {frame.frame_type}, compressed={frame.compressed}"
        )
    if frame.n_samples == 0:
        raise ValueError("a frame carries at least one sample")
    samples = frame.samples
    if not np.isfinite(samples).all():
        raise ValueError("samples must be finite everywhere")
    if layout.is_float:
        scaled = samples / layout.factor
        if float(np.abs(scaled).max()) > _FLOAT32_MAX:
            raise ValueError("samples out of range: they overflow float32")
        as_f32 = scaled.astype(np.float32)
        raw = as_f32.view(np.uint32).astype(np.int64)
    else:
        bits = 8 * layout.value_bytes
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        raw = np.rint(samples * layout.per_unit / layout.factor).astype(np.int64)
        if int(raw.min()) < lo or int(raw.max()) > hi:
            unit = layout.factor / layout.per_unit
            raise ValueError(
                f"samples out of range: the wire holds {lo * unit:g}..{hi * unit:g}, "
                f"got {float(samples.min())!r}..{float(samples.max())!r}"
            )
    frame_byte = frame.frame_type | (COMPRESSED_BIT if frame.compressed else 0)
    header = _DATA_HEADER.pack(frame.measurement_type, frame.timestamp_ns, frame_byte)
    if not frame.compressed:
        if layout.value_bytes == 3:
            flat = raw.ravel() & 0xFFFFFF
            triple = np.stack((flat & 0xFF, flat >> 8 & 0xFF, flat >> 16), axis=1)
            return header + triple.astype(np.uint8).tobytes()
        dtype = "i1" if layout.value_bytes == 1 else "<i2"
        return header + raw.astype(dtype).tobytes()
    out = bytearray(header)
    out += raw[0].astype("<u4" if layout.is_float else "<i2").tobytes()
    deltas = np.diff(raw, axis=0)
    if layout.is_float:  # bit-pattern deltas wrap modulo 2**32: keep them in signed 32 bits
        deltas = ((deltas + (1 << 31)) & _U32_MASK) - (1 << 31)
    for start in range(0, len(deltas), max_block_samples):  # per block, not per sample
        chunk = deltas[start : start + max_block_samples]
        needed = _min_delta_bits(chunk)
        width = needed if delta_bits is None else delta_bits
        if width < needed:
            raise ValueError(
                f"delta_bits={delta_bits} too small: deltas from sample {start + 1} need {needed}"
            )
        out += bytes((width, len(chunk)))
        out += _pack_deltas(chunk, width)
    return bytes(out)
