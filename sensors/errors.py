"""The one exception root of :mod:`sensors` and its typed children."""

from __future__ import annotations


class SensorsError(Exception):
    """Root of every error raised by :mod:`sensors`."""


class DecodeError(SensorsError):
    """A GATT payload that cannot be decoded: truncated, inconsistent flags or absurd values.

    ``what`` names the payload kind (e.g. ``"RSC Measurement"``), ``reason`` says what is wrong.
    """

    def __init__(self, what: str, reason: str, payload: bytes = b"") -> None:
        self.what = what
        self.reason = reason
        self.payload = bytes(payload)
        super().__init__(f"{what}: {reason} (payload {self.payload.hex() or 'empty'})")


class RecordingError(SensorsError):
    """A recording line that a reader cannot go past: the stream stops here.

    ``line_no`` is 1-based; ``source`` names the file (or ``"<stream>"``).
    """

    def __init__(self, source: str, line_no: int, reason: str) -> None:
        self.source = source
        self.line_no = line_no
        self.reason = reason
        super().__init__(f"{source}:{line_no}: {reason}")


class RecordingHeaderError(RecordingError):
    """A recording header (line 1) that is missing, not JSON, or not a valid v1 header.

    ``field`` is the dotted path of the first bad field (``"sensors.0.profile"``), or None when
    the line as a whole is wrong.
    """

    def __init__(self, source: str, reason: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(source, 1, reason)
