"""Polar PMD: Polar's own SDK test vectors, the control point, round trips and fuzzing.

Vectors are copied from github.com/polarofficial/polar-ble-sdk, Android unit tests under
sources/Android/android-communications/library/src/test/java/com/polar/androidcommunications/
api/ble/model/gatt/client/pmd/ (``…/pmd/`` below), at the commits named next to each.
"""

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

from sensors import uuids
from sensors.errors import DecodeError
from sensors.gatt import decoder_for
from sensors.gatt.polar_pmd import (
    PmdControlPointResponse,
    PmdFeatures,
    PmdFrame,
    PmdMeasurementStopped,
    PmdMeasurementType,
    PmdOpCode,
    PmdRequest,
    PmdSettings,
    PmdStatus,
    decode_pmd_control_point,
    decode_pmd_control_point_response,
    decode_pmd_data,
    decode_pmd_features,
    decode_pmd_request,
    decode_pmd_settings,
    encode_pmd_control_point_response,
    encode_pmd_data,
    encode_pmd_features,
    encode_pmd_measurement_stopped,
    encode_pmd_request,
    encode_pmd_settings,
    pmd_data_decoder,
    pmd_get_settings_request,
    pmd_start_request,
    pmd_stop_request,
)

FAST = settings(max_examples=100, deadline=None)
ACC = PmdMeasurementType.ACC
GYRO = PmdMeasurementType.GYRO


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


# --- Polar's data frame vectors ----------------------------------------------------------------

# …/pmd/model/AccDataTest.kt @ 0aabf34a84cd3760ed5de52350a91340659ace95,
# "process acc raw data frame type 1": header, then the test's HEX comment minus its frame type.
ACC_RAW_TYPE1 = hx("02 0094357700000000 01") + hx(
    "F7 FF FF FF E7 03 F8 FF FE FF E5 03 F9 FF FF FF E5 03 FA FF FF FF E6 03 FA FF FE FF E6 03"
    "F9 FF FF FF E5 03 F8 FF FF FF E6 03 F8 FF FE FF E6 03 FA FF FF FF E5 03 FA FF FF FF E7 03"
    "FA FF FF FF E5 03 F8 FF FF FF E6 03 F7 FF FF FF E6 03 F8 FF FE FF E6 03 F9 FF FE FF E7 03"
    "F9 FF 00 00 E6 03 F9 FF FF FF E6 03 F7 FF FE FF E5 03 F9 FF FF FF E5 03 F9 FF FF FF E5 03"
    "FA FF 00 00 E6 03 F9 FF FE FF E6 03 F8 FF FF FF E6 03 F8 FF FF FF E5 03 F9 FF FF FF E6 03"
    "F9 FF FF FF E5 03 FA FF FF FF E6 03 F9 FF FF FF E5 03 F9 FF FF FF E5 03 F8 FF FE FF E6 03"
    "F9 FF FF FF E6 03 F9 FF FF FF E6 03 F9 FF 00 00 E5 03 F9 FF FE FF E6 03 F8 FF FE FF E6 03"
    "F7 FF FE FF E6 03"
)

# Same file, "process acc compressed data type 0": frame type 0x80, factor 2.44E-4 (8 g range),
# a reference sample and one block of 56 samples of 10-bit deltas.
ACC_COMPRESSED_TYPE0 = hx("02 0094357700000000 80") + hx(
    "71 07 F0 6A 9E 8D 0A 38 BE 5C BE BA 2F 96 B3 EE 4B E5 AD FB 42 B9 EB BE 4C FE BA 2F 92 BF"
    "EE 4B E4 B1 FB 12 B9 EC BD 3C 3E BB 2F 8F D3 DE 4B E3 B5 F7 D2 B8 ED BD 30 7E 7B 2F 8B E3"
    "CE 8B E2 BA F7 A2 B8 EE BC 20 BE 7B 2F 88 F3 CE CB E1 BD EF 52 F8 EF BC 18 FE 3B 2F 84 03"
    "BF CB E0 C2 EF 32 B8 F0 BB 04 4E BC 2E 81 13 AF 0B E0 C6 EF F2 F7 F1 B9 FC 7D BC 2E 7D 27"
    "9F 4B DF CA EB C2 F7 F2 B8 EC CD 7C 2E 7B 37 8F 4B DE CE E3 92 F7 F3 B8 E0 0D FD 2D 77 4B"
    "7F CB DD D2 DF 62 37 F5 B7 D4 4D BD 2D 74 5B 6F CB DC D7 D7 32 37 F6 B5 C8 8D 7D 2D 71 6B"
    "4F 4B DC DC D3 F2 36 F7 B4 BC DD FD 2C 6F 7B 3F 4B DB E0 CF D2 36 F8 B2 B0 2D BE 2C 6C 8F"
    "1F CB DA E3 C7 A2 76 F9"
)
ACC_TYPE0_FACTOR = 2.44e-4

# Same file, "process acc compressed data type 1": frame type 0x81, 6-bit deltas. Its last byte
# 0x08 sets a padding bit (bit 19 of an 18-bit block): the SDK ignores it.
ACC_COMPRESSED_TYPE1 = hx("02 6500000000000000 81 F1FF 1400 F003 06 01 7B 0F 08")

