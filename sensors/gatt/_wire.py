"""Shared wire helpers: length checks for decoders, range checks for encoders.

Decoders check lengths *before* unpacking, so ``struct.error``/``IndexError`` cannot escape;
encoders turn values from our own code into wire integers and raise ``ValueError`` (a bug in the
caller, not bad radio data) when a value does not fit.
"""

from __future__ import annotations

import math
import operator
import struct
from typing import Final, SupportsIndex

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sensors.errors import DecodeError

#: runmon block header (IMU and Breath data): version, flags, sequence, sample rate Hz, n.
BLOCK_HEADER: Final = struct.Struct("<BBHHB")
BLOCK_VERSION: Final = 1
MIN_SAMPLE_RATE_HZ: Final = 1
MAX_SAMPLE_RATE_HZ: Final = 2000
MAX_BLOCK_SAMPLES: Final = 0xFF
U16_MAX: Final = 0xFFFF


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def length_error(what: str, payload: bytes, expected: int, layout: str) -> DecodeError:
    """The error for a payload not exactly as long as its header declares, saying which way.

    Callers compare lengths first and build ``layout`` only on failure: decoders are a hot path.
    """
    got = len(payload)
    if got < expected:
        return DecodeError(
            what, f"truncated: {layout}, need {plural(expected, 'byte')}, got {got}", payload
        )
    return DecodeError(
        what,
        f"{plural(got - expected, 'trailing byte')} at offset {expected}: "
        f"{layout}, which take {plural(expected, 'byte')}",
        payload,
    )


def check_sample_rate(what: str, payload: bytes, sample_rate_hz: int, offset: int) -> None:
    # 0 Hz would make sample timing divide by zero downstream; > 2 kHz is no body-worn IMU.
    if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
        raise DecodeError(
            what,
            f"sample rate {sample_rate_hz} Hz at offset {offset} outside "
            f"{MIN_SAMPLE_RATE_HZ}..{MAX_SAMPLE_RATE_HZ} Hz",
            payload,
        )


def decode_block_header(
    what: str, payload: bytes, *, allowed_flags: int
) -> tuple[int, int, int, int]:
    """Unpack and check a runmon block header; returns (flags, sequence, sample_rate_hz, n)."""
    if len(payload) < BLOCK_HEADER.size:
        raise DecodeError(
            what,
            f"truncated: header needs {BLOCK_HEADER.size} bytes (version, flags, sequence, "
            f"sample rate, n), got {len(payload)}",
            payload,
        )
    version, flags, sequence, sample_rate_hz, n = BLOCK_HEADER.unpack_from(payload)
    if version != BLOCK_VERSION:
        raise DecodeError(
            what, f"unsupported version {version} at offset 0 (expected {BLOCK_VERSION})", payload
        )
    if flags & ~allowed_flags:
        raise DecodeError(
            what,
            f"reserved flag bits 0x{flags & ~allowed_flags:02x} set in flags 0x{flags:02x} at "
            "offset 1: must be 0",
            payload,
        )
    check_sample_rate(what, payload, sample_rate_hz, offset=4)
    return flags, sequence, sample_rate_hz, n


def encode_block_header(flags: int, sequence: int, sample_rate_hz: int, n: int) -> bytes:
    check_int("sequence", sequence, 0, U16_MAX)
    check_int("sample_rate_hz", sample_rate_hz, MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ)
    check_int("number of samples", n, 0, MAX_BLOCK_SAMPLES)
    return BLOCK_HEADER.pack(BLOCK_VERSION, flags, sequence, sample_rate_hz, n)


def check_int(name: str, value: SupportsIndex, lo: int, hi: int) -> int:
    """An integer field for an encoder: an int (not a float) within ``lo..hi``."""
    number = operator.index(value)
    if not lo <= number <= hi:
        raise ValueError(f"{name}={number} out of range {lo}..{hi}")
    return number


def to_raw(name: str, value: float, lsb_per_unit: float, lo: int, hi: int) -> int:
    """Round a physical value to wire units; the *rounded* value must fit ``lo..hi``."""
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    raw = round(value * lsb_per_unit)
    if not lo <= raw <= hi:
        raise ValueError(
            f"{name}={value!r} out of range: the wire holds "
            f"{lo / lsb_per_unit:g}..{hi / lsb_per_unit:g}"
        )
    return raw


def to_raw_array(
    name: str, values: NDArray[np.float64], lsb_per_unit: float, lo: int, hi: int
) -> NDArray[np.int64]:
    """Vectorised :func:`to_raw` (round half to even, as Python's ``round``)."""
    if not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite everywhere")
    raw = np.rint(values * lsb_per_unit).astype(np.int64)
    if raw.size and (int(raw.min()) < lo or int(raw.max()) > hi):
        raise ValueError(
            f"{name} out of range: the wire holds {lo / lsb_per_unit:g}..{hi / lsb_per_unit:g}, "
            f"got {float(values.min())!r}..{float(values.max())!r}"
        )
    return raw


def frozen_float_array(name: str, values: ArrayLike, columns: int | None) -> NDArray[np.float64]:
    """A read-only float64 array of shape (n,) or (n, columns), never aliasing a caller's array.

    Decoders hand in arrays they made and froze themselves: those pass through without a copy.
    """
    array = np.asarray(values, dtype=np.float64)
    if columns is None:
        if array.ndim != 1:
            raise ValueError(f"{name} must have shape (n,), got {array.shape}")
    elif array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"{name} must have shape (n, {columns}), got {array.shape}")
    if array.flags.writeable:
        if array is values:
            array = array.copy()  # freezing the caller's own array would surprise them
        array.flags.writeable = False
    return array
