"""Recording format (DESIGN.md §3.2): round trips, every bad-input rule, streaming, flushing."""

from __future__ import annotations

import io
import json
import os
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors import uuids
from sensors.errors import RecordingError, RecordingHeaderError, SensorsError
from sensors.recording import (
    PARTIAL_LAST_LINE,
    BadLine,
    ConnectionEvent,
    ControlEvent,
    LineParser,
    MountSpec,
    Notification,
    PainEvent,
    Record,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
    SensorSpec,
    format_record,
    parse_header,
)

IMU = uuids.RUNMON_IMU_DATA
RSC = uuids.RSC_MEASUREMENT
HR = uuids.HEART_RATE_MEASUREMENT

# The header of DESIGN.md §3.2, verbatim.
DESIGN_HEADER = """
{"format": "runmon-recording", "version": 1, "runner": "r1", "started_at": "2026-11-25T07:00:00Z",
 "sensors": [{"id": "chest", "profile": "runmon_imu", "placement": "chest",
              "mount": {"forward": "+x", "left": "+y", "up": "+z"}},
             {"id": "foot", "profile": "rsc", "cadence_unit": "auto", "speed_factor": 1.0},
             {"id": "hr", "profile": "heart_rate"},
             {"id": "band", "profile": "runmon_breath"},
             {"id": "h10", "profile": "polar_pmd", "settings": {"acc": {"sample_rate_hz": 200, "range_g": 8}},
              "mount": {"forward": "+z", "left": "+x", "up": "+y"}}],
 "runner_profile": {"hr_max_bpm": 190},
 "meta": {}}
"""  # noqa: E501
HEADER_LINE = json.dumps(json.loads(DESIGN_HEADER))


def header_dict() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DESIGN_HEADER)
    return result


def recording_text(*lines: str, header: str = HEADER_LINE, final_newline: bool = True) -> str:
    text = "\n".join((header, *lines))
    return text + "\n" if final_newline else text


def read_all(text: str, name: str = "rec.jsonl") -> list[Record]:
    stream = io.StringIO(text)
    stream.name = name  # what the reader names the source by
    with RecordingReader(stream) as reader:
        return list(reader)


def notif(t: float, sensor: str = "chest", char: str = IMU, hex_text: str = "0101") -> str:
    return json.dumps({"t": t, "sensor": sensor, "char": char, "hex": hex_text})


# --------------------------------------------------------------------------------------------
# Round trip and the contract's own examples


def test_design_example_parses() -> None:
    header = parse_header(HEADER_LINE)
    parser = LineParser(header)
    lines = [
        '{"t": 12.3456, "sensor": "chest", "char": "a28d0002-3115-4994-88d7-903e81d4b614",'
        ' "hex": "0101"}',
        '{"t": 30.0, "event": "disconnect", "sensor": "chest"}',
        '{"t": 31.5, "event": "connect", "sensor": "chest"}',
        '{"t": 95.2, "event": "pain", "level": 4, "location": "low_back", "radiating": false}',
        '{"t": 120.0, "event": "control", "action": "snooze", "minutes": 5}',
    ]
    records = [parser.parse(line, n) for n, line in enumerate(lines, start=2)]
    assert records == [
        Notification(12.3456, "chest", IMU, b"\x01\x01", 2),
        ConnectionEvent(30.0, "chest", "disconnect", 3),
        ConnectionEvent(31.5, "chest", "connect", 4),
        PainEvent(95.2, 4, "low_back", False, 5),
        ControlEvent(120.0, "snooze", 5.0, 6),
    ]
    assert header.runner_profile.hr_max_bpm == 190
    assert header.started_at == datetime(2026, 11, 25, 7, tzinfo=UTC)