# Same file, ``measurementFrameAccType0Short``: its second block (12-bit deltas, 20 samples)
# needs 90 bytes and has 22: a truncated frame, body only (the test gives no header).
ACC_TYPE0_SHORT_BODY = hx(
    "5D FF 98 00 FD 0F 06 2A F2 B0 13 EC A1 1B 3E C3 D0 40 7F CD 40 71 D8 F3 4D 00 46 3F 08 7B"
    "9F D7 3A AF 38 52 A6 13 ED 3E 13 09 91 DC FA EE EF 3E 54 10 E2 8F 77 85 EE F2 4C 7E 04 87"
    "9C FC D2 2F 10 FD 4F EF FE 21 FF C2 81 04 03 5F 13 45 D1 08 4A DF BF B5 51 44 7B 50 F7 39"
    "A1 10 2E 6F 18 F7 9F 1C 36 4D 1B 0D 03 0C 14 06 D0 FE F7 AF FF FC BF FF F4 3F 01 17 F0 00"
    "01 10 00 F8 DF FF 00"
)

# …/pmd/model/GyrDataTest.kt @ 0aabf34a84cd3760ed5de52350a91340659ace95,
# "process gyro compressed data type 0": 3-bit deltas, timestamp 2**63 - 1.
GYRO_COMPRESSED_TYPE0 = hx("05 FFFFFFFFFFFFFF7F 80 EAFF 0800 0D00 03 01 DF 00")

# Same file, "process gyro compressed data type 1": float32 bit patterns, 28-bit deltas that
# wrap modulo 2**32 (0x41A00000 + 0xFDECCCCD -> 0x3F8CCCCD = 1.1f).
GYRO_COMPRESSED_TYPE1 = hx(
    "05 0094357700000000 81 0000803F 00002041 0000A041 1C 01 00 00 A0 01 00 00 08 CD CC EC 0D"
)


def raw(frame: PmdFrame, per_lsb: float) -> NDArray[np.int64]:
    return np.rint(frame.samples / per_lsb).astype(np.int64)


def test_polar_acc_raw_type1() -> None:
    assert len(ACC_RAW_TYPE1) == 10 + 216
    frame = decode_pmd_data(ACC_RAW_TYPE1)
    assert (frame.measurement_type, frame.frame_type, frame.compressed) == (ACC, 1, False)
    assert frame.timestamp_ns == 2_000_000_000
    assert frame.n_samples == 36  # "measurement frame size / resolution in bytes / channels"
    np.testing.assert_array_equal(raw(frame, 1e-3)[:2], [[-9, -1, 999], [-8, -2, 997]])
    assert frame.samples[0, 2] == 0.999  # g, correctly rounded from mG
    assert encode_pmd_data(frame) == ACC_RAW_TYPE1


def test_polar_acc_compressed_type0() -> None:
    frame = decode_pmd_data(ACC_COMPRESSED_TYPE0, acc_factor=ACC_TYPE0_FACTOR)
    assert (frame.frame_type, frame.compressed, frame.n_samples) == (0, True, 1 + 56)
    assert frame.timestamp_ns == 2_000_000_000
    ref = np.array([1905, 27376, -29282])
    np.testing.assert_array_equal(raw(frame, ACC_TYPE0_FACTOR)[0], ref)
    np.testing.assert_array_equal(raw(frame, ACC_TYPE0_FACTOR)[1], ref + np.array([190, -105, -85]))
    # Polar's test: "validate data in range" of the 8 g setting; and g = raw * factor.
    assert np.abs(frame.samples).max() <= 8.0
    np.testing.assert_allclose(frame.samples[0], ref * ACC_TYPE0_FACTOR, rtol=1e-15)


def test_polar_acc_compressed_type0_reencodes_byte_for_byte() -> None:
    frame = decode_pmd_data(ACC_COMPRESSED_TYPE0, acc_factor=ACC_TYPE0_FACTOR)
    # The sensor chose 10-bit deltas where 9 suffice; with its width our bits are its bits.
    assert encode_pmd_data(frame, acc_factor=ACC_TYPE0_FACTOR, delta_bits=10) == (
        ACC_COMPRESSED_TYPE0
    )
    tight = encode_pmd_data(frame, acc_factor=ACC_TYPE0_FACTOR)
    assert tight[16] == 9  # our own choice: the fewest bits
    assert len(tight) < len(ACC_COMPRESSED_TYPE0)
    assert decode_pmd_data(tight, acc_factor=ACC_TYPE0_FACTOR) == frame


def test_polar_acc_compressed_type1_ignores_padding_bits() -> None:
    frame = decode_pmd_data(ACC_COMPRESSED_TYPE1)
    assert frame.timestamp_ns == 101
    # Factor 1.0: raw values are mG.
    np.testing.assert_array_equal(raw(frame, 1e-3), [[-15, 20, 1008], [-20, 17, 1008]])
    reencoded = encode_pmd_data(frame, delta_bits=6)
    assert reencoded == ACC_COMPRESSED_TYPE1[:-1] + b"\x00"  # padding written as 0
    assert decode_pmd_data(reencoded) == frame
    # A factor scales the mG: SDK x = raw * factor (mG).
    scaled = decode_pmd_data(ACC_COMPRESSED_TYPE1, acc_factor=0.5)
    np.testing.assert_array_equal(scaled.samples, frame.samples * 0.5)


