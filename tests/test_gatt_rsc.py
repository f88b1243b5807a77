"""RSC Measurement 0x2A53 and RSC Feature 0x2A54: spec vectors, round trips, fuzzing."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.errors import DecodeError
from sensors.gatt.rsc import (
    RscFeature,
    RscMeasurement,
    decode_rsc_feature,
    decode_rsc_measurement,
    encode_rsc_feature,
    encode_rsc_measurement,
)

FAST = settings(max_examples=300, deadline=None)

# --- hand-written vectors (GATT Specification Supplement layout) -----------------------------


def test_all_fields_vector() -> None:
    payload = bytes.fromhex(
        "07"  # flags: stride length, total distance, running
        "8003"  # speed 0x0380 = 896/256 = 3.5 m/s
        "ac"  # cadence 172 /min
        "7b00"  # stride length 123 cm
        "39300000"  # total distance 12345 dm
    )
    m = decode_rsc_measurement(payload)
    assert m == RscMeasurement(
        speed_mps=3.5,
        cadence_raw_per_min=172,
        stride_length_m=1.23,
        total_distance_m=1234.5,
        is_running=True,
    )
    assert encode_rsc_measurement(m) == payload


def test_minimal_vector_walking() -> None:
    m = decode_rsc_measurement(bytes.fromhex("00 0001 5a"))
    assert m == RscMeasurement(1.0, 90, None, None, False)


def test_total_distance_without_stride_length() -> None:
    m = decode_rsc_measurement(bytes.fromhex("06 4002 50 e8030000"))
    assert m == RscMeasurement(2.25, 80, None, 100.0, True)


def test_reserved_flag_bits_are_ignored() -> None:
    # 0xf8: bits 3-7 set (reserved), running bit clear.
    assert decode_rsc_measurement(bytes.fromhex("f8 0001 5a")) == RscMeasurement(
        1.0, 90, None, None, False
    )


def test_cadence_is_kept_raw() -> None:
    # A footpod reporting strides per minute: 88 stays 88, normalising is a later stage's job.
    assert decode_rsc_measurement(bytes.fromhex("04 0003 58")).cadence_raw_per_min == 88


def test_speed_limit_is_inclusive_at_15_mps() -> None:
    assert decode_rsc_measurement(b"\x00" + struct.pack("<HB", 3840, 0)).speed_mps == 15.0
    with pytest.raises(DecodeError, match=r"absurd speed 15\.00 m/s at offset 1"):
        decode_rsc_measurement(b"\x00" + struct.pack("<HB", 3841, 0))


def test_truncated_reason_says_what_the_flags_declare() -> None:
    with pytest.raises(DecodeError) as info:
        decode_rsc_measurement(bytes.fromhex("03 0001 5a 7b00 3930"))
    assert info.value.what == "RSC Measurement"
    assert info.value.reason == (
        "truncated: flags 0x03 declare stride length and total distance, need 10 bytes, got 8"
    )
    assert info.value.payload == bytes.fromhex("03 0001 5a 7b00 3930")


def test_trailing_bytes_reason_says_where() -> None:
    with pytest.raises(DecodeError) as info:
        decode_rsc_measurement(bytes.fromhex("01 0001 5a 7b00 ffff"))
    assert info.value.reason == (
        "2 trailing bytes at offset 6: flags 0x01 declare stride length, which take 6 bytes"
    )


def test_empty_payload() -> None:
    with pytest.raises(DecodeError, match="empty"):
        decode_rsc_measurement(b"")


# --- encoder -----------------------------------------------------------------------------------


def test_encoder_rounds_to_wire_resolution() -> None:
    payload = encode_rsc_measurement(RscMeasurement(3.5012, 170, 1.234, 10.04, True))
    assert decode_rsc_measurement(payload) == RscMeasurement(3.5, 170, 1.23, 10.0, True)


@pytest.mark.parametrize(
    ("measurement", "message"),
    [
        (RscMeasurement(15.01, 170, None, None, True), "speed_mps"),
        (RscMeasurement(-1.0, 170, None, None, True), "speed_mps"),
        (RscMeasurement(math.nan, 170, None, None, True), "speed_mps must be finite"),
        (RscMeasurement(3.0, 256, None, None, True), "cadence_raw_per_min=256"),
        (RscMeasurement(3.0, -1, None, None, True), "cadence_raw_per_min=-1"),
        (RscMeasurement(3.0, 170, 655.36, None, True), "stride_length_m"),
        (RscMeasurement(3.0, 170, -0.01, None, True), "stride_length_m"),
        (RscMeasurement(3.0, 170, None, 429_496_729.6, True), "total_distance_m"),
        (RscMeasurement(3.0, 170, None, math.inf, True), "total_distance_m must be finite"),
    ],
)
def test_encoder_rejects_out_of_range(measurement: RscMeasurement, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_rsc_measurement(measurement)


# --- properties --------------------------------------------------------------------------------

measurements = st.builds(
    RscMeasurement,
    speed_mps=st.floats(0.0, 15.0),
    cadence_raw_per_min=st.integers(0, 255),
    stride_length_m=st.none() | st.floats(0.0, 655.35),
    total_distance_m=st.none() | st.floats(0.0, 429_496_729.5),
    is_running=st.booleans(),
)


@FAST
@given(measurements)
def test_round_trip_within_wire_resolution(m: RscMeasurement) -> None:
    decoded = decode_rsc_measurement(encode_rsc_measurement(m))
    assert abs(decoded.speed_mps - m.speed_mps) <= 0.5 / 256 + 1e-12
    assert decoded.cadence_raw_per_min == m.cadence_raw_per_min
    assert decoded.is_running == m.is_running
    if m.stride_length_m is None:
        assert decoded.stride_length_m is None
    else:
        assert decoded.stride_length_m is not None
        assert abs(decoded.stride_length_m - m.stride_length_m) <= 0.5 / 100 + 1e-9
    if m.total_distance_m is None:
        assert decoded.total_distance_m is None
    else:
        assert decoded.total_distance_m is not None
        assert abs(decoded.total_distance_m - m.total_distance_m) <= 0.5 / 10 + 1e-6
    # The wire form is a fixed point: re-encoding the decoded value gives the same bytes.
    assert decode_rsc_measurement(encode_rsc_measurement(decoded)) == decoded


@st.composite
def canonical_payloads(draw: st.DrawFn) -> bytes:
    """Well-formed payloads with reserved flag bits clear, built from raw wire integers."""
    flags = draw(st.integers(0, 7))
    out = struct.pack("<BHB", flags, draw(st.integers(0, 3840)), draw(st.integers(0, 255)))
    if flags & 1:
        out += struct.pack("<H", draw(st.integers(0, 0xFFFF)))
    if flags & 2:
        out += struct.pack("<I", draw(st.integers(0, 0xFFFF_FFFF)))
    return out


@FAST
@given(canonical_payloads())
def test_canonical_payloads_round_trip_byte_exact(payload: bytes) -> None:
    assert encode_rsc_measurement(decode_rsc_measurement(payload)) == payload


@FAST
@given(canonical_payloads())
def test_every_truncation_raises(payload: bytes) -> None:
    for length in range(len(payload)):
        with pytest.raises(DecodeError):
            decode_rsc_measurement(payload[:length])


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_rsc_measurement(payload)


@FAST
@given(st.integers(0, 255), st.binary(min_size=3, max_size=12))
def test_flag_driven_fuzz(flags: int, rest: bytes) -> None:
    # Plain random bytes rarely reach past the length check; fix the flags and vary the rest.
    try:
        m = decode_rsc_measurement(bytes((flags,)) + rest)
    except DecodeError:
        return
    assert 0.0 <= m.speed_mps <= 15.0
    assert (m.stride_length_m is not None) == bool(flags & 1)
    assert (m.total_distance_m is not None) == bool(flags & 2)


# --- RSC Feature -------------------------------------------------------------------------------


def test_feature_vector_all_supported() -> None:
    feature = decode_rsc_feature(bytes.fromhex("1f00"))
    assert feature == RscFeature(True, True, True, True, True)
    assert feature.raw_bits == 0x1F


def test_feature_vector_some_supported_and_reserved_bits_kept() -> None:
    feature = decode_rsc_feature(bytes.fromhex("0580"))  # bits 0, 2 and reserved bit 15
    assert feature == RscFeature(
        stride_length_supported=True,
        total_distance_supported=False,
        running_status_supported=True,
        calibration_supported=False,
        multiple_sensor_locations_supported=False,
        reserved_bits=0x8000,
    )
    assert encode_rsc_feature(feature) == bytes.fromhex("0580")


@pytest.mark.parametrize("payload", [b"", b"\x1f", b"\x1f\x00\x00"])
def test_feature_must_be_two_bytes(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="RSC Feature"):
        decode_rsc_feature(payload)


def test_feature_rejects_named_bits_in_reserved_bits() -> None:
    with pytest.raises(ValueError, match="reserved_bits"):
        RscFeature(False, False, False, False, False, reserved_bits=0x01)
    with pytest.raises(ValueError, match="RSC Feature bits"):
        RscFeature.from_raw_bits(0x1_0000)


@FAST
@given(st.integers(0, 0xFFFF))
def test_feature_round_trip(bits: int) -> None:
    payload = struct.pack("<H", bits)
    feature = decode_rsc_feature(payload)
    assert feature.raw_bits == bits
    assert encode_rsc_feature(feature) == payload
    assert RscFeature.from_raw_bits(bits) == feature


@FAST
@given(st.binary(max_size=300))
def test_feature_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_rsc_feature(payload)
