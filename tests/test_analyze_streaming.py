"""``runmon analyze`` streams its document: the same JSON as the in-memory analysis, written row
by row, with peak memory that does not grow with the recording."""

from __future__ import annotations

import gc
import io
import json
import math
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.analyze import analyze_recording, analyze_to_json, summarize_metrics
from monitor.history import History
from monitor.metrics import METRIC_DECIMALS, METRIC_NAMES, MetricRow, MetricValue
from sensors.errors import RecordingError
from simulators.scenario import Scenario, load_scenario
from simulators.session import write_recording

RUNMON = str(Path(sys.executable).with_name("runmon"))


def _insert_at(lines: list[str], t_s: float, line: dict[str, Any]) -> int:
    """Insert ``line`` before the first record later than ``t_s``; returns its index."""
    index = next(i for i, ln in enumerate(lines) if i > 0 and json.loads(ln)["t"] > t_s)
    lines.insert(index, json.dumps({"t": t_s, **line}) + "\n")
    return index


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four minutes of ``steady`` with a pain report, an undecodable payload and an unknown
    event: rows, cues, warnings and a baseline-free summary all appear in the document."""
    path = tmp_path_factory.mktemp("rec") / "steady.jsonl"
    scenario = load_scenario("steady").model_copy(update={"duration_s": 240.0})
    write_recording(scenario, path, seed=3)
    lines = path.read_text().splitlines(keepends=True)
    _insert_at(
        lines, 150.0, {"event": "pain", "level": 4, "location": "low_back", "radiating": False}
    )
    _insert_at(lines, 160.0, {"event": "teleport"})
    rsc = next(i for i, ln in enumerate(lines) if "2a53" in ln and json.loads(ln)["t"] > 170)
    broken = json.loads(lines[rsc])
    broken["hex"] = broken["hex"][:4]
    lines[rsc] = json.dumps(broken) + "\n"
    path.write_text("".join(lines))
    return path


def test_streamed_document_equals_the_in_memory_analysis(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = analyze_to_json(recording, out)
    analysis = analyze_recording(recording)
    expected = analysis.to_json()
    text = out.read_text()
    assert text.endswith("}\n")
    assert text.count("\n") == 1
    assert json.loads(text) == expected
    assert expected["cues"]
    assert expected["summary"]["errors"] == 2
    assert len(expected["summary"]["warnings"]) == 2
    assert result.row_count == len(expected["series"]) == int(result.duration_s)
    assert [c.to_json() for c in result.cues] == expected["cues"]
    # An open stream receives the same document.
    stream = io.StringIO()
    analyze_to_json(recording, stream)
    assert stream.getvalue() == text


def test_cli_streams_to_a_file_and_to_stdout(recording: Path, tmp_path: Path) -> None:
    expected = analyze_recording(recording).to_json()
    out = tmp_path / "cli.json"
    to_file = subprocess.run(
        [RUNMON, "analyze", str(recording), "--json", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert to_file.returncode == 0, to_file.stderr
    assert json.loads(out.read_text()) == expected
    assert f"-> {out}" in to_file.stdout
    to_stdout = subprocess.run(
        [RUNMON, "analyze", str(recording), "--json", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == out.read_text()  # only the document on stdout
    assert json.loads(to_stdout.stdout) == expected
    assert "analyzed" in to_stdout.stderr
    assert "-> stdout" in to_stdout.stderr


def test_a_fatal_line_leaves_the_previous_document_untouched(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    write_recording(load_scenario("steady"), path, seed=1, duration_s=30)
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(len(lines) // 2, "this is not json\n")
    path.write_text("".join(lines))
    out = tmp_path / "out.json"
    out.write_text("previous\n")
    with pytest.raises(RecordingError):
        analyze_to_json(path, out)
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "run.jsonl"]


def test_history_stores_the_streamed_summary(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with History(tmp_path / "streamed.sqlite") as history:
        analyze_to_json(recording, out, history=history)
        (stored,) = history.sessions("r1")
    with History(tmp_path / "in_memory.sqlite") as history:
        analyze_recording(recording, history=history)
        (in_memory,) = history.sessions("r1")
    doc = json.loads(out.read_text())
    assert stored["summary"] == doc["summary"] == in_memory["summary"]
    assert stored["duration_s"] == in_memory["duration_s"]


def _rows_from(recording: Path) -> list[MetricRow]:
    return analyze_recording(recording).rows


def _random_rows(_: Path) -> list[MetricRow]:
    """A thousand rows (several of the summary's batches), values missing now and then."""
    rng = np.random.default_rng(7)
    return [
        MetricRow(
            t_s,
            "running",
            {
                name: MetricValue(None, "stale")
                if rng.random() < 0.2
                else MetricValue(float(rng.normal(100.0, 30.0)), "ok")
                for name in METRIC_NAMES
            },
        )
        for t_s in range(1000)
    ]


@pytest.mark.parametrize("make_rows", [_rows_from, _random_rows])
def test_running_summary_matches_the_batch_formula(
    recording: Path, make_rows: Callable[[Path], list[MetricRow]]
) -> None:
    rows = make_rows(recording)
    got = summarize_metrics(rows)
    for name in METRIC_NAMES:
        values = [v for row in rows if (v := row.value(name)) is not None]
        digits = METRIC_DECIMALS[name]
        if values:
            want: dict[str, float | None] = {
                "mean": round(math.fsum(values) / len(values), digits),
                "min": round(min(values), digits),
                "max": round(max(values), digits),
                "coverage": round(len(values) / len(rows), 4),
            }
        else:
            want = {"mean": None, "min": None, "max": None, "coverage": 0.0}
        assert got[name] == want, name


def _peak_bytes(path: Path, out: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        analyze_to_json(path, out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_recording(tmp_path: Path) -> None:
    """7 min against 28 min: the longer run's rows (and document) are not held anywhere.

    Both runs are past the session's own warm-up (baseline learning, minutes 2-6), which is
    bounded but makes shorter runs peak lower. Without the chest strap, to stay fast; the IMU's
    sample timers fill bounded drift windows over the first ten minutes likewise.
    """
    steady = load_scenario("steady")
    scenario: Scenario = steady.model_copy(
        update={"sensors": {k: v for k, v in steady.sensors.items() if k != "chest"}}
    )
    short, long = tmp_path / "short.jsonl", tmp_path / "long.jsonl"
    write_recording(scenario.model_copy(update={"duration_s": 420.0}), short, seed=1)
    write_recording(scenario.model_copy(update={"duration_s": 1680.0}), long, seed=1)
    analyze_to_json(long, os.devnull)  # first use: lazy imports and caches, not the replay's
    short_out, long_out = tmp_path / "short.json", tmp_path / "long.json"
    short_peak = _peak_bytes(short, short_out)
    long_peak = _peak_bytes(long, long_out)
    extra_doc = long_out.stat().st_size - short_out.stat().st_size
    assert extra_doc > 500_000  # 21 more minutes of rows
    # Keeping the rows (or the document) would add more than the extra document's size.
    assert long_peak - short_peak < extra_doc / 8, (short_peak, long_peak, extra_doc)
