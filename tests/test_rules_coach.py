"""The coach on synthetic metric streams: baselines from steady running, each form rule with its
sustain, hysteresis and fading, scheduling, warm-up and cool-down phases, pain and controls."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from rules.baseline import Baselines
from rules.catalog import CATALOG, FORM_CODES
from rules.coach import Coach, CueDecision, SessionContext
from rules.config import RuleConfig, parse_rule_config
from rules.errors import RuleConfigError

Row = dict[str, float | None]
Quality = dict[str, str]

GOOD: Row = {
    "speed_mps": 3.2,
    "cadence_spm": 172.0,
    "stride_length_m": 3.2 / (172.0 / 60.0),
    "trunk_lean_deg": 8.0,
    "trunk_rotation_deg": 14.0,
    "vertical_oscillation_cm": 8.0,
    "lateral_sway_cm": 3.0,
    "breathing_rate_bpm": 43.0,
    "breath_depth_rel": 1.0,
    "heart_rate_bpm": 150.0,
    "lean_variability_deg": 0.5,
}
STANDING: Row = {"speed_mps": 0.0, "cadence_spm": 0.0, "heart_rate_bpm": 80.0}
CALIBRATED: Quality = {"trunk_lean_deg": "ok"}


def _row(speed: float, cadence: float) -> Row:
    return {
        "speed_mps": speed,
        "cadence_spm": cadence,
        "stride_length_m": speed / (cadence / 60.0) if cadence > 0 else None,
    }


def _drive(
    coach: Coach,
    start_s: int,
    end_s: int,
    row: Row | Callable[[int], Row],
    quality: Quality | None = None,
) -> list[CueDecision]:
    spoken: list[CueDecision] = []
    for t in range(start_s, end_s):
        values = row(t) if callable(row) else row
        spoken += coach.update(float(t), values, quality)
    return spoken


def _form(cues: list[CueDecision]) -> list[str]:
    return [f"{c.code}@{c.t_s:.0f}" for c in cues if c.code in FORM_CODES]


def _run(coach: Coach, start_s: int, end_s: int, speed: float, cadence: float) -> list[str]:
    return _form(_drive(coach, start_s, end_s, _row(speed, cadence)))


def _with_baseline(quality: Quality | None = None) -> Coach:
    """A coach that has stood, then run 8 minutes of good form (baseline learned)."""
    coach = Coach()
    _drive(coach, 1, 20, STANDING, quality)
    assert _form(_drive(coach, 20, 500, GOOD, quality)) == []
    assert coach.baselines
    return coach


def _first_at(cues: list[CueDecision], code: str) -> float:
    times = [c.t_s for c in cues if c.code == code]
    assert times, f"{code} was not cued; got {[c.code for c in cues]}"
    return times[0]


def test_catalog_has_every_design_code_with_ttl() -> None:
    assert set(FORM_CODES) == {
        "lean_forward",
        "lean_less",
        "core_engage",
        "arm_swing",
        "rotation_relax",
        "breathe_deep",
        "stride_shorten",
    }
    assert len(CATALOG) == 21
    assert all(CATALOG[c].ttl_s == 5.0 for c in FORM_CODES)
    assert CATALOG["see_pt"].priority == 1
    assert CATALOG["cooldown_stretch"].ttl_s == 30.0


def test_baseline_learned_over_minutes_two_to_five_of_steady_running() -> None:
    coach = Coach()
    _run(coach, 1, 20, 0.0, 0.0)
    phase_before = coach.phase
    _run(coach, 20, 600, 3.2, 170.0)
    assert (phase_before, coach.phase) == ("warmup", "running")
    assert len(coach.learned) == 1
    baseline = coach.learned[0]
    assert baseline.speed_band == 6  # 3.0-3.5 m/s
    assert baseline.metrics["cadence_spm"] == pytest.approx(170.0)
    # Steady from 60 s of running; minutes 2-5 of it end 300 s after the stretch began.
    assert 300 <= baseline.learned_at_s <= 330
    assert baseline.samples == 180


def test_no_baseline_without_steady_running() -> None:
    coach = Coach()
    for t in range(1, 900):
        # Speed swings by ±0.5 m/s every 20 s: never steady.
        speed = 3.2 + (0.5 if (t // 20) % 2 else -0.5)
        coach.update(float(t), _row(speed, 170.0))
    assert not coach.baselines


def test_stride_shorten_after_sustained_overstride_at_same_speed() -> None:
    coach = Coach()
    assert _run(coach, 1, 480, 3.2, 172.0) == []
    cues = _run(coach, 480, 600, 3.2, 155.0)
    assert cues, "over-striding for 2 minutes must be cued"
    first_t = int(cues[0].split("@")[1])
    # 10 s smoothing then 20 s sustain: spoken within 60 s of the onset, not before 20 s.
    assert 480 + 20 <= first_t <= 480 + 60
    # Same code not repeated within 2 minutes.
    times = [int(c.split("@")[1]) for c in cues]
    assert all(b - a >= 120 for a, b in itertools.pairwise(times))


def test_no_stride_cue_when_speed_changes_with_cadence() -> None:
    coach = Coach()
    _run(coach, 1, 480, 3.2, 172.0)
    # Slower and lower cadence: a different speed band, not over-striding.
    assert _run(coach, 480, 700, 2.4, 155.0) == []


def test_short_deviation_is_not_cued() -> None:
    coach = Coach()
    _run(coach, 1, 480, 3.2, 172.0)
    assert _run(coach, 480, 492, 3.2, 150.0) == []
    assert _run(coach, 492, 700, 3.2, 172.0) == []


def test_stored_baseline_is_used_from_the_start_of_a_later_run() -> None:
    first = Coach()
    _run(first, 1, 480, 3.2, 172.0)
    stored = Baselines.from_json(first.baselines.to_json())
    second = Coach(baselines=stored)
    _run(second, 1, 60, 3.2, 172.0)
    cues = _run(second, 60, 140, 3.2, 155.0)
    assert cues
    assert cues[0].startswith("stride_shorten@")


@pytest.mark.parametrize(
    ("code", "fault"),
    [
        ("lean_forward", {"trunk_lean_deg": 3.0}),
        ("lean_less", {"trunk_lean_deg": 14.0}),
        ("arm_swing", {"trunk_rotation_deg": 7.0}),
        ("rotation_relax", {"trunk_rotation_deg": 25.0}),
        ("core_engage", {"vertical_oscillation_cm": 10.5}),
        ("core_engage", {"lateral_sway_cm": 5.2}),
        ("breathe_deep", {"breath_depth_rel": 0.6}),
        ("breathe_deep", {"breathing_rate_bpm": 56.0}),
    ],
)
def test_each_form_rule_fires_on_its_fault_and_nothing_else(
    code: str, fault: dict[str, float]
) -> None:
    coach = _with_baseline()
    cues = _drive(coach, 500, 620, {**GOOD, **fault})
    assert _form(cues), f"{code} fault was not cued"
    assert {c.split("@")[0] for c in _form(cues)} == {code}
    assert 500 + 20 <= _first_at(cues, code) <= 500 + 60
    evidence = next(c.evidence for c in cues if c.code == code)
    assert evidence["sustained_s"] >= 20
    assert "baseline" in evidence or "baseline" in evidence["also"][0]


def test_core_engage_from_lean_variability_needs_more_than_noise() -> None:
    coach = _with_baseline()
    # Twice a tiny baseline spread is still noise: under the 1.5° floor.
    noise = _drive(coach, 500, 620, {**GOOD, "lean_variability_deg": 1.2})
    assert _form(noise) == []
    wobble = _drive(coach, 620, 760, {**GOOD, "lean_variability_deg": 2.2})
    assert {c.split("@")[0] for c in _form(wobble)} == {"core_engage"}


def test_absolute_lean_bands_only_when_calibrated() -> None:
    # Lean 3° everywhere from the start: only an absolute band can call it too upright.
    upright = {**GOOD, "trunk_lean_deg": 3.0}
    calibrated = Coach()
    _drive(calibrated, 1, 20, STANDING, CALIBRATED)
    cues = _drive(calibrated, 20, 200, upright, CALIBRATED)
    assert "lean_forward" in {c.code for c in cues}
    for quality in ("uncalibrated", "relative"):
        coach = Coach()
        _drive(coach, 1, 20, STANDING, {"trunk_lean_deg": quality})
        cues = _drive(coach, 20, 200, upright, {"trunk_lean_deg": quality})
        assert _form(cues) == [], quality


def test_min_gap_between_form_cues_and_priority() -> None:
    coach = _with_baseline()
    cues = _drive(coach, 500, 700, {**GOOD, "trunk_rotation_deg": 7.0, "breath_depth_rel": 0.5})
    form = [c for c in cues if c.code in FORM_CODES]
    assert {c.code for c in form} == {"arm_swing", "breathe_deep"}
    assert all(b.t_s - a.t_s >= 45 for a, b in itertools.pairwise(form))


def test_hysteresis_keeps_a_hovering_value_from_flapping() -> None:
    coach = _with_baseline()
    # Rotation 7° (cued), then hovering at 9°: above the 8.4° threshold but not back to the
    # cleared band (11.2° = halfway to baseline): still the same episode, no fading counted.
    _drive(coach, 500, 560, {**GOOD, "trunk_rotation_deg": 7.0})
    _drive(coach, 560, 600, {**GOOD, "trunk_rotation_deg": 9.0})
    rule = next(r for r in coach._rules if r.code == "arm_swing")
    assert rule.corrections == 0
    assert rule._active


def test_fading_after_a_quick_correction() -> None:
    coach = _with_baseline()
    first = _drive(coach, 500, 560, {**GOOD, "trunk_rotation_deg": 7.0})
    spoken_at = _first_at(first, "arm_swing")
    # The runner corrects right away.
    _drive(coach, 560, 800, GOOD)
    again = _drive(coach, 800, 900, {**GOOD, "trunk_rotation_deg": 7.0})
    second_at = _first_at(again, "arm_swing")
    # The second time the deviation must hold 1.5x as long before it is spoken.
    assert (second_at - 800) > (spoken_at - 500) + 5


def test_rule_file_overrides_and_names_bad_fields() -> None:
    config = parse_rule_config("[form.stride_shorten]\nsustain_s = 30\n")
    assert config.form["stride_shorten"].sustain_s == 30
    assert len(config.form["stride_shorten"].conditions) == 2
    assert config.scheduling.same_code_cooldown_s == RuleConfig().scheduling.same_code_cooldown_s
    with pytest.raises(RuleConfigError, match=r"form\.stride_shorten\.sustain_s"):
        parse_rule_config("[form.stride_shorten]\nsustain_s = -1\n", "mine.toml")
    with pytest.raises(RuleConfigError, match=r"mine\.toml: form\.stride_shorten\.sustian_s"):
        parse_rule_config("[form.stride_shorten]\nsustian_s = 3\n", "mine.toml")
    with pytest.raises(RuleConfigError, match=r"form\.arm_swing\.conditions\.0: give exactly one"):
        parse_rule_config(
            '[[form.arm_swing.conditions]]\nsignal = "trunk_rotation_deg"\nwhen = "below"\n'
        )
    with pytest.raises(RuleConfigError, match="not a form cue code"):
        parse_rule_config("[form.run_faster]\nsustain_s = 3\n")


def test_disabled_rule_stays_silent() -> None:
    config = parse_rule_config("[form.arm_swing]\nenabled = false\n")
    coach = Coach(config)
    _drive(coach, 1, 20, STANDING)
    _drive(coach, 20, 500, GOOD)
    assert _form(_drive(coach, 500, 620, {**GOOD, "trunk_rotation_deg": 7.0})) == []


# -- phases ------------------------------------------------------------------------------------


def test_warmup_checklist_is_paced_after_calibration_then_running_is_judged() -> None:
    coach = Coach(context=SessionContext(has_trunk_imu=True, hr_max_bpm=190))
    cues = _drive(coach, 1, 600, STANDING)
    codes = [c.code for c in cues]
    assert codes == [
        "calibrate_stand",
        "warmup_core",
        "warmup_glutes",
        "warmup_dynamic",
        "warmup_stretch",
        "warmup_rotation",
    ]
    times = [c.t_s for c in cues]
    assert all(b - a >= 60 for a, b in itertools.pairwise(times[1:]))
    # Ten minutes of warm-up: starting to run is fine.
    assert [c.code for c in _drive(coach, 600, 700, GOOD)] == []


def test_warmup_incomplete_when_running_starts_cold() -> None:
    coach = Coach(context=SessionContext(hr_max_bpm=190))
    _drive(coach, 1, 120, STANDING)
    cues = _drive(coach, 120, 200, {**GOOD, "heart_rate_bpm": 100.0})
    assert [c.code for c in cues] == ["warmup_incomplete"]
    assert cues[0].phase == "running"


def test_heart_rate_can_show_the_warmup_was_enough() -> None:
    coach = Coach(context=SessionContext(hr_max_bpm=190))
    _drive(coach, 1, 60, STANDING)
    _drive(coach, 60, 120, {**STANDING, "heart_rate_bpm": 125.0})  # > 60 % of 190
    assert "warmup_incomplete" not in {c.code for c in _drive(coach, 120, 200, GOOD)}


def test_traffic_light_is_not_a_cooldown_but_a_real_stop_is() -> None:
    coach = _with_baseline()
    _drive(coach, 500, 700, GOOD)
    light = _drive(coach, 700, 790, STANDING)  # 90 s at a light
    phase_at_light = coach.phase
    assert [c.code for c in light] == []
    _drive(coach, 790, 900, GOOD)
    stop = _drive(coach, 900, 1200, STANDING)
    assert (phase_at_light, coach.phase) == ("running", "cooldown")
    codes = [c.code for c in stop]
    assert codes == ["cooldown_stretch", "foam_roll"]
    stretch_at, foam_at = (c.t_s for c in stop)
    assert 900 + 180 <= stretch_at <= 900 + 182
    assert foam_at - stretch_at >= 60


def test_stop_control_starts_the_cooldown() -> None:
    coach = _with_baseline()
    coach.control(500.5, "stop")
    cues = _drive(coach, 501, 600, GOOD)
    assert [c.code for c in cues] == ["cooldown_stretch", "foam_roll"]


# -- pain --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at_s", "level", "radiating", "expected"),
    [
        (100, 4, False, ["pain_start"]),  # 80 s into running
        (900, 4, False, ["pain_mid"]),
        (900, 8, False, ["pain_severe"]),
        (900, 4, True, ["see_pt", "pain_mid"]),
        (900, 8, True, ["pain_severe", "see_pt"]),
        (900, 0, False, []),
    ],
)
def test_pain_is_triaged_by_when_how_much_and_where(
    at_s: int, level: int, radiating: bool, expected: list[str]
) -> None:
    coach = Coach()
    _drive(coach, 1, 20, STANDING)
    _drive(coach, 20, at_s, GOOD)
    coach.pain(at_s + 0.5, level, "low_back", radiating)
    cues = _drive(coach, at_s + 1, at_s + 10, GOOD)
    assert [c.code for c in cues] == expected
    for cue in cues:
        assert cue.evidence["level"] == level


def test_pain_after_the_run() -> None:
    coach = _with_baseline()
    _drive(coach, 500, 1000, GOOD)
    _drive(coach, 1000, 1300, STANDING)
    coach.pain(1300.5, 3, "low_back", False)
    cues = _drive(coach, 1301, 1310, STANDING)
    assert "pain_after" in [c.code for c in cues]


def test_recurring_back_pain_from_history_means_see_a_pt() -> None:
    coach = Coach(context=SessionContext(prior_back_pain_days_ago=(2.0, 9.0, 30.0)))
    _drive(coach, 1, 20, STANDING)
    _drive(coach, 20, 900, GOOD)
    coach.pain(900.5, 3, "low_back", False)
    cues = [c.code for c in _drive(coach, 901, 910, GOOD)]
    assert cues == ["see_pt", "pain_mid"]
    # A hip is not the back: no escalation from back-pain history.
    coach.pain(1000.5, 3, "hip", False)
    assert [c.code for c in _drive(coach, 901 + 100, 1010, GOOD)] == ["pain_mid"]


# -- controls ----------------------------------------------------------------------------------


def test_mute_silences_coaching_but_not_answers_to_pain() -> None:
    coach = _with_baseline()
    coach.control(500.0, "mute")
    muted = _drive(coach, 500, 620, {**GOOD, "trunk_rotation_deg": 7.0})
    assert _form(muted) == []
    _drive(coach, 620, 701, GOOD)
    coach.pain(700.5, 5, "low_back", False)
    assert [c.code for c in _drive(coach, 701, 710, GOOD)] == ["pain_mid"]
    coach.control(710.0, "unmute")
    unmuted = _drive(coach, 710, 800, {**GOOD, "trunk_rotation_deg": 7.0})
    assert [c.split("@")[0] for c in _form(unmuted)] == ["arm_swing"]


def test_snooze_lasts_its_minutes() -> None:
    coach = _with_baseline()
    coach.control(500.0, "snooze", 3)
    cues = _drive(coach, 500, 800, {**GOOD, "trunk_rotation_deg": 7.0})
    assert _first_at(cues, "arm_swing") >= 680


def test_same_stream_same_cues() -> None:
    def once() -> list[CueDecision]:
        coach = Coach(context=SessionContext(has_trunk_imu=True, hr_max_bpm=190))
        out = _drive(coach, 1, 30, STANDING)
        out += _drive(coach, 30, 500, GOOD)
        coach.pain(500.5, 5, "low_back", False)
        out += _drive(coach, 501, 700, {**GOOD, "trunk_rotation_deg": 25.0})
        return out

    assert once() == once()


def test_an_uncorrected_fault_is_repeated_ever_less_often() -> None:
    coach = _with_baseline()
    cues = _drive(coach, 500, 2600, {**GOOD, "trunk_rotation_deg": 7.0})
    times = [c.t_s for c in cues if c.code == "arm_swing"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == [120, 240, 480, 960]
    # Corrected, then the same fault again: the short cooldown is back.
    _drive(coach, 2600, 2700, GOOD)
    again = _drive(coach, 2700, 3000, {**GOOD, "trunk_rotation_deg": 7.0})
    times = [c.t_s for c in again if c.code == "arm_swing"]
    assert times[1] - times[0] == 120


def test_rule_signals_are_exactly_the_metrics() -> None:
    # rules/ cannot import monitor/: the two name lists are kept equal by this test.
    from typing import get_args

    from monitor.metrics import METRIC_NAMES
    from rules.config import SignalName

    assert get_args(SignalName) == METRIC_NAMES
