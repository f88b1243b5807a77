"""runmon IMU (data + config) and runmon Breath: vectors, layout reading, round trips, fuzzing."""

from __future__ import annotations

import contextlib
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from sensors.errors import DecodeError
from sensors.gatt.runmon_breath import BreathBlock, decode_breath_block, encode_breath_block
from sensors.gatt.runmon_imu import (
    ImuBlock,
    ImuConfig,
    decode_imu_block,
    decode_imu_config,
    encode_imu_block,
    encode_imu_config,
)

FAST = settings(max_examples=300, deadline=None)


def f64(values: object) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


# --- IMU data: hand-written vectors ------------------------------------------------------------

IMU_GYRO_VECTOR = bytes.fromhex(
    "01"  # version
    "01"  # flags: gyro present
    "3412"  # sequence 0x1234
    "c800"  # 200 Hz
    "02"  # n = 2
    # sample 0: acc (2048, 0, -2048) = (1, 0, -1) g, then gyro (16, -16, 0) = (1, -1, 0) deg/s
    "0008 0000 00f8"
    "1000 f0ff 0000"
    # sample 1: acc (1024, -1, 32767), then gyro (-32768, 1, 160)
    "0004 ffff ff7f"
    "0080 0100 a000"
)


def test_gyro_vector_is_interleaved_per_sample() -> None:
    block = decode_imu_block(IMU_GYRO_VECTOR)
    assert block.sequence == 0x1234
    assert block.sample_rate_hz == 200
    assert block.n_samples == 2
    np.testing.assert_array_equal(block.acc_g, [[1.0, 0.0, -1.0], [0.5, -1 / 2048, 32767 / 2048]])
    assert block.gyro_dps is not None
    np.testing.assert_array_equal(block.gyro_dps, [[1.0, -1.0, 0.0], [-2048.0, 1 / 16, 10.0]])
    assert block.acc_g.dtype == np.float64
    assert block.gyro_dps.dtype == np.float64
    assert encode_imu_block(block) == IMU_GYRO_VECTOR


def test_layout_reading_is_acc_then_gyro_per_record() -> None:
    # Bytes 13..18 are sample 0's gyro, not sample 1's acc: a block layout would read them as acc.
    block = decode_imu_block(IMU_GYRO_VECTOR)
    record0 = struct.unpack_from("<6h", IMU_GYRO_VECTOR, 7)
    assert block.gyro_dps is not None
    assert tuple(block.gyro_dps[0] * 16) == record0[3:]
    assert tuple(block.acc_g[1] * 2048) == struct.unpack_from("<3h", IMU_GYRO_VECTOR, 7 + 12)


def test_acc_only_vector() -> None:
    payload = bytes.fromhex("01 00 ffff 6400 01 0008 0004 0002")
    block = decode_imu_block(payload)
    assert block.sequence == 65535
    assert block.sample_rate_hz == 100
    assert block.gyro_dps is None
    np.testing.assert_array_equal(block.acc_g, [[1.0, 0.5, 0.25]])
    assert encode_imu_block(block) == payload


