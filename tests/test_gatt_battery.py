"""Battery Level 0x2A19."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.errors import DecodeError
from sensors.gatt.battery import BatteryLevel, decode_battery_level, encode_battery_level

FAST = settings(max_examples=300, deadline=None)


@pytest.mark.parametrize(("payload", "level_pct"), [(b"\x00", 0), (b"\x57", 87), (b"\x64", 100)])
def test_vectors(payload: bytes, level_pct: int) -> None:
    assert decode_battery_level(payload) == BatteryLevel(level_pct)
    assert encode_battery_level(BatteryLevel(level_pct)) == payload


def test_above_100_percent() -> None:
    with pytest.raises(DecodeError, match="level 101 % at offset 0 above 100 %"):
        decode_battery_level(b"\x65")


@pytest.mark.parametrize("payload", [b"", b"\x64\x00"])
def test_length_must_be_one(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="Battery Level"):
        decode_battery_level(payload)


@pytest.mark.parametrize("level_pct", [-1, 101])
def test_encoder_rejects_out_of_range(level_pct: int) -> None:
    with pytest.raises(ValueError, match="level_pct"):
        encode_battery_level(BatteryLevel(level_pct))


@pytest.mark.parametrize("level_pct", range(101))
def test_round_trip(level_pct: int) -> None:
    assert decode_battery_level(encode_battery_level(BatteryLevel(level_pct))).level_pct == (
        level_pct
    )


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_battery_level(payload)
