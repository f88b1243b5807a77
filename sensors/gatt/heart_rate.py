"""Heart Rate service 0x180D: Heart Rate Measurement 0x2A37.

Layout per the Bluetooth SIG GATT Specification Supplement, little-endian::

    flags u8 | heart rate u8 (flags bit 0 clear) or u16 (bit 0 set), bpm
             | energy expended u16 kJ, if flags bit 3
             | RR intervals u16 each in 1/1024 s, if flags bit 4: as many as fit, oldest first

    flags bits 1-2 (sensor contact): 0 or 1 not supported, 2 supported but no contact,
    3 supported and contact; bits 5-7 reserved.

Decoder policy: reserved flag bits are ignored, as the specification asks of receivers. Bytes
after the fixed fields are only legal as RR intervals: without the RR flag they are trailing bytes,
and an odd byte in the RR area is a :class:`DecodeError`. An RR flag with no RR interval behind it
decodes to an empty tuple: the flag promises "one or more", but the heart rate is unambiguous and
worth keeping. A heart rate of 0 is allowed (straps send it without skin contact); above 250 bpm is
absurd and rejected.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Literal

from sensors.errors import DecodeError
from sensors.gatt import _wire

HEART_RATE_WHAT: Final = "Heart Rate Measurement"

FLAG_HR_U16: Final = 0x01
FLAG_CONTACT_MASK: Final = 0x06
FLAG_ENERGY: Final = 0x08
FLAG_RR: Final = 0x10

RR_LSB_PER_S: Final = 1024
MAX_HEART_RATE_BPM: Final = 250

Contact = Literal["unsupported", "no_contact", "contact"]
_CONTACT_BY_BITS: Final[dict[int, Contact]] = {
    0b00: "unsupported",
    0b01: "unsupported",
    0b10: "no_contact",
    0b11: "contact",
}
_BITS_BY_CONTACT: Final[dict[Contact, int]] = {
    "unsupported": 0b00,
    "no_contact": 0b10,
    "contact": 0b11,
}

_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement; ``energy_kj`` is ``None`` when not sent."""

    heart_rate_bpm: int
    contact: Contact
    energy_kj: int | None
    rr_intervals_s: tuple[float, ...]


def _layout(flags: int) -> str:
    fields = ["a u16 heart rate" if flags & FLAG_HR_U16 else "a u8 heart rate"]
    if flags & FLAG_ENERGY:
        fields.append("energy expended")
    return f"flags 0x{flags:02x} declare {' and '.join(fields)}"


def decode_heart_rate_measurement(payload: bytes) -> HeartRateMeasurement:
    if not payload:
        raise DecodeError(
            HEART_RATE_WHAT, "empty: need at least 2 bytes (flags, heart rate)", payload
        )
    flags = payload[0]
    hr_field = _U16 if flags & FLAG_HR_U16 else _U8
    fixed_len = 1 + hr_field.size + (_U16.size if flags & FLAG_ENERGY else 0)
    if len(payload) < fixed_len:
        raise DecodeError(
            HEART_RATE_WHAT,
            f"truncated: {_layout(flags)}, need {fixed_len} bytes, got {len(payload)}",
            payload,
        )
    (heart_rate_bpm,) = hr_field.unpack_from(payload, 1)
    if heart_rate_bpm > MAX_HEART_RATE_BPM:
        raise DecodeError(
            HEART_RATE_WHAT,
            f"absurd heart rate {heart_rate_bpm} bpm at offset 1 (above {MAX_HEART_RATE_BPM})",
            payload,
        )
    energy_kj: int | None = None
    if flags & FLAG_ENERGY:
        (energy_kj,) = _U16.unpack_from(payload, 1 + hr_field.size)

    rr_len = len(payload) - fixed_len
    if not flags & FLAG_RR:
        if rr_len:
            raise DecodeError(
                HEART_RATE_WHAT,
                f"{_wire.plural(rr_len, 'trailing byte')} at offset {fixed_len}: {_layout(flags)} "
                f"and no RR intervals, which take {fixed_len} bytes",
                payload,
            )
        rr_intervals_s: tuple[float, ...] = ()
    else:
        if rr_len % 2:
            raise DecodeError(
                HEART_RATE_WHAT,
                f"odd RR-interval area: {_wire.plural(rr_len, 'byte')} from offset {fixed_len}, "
                "RR intervals are u16 (2 bytes each)",
                payload,
            )
        raw = struct.unpack_from(f"<{rr_len // 2}H", payload, fixed_len)
        rr_intervals_s = tuple(value / RR_LSB_PER_S for value in raw)
    return HeartRateMeasurement(
        heart_rate_bpm=heart_rate_bpm,
        contact=_CONTACT_BY_BITS[(flags & FLAG_CONTACT_MASK) >> 1],
        energy_kj=energy_kj,
        rr_intervals_s=rr_intervals_s,
    )


def encode_heart_rate_measurement(
    measurement: HeartRateMeasurement, *, hr_u16: bool = False
) -> bytes:
    """Wire form; ``hr_u16`` sends the heart rate as u16, as some straps do, for simulators.

    The RR flag is set only when there are RR intervals. Values that do not fit raise
    ``ValueError``.
    """
    heart_rate_bpm = _wire.check_int(
        "heart_rate_bpm", measurement.heart_rate_bpm, 0, MAX_HEART_RATE_BPM
    )
    if measurement.contact not in _BITS_BY_CONTACT:
        raise ValueError(f"contact={measurement.contact!r} is not one of {list(_BITS_BY_CONTACT)}")
    flags = _BITS_BY_CONTACT[measurement.contact] << 1
    out = bytearray()
    if hr_u16:
        flags |= FLAG_HR_U16
        out += _U16.pack(heart_rate_bpm)
    else:
        out += _U8.pack(heart_rate_bpm)
    if measurement.energy_kj is not None:
        flags |= FLAG_ENERGY
        out += _U16.pack(_wire.check_int("energy_kj", measurement.energy_kj, 0, 0xFFFF))
    if measurement.rr_intervals_s:
        flags |= FLAG_RR
        for rr_s in measurement.rr_intervals_s:
            out += _U16.pack(_wire.to_raw("rr_intervals_s", rr_s, RR_LSB_PER_S, 0, 0xFFFF))
    return bytes((flags,)) + bytes(out)