def test_round_trip_every_record_kind_and_header_extras(tmp_path: Path) -> None:
    raw = header_dict()
    raw["firmware"] = {"chest": "1.2.3"}  # a future top-level field
    raw["sensors"][0]["serial"] = "A1B2"  # a future sensor field
    raw["sensors"][0]["mount"]["tilt_deg"] = 3.5  # a future mount field
    raw["runner_profile"]["weight_kg"] = 61.5
    raw["meta"] = {"app": "runmon record", "note": "Grüße"}
    header = RecordingHeader.model_validate(raw)
    records: list[Record] = [
        ConnectionEvent(0.0, "chest", "connect"),
        Notification(0.0125, "chest", IMU, bytes(range(240))),
        Notification(0.5, "foot", RSC, b"\x02\x00\x03\x4b"),
        Notification(0.75, "h10", uuids.PMD_DATA, b""),
        PainEvent(95.2, 4, "low_back", False),
        PainEvent(95.3, 10, "leg", True),
        ControlEvent(120.0, "snooze", 5.0),
        ControlEvent(121.0, "snooze", 2.5),
        ControlEvent(122.0, "mute", None),
        ConnectionEvent(130.0, "chest", "disconnect"),
    ]
    path = tmp_path / "rec.jsonl"
    with RecordingWriter(path, header) as writer:
        for record in records:
            writer.write_record(record)

    with RecordingReader(path) as reader:
        assert reader.header == header
        assert reader.header.model_dump() == header.model_dump()
        assert reader.header.model_extra == {"firmware": {"chest": "1.2.3"}}
        chest = reader.header.sensor("chest")
        assert chest is not None
        assert chest.model_extra == {"serial": "A1B2"}
        assert chest.mount is not None
        assert chest.mount.model_extra == {"tilt_deg": 3.5}
        assert reader.header.runner_profile.model_extra == {"weight_kg": 61.5}
        got = list(reader)
    expected = [_with_line_no(r, n) for n, r in enumerate(records, start=2)]
    assert got == expected


def _with_line_no(record: Record, line_no: int) -> Record:
    match record:
        case Notification(t, sensor, char, payload):
            return Notification(t, sensor, char, payload, line_no)
        case ConnectionEvent(t, sensor, kind):
            return ConnectionEvent(t, sensor, kind, line_no)
        case PainEvent(t, level, location, radiating):
            return PainEvent(t, level, location, radiating, line_no)
        case ControlEvent(t, action, minutes):
            return ControlEvent(t, action, minutes, line_no)
        case BadLine():
            return record


def test_written_lines_are_compact_in_contract_key_order() -> None:
    out = io.StringIO()
    header = parse_header(HEADER_LINE)
    with RecordingWriter(out, header) as writer:
        writer.write_notification(12.345678, "chest", IMU.upper(), b"\x01\x01")
        writer.write_connection(30, "chest", "disconnect")
        writer.write_pain(95.2, 4, "low_back", False)
        writer.write_control(120.0, "snooze", 5)
        writer.write_control(121.0, "stop")
    first, *lines = out.getvalue().splitlines()
    assert lines == [
        '{"t":12.3457,"sensor":"chest","char":"a28d0002-3115-4994-88d7-903e81d4b614","hex":"0101"}',
        '{"t":30.0,"event":"disconnect","sensor":"chest"}',
        '{"t":95.2,"event":"pain","level":4,"location":"low_back","radiating":false}',
        '{"t":120.0,"event":"control","action":"snooze","minutes":5}',
        '{"t":121.0,"event":"control","action":"stop"}',
    ]
    assert list(json.loads(first)) == [
        "format",
        "version",
        "runner",
        "started_at",
        "sensors",
        "runner_profile",
        "meta",
    ]
    assert json.loads(first)["started_at"] == "2026-11-25T07:00:00Z"
    # Sensor entries as declared: the heart-rate strap gets no RSC settings.
    assert json.loads(first)["sensors"][2] == {"id": "hr", "profile": "heart_rate"}
    assert not out.closed  # a caller's stream stays open


@settings(max_examples=60, deadline=None)
@given(
    steps_s=st.lists(st.floats(0.0, 0.9, allow_nan=False), min_size=1, max_size=20),
    payload=st.binary(max_size=300),
)
def test_notifications_round_trip_with_t_to_a_tenth_of_a_millisecond(
    steps_s: list[float], payload: bytes
) -> None:
    out = io.StringIO()
    t_s, written = 0.0, []
    with RecordingWriter(out, parse_header(HEADER_LINE)) as writer:
        for step_s in steps_s:
            t_s += step_s
            writer.write_notification(t_s, "band", uuids.RUNMON_BREATH_DATA, payload)
            written.append(round(t_s, 4))
    got = read_all(out.getvalue())
    assert [r.t for r in got] == written
    assert all(isinstance(r, Notification) and r.payload == payload for r in got)