def test_polar_truncated_acc_frame() -> None:
    payload = hx("02 0000000000000000 80") + ACC_TYPE0_SHORT_BODY
    with pytest.raises(DecodeError) as info:
        decode_pmd_data(payload)
    assert info.value.reason == (
        "truncated: block 2 at offset 113 declares 20 samples of 12-bit deltas, need 90 bytes, "
        "got 22"
    )
    # The first block is whole: the same frame cut after it decodes (reference -163 per Polar).
    frame = decode_pmd_data(payload[:113])
    assert frame.n_samples == 1 + 42
    assert raw(frame, 1.0)[0, 0] == -163


def test_polar_gyro_compressed_type0() -> None:
    frame = decode_pmd_data(GYRO_COMPRESSED_TYPE0)
    assert (frame.measurement_type, frame.frame_type, frame.compressed) == (GYRO, 0, True)
    assert frame.timestamp_ns == 2**63 - 1
    np.testing.assert_array_equal(frame.samples, [[-22.0, 8.0, 13.0], [-23.0, 11.0, 16.0]])
    assert encode_pmd_data(frame) == GYRO_COMPRESSED_TYPE0  # 3 bits: the fewest, as Polar's


def test_polar_gyro_compressed_type1_floats() -> None:
    one_point_one = float(np.float32(1.1))
    frame = decode_pmd_data(GYRO_COMPRESSED_TYPE1)
    np.testing.assert_array_equal(frame.samples, [[1.0, 10.0, 20.0], [10.0, 20.0, one_point_one]])
    # "with factor": 0.5.
    half = decode_pmd_data(GYRO_COMPRESSED_TYPE1, gyro_factor=0.5)
    np.testing.assert_array_equal(half.samples, frame.samples * 0.5)
    assert encode_pmd_data(frame, delta_bits=28) == GYRO_COMPRESSED_TYPE1
    assert encode_pmd_data(half, gyro_factor=0.5, delta_bits=28) == GYRO_COMPRESSED_TYPE1


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        # …/pmd/BlePmdClientTest.kt @ 0aabf34a84cd3760ed5de52350a91340659ace95:
        # "process acc data" (ACC, frame type 0x83): no such ACC frame type.
        ("02 0100000000000000 83 00", "frame type 0x83 at offset 9 is not defined for ACC"),
        # "process ecg data" and "process ppg data": recognised types runmon does not decode.
        ("00 386C3172A4D3230D 03 00120311100400", "measurement type ECG (0) at offset 0"),
        ("01 0000000000000070 80 FF", "measurement type PPG (1) at offset 0"),
        ("03 0000000000000000 00 00", "measurement type PPI (3) at offset 0"),
    ],
)
def test_polar_frames_runmon_refuses(payload_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_pmd_data(hx(payload_hex))
    assert info.value.reason.startswith(reason)


# --- our own data vectors and errors -----------------------------------------------------------


def test_uncompressed_i8_and_i24() -> None:
    i8 = hx("02 0A00000000000000 00 01 FF 80 7F 00 10")
    frame = decode_pmd_data(i8)
    np.testing.assert_array_equal(raw(frame, 1e-3), [[1, -1, -128], [127, 0, 16]])
    assert encode_pmd_data(frame) == i8
    i24 = hx("02 0A00000000000000 02 FFFFFF 000080 FFFF7F")
    frame = decode_pmd_data(i24)
    np.testing.assert_array_equal(raw(frame, 1e-3), [[-1, -(2**23), 2**23 - 1]])
    assert encode_pmd_data(frame) == i24


def test_decoded_samples_are_read_only_float64() -> None:
    frame = decode_pmd_data(GYRO_COMPRESSED_TYPE0)
    assert frame.samples.dtype == np.float64
    with pytest.raises(ValueError, match="read-only"):
        frame.samples[0, 0] = 1.0


def test_frame_equality() -> None:
    a = decode_pmd_data(GYRO_COMPRESSED_TYPE0)
    assert a == decode_pmd_data(GYRO_COMPRESSED_TYPE0)
    assert a != PmdFrame(GYRO, 1, 0, True, a.samples)
    assert a != PmdFrame(GYRO, a.timestamp_ns, 1, True, a.samples)
    assert a != PmdFrame(GYRO, a.timestamp_ns, 0, True, a.samples + 1)
    assert a != "frame"
    with pytest.raises(TypeError):
        hash(a)


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        ("", "truncated: header needs 10 bytes"),
        ("02 00000000", "truncated: header needs 10 bytes"),
        ("42 0000000000000000 01 000000000000", "reserved bits 6-7 set in measurement type 0x42"),
        ("3F 0000000000000000 01 000000000000", "measurement type unknown (63) at offset 0"),
        ("06 0000000000000000 80 000000000000", "measurement type MAGNETOMETER (6)"),
        ("05 0000000000000000 00 000000000000", "frame type 0x00 at offset 9 is not defined"),
        ("02 0000000000000000 82 000000000000", "frame type 0x82 at offset 9 is not defined"),
        ("02 0000000000000000 01", "no samples after the header"),
        ("02 0000000000000000 01 010002000300 00", "1 trailing byte at offset 16"),
        ("02 0000000000000000 02 00000000", "4 trailing bytes at offset 10"),
        ("02 0000000000000000 80 0100 0200", "truncated: reference sample at offset 10 needs 6"),
        (
            "05 0000000000000000 81 00000000 00000000",
            "truncated: reference sample at offset 10 needs 12",
        ),
        ("02 0000000000000000 80 000000000000 08", "truncated: block 1 at offset 16 needs 2"),
        ("02 0000000000000000 80 000000000000 00 01", "block 1: delta bit width 0 at offset 16"),
        ("02 0000000000000000 80 000000000000 21 01", "block 1: delta bit width 33"),
        ("02 0000000000000000 80 000000000000 08 02 0102030405", "truncated: block 1 at offset"),
        # 0x7FFF + 1 overflows i16.
        ("02 0000000000000000 80 FF7F00000000 02 01 01", "sample 1 channel 0 = 32768 outside"),
        # 0x7F800000 is +inf.
        (
            "05 0000000000000000 81 0000807F 00000000 00000000",
            "a reconstructed float sample is not finite",
        ),
    ],
)
def test_data_decode_errors(payload_hex: str, reason: str) -> None:
    payload = hx(payload_hex)
    with pytest.raises(DecodeError) as info:
        decode_pmd_data(payload)
    assert info.value.what == "Polar PMD data"
    assert info.value.reason.startswith(reason), info.value.reason
    assert info.value.payload == payload