def test_zero_samples_is_well_formed() -> None:
    block = decode_imu_block(bytes.fromhex("01 01 0000 6400 00"))
    assert block.acc_g.shape == (0, 3)
    assert block.gyro_dps is not None
    assert block.gyro_dps.shape == (0, 3)


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        ("", "truncated: header needs 7 bytes (version, flags, sequence, sample rate, n), got 0"),
        ("01 00 0000 64", "truncated: header needs 7 bytes"),
        ("02 00 0000 6400 00", "unsupported version 2 at offset 0 (expected 1)"),
        ("01 02 0000 6400 00", "reserved flag bits 0x02 set in flags 0x02 at offset 1: must be 0"),
        ("01 81 0000 6400 00", "reserved flag bits 0x80 set in flags 0x81"),
        ("01 00 0000 0000 00", "sample rate 0 Hz at offset 4 outside 1..2000 Hz"),
        ("01 00 0000 d107 00", "sample rate 2001 Hz at offset 4 outside 1..2000 Hz"),
        (
            "01 01 0000 6400 02 0008 0000 00f8",
            "truncated: header declares 2 samples of acc+gyro (12 bytes each), need 31 bytes, "
            "got 13",
        ),
        (
            "01 00 0000 6400 01 0008 0000 00f8 00",
            "1 trailing byte at offset 13: header declares 1 sample of acc (6 bytes each), "
            "which take 13 bytes",
        ),
    ],
)
def test_imu_decode_errors(payload_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_imu_block(bytes.fromhex(payload_hex))
    assert info.value.what == "runmon IMU data"
    assert info.value.reason.startswith(reason)


def test_gyro_flag_but_acc_only_length_is_truncated() -> None:
    acc_only = bytes.fromhex("01 00 0000 6400 01 0008 0004 0002")
    with pytest.raises(DecodeError, match="truncated"):
        decode_imu_block(acc_only[:1] + b"\x01" + acc_only[2:])


def test_arrays_are_read_only() -> None:
    block = decode_imu_block(IMU_GYRO_VECTOR)
    assert block.gyro_dps is not None
    with pytest.raises(ValueError, match="read-only"):
        block.acc_g[0, 0] = 9.0
    with pytest.raises(ValueError, match="read-only"):
        block.gyro_dps[0, 0] = 9.0


def test_decoded_arrays_do_not_alias_a_mutable_payload() -> None:
    payload = bytearray(IMU_GYRO_VECTOR)
    block = decode_imu_block(bytes(payload))
    payload[7:9] = b"\x00\x00"
    assert block.acc_g[0, 0] == 1.0


@pytest.mark.parametrize("has_gyro", [True, False])
def test_decoded_arrays_are_separate_contiguous_and_stay_read_only(has_gyro: bool) -> None:
    n = 5
    records = np.arange(n * (6 if has_gyro else 3), dtype="<i2").reshape(n, -1)
    payload = struct.pack("<BBHHB", 1, int(has_gyro), 0, 100, n) + records.tobytes()
    block = decode_imu_block(payload)
    arrays = [block.acc_g] if block.gyro_dps is None else [block.acc_g, block.gyro_dps]
    assert len(arrays) == (2 if has_gyro else 1)
    for array in arrays:
        assert array.dtype == np.float64
        assert array.shape == (n, 3)
        assert array.flags.c_contiguous
        assert not array.flags.writeable
    np.testing.assert_array_equal(block.acc_g * 2048, records[:, :3])
    if block.gyro_dps is not None:
        assert not np.shares_memory(block.acc_g, block.gyro_dps)
        np.testing.assert_array_equal(block.gyro_dps * 16, records[:, 3:])
    # The constructor takes the decoder's frozen arrays as they are: no copy, still equal.
    rebuilt = ImuBlock(block.sequence, block.sample_rate_hz, block.acc_g, block.gyro_dps)
    assert rebuilt.acc_g is block.acc_g
    assert rebuilt.gyro_dps is block.gyro_dps
    assert rebuilt == block


def test_equality_and_hash() -> None:
    a = decode_imu_block(IMU_GYRO_VECTOR)
    b = decode_imu_block(IMU_GYRO_VECTOR)
    assert a == b
    assert a != ImuBlock(a.sequence + 1, a.sample_rate_hz, a.acc_g, a.gyro_dps)
    assert a != ImuBlock(a.sequence, a.sample_rate_hz, a.acc_g, None)
    assert a != ImuBlock(a.sequence, a.sample_rate_hz, a.acc_g * 2, a.gyro_dps)
    assert a != "not a block"
    with pytest.raises(TypeError):
        hash(a)


def test_constructor_copies_a_callers_writable_array() -> None:
    acc = np.zeros((2, 3))
    block = ImuBlock(0, 100, acc, None)
    acc[0, 0] = 5.0
    assert block.acc_g[0, 0] == 0.0
    assert acc.flags.writeable  # the caller's array is left alone


def test_constructor_converts_dtype_and_checks_shapes() -> None:
    block = ImuBlock(0, 100, np.array([[0, 0, 1]], dtype=np.int16), np.zeros((1, 3)))
    assert block.acc_g.dtype == np.float64
    assert not block.acc_g.flags.writeable
    with pytest.raises(ValueError, match=r"acc_g must have shape \(n, 3\)"):
        ImuBlock(0, 100, np.zeros((2, 2)), None)
    with pytest.raises(ValueError, match="gyro_dps shape"):
        ImuBlock(0, 100, np.zeros((2, 3)), np.zeros((3, 3)))


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (ImuBlock(0, 100, f64([[16.0, 0, 0]]), None), "acc_g out of range"),
        (ImuBlock(0, 100, f64([[math.nan, 0, 0]]), None), "acc_g must be finite"),
        (ImuBlock(0, 100, f64([[0, 0, 0]]), f64([[2048.0, 0, 0]])), "gyro_dps out of range"),
        (ImuBlock(0, 100, np.zeros((256, 3)), None), "number of samples=256"),
        (ImuBlock(65536, 100, f64([[0, 0, 0]]), None), "sequence=65536"),
        (ImuBlock(-1, 100, f64([[0, 0, 0]]), None), "sequence=-1"),
        (ImuBlock(0, 0, f64([[0, 0, 0]]), None), "sample_rate_hz=0"),
        (ImuBlock(0, 2001, f64([[0, 0, 0]]), None), "sample_rate_hz=2001"),
    ],
)
def test_imu_encoder_rejects_out_of_range(block: ImuBlock, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_imu_block(block)


def test_imu_encoder_edges_of_range() -> None:
    block = ImuBlock(0, 2000, f64([[-16.0, 32767 / 2048, 0]]), f64([[-2048.0, 32767 / 16, 0]]))
    assert decode_imu_block(encode_imu_block(block)) == block


# --- IMU data: properties ----------------------------------------------------------------------


@st.composite
def imu_payloads(draw: st.DrawFn) -> bytes:
    """Well-formed payloads from raw wire integers (every i16, both flag values)."""
    has_gyro = draw(st.booleans())
    n = draw(st.integers(0, 42))
    header = struct.pack(
        "<BBHHB", 1, int(has_gyro), draw(st.integers(0, 0xFFFF)), draw(st.integers(1, 2000)), n
    )
    records = draw(hnp.arrays(np.dtype("<i2"), (n, 6 if has_gyro else 3)))
    return header + records.tobytes()


@FAST
@given(imu_payloads())
def test_imu_payloads_round_trip_byte_exact(payload: bytes) -> None:
    # 1/2048 and 1/16 are powers of two: raw -> float64 -> raw is exact.
    assert encode_imu_block(decode_imu_block(payload)) == payload


@FAST
@given(imu_payloads())
def test_imu_every_truncation_raises(payload: bytes) -> None:
    for length in range(len(payload)):
        with pytest.raises(DecodeError):
            decode_imu_block(payload[:length])


def _float_arrays(n: int, limit: float) -> st.SearchStrategy[NDArray[np.float64]]:
    return hnp.arrays(np.float64, (n, 3), elements=st.floats(-limit, limit))


@st.composite
def imu_blocks(draw: st.DrawFn) -> ImuBlock:
    n = draw(st.integers(0, 42))
    acc = draw(_float_arrays(n, 15.99))
    gyro = draw(st.none() | _float_arrays(n, 2047.9))
    return ImuBlock(draw(st.integers(0, 0xFFFF)), draw(st.integers(1, 2000)), acc, gyro)


@FAST
@given(imu_blocks())
def test_imu_round_trip_within_wire_resolution(block: ImuBlock) -> None:
    decoded = decode_imu_block(encode_imu_block(block))
    assert decoded.sequence == block.sequence
    assert decoded.sample_rate_hz == block.sample_rate_hz
    np.testing.assert_allclose(decoded.acc_g, block.acc_g, rtol=0, atol=0.5 / 2048)
    if block.gyro_dps is None:
        assert decoded.gyro_dps is None
    else:
        assert decoded.gyro_dps is not None
        np.testing.assert_allclose(decoded.gyro_dps, block.gyro_dps, rtol=0, atol=0.5 / 16)


@FAST
@given(st.binary(max_size=300))
def test_imu_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_imu_block(payload)


@FAST
@given(st.integers(0, 3), st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(max_size=300))
def test_imu_header_driven_fuzz(flags: int, rate_hz: int, n: int, rest: bytes) -> None:
    # Random bytes almost never pass the header; a near-valid header reaches the length logic.
    try:
        block = decode_imu_block(struct.pack("<BBHHB", 1, flags, 7, rate_hz, n) + rest)
    except DecodeError:
        return
    assert block.acc_g.shape == (n, 3)
    assert (block.gyro_dps is not None) == bool(flags & 1)


# --- IMU config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload_hex", "config"),
    [
        ("01 d000 01", ImuConfig(208, "chest")),
        ("01 6400 00", ImuConfig(100, "unknown")),
        ("01 3400 02", ImuConfig(52, "pelvis")),
        ("01 d007 03", ImuConfig(2000, "upper_back")),
    ],
)
def test_config_vectors(payload_hex: str, config: ImuConfig) -> None:
    payload = bytes.fromhex(payload_hex)
    assert decode_imu_config(payload) == config
    assert encode_imu_config(config) == payload


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        ("", "truncated: version, sample rate and placement, need 4 bytes, got 0"),
        ("01 d000", "truncated"),
        ("01 d000 01 00", "1 trailing byte at offset 4"),
        ("02 d000 01", "unsupported version 2 at offset 0"),
        ("01 0000 01", "sample rate 0 Hz at offset 1"),
        ("01 d000 04", "unknown placement code 4 at offset 3"),
    ],
)
def test_config_decode_errors(payload_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_imu_config(bytes.fromhex(payload_hex))
    assert info.value.what == "runmon IMU config"
    assert info.value.reason.startswith(reason)


def test_config_encoder_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="sample_rate_hz=0"):
        encode_imu_config(ImuConfig(0, "chest"))
    with pytest.raises(ValueError, match="placement='wrist'"):
        encode_imu_config(ImuConfig(100, "wrist"))  # type: ignore[arg-type]  # deliberately invalid