def test_format_record_matches_the_writer() -> None:
    record = PainEvent(95.2, 4, "hip", True)
    assert format_record(record) == (
        '{"t":95.2,"event":"pain","level":4,"location":"hip","radiating":true}'
    )
    with pytest.raises(TypeError):
        format_record(BadLine(1.0, 3, "x"))


# --------------------------------------------------------------------------------------------
# Errors: the stream stops, naming the line


def test_not_json_in_the_middle_is_an_error_at_that_line() -> None:
    text = recording_text(notif(1.0), notif(2.0), "{not json", notif(3.0))
    stream = io.StringIO(text)
    stream.name = "rec.jsonl"
    got: list[Record] = []
    with RecordingReader(stream) as reader, pytest.raises(RecordingError) as info:
        got.extend(reader)
    assert [r.line_no for r in got] == [2, 3]  # everything before the bad line was delivered
    assert info.value.line_no == 4
    assert str(info.value).startswith("rec.jsonl:4: not JSON")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (json.dumps({"sensor": "chest", "char": IMU, "hex": "01"}), "lacks t"),
        ('{"t": null, "event": "pain"}', "lacks t"),
        ('{"t": "12.5", "sensor": "chest"}', "t must be a finite number"),
        ('{"t": true, "sensor": "chest"}', "t must be a finite number"),
        ('{"t": -0.5, "sensor": "chest"}', "t must be a finite number"),
        ('{"t": NaN, "sensor": "chest"}', "t must be a finite number"),
        ('{"t": Infinity, "sensor": "chest"}', "t must be a finite number"),
        ("[1, 2]", "not a JSON object"),
        ('"t"', "not a JSON object"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_line_without_a_usable_t_is_an_error(line: str, reason: str) -> None:
    with pytest.raises(RecordingError, match=rf"^rec\.jsonl:3: {reason}"):
        read_all(recording_text(notif(1.0), line, notif(2.0)))


@pytest.mark.parametrize(
    "line",
    [
        notif(2.0, sensor="wrist"),
        json.dumps({"t": 2.0, "char": IMU, "hex": "01"}),
        json.dumps({"t": 2.0, "sensor": ["chest"], "char": IMU, "hex": "01"}),
        '{"t": 2.0, "event": "connect", "sensor": "wrist"}',
        '{"t": 2.0, "event": "disconnect"}',
    ],
)
def test_sensor_missing_from_header_is_an_error(line: str) -> None:
    with pytest.raises(RecordingError) as info:
        read_all(recording_text(notif(1.0), line))
    assert info.value.line_no == 3
    assert "header sensors: chest, foot, hr, band, h10" in info.value.reason


def test_going_back_more_than_one_second_is_an_error() -> None:
    with pytest.raises(RecordingError, match=r"^rec\.jsonl:4: t=8\.5 goes back 1\.5000 s"):
        read_all(recording_text(notif(5.0), notif(10.0), notif(8.5)))


def test_going_back_up_to_one_second_passes_through_as_is() -> None:
    got = read_all(recording_text(notif(10.0), notif(9.5), notif(9.0), notif(10.25)))
    assert [r.t for r in got] == [10.0, 9.5, 9.0, 10.25]


def test_time_is_judged_against_the_latest_t_not_the_previous_line() -> None:
    # 0.3 s before the previous line, but 1.1 s before the latest.
    with pytest.raises(RecordingError) as info:
        read_all(recording_text(notif(10.0), notif(9.2), notif(8.9)))
    assert info.value.line_no == 4


def test_time_of_a_warned_line_still_counts() -> None:
    # The hex is bad, the t is fine: it moves the clock forward.
    with pytest.raises(RecordingError) as info:
        read_all(recording_text(notif(10.0, hex_text="zz"), notif(8.5)))
    assert info.value.line_no == 3


def test_parser_state_survives_a_refused_line() -> None:
    # Live ingest refuses a bad message and goes on with the next one.
    parser = LineParser(parse_header(HEADER_LINE), "mqtt raw")
    assert isinstance(parser.parse(notif(10.0), 1), Notification)
    with pytest.raises(RecordingError, match=r"^mqtt raw:2: "):
        parser.parse(notif(100.0, sensor="wrist"), 2)
    assert parser.latest_t_s == 10.0
    assert isinstance(parser.parse(notif(9.5), 3), Notification)


def test_errors_belong_to_the_one_exception_root() -> None:
    with pytest.raises(SensorsError):
        read_all(recording_text("oops"))


# --------------------------------------------------------------------------------------------
# Warnings: a BadLine in order, and the stream goes on


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (notif(2.0, hex_text="01zz"), "hex payload is not valid hex"),
        (notif(2.0, hex_text="010"), "hex payload is not valid hex"),
        (
            json.dumps({"t": 2.0, "sensor": "chest", "char": IMU}),
            "notification lacks a hex payload",
        ),
        (notif(2.0, char=HR), "is unknown for sensor 'chest' (profile runmon_imu)"),
        (notif(2.0, char="2a37"), "is unknown for sensor 'chest'"),
        ('{"t": 2.0, "sensor": "chest", "hex": "01"}', "notification lacks a char UUID"),
        ('{"t": 2.0, "event": "lap"}', "unknown event 'lap'"),
        ('{"t": 2.0, "event": null}', "unknown event None"),
        (
            '{"t": 2.0, "event": "pain", "level": 11, "location": "hip", "radiating": false}',
            "pain level must be an integer 0..10, got 11",
        ),
        (
            '{"t": 2.0, "event": "pain", "level": 4.0, "location": "hip", "radiating": false}',
            "pain level must be an integer",
        ),
        (
            '{"t": 2.0, "event": "pain", "level": 4, "location": "neck", "radiating": false}',
            "pain location must be one of low_back, mid_back, upper_back, hip, leg, other",
        ),
        (
            '{"t": 2.0, "event": "pain", "level": 4, "location": "hip"}',
            "pain radiating must be true or false",
        ),
        ('{"t": 2.0, "event": "control", "action": "pause"}', "control action must be one of"),
        (
            '{"t": 2.0, "event": "control", "action": "snooze", "minutes": -5}',
            "control minutes must be a number > 0",
        ),
        ("", "blank line"),
        ("   \t", "blank line"),
    ],
)
def test_bad_line_is_a_warning_and_the_stream_goes_on(line: str, reason: str) -> None:
    got = read_all(recording_text(notif(1.0), line, notif(3.0), notif(4.0)))
    assert [type(r) for r in got] == [Notification, BadLine, Notification, Notification]
    assert [r.line_no for r in got] == [2, 3, 4, 5]
    bad = got[1]
    assert isinstance(bad, BadLine)
    assert reason in bad.reason
    assert bad.t == (None if reason == "blank line" else 2.0)


