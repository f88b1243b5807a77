"""Heart Rate Measurement 0x2A37: every flag combination, round trips, fuzzing."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.errors import DecodeError
from sensors.gatt.heart_rate import (
    Contact,
    HeartRateMeasurement,
    decode_heart_rate_measurement,
    encode_heart_rate_measurement,
)

FAST = settings(max_examples=300, deadline=None)

# --- hand-written vectors ----------------------------------------------------------------------


def test_u16_energy_and_two_rr_intervals_vector() -> None:
    payload = bytes.fromhex(
        "1f"  # flags: u16 HR, contact supported + detected, energy, RR intervals
        "9600"  # 150 bpm
        "2301"  # 291 kJ
        "0003"  # RR 768/1024 = 0.75 s
        "3303"  # RR 819/1024 s
    )
    assert decode_heart_rate_measurement(payload) == HeartRateMeasurement(
        heart_rate_bpm=150,
        contact="contact",
        energy_kj=291,
        rr_intervals_s=(0.75, 819 / 1024),
    )


def test_simplest_vector() -> None:
    assert decode_heart_rate_measurement(bytes.fromhex("0048")) == HeartRateMeasurement(
        72, "unsupported", None, ()
    )


_CONTACT_BY_BITS: dict[int, Contact] = {
    0: "unsupported",
    1: "unsupported",  # bit 1 without the "supported" bit 2 still means not supported
    2: "no_contact",
    3: "contact",
}


@pytest.mark.parametrize("flags", range(32))
def test_every_flag_combination(flags: int) -> None:
    # Built field by field from the specification, independent of the encoder.
    payload = bytes((flags,))
    payload += struct.pack("<H", 163) if flags & 0x01 else struct.pack("<B", 163)
    if flags & 0x08:
        payload += struct.pack("<H", 4321)
    if flags & 0x10:
        payload += struct.pack("<3H", 512, 1024, 65535)
    m = decode_heart_rate_measurement(payload)
    assert m.heart_rate_bpm == 163
    assert m.contact == _CONTACT_BY_BITS[(flags >> 1) & 0b11]
    assert m.energy_kj == (4321 if flags & 0x08 else None)
    assert m.rr_intervals_s == ((0.5, 1.0, 65535 / 1024) if flags & 0x10 else ())


@pytest.mark.parametrize("reserved", [0x20, 0x40, 0x80, 0xE0])
def test_reserved_flag_bits_are_ignored(reserved: int) -> None:
    assert decode_heart_rate_measurement(bytes((reserved, 72))) == HeartRateMeasurement(
        72, "unsupported", None, ()
    )


def test_zero_heart_rate_is_allowed() -> None:
    assert decode_heart_rate_measurement(bytes.fromhex("0400")).heart_rate_bpm == 0


def test_absurd_heart_rate() -> None:
    assert decode_heart_rate_measurement(bytes.fromhex("00fa")).heart_rate_bpm == 250
    with pytest.raises(DecodeError, match="absurd heart rate 251 bpm at offset 1"):
        decode_heart_rate_measurement(bytes.fromhex("00fb"))
    with pytest.raises(DecodeError, match="absurd heart rate 1000 bpm"):
        decode_heart_rate_measurement(bytes.fromhex("01e803"))


def test_odd_rr_byte() -> None:
    with pytest.raises(DecodeError) as info:
        decode_heart_rate_measurement(bytes.fromhex("10 48 0003 33"))
    assert info.value.reason == (
        "odd RR-interval area: 3 bytes from offset 2, RR intervals are u16 (2 bytes each)"
    )


def test_trailing_bytes_without_rr_flag() -> None:
    with pytest.raises(DecodeError) as info:
        decode_heart_rate_measurement(bytes.fromhex("08 48 2301 0003"))
    assert info.value.reason == (
        "2 trailing bytes at offset 4: flags 0x08 declare a u8 heart rate and energy expended "
        "and no RR intervals, which take 4 bytes"
    )


def test_truncated_fixed_fields() -> None:
    with pytest.raises(DecodeError) as info:
        decode_heart_rate_measurement(bytes.fromhex("09 9600"))
    assert info.value.reason == (
        "truncated: flags 0x09 declare a u16 heart rate and energy expended, need 5 bytes, got 3"
    )


def test_rr_flag_without_rr_intervals_decodes_to_empty() -> None:
    assert decode_heart_rate_measurement(bytes.fromhex("1048")).rr_intervals_s == ()


def test_empty_payload() -> None:
    with pytest.raises(DecodeError, match="empty"):
        decode_heart_rate_measurement(b"")


# --- encoder -----------------------------------------------------------------------------------


def test_encoder_vector_and_u16_option() -> None:
    m = HeartRateMeasurement(150, "contact", 291, (0.75, 819 / 1024))
    assert encode_heart_rate_measurement(m, hr_u16=True) == bytes.fromhex("1f96002301 00033303")
    assert encode_heart_rate_measurement(m) == bytes.fromhex("1e962301 00033303")


def test_encoder_contact_bits() -> None:
    assert encode_heart_rate_measurement(HeartRateMeasurement(60, "unsupported", None, ()))[0] == 0
    assert encode_heart_rate_measurement(HeartRateMeasurement(60, "no_contact", None, ()))[0] == 4
    assert encode_heart_rate_measurement(HeartRateMeasurement(60, "contact", None, ()))[0] == 6


@pytest.mark.parametrize(
    ("measurement", "message"),
    [
        (HeartRateMeasurement(251, "contact", None, ()), "heart_rate_bpm=251"),
        (HeartRateMeasurement(-1, "contact", None, ()), "heart_rate_bpm=-1"),
        (HeartRateMeasurement(60, "contact", 65536, ()), "energy_kj=65536"),
        (HeartRateMeasurement(60, "contact", None, (64.0,)), "rr_intervals_s"),
        (HeartRateMeasurement(60, "contact", None, (-0.1,)), "rr_intervals_s"),
        (HeartRateMeasurement(60, "contact", None, (math.nan,)), "rr_intervals_s must be finite"),
        (HeartRateMeasurement(60, "sweaty", None, ()), "contact='sweaty'"),  # type: ignore[arg-type]  # deliberately invalid
    ],
)
def test_encoder_rejects_out_of_range(measurement: HeartRateMeasurement, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_heart_rate_measurement(measurement)


# --- properties --------------------------------------------------------------------------------

measurements = st.builds(
    HeartRateMeasurement,
    heart_rate_bpm=st.integers(0, 250),
    contact=st.sampled_from(["unsupported", "no_contact", "contact"]),
    energy_kj=st.none() | st.integers(0, 0xFFFF),
    rr_intervals_s=st.lists(st.floats(0.0, 65535 / 1024), max_size=20).map(tuple),
)


@FAST
@given(measurements, st.booleans())
def test_round_trip_within_wire_resolution(m: HeartRateMeasurement, hr_u16: bool) -> None:
    decoded = decode_heart_rate_measurement(encode_heart_rate_measurement(m, hr_u16=hr_u16))
    assert decoded.heart_rate_bpm == m.heart_rate_bpm
    assert decoded.contact == m.contact
    assert decoded.energy_kj == m.energy_kj
    assert len(decoded.rr_intervals_s) == len(m.rr_intervals_s)
    for got, sent in zip(decoded.rr_intervals_s, m.rr_intervals_s, strict=True):
        assert abs(got - sent) <= 0.5 / 1024 + 1e-12
    assert decode_heart_rate_measurement(encode_heart_rate_measurement(decoded)) == decoded


@FAST
@given(measurements, st.booleans())
def test_truncation(m: HeartRateMeasurement, hr_u16: bool) -> None:
    """Cuts into the fixed fields or mid-RR raise; a cut between RR intervals cannot be seen.

    "As many RR intervals as fit" makes a payload cut at an RR boundary a valid, shorter
    measurement: that is the specification, not a decoder weakness.
    """
    payload = encode_heart_rate_measurement(m, hr_u16=hr_u16)
    fixed_len = len(payload) - 2 * len(m.rr_intervals_s)
    full = decode_heart_rate_measurement(payload)
    for length in range(len(payload)):
        cut = payload[:length]
        if length < fixed_len or (length - fixed_len) % 2:
            with pytest.raises(DecodeError):
                decode_heart_rate_measurement(cut)
        else:
            shorter = decode_heart_rate_measurement(cut)
            kept = (length - fixed_len) // 2
            assert shorter.rr_intervals_s == full.rr_intervals_s[:kept]
            assert shorter.heart_rate_bpm == full.heart_rate_bpm


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_heart_rate_measurement(payload)


@FAST
@given(st.integers(0, 255), st.binary(min_size=1, max_size=40))
def test_flag_driven_fuzz(flags: int, rest: bytes) -> None:
    try:
        m = decode_heart_rate_measurement(bytes((flags,)) + rest)
    except DecodeError:
        return
    assert 0 <= m.heart_rate_bpm <= 250
    assert (m.energy_kj is not None) == bool(flags & 0x08)
    assert not m.rr_intervals_s or flags & 0x10