@FAST
@given(
    st.builds(
        ImuConfig,
        sample_rate_hz=st.integers(1, 2000),
        placement=st.sampled_from(["unknown", "chest", "pelvis", "upper_back"]),
    )
)
def test_config_round_trip(config: ImuConfig) -> None:
    payload = encode_imu_config(config)
    assert decode_imu_config(payload) == config
    for length in range(len(payload)):
        with pytest.raises(DecodeError):
            decode_imu_config(payload[:length])


@FAST
@given(st.binary(max_size=300))
def test_config_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_imu_config(payload)


# --- Breath ------------------------------------------------------------------------------------


def test_breath_vector() -> None:
    payload = bytes.fromhex("01 00 0a00 1900 03 e803 0000 ffff")
    block = decode_breath_block(payload)
    assert block.sequence == 10
    assert block.sample_rate_hz == 25
    assert block.stretch.dtype == np.float64
    np.testing.assert_array_equal(block.stretch, [1000.0, 0.0, 65535.0])
    assert not block.stretch.flags.writeable
    assert encode_breath_block(block) == payload


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        ("01 00 0000 19", "truncated: header needs 7 bytes"),
        ("00 00 0000 1900 00", "unsupported version 0 at offset 0"),
        ("01 01 0000 1900 00", "reserved flag bits 0x01 set in flags 0x01 at offset 1"),
        ("01 00 0000 0000 00", "sample rate 0 Hz at offset 4"),
        (
            "01 00 0000 1900 02 e803",
            "truncated: header declares 2 stretch samples (2 bytes each), need 11 bytes, got 9",
        ),
        ("01 00 0000 1900 01 e803 00", "1 trailing byte at offset 9"),
    ],
)
def test_breath_decode_errors(payload_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_breath_block(bytes.fromhex(payload_hex))
    assert info.value.what == "runmon Breath data"
    assert info.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (BreathBlock(0, 25, f64([65535.6])), "stretch out of range"),
        (BreathBlock(0, 25, f64([-0.6])), "stretch out of range"),
        (BreathBlock(0, 25, f64([math.inf])), "stretch must be finite"),
        (BreathBlock(0, 25, np.zeros(256)), "number of samples=256"),
        (BreathBlock(0, 0, f64([1.0])), "sample_rate_hz=0"),
    ],
)
def test_breath_encoder_rejects_out_of_range(block: BreathBlock, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_breath_block(block)


def test_breath_decoded_array_passes_through_the_constructor() -> None:
    block = decode_breath_block(bytes.fromhex("01 00 0a00 1900 02 e803 0100"))
    assert block.stretch.flags.c_contiguous
    assert not block.stretch.flags.writeable
    assert BreathBlock(10, 25, block.stretch).stretch is block.stretch


def test_breath_block_shape_and_equality() -> None:
    with pytest.raises(ValueError, match=r"stretch must have shape \(n,\)"):
        BreathBlock(0, 25, np.zeros((2, 2)))
    a = BreathBlock(1, 25, f64([1.0, 2.0]))
    assert a == BreathBlock(1, 25, np.array([1.0, 2.0]))
    assert a != BreathBlock(1, 25, f64([1.0, 3.0]))
    assert a != BreathBlock(2, 25, f64([1.0, 2.0]))


@st.composite
def breath_payloads(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(0, 255))
    header = struct.pack(
        "<BBHHB", 1, 0, draw(st.integers(0, 0xFFFF)), draw(st.integers(1, 2000)), n
    )
    return header + draw(hnp.arrays(np.dtype("<u2"), n)).tobytes()


@FAST
@given(breath_payloads())
def test_breath_payloads_round_trip_byte_exact(payload: bytes) -> None:
    assert encode_breath_block(decode_breath_block(payload)) == payload


@FAST
@given(breath_payloads())
def test_breath_every_truncation_raises(payload: bytes) -> None:
    for length in range(len(payload)):
        with pytest.raises(DecodeError):
            decode_breath_block(payload[:length])


@FAST
@given(
    st.integers(0, 0xFFFF),
    st.integers(1, 2000),
    hnp.arrays(np.float64, st.integers(0, 255), elements=st.floats(0.0, 65535.0)),
)
def test_breath_round_trip_within_wire_resolution(
    sequence: int, rate_hz: int, stretch: NDArray[np.float64]
) -> None:
    decoded = decode_breath_block(encode_breath_block(BreathBlock(sequence, rate_hz, stretch)))
    assert (decoded.sequence, decoded.sample_rate_hz) == (sequence, rate_hz)
    np.testing.assert_allclose(decoded.stretch, stretch, rtol=0, atol=0.5)


@FAST
@given(st.binary(max_size=300))
def test_breath_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_breath_block(payload)


@FAST
@given(st.integers(0, 1), st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(max_size=300))
def test_breath_header_driven_fuzz(flags: int, rate_hz: int, n: int, rest: bytes) -> None:
    try:
        block = decode_breath_block(struct.pack("<BBHHB", 1, flags, 7, rate_hz, n) + rest)
    except DecodeError:
        return
    assert block.stretch.shape == (n,)