def test_uppercase_char_is_tolerated_and_lowercased() -> None:
    (record,) = read_all(recording_text(notif(1.0, char=IMU.upper())))
    assert record == Notification(1.0, "chest", IMU, b"\x01\x01", 2)


def test_payload_that_does_not_decode_is_not_the_readers_business() -> None:
    # One byte is no valid runmon IMU frame; the pipeline decodes and counts that.
    (record,) = read_all(recording_text(notif(1.0, hex_text="ff")))
    assert record == Notification(1.0, "chest", IMU, b"\xff", 2)


def test_unknown_keys_are_ignored() -> None:
    line = json.dumps({"t": 1.0, "sensor": "hr", "char": HR, "hex": "0048", "rssi_dbm": -60})
    assert read_all(recording_text(line)) == [Notification(1.0, "hr", HR, b"\x00\x48", 2)]


def test_partial_last_line_is_a_warning_after_all_earlier_records() -> None:
    text = recording_text(notif(1.0), notif(2.0), '{"t": 3.0, "sensor": "ch', final_newline=False)
    got = read_all(text)
    assert [r.line_no for r in got] == [2, 3, 4]
    assert got[-1] == BadLine(None, 4, PARTIAL_LAST_LINE)


def test_last_line_without_newline_that_is_json_is_a_normal_record() -> None:
    got = read_all(recording_text(notif(1.0), notif(2.0), final_newline=False))
    assert got == [
        Notification(1.0, "chest", IMU, b"\x01\x01", 2),
        Notification(2.0, "chest", IMU, b"\x01\x01", 3),
    ]


