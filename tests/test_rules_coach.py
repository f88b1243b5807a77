"""The coach on synthetic metric streams: baselines from steady running, sustain, cooldown."""

from __future__ import annotations

import itertools

import pytest

from rules.baseline import Baselines
from rules.catalog import CATALOG, FORM_CODES
from rules.coach import Coach
from rules.config import RuleConfig, parse_rule_config
from rules.errors import RuleConfigError


def _row(speed: float, cadence: float) -> dict[str, float | None]:
    return {
        "speed_mps": speed,
        "cadence_spm": cadence,
        "stride_length_m": speed / (cadence / 60.0) if cadence > 0 else None,
    }


def _run(coach: Coach, start_s: int, end_s: int, speed: float, cadence: float) -> list[str]:
    codes: list[str] = []
    for t in range(start_s, end_s):
        codes += [f"{c.code}@{t}" for c in coach.update(float(t), _row(speed, cadence))]
    return codes


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
    assert baseline.speed_band == 6  # 3.0–3.5 m/s
    assert baseline.metrics["cadence_spm"] == pytest.approx(170.0)
    # Steady from 60 s of running; minutes 2–5 of it end 300 s after the stretch began.
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


def test_rule_file_overrides_and_names_bad_fields() -> None:
    config = parse_rule_config("[form.stride_shorten]\nsustain_s = 30\n")
    assert config.form.stride_shorten.sustain_s == 30
    assert config.scheduling.same_code_cooldown_s == RuleConfig().scheduling.same_code_cooldown_s
    with pytest.raises(RuleConfigError, match=r"form\.stride_shorten\.sustain_s"):
        parse_rule_config("[form.stride_shorten]\nsustain_s = -1\n", "mine.toml")
    with pytest.raises(RuleConfigError, match=r"mine\.toml: form\.stride_shorten\.sustian_s"):
        parse_rule_config("[form.stride_shorten]\nsustian_s = 3\n", "mine.toml")
