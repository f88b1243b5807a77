"""Battery service 0x180F: Battery Level 0x2A19, a u8 percentage 0-100."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from sensors.errors import DecodeError
from sensors.gatt import _wire

BATTERY_LEVEL_WHAT: Final = "Battery Level"
MAX_LEVEL_PCT: Final = 100

_U8: Final = struct.Struct("<B")


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    level_pct: int


def decode_battery_level(payload: bytes) -> BatteryLevel:
    if len(payload) != _U8.size:
        raise _wire.length_error(BATTERY_LEVEL_WHAT, payload, _U8.size, "the level is a u8")
    (level_pct,) = _U8.unpack_from(payload)
    if level_pct > MAX_LEVEL_PCT:
        raise DecodeError(
            BATTERY_LEVEL_WHAT, f"level {level_pct} % at offset 0 above {MAX_LEVEL_PCT} %", payload
        )
    return BatteryLevel(level_pct=level_pct)


def encode_battery_level(level: BatteryLevel) -> bytes:
    return _U8.pack(_wire.check_int("level_pct", level.level_pct, 0, MAX_LEVEL_PCT))