def test_garbage_in_the_middle_is_not_mistaken_for_a_partial_line() -> None:
    with pytest.raises(RecordingError) as info:
        read_all(recording_text('{"t": 3.0, "sensor": "ch', notif(4.0)))
    assert info.value.line_no == 2


def test_invalid_utf8_is_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    line = notif(1.0, hex_text="01").encode().replace(b"01", b"\xff\xfe", 1)
    path.write_bytes(recording_text().encode() + line + b"\n" + notif(2.0).encode() + b"\n")
    with RecordingReader(path) as reader:
        got = list(reader)
    assert isinstance(got[0], BadLine)
    assert "not valid hex" in got[0].reason
    assert isinstance(got[1], Notification)


# --------------------------------------------------------------------------------------------
# Header


def test_header_error_names_the_field() -> None:
    raw = header_dict()
    raw["sensors"][0]["profile"] = "runmon_imu2"
    with pytest.raises(RecordingHeaderError) as info:
        read_all(recording_text(header=json.dumps(raw)))
    assert str(info.value).startswith(
        "rec.jsonl:1: header.sensors.0.profile: Input should be 'rsc', 'heart_rate',"
    )
    assert info.value.line_no == 1
    assert info.value.field == "sensors.0.profile"
    assert isinstance(info.value, RecordingError)


def _edit(path: str, value: Any) -> dict[str, Any]:
    raw = header_dict()
    *parents, last = path.split(".")
    target: Any = raw
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("runner", "r 1", "runner", "String should match pattern"),
        ("runner", "r" * 65, "runner", "String should match pattern"),
        ("runner", _DELETE, "runner", "Field required"),
        ("started_at", "2026-11-25T07:00:00", "started_at", "needs a time zone"),
        ("started_at", 1_800_000_000, "started_at", "must be an ISO 8601 time"),
        ("started_at", "yesterday", "started_at", "Input should be a valid datetime"),
        ("sensors.1.id", "chest", "sensors", "sensor id 'chest' appears more than once"),
        ("sensors.1.id", "foot/left", "sensors.1.id", "String should match pattern"),
        ("sensors.1.speed_factor", 0, "sensors.1.speed_factor", "greater than 0"),
        ("sensors.1.speed_factor", 3.5, "sensors.1.speed_factor", "less than or equal to 3"),
        ("sensors.1.speed_factor", "1.0", "sensors.1.speed_factor", "valid number"),
        ("sensors.1.cadence_unit", "spm", "sensors.1.cadence_unit", "Input should be 'steps'"),
        ("sensors.0.placement", "wrist", "sensors.0.placement", "Input should be 'chest'"),
        ("sensors.0.mount.up", "+q", "sensors.0.mount.up", "Input should be '+x'"),
        ("sensors.0.mount.up", "-x", "sensors.0.mount", "must be three different sensor axes"),
        ("sensors.0.mount.up", "-z", "sensors.0.mount", "is left-handed"),
        ("runner_profile.hr_max_bpm", 19, "runner_profile.hr_max_bpm", "greater than or equal"),
        ("runner_profile.hr_max_bpm", 190.0, "runner_profile.hr_max_bpm", "valid integer"),
        ("format", "runmon-rec", "format", "not a runmon recording"),
        ("version", 2, "version", "unsupported version 2"),
        ("version", "1", "version", "unsupported version '1'"),
        ("version", 1.0, "version", "unsupported version 1.0"),
        ("sensors", _DELETE, "sensors", "Field required"),
    ],
)
def test_header_field_errors(path: str, value: Any, field: str, message: str) -> None:
    with pytest.raises(RecordingHeaderError) as info:
        parse_header(json.dumps(_edit(path, value)), "rec.jsonl")
    assert info.value.field == field
    assert str(info.value).startswith(f"rec.jsonl:1: header.{field}: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("\n" + notif(1.0) + "\n", "empty"),
        ("{not json\n", "header is not JSON"),
        (notif(1.0)[:-5], "header is not JSON"),
        ("[]\n", "header is not a JSON object"),
        ('{"format": "runmon-recording", "version": 1, "meta": {"x": NaN}}', "NaN is not JSON"),
        (notif(1.0) + "\n", "not a runmon recording"),
    ],
)
def test_header_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text(content)
    with pytest.raises(RecordingHeaderError, match=rf"^{path}:1: .*{message}"):
        RecordingReader(path)


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text(recording_text(notif(1.0)), encoding="utf-8-sig")
    with RecordingReader(path) as reader:
        assert reader.header.runner == "r1"
        assert len(list(reader)) == 1