def test_empty_blocks_are_well_formed() -> None:
    # A block of 0 samples carries no bits; Polar's parser skips it, so do we.
    frame = decode_pmd_data(hx("02 0000000000000000 80 010002000300 05 00 01 01 07"))
    np.testing.assert_array_equal(raw(frame, 1.0), [[1, 2, 3], [0, 1, 2]])


@pytest.mark.parametrize("factor", [0.0, -1.0, math.nan, math.inf])
def test_factors_must_be_positive_and_finite(factor: float) -> None:
    with pytest.raises(ValueError, match="acc_factor"):
        decode_pmd_data(ACC_RAW_TYPE1, acc_factor=factor)
    with pytest.raises(ValueError, match="gyro_factor"):
        pmd_data_decoder(gyro_factor=factor)
    frame = decode_pmd_data(ACC_RAW_TYPE1)
    with pytest.raises(ValueError, match="acc_factor"):
        encode_pmd_data(frame, acc_factor=factor)


def test_bound_decoder_and_registry() -> None:
    decode = pmd_data_decoder(acc_factor=ACC_TYPE0_FACTOR)
    assert decode(ACC_COMPRESSED_TYPE0) == decode_pmd_data(
        ACC_COMPRESSED_TYPE0, acc_factor=ACC_TYPE0_FACTOR
    )
    assert decoder_for(uuids.PMD_DATA) is decode_pmd_data
    assert decoder_for(uuids.PMD_DATA.upper()) is decode_pmd_data


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (PmdFrame(GYRO, 0, 0, False, np.zeros((1, 3))), {}, "no wire layout"),
        (PmdFrame(ACC, 0, 3, False, np.zeros((1, 3))), {}, "no wire layout"),
        (PmdFrame(PmdMeasurementType.ECG, 0, 0, False, np.zeros((1, 3))), {}, "no wire layout"),
        (PmdFrame(ACC, 0, 1, False, np.zeros((0, 3))), {}, "at least one sample"),
        (PmdFrame(ACC, -1, 1, False, np.zeros((1, 3))), {}, "timestamp_ns=-1"),
        (PmdFrame(ACC, 2**64, 1, False, np.zeros((1, 3))), {}, "timestamp_ns="),
        (PmdFrame(ACC, 0, 1, False, np.full((1, 3), 32.768)), {}, "samples out of range"),
        (PmdFrame(ACC, 0, 0, False, np.full((1, 3), -0.13)), {}, "samples out of range"),
        (PmdFrame(ACC, 0, 1, False, np.full((1, 3), math.nan)), {}, "must be finite"),
        (PmdFrame(GYRO, 0, 1, True, np.full((1, 3), 1e39)), {}, "overflow float32"),
        (PmdFrame(GYRO, 0, 0, True, np.zeros((2, 3))), {"delta_bits": 0}, "delta_bits=0"),
        (PmdFrame(GYRO, 0, 0, True, np.zeros((2, 3))), {"max_block_samples": 256}, "max_block"),
        (
            PmdFrame(GYRO, 0, 0, True, np.array([[0.0, 0, 0], [4.0, 0, 0]])),
            {"delta_bits": 3},
            "delta_bits=3 too small: deltas from sample 1 need 4",
        ),
    ],
)
def test_data_encoder_rejects(frame: PmdFrame, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_pmd_data(frame, **kwargs)


def test_encoder_splits_blocks_and_picks_width_per_block() -> None:
    quiet = np.zeros((5, 3))
    loud = np.cumsum(np.full((4, 3), 100.0), axis=0)
    frame = PmdFrame(GYRO, 5, 0, True, np.vstack((quiet, loud)))
    payload = encode_pmd_data(frame, max_block_samples=4)
    assert decode_pmd_data(payload) == frame
    body = payload[10 + 6 :]
    assert body[:2] == bytes((1, 4))  # deltas 0: 1 bit, 12 bits in 2 bytes
    assert body[4:6] == bytes((8, 4))  # deltas 100: 8 bits


def test_large_frame_decodes_vectorised() -> None:
    rng = np.random.default_rng(7)
    raw_values = np.cumsum(rng.integers(-300, 300, size=(5000, 3)), axis=0).clip(-30000, 30000)
    frame = PmdFrame(GYRO, 1, 0, True, raw_values.astype(np.float64))
    payload = encode_pmd_data(frame)
    assert decode_pmd_data(payload) == frame


# --- data: reference parser (a transliteration of Polar's per-bit loop) ------------------------


def polar_parse_delta_frames(content: bytes, ref_bytes: int) -> list[list[int]]:
    """BlePMDClient.parseDeltaFramesAll/parseDeltaFrame, bit by bit, as Polar wrote them.

    …/pmd/BlePMDClient.kt @ 01d7dd08b784703e029b8e52c32ffa9a8d89036a (main sources).
    """
    samples = [
        [int.from_bytes(content[i : i + ref_bytes], "little", signed=True) for i in (0, 2, 4)]
        if ref_bytes == 2
        else [int.from_bytes(content[i : i + 4], "little") for i in (0, 4, 8)]
    ]
    offset = 3 * ref_bytes
    while offset < len(content):
        width, count = content[offset], content[offset + 1]
        offset += 2
        length = math.ceil(width * count * 3 / 8)
        bits = [bool(b >> i & 1) for b in content[offset : offset + length] for i in range(8)]
        pos = 0
        while pos < width * count * 3:
            delta = []
            for _ in range(3):
                value = sum(1 << i for i, bit in enumerate(bits[pos : pos + width]) if bit)
                if value >> (width - 1):
                    value -= 1 << width
                delta.append(value)
                pos += width
            samples.append([a + b for a, b in zip(samples[-1], delta, strict=True)])
        offset += length
    return samples


def test_reference_parser_agrees_on_polar_vectors() -> None:
    body = ACC_COMPRESSED_TYPE0[10:]
    frame = decode_pmd_data(ACC_COMPRESSED_TYPE0)
    assert raw(frame, 1.0).tolist() == polar_parse_delta_frames(body, 2)


@st.composite
def compressed_bodies(draw: st.DrawFn) -> bytes:
    """Compressed i16 bodies of random blocks whose sums stay within i16."""
    ref = draw(hnp.arrays(np.dtype("<i2"), 3, elements=st.integers(-1000, 1000)))
    body = bytearray(ref.tobytes())
    for _ in range(draw(st.integers(0, 4))):
        width = draw(st.integers(1, 10))
        count = draw(st.integers(0, 12))
        body += bytes((width, count))
        body += draw(
            st.binary(min_size=(width * count * 3 + 7) // 8, max_size=(width * count * 3 + 7) // 8)
        )
    return bytes(body)


@FAST
@given(compressed_bodies())
def test_vectorised_unpacking_matches_polars_loop(body: bytes) -> None:
    frame = decode_pmd_data(hx("05 0000000000000000 80") + body)
    assert raw(frame, 1.0).tolist() == polar_parse_delta_frames(body, 2)


# --- data: properties --------------------------------------------------------------------------

_ACC_RAW_DTYPES = {0: "i1", 1: "<i2"}


@st.composite
def uncompressed_payloads(draw: st.DrawFn) -> bytes:
    frame_type = draw(st.sampled_from([0, 1, 2]))
    n = draw(st.integers(1, 60))
    header = struct.pack("<BQB", ACC, draw(st.integers(0, 2**64 - 1)), frame_type)
    if frame_type == 2:
        return header + draw(st.binary(min_size=9 * n, max_size=9 * n))
    return header + draw(hnp.arrays(np.dtype(_ACC_RAW_DTYPES[frame_type]), (n, 3))).tobytes()


@FAST
@given(uncompressed_payloads())
def test_uncompressed_round_trip_byte_exact(payload: bytes) -> None:
    assert encode_pmd_data(decode_pmd_data(payload)) == payload


@FAST
@given(uncompressed_payloads())
def test_every_truncation_raises(payload: bytes) -> None:
    frame_type = payload[9]
    record = 3 * (frame_type + 1)
    for length in range(len(payload)):
        if length > 10 and (length - 10) % record == 0:
            continue  # a whole number of samples: a shorter, valid frame
        with pytest.raises(DecodeError):
            decode_pmd_data(payload[:length])


@st.composite
def compressed_frames(draw: st.DrawFn) -> tuple[PmdFrame, float]:
    """Frames of every compressed layout, from raw wire values; returns (frame, factor)."""
    measurement_type = draw(st.sampled_from([ACC, GYRO]))
    frame_type = draw(st.sampled_from([0, 1]))
    n = draw(st.integers(1, 300))
    factor = draw(st.sampled_from([1.0, 0.5, ACC_TYPE0_FACTOR, 1 / 16]))
    if measurement_type == GYRO and frame_type == 1:
        values = draw(
            hnp.arrays(
                np.float32,
                (n, 3),
                elements=st.floats(-2000, 2000, width=32, allow_subnormal=False),
            )
        )
        samples = values.astype(np.float64) * factor
    else:
        steps = draw(hnp.arrays(np.int64, (n, 3), elements=st.integers(-5000, 5000)))
        raw_values = np.cumsum(steps, axis=0).clip(-32768, 32767)
        per_unit = 1000.0 if (measurement_type == ACC and frame_type == 1) else 1.0
        samples = raw_values * factor / per_unit
    frame = PmdFrame(measurement_type, draw(st.integers(0, 2**64 - 1)), frame_type, True, samples)
    return frame, factor


@FAST
@given(compressed_frames(), st.integers(1, 255))
def test_compressed_round_trip(case: tuple[PmdFrame, float], max_block_samples: int) -> None:
    frame, factor = case
    decode = pmd_data_decoder(acc_factor=factor, gyro_factor=factor)
    payload = encode_pmd_data(
        frame, acc_factor=factor, gyro_factor=factor, max_block_samples=max_block_samples
    )
    decoded = decode(payload)
    assert decoded.timestamp_ns == frame.timestamp_ns
    np.testing.assert_allclose(decoded.samples, frame.samples, rtol=1e-12, atol=0)
    again = encode_pmd_data(
        decoded, acc_factor=factor, gyro_factor=factor, max_block_samples=max_block_samples
    )
    assert again == payload
    for length in (len(payload) - 1, 10 + 5, 9):
        with pytest.raises(DecodeError):
            decode(payload[:length])


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_pmd_data(payload)


@FAST
@given(
    st.sampled_from([0, 1, 2, 3, 5, 6, 0x42]),
    st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82]),
    st.binary(max_size=300),
)
def test_header_driven_fuzz(type_byte: int, frame_byte: int, rest: bytes) -> None:
    try:
        frame = decode_pmd_data(struct.pack("<BQB", type_byte, 7, frame_byte) + rest)
    except DecodeError:
        return
    assert frame.samples.shape[1] == 3
    assert frame.n_samples >= 1
    assert np.isfinite(frame.samples).all()


