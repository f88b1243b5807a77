"""Recordings (DESIGN.md §3.2): the ``.jsonl`` form of a BLE capture, read and written.

One line parser serves the file reader and the live MQTT ``raw`` ingest, so bad input is judged
the same way live and offline:

- errors (:class:`~sensors.errors.RecordingError`, the stream stops): a line that is not a JSON
  object, lacks a finite ``t`` ≥ 0, names a sensor missing from the header, or goes back in time
  by more than 1 s relative to the latest ``t`` seen;
- warnings (a :class:`BadLine` yielded in order, the stream goes on): a ``hex`` that is not hex,
  a ``char`` unknown for the sensor's profile, an unknown ``event``, an event with invalid
  fields, a blank line, and a partial last line (what a crash leaves).

Going back in time by up to 1 s is allowed and passed through unchanged: a host receives
notifications from several radios slightly out of order, and the pipeline times samples from
sequence numbers and rates, so it copes. Unknown keys in a line are ignored (room to add fields
without a new version). A UTF-8 byte-order mark before the header is tolerated.

Whether a payload *decodes* is not this module's business: the pipeline decodes and counts.

The header is validated with pydantic (once per file); lines are not (about 15 per second of
recording, an hour must replay in well under 2 s): plain ``json.loads``, dict lookups and
``bytes.fromhex`` into slotted frozen dataclasses.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Annotated, Any, Final, Literal, Self, TextIO, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from sensors.errors import RecordingError, RecordingHeaderError
from sensors.profiles import DEFAULT_MOUNTS, PROFILE_CHARACTERISTICS, Axis, ProfileName

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_BACKWARDS_S",
    "BadLine",
    "ConnectionEvent",
    "ConnectionKind",
    "ControlAction",
    "ControlEvent",
    "LineParser",
    "MountSpec",
    "Notification",
    "PainEvent",
    "PainLocation",
    "Placement",
    "Record",
    "RecordingHeader",
    "RecordingReader",
    "RecordingWriter",
    "RunnerProfile",
    "SensorSpec",
    "format_record",
    "parse_header",
]

FORMAT_NAME: Final = "runmon-recording"
FORMAT_VERSION: Final = 1

#: How far ``t`` may go back relative to the latest ``t`` seen before a line is an error.
MAX_BACKWARDS_S: Final = 1.0

#: Recording time between two flushes of a writer: a crash loses at most this much.
FLUSH_INTERVAL_S: Final = 1.0

PARTIAL_LAST_LINE: Final = "partial last line (truncated write)"

# Bounds that keep float() from overflowing on absurd JSON integers (both are finite floats).
_MAX_INT_T: Final = 2**1000
_MAX_MINUTES: Final = 1e9

_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
Identifier = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
Placement = Literal["chest", "pelvis", "upper_back", "unknown"]
CadenceUnit = Literal["steps", "strides", "auto"]
ConnectionKind = Literal["connect", "disconnect"]
PainLocation = Literal["low_back", "mid_back", "upper_back", "hip", "leg", "other"]
ControlAction = Literal["start", "stop", "mute", "unmute", "snooze"]

# str -> the Literal value itself: one lookup both validates and narrows the type for mypy.
_CONNECTION_KINDS: Final[dict[str, ConnectionKind]] = {k: k for k in get_args(ConnectionKind)}
_PAIN_LOCATIONS: Final[dict[str, PainLocation]] = {k: k for k in get_args(PainLocation)}
_CONTROL_ACTIONS: Final[dict[str, ControlAction]] = {k: k for k in get_args(ControlAction)}

_UUID128 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --------------------------------------------------------------------------------------------
# Header


class _HeaderModel(BaseModel):
    # Unknown fields survive a read/write round trip: a newer writer's additions are not lost.
    model_config = ConfigDict(extra="allow", frozen=True)


class MountSpec(_HeaderModel):
    """Which sensor axis points forward, left and up when the runner stands upright."""

    forward: Axis
    left: Axis
    up: Axis

    @model_validator(mode="after")
    def _proper_rotation(self) -> Self:
        # A mount is a rotation of a right-handed sensor frame: three different physical axes,
        # and forward cross left = up. A left-handed triple is a sign typo that would silently flip
        # the sign of every gyro rotation.
        names = (self.forward[1], self.left[1], self.up[1])
        if len(set(names)) != 3:
            raise ValueError(
                f"forward={self.forward}, left={self.left}, up={self.up} must be three"
                " different sensor axes"
            )
        if _signed_cross(self.forward, self.left) != self.up:
            raise ValueError(
                f"forward={self.forward}, left={self.left}, up={self.up} is left-handed;"
                f" with these forward and left, up is {_signed_cross(self.forward, self.left)}"
            )
        return self


def _signed_cross(a: Axis, b: Axis) -> str:
    """Cross product of two distinct signed unit axes, as a signed axis name."""
    order = "xyz"
    i, j = order.index(a[1]), order.index(b[1])
    (k,) = set(range(3)) - {i, j}
    cyclic = (j - i) % 3 == 1
    positive = (a[0] == "+") == (b[0] == "+")
    return ("+" if positive == cyclic else "-") + order[k]


class SensorSpec(_HeaderModel):
    """One sensor entry of a recording header (also what a gateway's ``raw`` message carries)."""

    id: Identifier
    profile: ProfileName
    placement: Placement | None = None
    mount: MountSpec | None = None
    cadence_unit: CadenceUnit = "auto"
    speed_factor: float = Field(default=1.0, gt=0.0, le=3.0, strict=True)
    settings: dict[str, Any] | None = None

    @property
    def effective_mount(self) -> MountSpec | None:
        """The declared mount, else the profile's default, else None (no axes to speak of)."""
        if self.mount is not None:
            return self.mount
        default = DEFAULT_MOUNTS.get(self.profile)
        return None if default is None else MountSpec.model_validate(dict(default))


class RunnerProfile(_HeaderModel):
    """What the recording knows about the runner; more fields may follow."""

    # A sanity range that catches typos (19, 1900) without judging anyone's physiology.
    hr_max_bpm: int | None = Field(default=None, ge=100, le=250, strict=True)


class RecordingHeader(_HeaderModel):
    """Line 1 of a recording."""

    format: Literal["runmon-recording"]
    version: Literal[1]
    runner: Identifier
    started_at: datetime
    sensors: list[SensorSpec]
    runner_profile: RunnerProfile = Field(default_factory=RunnerProfile)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_an_integer(cls, value: object) -> object:
        # Literal[1] alone accepts 1.0 and True.
        if type(value) is not int:
            raise ValueError(f"must be the integer {FORMAT_VERSION}, got {value!r}")
        return value

    @field_validator("started_at", mode="before")
    @classmethod
    def _started_at_is_text(cls, value: object) -> object:
        # pydantic would take a number as Unix time; the format says ISO 8601.
        if not isinstance(value, str | datetime):
            # pydantic turns ValueError, not TypeError, into a validation error.
            raise ValueError(  # noqa: TRY004
                f"must be an ISO 8601 time like 2026-11-25T07:00:00Z, got {value!r}"
            )
        return value

    @field_validator("started_at")
    @classmethod
    def _started_at_is_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("needs a time zone, e.g. 2026-11-25T07:00:00Z")
        return value.astimezone(UTC)

    @field_validator("sensors")
    @classmethod
    def _sensor_ids_unique(cls, value: list[SensorSpec]) -> list[SensorSpec]:
        seen: set[str] = set()
        for spec in value:
            if spec.id in seen:
                raise ValueError(f"sensor id {spec.id!r} appears more than once")
            seen.add(spec.id)
        return value

    @field_serializer("started_at")
    def _started_at_with_z(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def sensor(self, sensor_id: str) -> SensorSpec | None:
        """The header entry of ``sensor_id``, None if the recording has no such sensor."""
        for spec in self.sensors:
            if spec.id == sensor_id:
                return spec
        return None


def _reject_constant(name: str) -> object:
    # Python's json accepts NaN and Infinity; JSON does not, and the writer would refuse them.
    raise ValueError(f"{name} is not JSON")


def parse_header(text: str, source_name: str = "<stream>") -> RecordingHeader:
    """Validate a header line; every failure is a :class:`RecordingHeaderError` at line 1."""
    if not text.strip():
        raise RecordingHeaderError(source_name, "empty: line 1 must be the recording header")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise RecordingHeaderError(source_name, f"header is not JSON ({exc})") from exc
    if type(obj) is not dict:
        raise RecordingHeaderError(source_name, "header is not a JSON object")
    # Say "not a recording" plainly instead of listing every field another file lacks.
    if obj.get("format") != FORMAT_NAME:
        raise RecordingHeaderError(
            source_name,
            f"header.format: not a runmon recording (format {obj.get('format')!r},"
            f" expected {FORMAT_NAME!r})",
            field="format",
        )
    version = obj.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise RecordingHeaderError(
            source_name,
            f"header.version: unsupported version {version!r} (this reader knows {FORMAT_VERSION})",
            field="version",
        )
    try:
        return RecordingHeader.model_validate(obj)
    except ValidationError as exc:
        problems = [
            (".".join(str(part) for part in err["loc"]), err["msg"]) for err in exc.errors()
        ]
        reason = "; ".join(
            f"header.{loc}: {msg}" if loc else f"header: {msg}" for loc, msg in problems
        )
        raise RecordingHeaderError(source_name, reason, field=problems[0][0] or None) from exc


def _header_line(header: RecordingHeader) -> str:
    dumped = header.model_dump(mode="json")
    # Sensor entries as declared: no "cadence_unit"/"speed_factor" noise on a heart-rate strap.
    dumped["sensors"] = [s.model_dump(mode="json", exclude_unset=True) for s in header.sensors]
    return json.dumps(dumped, separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Notification:
    """One GATT notification (or read value); ``char`` is the lowercase 128-bit UUID."""

    t: float
    sensor: str
    char: str
    payload: bytes
    line_no: int = 0  # 0: not read from a line


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A sensor's link came up or went down (gaps in its data are expected, not faults)."""

    t: float
    sensor: str
    kind: ConnectionKind
    line_no: int = 0


@dataclass(frozen=True, slots=True)
class PainEvent:
    """The runner reported pain (0 none … 10 worst); ``radiating``: it runs down the legs."""

    t: float
    level: int
    location: PainLocation
    radiating: bool
    line_no: int = 0


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """The runner or an app started, stopped, muted, unmuted or snoozed the session."""

    t: float
    action: ControlAction
    minutes: float | None
    line_no: int = 0


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line skipped with a warning; yielded in order so the consumer can count and report it.

    ``t`` is None when the line did not yield a trustworthy time (blank, truncated).
    """

    t: float | None
    line_no: int
    reason: str


Record = Notification | ConnectionEvent | PainEvent | ControlEvent | BadLine


@dataclass(frozen=True, slots=True)
class _SensorEntry:
    id: str
    profile: ProfileName
    # lowercase UUID -> itself: validates, canonicalises and shares one string object per char.
    chars: Mapping[str, str]


_decode_json: Final = json.JSONDecoder().decode


def _loads(text: str) -> Any:
    """``json.loads(text)``, minus its per-call argument handling (a fifth of its time).

    json.loads is this decoder plus a BOM check and bytes support: whatever the decoder refuses
    goes to json.loads, so results and error messages stay exactly json.loads's own.
    """
    try:
        return _decode_json(text)
    except (ValueError, RecursionError, TypeError):
        return json.loads(text)


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LineParser:
    """Turns one recording line into a :data:`Record`, remembering the latest ``t`` seen.

    Used by :class:`RecordingReader` and by the live ``raw`` ingest: it assumes no file.
    A :class:`RecordingError` leaves the state unchanged, so a live caller may refuse the line
    and go on. Uppercase ``char`` UUIDs are accepted and lowercased (some BLE stacks report
    them so; the UUID is the same); short 16-bit forms are not.
    """

    __slots__ = ("_latest_t_s", "_sensors", "header", "source_name")

    def __init__(self, header: RecordingHeader, source_name: str = "<stream>") -> None:
        self.header = header
        self.source_name = source_name
        self._sensors: dict[str, _SensorEntry] = {
            s.id: _SensorEntry(s.id, s.profile, {c: c for c in PROFILE_CHARACTERISTICS[s.profile]})
            for s in header.sensors
        }
        self._latest_t_s = 0.0

    @property
    def latest_t_s(self) -> float:
        """The largest ``t`` accepted so far (0.0 before the first line)."""
        return self._latest_t_s

    def parse(self, text: str, line_no: int) -> Record:
        """Parse one line (with or without its newline); raise on errors, warn via BadLine."""
        try:
            obj = _loads(text)
        except (ValueError, RecursionError) as exc:
            if not text.strip():
                return BadLine(None, line_no, "blank line")
            raise RecordingError(self.source_name, line_no, f"not JSON ({exc})") from exc
        if type(obj) is not dict:
            raise RecordingError(
                self.source_name, line_no, f"not a JSON object ({type(obj).__name__})"
            )
        return self._parse_object(obj, line_no)

    def _fail(self, line_no: int, reason: str) -> RecordingError:
        return RecordingError(self.source_name, line_no, reason)

    def _parse_object(self, obj: dict[str, Any], line_no: int) -> Record:
        t = obj.get("t")
        if type(t) is not float:
            t = self._integer_t(t, line_no)
        elif not 0.0 <= t < math.inf:  # also False for NaN
            raise self._fail(line_no, f"t must be a finite number >= 0, got {t!r}")
        latest = self._latest_t_s
        if t < latest - MAX_BACKWARDS_S:
            raise self._fail(
                line_no,
                f"t={t!r} goes back {latest - t:.4f} s in time (latest t={latest!r});"
                f" at most {MAX_BACKWARDS_S:g} s is allowed",
            )

        if "event" not in obj:
            entry = self._entry(obj, line_no)
            if t > latest:
                self._latest_t_s = t
            return self._notification(obj, t, entry, line_no)

        event = obj["event"]
        if event == "connect" or event == "disconnect":
            entry = self._entry(obj, line_no)
            if t > latest:
                self._latest_t_s = t
            return ConnectionEvent(t, entry.id, _CONNECTION_KINDS[event], line_no)
        if t > latest:
            self._latest_t_s = t
        if event == "pain":
            return _pain(obj, t, line_no)
        if event == "control":
            return _control(obj, t, line_no)
        return BadLine(t, line_no, f"unknown event {_short(event)}")

    def _integer_t(self, t: object, line_no: int) -> float:
        # The slow path of t: JSON integers are fine, everything else is an error.
        if type(t) is int and 0 <= t < _MAX_INT_T:
            return float(t)
        if t is None:
            raise self._fail(line_no, "lacks t (the receive time in seconds)")
        raise self._fail(line_no, f"t must be a finite number >= 0, got {_short(t)}")

    def _entry(self, obj: dict[str, Any], line_no: int) -> _SensorEntry:
        sensor = obj.get("sensor")
        entry = self._sensors.get(sensor) if type(sensor) is str else None
        if entry is None:
            known = ", ".join(self._sensors) or "none"
            if sensor is None:
                raise self._fail(line_no, f"names no sensor (header sensors: {known})")
            raise self._fail(
                line_no, f"sensor {_short(sensor)} is not in the header (header sensors: {known})"
            )
        return entry

    @staticmethod
    def _notification(
        obj: dict[str, Any], t: float, entry: _SensorEntry, line_no: int
    ) -> Notification | BadLine:
        raw_char = obj.get("char")
        if type(raw_char) is not str:
            return BadLine(t, line_no, f"notification lacks a char UUID (got {_short(raw_char)})")
        char = entry.chars.get(raw_char) or entry.chars.get(raw_char.lower())
        if char is None:
            return BadLine(
                t,
                line_no,
                f"char {_short(raw_char)} is unknown for sensor {entry.id!r}"
                f" (profile {entry.profile})",
            )
        hex_text = obj.get("hex")
        if type(hex_text) is not str:
            return BadLine(t, line_no, f"notification lacks a hex payload (got {_short(hex_text)})")
        try:
            payload = bytes.fromhex(hex_text)
        except ValueError:
            return BadLine(t, line_no, f"hex payload is not valid hex: {_short(hex_text)}")
        return Notification(t, entry.id, char, payload, line_no)


def _pain(obj: dict[str, Any], t: float, line_no: int) -> PainEvent | BadLine:
    level = obj.get("level")
    if type(level) is not int or not 0 <= level <= 10:
        return BadLine(t, line_no, f"pain level must be an integer 0..10, got {_short(level)}")
    raw_location = obj.get("location")
    location = _PAIN_LOCATIONS.get(raw_location) if type(raw_location) is str else None
    if location is None:
        return BadLine(
            t,
            line_no,
            f"pain location must be one of {', '.join(_PAIN_LOCATIONS)},"
            f" got {_short(raw_location)}",
        )
    radiating = obj.get("radiating")
    if type(radiating) is not bool:
        return BadLine(t, line_no, f"pain radiating must be true or false, got {_short(radiating)}")
    return PainEvent(t, level, location, radiating, line_no)


def _control(obj: dict[str, Any], t: float, line_no: int) -> ControlEvent | BadLine:
    raw_action = obj.get("action")
    action = _CONTROL_ACTIONS.get(raw_action) if type(raw_action) is str else None
    if action is None:
        return BadLine(
            t,
            line_no,
            f"control action must be one of {', '.join(_CONTROL_ACTIONS)},"
            f" got {_short(raw_action)}",
        )
    minutes = obj.get("minutes")
    if minutes is None:
        return ControlEvent(t, action, None, line_no)
    if type(minutes) not in (int, float) or not 0.0 < minutes < _MAX_MINUTES:
        return BadLine(
            t, line_no, f"control minutes must be a number > 0 or absent, got {_short(minutes)}"
        )
    return ControlEvent(t, action, float(minutes), line_no)


# --------------------------------------------------------------------------------------------
# Reading


#: The longest line read in one piece; the longest real one (a 512-byte payload) is ~1.1 kB.
#: Bounds memory when a reader is pointed at a file that has no newlines (binary, corrupt).
MAX_LINE_CHARS: Final = 1 << 20


class RecordingReader:
    """Streams a recording: the header on open, then one :data:`Record` per line.

    One pass; memory stays bounded whatever the file's length. Undecodable UTF-8 becomes U+FFFD,
    so it shows up as a bad line, not as a crash. A last line without its newline that is not
    JSON is what a crash leaves: a :class:`BadLine` warning, not an error. Blank lines are
    warnings too (an edited file, or a writer bug: worth counting, not worth stopping for).
    """

    def __init__(self, source: str | os.PathLike[str] | TextIO) -> None:
        if isinstance(source, str | os.PathLike):
            self.source_name: str = os.fspath(source)
            try:
                file: TextIO = open(source, encoding="utf-8-sig", errors="replace")  # noqa: SIM115
            except OSError as exc:
                raise RecordingHeaderError(
                    self.source_name, f"cannot open ({exc.strerror or exc})"
                ) from exc
            self._owned = True
        else:
            name = getattr(source, "name", None)
            self.source_name = name if isinstance(name, str) else "<stream>"
            file = source
            self._owned = False
        self._file = file
        try:
            self.header: RecordingHeader = self._read_header()
        except BaseException:
            self.close()
            raise
        self._parser = LineParser(self.header, self.source_name)
        self._line_no = 1

    def _read_header(self) -> RecordingHeader:
        first = self._file.readline(MAX_LINE_CHARS)
        if len(first) >= MAX_LINE_CHARS and not first.endswith("\n"):
            raise RecordingHeaderError(
                self.source_name, f"header line longer than {MAX_LINE_CHARS} characters"
            )
        return parse_header(first, self.source_name)

    @property
    def lines_read(self) -> int:
        """Lines consumed so far, the header included."""
        return self._line_no

    def __iter__(self) -> Iterator[Record]:
        parse = self._parser.parse
        readline = self._file.readline
        line_no = self._line_no
        while line := readline(MAX_LINE_CHARS):
            line_no += 1
            self._line_no = line_no
            if line[-1] == "\n":
                yield parse(line, line_no)
            elif len(line) >= MAX_LINE_CHARS:
                raise RecordingError(
                    self.source_name, line_no, f"line longer than {MAX_LINE_CHARS} characters"
                )
            else:
                yield self._last_line(line, line_no)

    def _last_line(self, line: str, line_no: int) -> Record:
        if line.strip():
            try:
                json.loads(line)
            except (ValueError, RecursionError):
                return BadLine(None, line_no, PARTIAL_LAST_LINE)
        return self._parser.parse(line, line_no)

    def close(self) -> None:
        """Close the file if the reader opened it; a caller's stream stays open."""
        if self._owned:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Writing


def _t_text(t: float) -> str:
    if not 0.0 <= t < math.inf:
        raise ValueError(f"t must be a finite number >= 0, got {t!r}")
    # 0.1 ms; float repr is exactly what json.dumps writes.
    return repr(round(float(t), 4))


def _char_text(char: str) -> str:
    lower = char.lower()
    if _UUID128.fullmatch(lower) is None:
        raise ValueError(f"char must be a full 128-bit UUID, got {char!r}")
    return lower


def _pain_text(t_text: str, level: int, location: str, radiating: bool) -> str:
    if type(level) is not int or not 0 <= level <= 10:
        raise ValueError(f"pain level must be an integer 0..10, got {level!r}")
    if location not in _PAIN_LOCATIONS:
        raise ValueError(f"pain location must be one of {', '.join(_PAIN_LOCATIONS)}")
    if type(radiating) is not bool:
        raise ValueError(f"radiating must be a bool, got {radiating!r}")
    return (
        f'{{"t":{t_text},"event":"pain","level":{level},"location":"{location}",'
        f'"radiating":{"true" if radiating else "false"}}}'
    )


def _control_text(t_text: str, action: str, minutes: float | None) -> str:
    if action not in _CONTROL_ACTIONS:
        raise ValueError(f"control action must be one of {', '.join(_CONTROL_ACTIONS)}")
    if minutes is None:
        return f'{{"t":{t_text},"event":"control","action":"{action}"}}'
    if not 0.0 < minutes < _MAX_MINUTES:
        raise ValueError(f"control minutes must be > 0, got {minutes!r}")
    minutes_text = str(int(minutes)) if float(minutes).is_integer() else repr(float(minutes))
    return f'{{"t":{t_text},"event":"control","action":"{action}","minutes":{minutes_text}}}'


def _connection_text(t_text: str, sensor: str, kind: str) -> str:
    if kind not in _CONNECTION_KINDS:
        raise ValueError(f"connection kind must be connect or disconnect, got {kind!r}")
    return f'{{"t":{t_text},"event":"{kind}","sensor":{json.dumps(sensor)}}}'


def _notification_text(t_text: str, sensor: str, char: str, payload: bytes) -> str:
    return f'{{"t":{t_text},"sensor":{json.dumps(sensor)},"char":"{char}","hex":"{payload.hex()}"}}'


def format_record(record: Record) -> str:
    """One recording line (no newline) for a record, e.g. for a gateway's ``raw`` message.

    Checks the values as the writer does, but not time order or the header: it has neither.
    """
    match record:
        case Notification(t, sensor, char, payload):
            return _notification_text(_t_text(t), sensor, _char_text(char), payload)
        case ConnectionEvent(t, sensor, kind):
            return _connection_text(_t_text(t), sensor, kind)
        case PainEvent(t, level, location, radiating):
            return _pain_text(_t_text(t), level, location, radiating)
        case ControlEvent(t, action, minutes):
            return _control_text(_t_text(t), action, minutes)
        case BadLine():
            raise TypeError(f"a BadLine is a reader's warning, not a line (line {record.line_no})")


class RecordingWriter:
    """Writes a recording: the header on open, then one compact JSON line per call.

    Flushes whenever recording time has advanced by :data:`FLUSH_INTERVAL_S` since the last
    flush, and on close, so a crashed process loses at most the last second (no fsync: a power
    cut may lose more, and fsync per second would make writing an hour take seconds). Writes
    that the reader would refuse (unknown sensor, more than 1 s back in time) raise ValueError:
    they are the caller's bug, not input.
    """

    def __init__(self, target: str | os.PathLike[str] | TextIO, header: RecordingHeader) -> None:
        self.header = header
        if isinstance(target, str | os.PathLike):
            self.target_name: str = os.fspath(target)
            self._file: TextIO = open(target, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            self._owned = True
        else:
            name = getattr(target, "name", None)
            self.target_name = name if isinstance(name, str) else "<stream>"
            self._file = target
            self._owned = False
        self._sensor_ids = frozenset(s.id for s in header.sensors)
        self._chars: dict[str, str] = {}  # as given -> checked and lowercased
        self._latest_t_s = 0.0
        self._last_flush_t_s = 0.0
        self._closed = False
        try:
            self._file.write(_header_line(header) + "\n")
            self._file.flush()
        except BaseException:
            self.close()
            raise

    def _emit(self, line: str, t_text: str, sensor: str | None = None) -> None:
        # Checked after the line is built, so a refused write changes nothing.
        if self._closed:
            raise ValueError(f"{self.target_name}: write after close")
        t_s = float(t_text)  # judge the time the reader will see
        if t_s < self._latest_t_s - MAX_BACKWARDS_S:
            raise ValueError(
                f"t={t_s!r} goes back more than {MAX_BACKWARDS_S:g} s"
                f" (latest t={self._latest_t_s!r})"
            )
        if sensor is not None and sensor not in self._sensor_ids:
            raise ValueError(f"sensor {sensor!r} is not in the header")
        if t_s > self._latest_t_s:
            self._latest_t_s = t_s
        self._file.write(line + "\n")
        if t_s - self._last_flush_t_s >= FLUSH_INTERVAL_S:
            self._file.flush()
            self._last_flush_t_s = t_s

    def write_notification(self, t: float, sensor: str, char: str, payload: bytes) -> None:
        """A notification or read value; ``char`` in any case, written lowercase."""
        checked = self._chars.get(char)
        if checked is None:
            checked = self._chars[char] = _char_text(char)
        t_text = _t_text(t)
        self._emit(_notification_text(t_text, sensor, checked, payload), t_text, sensor)

    def write_connection(self, t: float, sensor: str, kind: ConnectionKind) -> None:
        t_text = _t_text(t)
        self._emit(_connection_text(t_text, sensor, kind), t_text, sensor)

    def write_pain(self, t: float, level: int, location: PainLocation, radiating: bool) -> None:
        t_text = _t_text(t)
        self._emit(_pain_text(t_text, level, location, radiating), t_text)

    def write_control(self, t: float, action: ControlAction, minutes: float | None = None) -> None:
        t_text = _t_text(t)
        self._emit(_control_text(t_text, action, minutes), t_text)

    def write_record(self, record: Record) -> None:
        """Any record but a :class:`BadLine` (its line number is not written)."""
        match record:
            case Notification(t, sensor, char, payload):
                self.write_notification(t, sensor, char, payload)
            case ConnectionEvent(t, sensor, kind):
                self.write_connection(t, sensor, kind)
            case PainEvent(t, level, location, radiating):
                self.write_pain(t, level, location, radiating)
            case ControlEvent(t, action, minutes):
                self.write_control(t, action, minutes)
            case BadLine():
                raise TypeError(
                    f"a BadLine is a reader's warning, not a line (line {record.line_no})"
                )

    def flush(self) -> None:
        self._file.flush()
        self._last_flush_t_s = self._latest_t_s

    def close(self) -> None:
        """Flush; close the file if the writer opened it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._file.flush()
        finally:
            if self._owned:
                self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