def test_missing_file_is_a_header_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingHeaderError, match=r":1: cannot open \(No such file"):
        RecordingReader(tmp_path / "nope.jsonl")


def test_started_at_with_an_offset_is_kept_as_utc() -> None:
    header = parse_header(json.dumps(_edit("started_at", "2026-11-25T08:00:00+01:00")))
    assert header.started_at == datetime(2026, 11, 25, 7, tzinfo=UTC)
    out = io.StringIO()
    RecordingWriter(out, header).close()
    assert json.loads(out.getvalue())["started_at"] == "2026-11-25T07:00:00Z"


def test_effective_mount_is_declared_else_profile_default_else_none() -> None:
    chest = SensorSpec(
        id="c", profile="runmon_imu", mount=MountSpec(forward="-y", left="+x", up="+z")
    )
    assert chest.effective_mount == MountSpec(forward="-y", left="+x", up="+z")
    assert SensorSpec(id="c", profile="runmon_imu").effective_mount == MountSpec(
        forward="+x", left="+y", up="+z"
    )
    assert SensorSpec(id="h", profile="polar_pmd").effective_mount == MountSpec(
        forward="+z", left="+x", up="+y"
    )
    assert SensorSpec(id="f", profile="rsc").effective_mount is None


def test_every_right_handed_mount_is_accepted_and_no_other() -> None:
    axes = ["+x", "-x", "+y", "-y", "+z", "-z"]
    accepted = 0
    for forward in axes:
        for left in axes:
            for up in axes:
                try:
                    MountSpec.model_validate({"forward": forward, "left": left, "up": up})
                except ValueError:
                    continue
                accepted += 1
    assert accepted == 24  # the rotation group of the cube


def test_header_lookup_and_defaults() -> None:
    header = RecordingHeader(
        format="runmon-recording",
        version=1,
        runner="r1",
        started_at=datetime(2026, 11, 25, 7, tzinfo=UTC),
        sensors=[SensorSpec(id="foot", profile="rsc")],
    )
    foot = header.sensor("foot")
    assert foot is not None
    assert (foot.cadence_unit, foot.speed_factor) == ("auto", 1.0)
    assert header.sensor("chest") is None
    assert header.runner_profile.hr_max_bpm is None
    assert header.meta == {}
    assert header.meta is not RecordingHeader.model_validate(header.model_dump()).meta


# --------------------------------------------------------------------------------------------
# Streaming


class _LineByLine:
    """A pipe-like stream: lines come from a generator, and reading it all at once is a bug."""

    name = "<generator>"

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines

    def readline(self, size: int = -1, /) -> str:
        return next(self._lines, "")

    def read(self, size: int = -1, /) -> str:
        raise AssertionError("the reader must not read the whole stream")


def test_reader_yields_the_first_record_before_the_rest_is_written() -> None:
    produced: list[int] = []

    def producer() -> Iterator[str]:
        yield HEADER_LINE + "\n"
        for i in range(1000):
            produced.append(i)
            yield notif(float(i)) + "\n"

    # Only what a reader may use of a TextIO; the cast says so.
    with RecordingReader(cast(TextIO, _LineByLine(producer()))) as reader:
        records = iter(reader)
        first = next(records)
        assert first == Notification(0.0, "chest", IMU, b"\x01\x01", 2)
        assert produced == [0]
        assert sum(1 for _ in records) == 999


def test_reader_follows_a_pipe_while_it_is_being_written() -> None:
    read_fd, write_fd = os.pipe()
    rest_may_come = threading.Event()
    waited_in_vain: list[bool] = []

    def recorder() -> None:
        with os.fdopen(write_fd, "w") as pipe:
            pipe.write(recording_text(notif(1.0)))
            pipe.flush()
            # A reader that wanted the whole stream first would still be waiting here.
            waited_in_vain.append(not rest_may_come.wait(timeout=5.0))
            pipe.write(notif(2.0) + "\n")

    thread = threading.Thread(target=recorder)
    thread.start()
    try:
        with os.fdopen(read_fd) as pipe, RecordingReader(pipe) as reader:
            records = iter(reader)
            assert next(records).t == 1.0
            rest_may_come.set()
            assert [r.t for r in records] == [2.0]
    finally:
        rest_may_come.set()
        thread.join()
    assert waited_in_vain == [False]