# --- control point: requests -------------------------------------------------------------------


def test_start_request_h10_acc() -> None:
    # The H10 ACC start every PMD client sends: 200 Hz, 16 bits, 8 g (PmdSetting.serializeSelected
    # writes type, count 1, little-endian value).
    payload = pmd_start_request(ACC, sample_rate_hz=200, resolution_bits=16, range_=8)
    assert payload == hx("02 02 0001C800 01011000 02010800")
    request = decode_pmd_request(payload)
    assert request == PmdRequest(
        PmdOpCode.REQUEST_MEASUREMENT_START,
        ACC,
        PmdSettings(sample_rate_hz=(200,), resolution_bits=(16,), range=(8,)),
    )
    assert encode_pmd_request(request) == payload


def test_other_requests() -> None:
    assert pmd_get_settings_request(ACC) == hx("01 02")
    assert pmd_stop_request(GYRO) == hx("03 05")
    assert decode_pmd_request(hx("03 05")) == PmdRequest(PmdOpCode.STOP_MEASUREMENT, GYRO)
    gyro = pmd_start_request(GYRO, sample_rate_hz=52, resolution_bits=16, range_=2000, channels=3)
    assert gyro == hx("02 05 00013400 01011000 0201D007 040103")


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        ("01", "truncated: need 2 bytes"),
        ("0A 02", "unknown op code 0x0a at offset 0"),
        ("05 02", "op code 0x05 (GET_MEASUREMENT_STATUS) at offset 0 is not one runmon speaks"),
        ("02 82", "measurement type byte 0x82 at offset 1 has bits 6-7 set"),
        ("03 02 00", "1 trailing byte at offset 2"),
        ("02 02 0002C8006400", "a start request selects one SAMPLE_RATE"),
        ("02 02 0501 0000803F", "a start request cannot choose FACTOR"),
        ("02 02 0001C800 09", "truncated: setting at offset 6 needs 2 bytes"),
        ("02 02 0701 00", "unknown setting type 7 at offset 2"),
    ],
)
def test_request_decode_errors(payload_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_pmd_request(hx(payload_hex))
    assert info.value.what == "Polar PMD request"
    assert info.value.reason.startswith(reason), info.value.reason


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (PmdRequest(PmdOpCode.GET_MEASUREMENT_STATUS, ACC), "not a request runmon sends"),
        (PmdRequest(PmdOpCode.STOP_MEASUREMENT, 64), "measurement_type=64"),
        (PmdRequest(PmdOpCode.STOP_MEASUREMENT, ACC, PmdSettings(channels=(3,))), "no settings"),
        (
            PmdRequest(PmdOpCode.REQUEST_MEASUREMENT_START, ACC, PmdSettings(factor=(1.0,))),
            "FACTOR is chosen by the sensor",
        ),
        (
            PmdRequest(PmdOpCode.REQUEST_MEASUREMENT_START, ACC, PmdSettings(range=(2, 4))),
            "selects one RANGE",
        ),
        (
            PmdRequest(PmdOpCode.REQUEST_MEASUREMENT_START, ACC, PmdSettings(channels=(256,))),
            "channels=256",
        ),
    ],
)
def test_request_encoder_rejects(request_: PmdRequest, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_pmd_request(request_)


def _one(values: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[int, ...]]:
    return st.one_of(st.just(()), st.tuples(values))


@FAST
@given(
    st.sampled_from([1, 2, 3]),
    st.integers(0, 63),
    _one(st.integers(0, 0xFFFF)),
    _one(st.integers(0, 0xFFFF)),
    _one(st.integers(0, 0xFFFF)),
    _one(st.integers(0, 0xFFFF_FFFF)),
    _one(st.integers(0, 0xFF)),
)
def test_request_round_trip(
    op: int,
    measurement_type: int,
    rate: tuple[int, ...],
    resolution: tuple[int, ...],
    range_: tuple[int, ...],
    range_milliunit: tuple[int, ...],
    channels: tuple[int, ...],
) -> None:
    op_code = PmdOpCode(op)
    chosen = PmdSettings(rate, resolution, range_, range_milliunit, channels)
    if op_code is not PmdOpCode.REQUEST_MEASUREMENT_START:
        chosen = PmdSettings()
    request = PmdRequest(op_code, measurement_type, chosen)
    payload = encode_pmd_request(request)
    assert decode_pmd_request(payload) == request
    for length in range(2, len(payload)):
        with contextlib.suppress(DecodeError):
            assert decode_pmd_request(payload[:length]) != request


@FAST
@given(st.binary(max_size=40))
def test_request_any_bytes_decode_or_raise(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_pmd_request(payload)


# --- control point: settings, responses, features, stop notices --------------------------------


def test_polar_settings_with_range() -> None:
    # …/pmd/PmdSettingTest.kt @ f83e7bad67ecc691a96dcb5eacf8f72bc40801be, testPmdSettingsWithRange.
    payload = hx("00 01 3400 01 01 1000 02 04 F500 F401 E803 D007 04 01 03")
    assert decode_pmd_settings(payload) == PmdSettings(
        sample_rate_hz=(52,),
        resolution_bits=(16,),
        range=(245, 500, 1000, 2000),
        channels=(3,),
    )
    assert encode_pmd_settings(decode_pmd_settings(payload)) == payload


def test_polar_settings_with_range_milliunit() -> None:
    # Same file, testPmdSettingWithRangeMilliUnit (the SDK reads 0xFFFFFFFF as -1: a Kotlin Int;
    # a range is never negative, so runmon reads u32).
    settings_ = decode_pmd_settings(hx("03 02 FFFFFFFF FF000000 01 01 0E00"))
    assert settings_ == PmdSettings(resolution_bits=(14,), range_milliunit=(0xFFFF_FFFF, 0xFF))


def test_polar_selected_serialisation() -> None:
    # Same file, testPmdSelectedSerialization: FACTOR is never serialised by the client.
    selected = PmdSettings((0x7FFF,), (0,), (15,), (2**31 - 1,), (4,))
    request = PmdRequest(PmdOpCode.REQUEST_MEASUREMENT_START, ACC, selected)
    assert decode_pmd_request(encode_pmd_request(request)).settings == selected


def test_start_response_factor() -> None:
    # A start response (Verity Sense style) whose parameters carry FACTOR as float32.
    response = decode_pmd_control_point_response(hx("F0 02 02 00 00 05 01 40DA7F39"))
    assert response.ok
    assert response.op_code == PmdOpCode.REQUEST_MEASUREMENT_START
    (factor,) = response.settings().factor
    assert factor == float(np.float32(2.44e-4))


@pytest.mark.parametrize("payload_hex", ["", "00"])
def test_settings_one_byte_or_less_is_empty(payload_hex: str) -> None:
    # PmdSetting.parsePmdSettingsData: "if (data.size <= 1) return parsedSettings".
    assert decode_pmd_settings(hx(payload_hex)) == PmdSettings()


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        ("00 02 3400", "truncated: setting SAMPLE_RATE at offset 0 declares 2 values of 2 bytes"),
        ("06 01 00", "unknown setting type 6 at offset 0"),
        ("04 01 03 04 01 03", "setting CHANNELS at offset 3 appears twice"),
        ("05 01 0000807F", "non-finite FACTOR at offset 2"),
        ("04 01 03 05", "truncated: setting at offset 3 needs 2 bytes"),
    ],
)
def test_settings_decode_errors(payload_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_pmd_settings(hx(payload_hex))
    assert info.value.reason.startswith(reason), info.value.reason


def test_settings_encoder_rejects() -> None:
    with pytest.raises(ValueError, match="factor=inf"):
        encode_pmd_settings(PmdSettings(factor=(math.inf,)))
    with pytest.raises(ValueError, match="sample_rate=65536"):
        encode_pmd_settings(PmdSettings(sample_rate_hz=(65536,)))
    with pytest.raises(ValueError, match="number of RANGE values=256"):
        encode_pmd_settings(PmdSettings(range=tuple(range(256))))


@FAST
@given(
    st.builds(
        PmdSettings,
        sample_rate_hz=st.lists(st.integers(0, 0xFFFF), max_size=5).map(tuple),
        resolution_bits=st.lists(st.integers(0, 0xFFFF), max_size=3).map(tuple),
        range=st.lists(st.integers(0, 0xFFFF), max_size=5).map(tuple),
        range_milliunit=st.lists(st.integers(0, 0xFFFF_FFFF), max_size=3).map(tuple),
        channels=st.lists(st.integers(0, 0xFF), max_size=2).map(tuple),
        factor=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=2).map(
            tuple
        ),
    )
)
def test_settings_round_trip(settings_: PmdSettings) -> None:
    assert decode_pmd_settings(encode_pmd_settings(settings_)) == settings_


