"""Every form cue end to end: a simulated runner with the fault, through the real decoders,
estimators and rules. Each fault scenario runs normally for 8 minutes (a baseline forms), then
shows a realistic, moderate fault; its cue must come within 60 s of the onset, and no other form
cue may come at all. A steady run gets none."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.analyze import analyze_recording
from rules.catalog import FORM_CODES
from simulators.scenario import load_scenario
from simulators.session import write_recording


@pytest.mark.parametrize("code", FORM_CODES)
def test_form_fault_is_cued_within_a_minute_and_nothing_else(tmp_path: Path, code: str) -> None:
    scenario = load_scenario(code)
    assert scenario.fault_onset_s is not None
    assert scenario.expected_cues == (code,)
    path = tmp_path / f"{code}.jsonl"
    write_recording(scenario, path, seed=21)
    form = [c for c in analyze_recording(path).cues if c.code in FORM_CODES]
    assert form, f"{code} was not cued"
    assert {c.code for c in form} == {code}
    assert scenario.fault_onset_s < form[0].t_s <= scenario.fault_onset_s + 60
    assert form[0].evidence["sustained_s"] >= 20


def test_steady_run_gets_no_form_cue_but_the_warmup_checklist(tmp_path: Path) -> None:
    path = tmp_path / "steady.jsonl"
    write_recording(load_scenario("steady"), path, seed=22)
    cues = analyze_recording(path).cues
    assert [c for c in cues if c.code in FORM_CODES] == []
    codes = [c.code for c in cues]
    # A chest strap is worn: calibrate, then the checklist; running starts a minute in.
    assert codes[:2] == ["calibrate_stand", "warmup_core"]
    assert "warmup_incomplete" in codes


def _cues(tmp_path: Path, name: str) -> list[tuple[str, float]]:
    path = tmp_path / f"{name}.jsonl"
    write_recording(load_scenario(name), path, seed=23)
    analysis = analyze_recording(path)
    assert analysis.errors == 0
    return [(c.code, c.t_s) for c in analysis.cues]


def test_a_full_warmup_then_a_run_and_a_cooldown(tmp_path: Path) -> None:
    cues = _cues(tmp_path, "warmup_full")
    assert [code for code, _ in cues] == [
        "calibrate_stand",
        "warmup_core",
        "warmup_glutes",
        "warmup_dynamic",
        "warmup_stretch",
        "warmup_rotation",
        "cooldown_stretch",
        "foam_roll",
    ]
    # HR passed 60 % of HRmax before the run: no warmup_incomplete. The run slows to a stop
    # over 1230-1240 s: the cool-down comes 3 minutes into the stand, the foam roller a
    # minute later.
    times = dict(cues)
    assert 1230 + 180 <= times["cooldown_stretch"] <= 1240 + 190
    assert times["foam_roll"] - times["cooldown_stretch"] >= 60


def test_traffic_lights_are_not_a_cooldown(tmp_path: Path) -> None:
    cues = _cues(tmp_path, "traffic_lights")
    cooldowns = [t for code, t in cues if code == "cooldown_stretch"]
    # Two stops of 69 and 84 s at lights; only the 5-minute stop at the end is a cool-down.
    assert len(cooldowns) == 1
    assert cooldowns[0] >= 1500 + 180
    assert "foam_roll" in [code for code, _ in cues]


def test_pain_reports_are_answered_by_when_how_much_and_where(tmp_path: Path) -> None:
    pain = [
        (code, t)
        for code, t in _cues(tmp_path, "pain_reports")
        if code.startswith("pain") or code == "see_pt"
    ]
    assert [code for code, _ in pain] == [
        "pain_start",  # 6 minutes into the run
        "pain_mid",  # mid-run, hip
        "see_pt",  # radiating: see a physical therapist ...
        "pain_mid",  # ... and the mid-run advice
        "pain_severe",  # level 8: stop and walk (no form advice)
        "pain_after",  # during the cool-down stand
    ]
    assert [round(t) for _, t in pain] == [420, 900, 1140, 1141, 1380, 1775]
