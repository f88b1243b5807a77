"""runmon Breath profile (DESIGN §3.1): data notification ``a28d0011-…``.

Little-endian::

    version u8 (= 1) | flags u8 (must be 0) | sequence u16 (of the first sample, mod 65536)
    | sample rate u16 Hz (1..2000, the same bound as the IMU) | n u8 | n stretch values u16

Stretch is the chest band's raw reading in arbitrary units (larger = more expanded); it becomes
float64 so estimators can filter it without casting. The payload must be exactly 7 + 2n bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from sensors.gatt import _wire

BREATH_DATA_WHAT: Final = "runmon Breath data"
_WIRE_U16: Final = np.dtype("<u2")


@dataclass(frozen=True, slots=True, eq=False)
class BreathBlock:
    """One notification's samples; ``stretch`` is a read-only float64 array of shape (n,).

    Equality is exact; instances are unhashable, like the array they hold.
    """

    sequence: int
    sample_rate_hz: int
    stretch: NDArray[np.float64]

    def __post_init__(self) -> None:
        stretch = _wire.frozen_float_array("stretch", self.stretch, columns=None)
        if stretch is not self.stretch:  # a decoded array comes back as it went in
            object.__setattr__(self, "stretch", stretch)

    @property
    def n_samples(self) -> int:
        return int(self.stretch.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BreathBlock):
            return NotImplemented
        return (
            self.sequence == other.sequence
            and self.sample_rate_hz == other.sample_rate_hz
            and np.array_equal(self.stretch, other.stretch)
        )


def decode_breath_block(payload: bytes) -> BreathBlock:
    _, sequence, sample_rate_hz, n = _wire.decode_block_header(
        BREATH_DATA_WHAT, payload, allowed_flags=0
    )
    expected = _wire.BLOCK_HEADER.size + n * _WIRE_U16.itemsize
    if len(payload) != expected:
        raise _wire.length_error(
            BREATH_DATA_WHAT,
            payload,
            expected,
            f"header declares {_wire.plural(n, 'stretch sample')} (2 bytes each)",
        )
    stretch = np.frombuffer(
        payload, dtype=_WIRE_U16, count=n, offset=_wire.BLOCK_HEADER.size
    ).astype(np.float64)
    stretch.setflags(write=False)
    return BreathBlock(sequence, sample_rate_hz, stretch)


def encode_breath_block(block: BreathBlock) -> bytes:
    """Wire form, rounded to whole units; values outside 0..65535 raise ``ValueError``."""
    raw = _wire.to_raw_array("stretch", block.stretch, 1, 0, _wire.U16_MAX)
    header = _wire.encode_block_header(0, block.sequence, block.sample_rate_hz, len(raw))
    return header + raw.astype(_WIRE_U16).tobytes()