def test_memory_stays_bounded_on_a_long_recording(tmp_path: Path) -> None:
    # 30k realistic IMU lines (~17 MB) instead of 100k short ones: more bytes to accumulate if
    # the reader did, in a third of the time under tracemalloc (100k lines take ~1.7 s).
    path = tmp_path / "long.jsonl"
    hex_text = bytes(range(240)).hex()
    with path.open("w") as out:
        out.write(HEADER_LINE + "\n")
        out.writelines(
            f'{{"t":{i / 100},"sensor":"chest","char":"{IMU}","hex":"{hex_text}"}}\n'
            for i in range(30_000)
        )
    file_size_bytes = path.stat().st_size
    assert file_size_bytes > 16_000_000
    count = 0
    tracemalloc.start()
    try:
        with RecordingReader(path) as reader:
            for _ in reader:
                count += 1
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    assert peak_bytes < 200_000  # ~40 kB measured; 1 % of the file: nothing accumulates


# --------------------------------------------------------------------------------------------
# Writer


def test_writer_flushes_each_second_of_recording_time(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    with RecordingWriter(path, parse_header(HEADER_LINE)) as writer:
        assert path.read_text().count("\n") == 1  # the header is on disk at once
        for i in range(10):
            writer.write_notification(0.1 * i, "band", uuids.RUNMON_BREATH_DATA, b"\x01")
        assert path.read_text().count("\n") == 1  # not a flush per line
        writer.write_notification(1.05, "band", uuids.RUNMON_BREATH_DATA, b"\x01")
        on_disk = path.read_text().splitlines()
        assert len(on_disk) == 12
        assert json.loads(on_disk[-1])["t"] == 1.05
        writer.write_notification(1.5, "band", uuids.RUNMON_BREATH_DATA, b"\x01")
        assert len(path.read_text().splitlines()) == 12
    assert len(path.read_text().splitlines()) == 13  # and on close


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda w: w.write_notification(8.5, "chest", IMU, b""), "goes back more than 1 s"),
        (lambda w: w.write_pain(8.9, 1, "hip", False), "goes back more than 1 s"),
        (lambda w: w.write_notification(11.0, "wrist", IMU, b""), "'wrist' is not in the header"),
        (lambda w: w.write_connection(11.0, "wrist", "connect"), "'wrist' is not in the header"),
        (lambda w: w.write_notification(11.0, "chest", "2a37", b""), "full 128-bit UUID"),
        (lambda w: w.write_notification(float("nan"), "chest", IMU, b""), "finite number"),
        (lambda w: w.write_notification(-1.0, "chest", IMU, b""), "finite number"),
        (lambda w: w.write_pain(11.0, 11, "hip", False), "integer 0..10"),
        (lambda w: w.write_pain(11.0, 4, "neck", False), "pain location"),
        (lambda w: w.write_control(11.0, "pause"), "control action"),
        (lambda w: w.write_control(11.0, "snooze", 0), "minutes must be > 0"),
        (lambda w: w.write_connection(11.0, "chest", "lost"), "connect or disconnect"),
    ],
)
def test_writer_refuses_what_the_reader_would_refuse(write: Any, message: str) -> None:
    out = io.StringIO()
    with RecordingWriter(out, parse_header(HEADER_LINE)) as writer:
        writer.write_notification(10.0, "chest", IMU, b"")
        with pytest.raises(ValueError, match=message):
            write(writer)
        writer.write_notification(9.0, "chest", IMU, b"")  # exactly 1 s back is fine
    assert len(read_all(out.getvalue())) == 2


def test_writer_refuses_bad_lines_and_writes_after_close() -> None:
    out = io.StringIO()
    writer = RecordingWriter(out, parse_header(HEADER_LINE))
    with pytest.raises(TypeError):
        writer.write_record(BadLine(1.0, 3, "blank line"))
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="write after close"):
        writer.write_control(1.0, "start")
