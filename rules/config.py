"""Rule configuration: thresholds, sustain times and scheduling, with DESIGN §1's defaults.

Written by people as TOML (``--rules FILE``); every field is optional and falls back to the
shipped default, so a file only says what it changes. Unknown fields are errors: a typo must not
silently leave a default in place.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules.errors import RuleConfigError

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0, le=3600.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchedulingConfig(_Section):
    """How often cues may speak (DESIGN §1 scheduling defaults)."""

    same_code_cooldown_s: Seconds = 120.0
    form_min_gap_s: Seconds = 45.0
    max_form_cues_per_hour: Annotated[int | None, Field(ge=1)] = None


class SteadyConfig(_Section):
    """What counts as steady running, and when the personal baseline is learned."""

    speed_tolerance_mps: Annotated[float, Field(gt=0.0, le=2.0)] = 0.3
    cadence_tolerance_spm: Annotated[float, Field(gt=0.0, le=30.0)] = 5.0
    min_duration_s: Seconds = 60.0
    baseline_from_s: Seconds = 120.0
    baseline_until_s: Seconds = 300.0
    speed_band_mps: Annotated[float, Field(gt=0.0, le=5.0)] = 0.5
    #: A baseline needs this share of its window's seconds to hold a value of the metric.
    min_coverage: Fraction = 0.5


class PhaseConfig(_Section):
    """When the runner counts as running."""

    running_from_speed_mps: Annotated[float, Field(gt=0.0, le=5.0)] = 1.8
    running_from_cadence_spm: Annotated[float, Field(gt=0.0, le=250.0)] = 140.0
    running_after_s: Seconds = 5.0


class StrideShortenConfig(_Section):
    """Over-striding: longer strides and lower cadence at the same speed (DESIGN §1)."""

    enabled: bool = True
    speed_tolerance_mps: Annotated[float, Field(gt=0.0, le=2.0)] = 0.3
    stride_above_baseline_rel: Fraction = 0.06
    cadence_below_baseline_rel: Fraction = 0.05
    smoothing_s: Seconds = 10.0
    sustain_s: Seconds = 20.0
    #: The deviation must fall back below this share of its threshold to re-arm the rule.
    hysteresis_rel: Fraction = 0.5


class FormRulesConfig(_Section):
    stride_shorten: StrideShortenConfig = StrideShortenConfig()


class RuleConfig(_Section):
    """Everything the coach is tuned by."""

    language: str = "en"
    scheduling: SchedulingConfig = SchedulingConfig()
    steady: SteadyConfig = SteadyConfig()
    phases: PhaseConfig = PhaseConfig()
    form: FormRulesConfig = FormRulesConfig()


def parse_rule_config(text: str, source: str = "<rules>") -> RuleConfig:
    """Validate rule TOML; errors name the source and the dotted path of the bad field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return RuleConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise RuleConfigError(f"{source}: {loc}: {first['msg']}") from exc


def load_rule_config(path: str | Path) -> RuleConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleConfigError(f"{source}: cannot read rules: {exc.strerror}") from exc
    return parse_rule_config(text, source)