@FAST
@given(st.binary(max_size=60))
def test_settings_any_bytes_decode_or_raise(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_pmd_settings(payload)


def test_polar_control_point_responses() -> None:
    # …/pmd/BlePmdClientControlPointResponseTest.kt @ 2692dc448e7cc8bdaac65d7f6ac4f48c1aef748f.
    ok = decode_pmd_control_point_response(hx("F0 01 02 00 00 FF FF FF"))
    assert ok == PmdControlPointResponse(
        PmdOpCode.GET_MEASUREMENT_SETTINGS, ACC, PmdStatus.SUCCESS, False, hx("FFFFFF")
    )
    failed = decode_pmd_control_point_response(hx("F0 01 06 07 00"))
    assert failed.measurement_type == PmdMeasurementType.MAGNETOMETER
    assert failed.status is PmdStatus.INVALID_RESOLUTION
    assert not failed.ok
    assert not failed.more
    assert failed.parameters == b""
    assert encode_pmd_control_point_response(ok) == hx("F0 01 02 00 00 FF FF FF")


def test_response_details() -> None:
    # Four bytes are enough (no "more" byte); ALREADY_IN_STATE is what a second start gets.
    already = decode_pmd_control_point_response(hx("F0 02 02 06"))
    assert already.status is PmdStatus.ALREADY_IN_STATE
    assert not already.more
    more = decode_pmd_control_point_response(hx("F0 01 02 00 01 00 01 3400"))
    assert more.more
    assert more.settings() == PmdSettings(sample_rate_hz=(52,))


@pytest.mark.parametrize(
    ("payload_hex", "reason"),
    [
        ("F0 01 02", "truncated response: need 4 bytes"),
        ("F1 01 02 00 00", "response code 0xf1 at offset 0"),
        ("F0 01 02 0F 00", "unknown error code 15 at offset 3"),
    ],
)
def test_response_decode_errors(payload_hex: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_pmd_control_point_response(hx(payload_hex))
    assert info.value.what == "Polar PMD control point"
    assert info.value.reason.startswith(reason)


@FAST
@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.sampled_from(list(PmdStatus)),
    st.booleans(),
    st.binary(max_size=30),
)
def test_response_round_trip(
    op: int, measurement_type: int, status: PmdStatus, more: bool, parameters: bytes
) -> None:
    response = PmdControlPointResponse(op, measurement_type, status, more, parameters)
    payload = encode_pmd_control_point_response(response)
    assert decode_pmd_control_point_response(payload) == response
    assert decode_pmd_control_point(payload) == response


def test_features() -> None:
    # PmdMeasurementType.fromByteArray: bit i of the little-endian mask = type i. An H10 offers
    # ECG and ACC: 0x05.
    features = decode_pmd_features(hx("0F 05 00"))
    assert features.measurement_types == {PmdMeasurementType.ECG, ACC}
    # Byte 2 bit 1 is SDK mode (9); unknown bits (4, 8) are kept in the mask, not named.
    features = decode_pmd_features(hx("0F 35 03"))
    assert features.measurement_types == {PmdMeasurementType.ECG, ACC, GYRO, 9}
    assert features.mask == 0x0335
    assert encode_pmd_features(features) == hx("0F 35 03")
    assert encode_pmd_features(PmdFeatures.of(frozenset({GYRO}))) == hx("0F 20 00")
    with pytest.raises(DecodeError, match="truncated features"):
        decode_pmd_features(hx("0F"))
    with pytest.raises(DecodeError, match="features code 0x0e"):
        decode_pmd_features(hx("0E 05"))
    with pytest.raises(ValueError, match="mask=-1"):
        encode_pmd_features(PmdFeatures(-1))


def test_measurement_stopped_and_dispatch() -> None:
    # …/pmd/BlePmdClientTest.kt: "process measurement stop control point command": 01 01 02.
    stopped = decode_pmd_control_point(hx("01 01 02"))
    assert stopped == PmdMeasurementStopped((PmdMeasurementType.PPG, ACC))
    assert encode_pmd_measurement_stopped(stopped) == hx("01 01 02")
    assert decode_pmd_control_point(hx("01")) == PmdMeasurementStopped(())
    assert isinstance(decode_pmd_control_point(hx("0F 05 00")), PmdFeatures)
    with pytest.raises(DecodeError, match="empty"):
        decode_pmd_control_point(b"")
    with pytest.raises(DecodeError, match="unknown first byte 0x02"):
        decode_pmd_control_point(hx("02 02"))


@FAST
@given(st.binary(max_size=60))
def test_control_point_any_bytes_decode_or_raise(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_pmd_control_point(payload)
