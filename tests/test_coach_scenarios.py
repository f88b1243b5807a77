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
