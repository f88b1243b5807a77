"""The thin slice offline: a simulated recording through the real decoders, estimators and rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.analyze import analyze_recording
from monitor.metrics import METRIC_NAMES
from rules.catalog import FORM_CODES
from simulators.scenario import load_scenario
from simulators.session import write_recording


@pytest.fixture(scope="module")
def stride_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "stride.jsonl"
    write_recording(load_scenario("stride_shorten"), path, seed=7)
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stride_shorten_scenario_is_cued_within_a_minute_of_the_fault(
    tmp_path: Path, seed: int
) -> None:
    scenario = load_scenario("stride_shorten")
    path = tmp_path / "rec.jsonl"
    write_recording(scenario, path, seed=seed)
    analysis = analyze_recording(path)
    assert scenario.fault_onset_s is not None
    form = [c for c in analysis.cues if c.code in FORM_CODES]
    assert form, "the fault must be cued"
    assert {c.code for c in form} == {"stride_shorten"}
    first = form[0]
    assert scenario.fault_onset_s < first.t_s <= scenario.fault_onset_s + 60
    assert first.evidence["metric"] == "stride_length_m"
    assert first.evidence["value"] > first.evidence["baseline"] * 1.06


def test_steady_run_gets_no_form_cue(tmp_path: Path) -> None:
    path = tmp_path / "steady.jsonl"
    write_recording(load_scenario("steady"), path, seed=11)
    analysis = analyze_recording(path)
    assert [c for c in analysis.cues if c.code in FORM_CODES] == []
    assert analysis.baselines, "30 min of steady running must teach a baseline"


def test_analysis_json_has_every_field_per_second(stride_recording: Path) -> None:
    doc = analyze_recording(stride_recording).to_json()
    assert doc["runner"] == "r1"
    assert 899 <= doc["duration_s"] <= 900
    series = doc["series"]
    assert [row["t_s"] for row in series] == list(range(1, len(series) + 1))
    assert len(series) == int(doc["duration_s"])
    for row in series:
        assert set(row) == {"t_s", "phase", "quality", *METRIC_NAMES}
        assert set(row["quality"]) == set(METRIC_NAMES)
    # Footpod-only: no trunk metrics, and they say so.
    assert all(row["trunk_lean_deg"] is None for row in series)
    assert {row["quality"]["trunk_lean_deg"] for row in series} == {"missing"}
    running = [row for row in series if row["phase"] == "running"]
    assert running
    assert sum(row["cadence_spm"] is not None for row in running) / len(running) >= 0.99
    for cue in doc["cues"]:
        assert set(cue) == {"t_s", "code", "text", "priority", "evidence"}
    # Running starts a minute in: the warm-up was skipped, and the coach says so.
    assert [c["code"] for c in doc["cues"] if c["t_s"] < 480] == [
        "warmup_core",
        "warmup_incomplete",
    ]
    stride = next(c for c in doc["cues"] if c["code"] == "stride_shorten")
    assert stride["text"] == "Shorten your stride: quicker, lighter steps."
    summary = doc["summary"]
    assert summary["errors"] == 0
    assert summary["warnings"] == []
    assert set(summary["metrics"]) == set(METRIC_NAMES)
    assert summary["baseline"], "the baseline learned is reported"
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN sneaks in


def test_analysis_is_deterministic(stride_recording: Path) -> None:
    first = analyze_recording(stride_recording).to_json()
    second = analyze_recording(stride_recording).to_json()
    assert first == second


def test_causal_prefix_gives_prefix_of_full_analysis(
    stride_recording: Path, tmp_path: Path
) -> None:
    cut_s = 540.0  # after the fault's onset, so the prefix holds a cue too
    lines = stride_recording.read_text().splitlines(keepends=True)
    prefix = [lines[0]] + [ln for ln in lines[1:] if json.loads(ln)["t"] <= cut_s]
    prefix_path = tmp_path / "prefix.jsonl"
    prefix_path.write_text("".join(prefix))
    full = analyze_recording(stride_recording).to_json()
    part = analyze_recording(prefix_path).to_json()
    n = len(part["series"])
    assert n == int(cut_s) - 1 or n == int(cut_s)
    assert part["series"] == full["series"][:n]
    assert part["cues"] == [c for c in full["cues"] if c["t_s"] <= n]
    assert part["cues"], "the prefix reaches past the first cue"


def test_simulation_is_deterministic_per_seed(tmp_path: Path) -> None:
    scenario = load_scenario("stride_shorten")
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_recording(scenario, a, seed=5, duration_s=120)
    write_recording(scenario, b, seed=5, duration_s=120)
    write_recording(scenario, c, seed=6, duration_s=120)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_bad_lines_are_counted_and_the_stream_goes_on(
    stride_recording: Path, tmp_path: Path
) -> None:
    lines = stride_recording.read_text().splitlines(keepends=True)
    rsc_index = next(i for i, ln in enumerate(lines) if "2a53" in ln and i > 100)
    broken = json.loads(lines[rsc_index])
    broken["hex"] = broken["hex"][:4]  # truncated RSC payload: does not decode
    lines[rsc_index] = json.dumps(broken) + "\n"
    lines.insert(rsc_index + 1, json.dumps({"t": broken["t"], "event": "teleport"}) + "\n")
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(lines))
    analysis = analyze_recording(path)
    assert analysis.errors == 2
    assert f"line {rsc_index + 1}:" in analysis.warnings[0]
    assert "RSC" in analysis.warnings[0]
    assert f"line {rsc_index + 2}:" in analysis.warnings[1]
    assert "stride_shorten" in [c.code for c in analysis.cues]
