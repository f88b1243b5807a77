"""Rule configuration: thresholds, sustain times, phases and scheduling, with DESIGN §1's defaults.

Written by people as TOML (``--rules FILE``); every section is optional and falls back to the
shipped default, so a file only says what it changes (a form rule given in a file replaces that
rule's defaults field by field; its ``conditions``, when given, replace the default list).
Unknown fields are errors: a typo must not silently leave a default in place.

A form rule is a list of conditions on *signals* (the metrics of DESIGN §3.3 plus a few the coach
derives, e.g. ``lean_variability_deg``), joined by ``any`` or ``all``. A condition compares the
smoothed signal with a threshold that is absolute (applied only when the metric's quality is
``ok``: a lean that is ``uncalibrated`` or ``relative`` gets baseline bands only) or relative to
the runner's baseline (``baseline_delta``: baseline + delta; ``baseline_ratio``: baseline ×
ratio, optionally never closer to the baseline than ``at_least``/``at_most``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rules.catalog import CATALOG, FORM_CODES
from rules.errors import RuleConfigError

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0, le=24 * 3600.0)]

#: Signals a condition may watch: the public metrics plus what the coach derives from them.
SignalName = Literal[
    "cadence_spm",
    "speed_mps",
    "stride_length_m",
    "trunk_lean_deg",
    "trunk_rotation_deg",
    "vertical_oscillation_cm",
    "ground_contact_ms",
    "breathing_rate_bpm",
    "breath_depth_rel",
    "steps_per_breath",
    "heart_rate_bpm",
    "lateral_sway_cm",
    "lean_variability_deg",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Section):
    """One comparison of a smoothed signal with a threshold."""

    signal: SignalName
    when: Literal["below", "above"]
    absolute: float | None = None
    baseline_delta: float | None = None
    baseline_ratio: Annotated[float | None, Field(gt=0.0)] = None
    #: For ``above``: the relative threshold is at least this; for ``below``: at most this.
    at_least: float | None = None
    at_most: float | None = None
    #: Only compare against a baseline learned within this of the current speed / cadence.
    same_speed_mps: Annotated[float | None, Field(gt=0.0)] = None
    same_cadence_spm: Annotated[float | None, Field(gt=0.0)] = None

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        given = [
            name
            for name in ("absolute", "baseline_delta", "baseline_ratio")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of absolute, baseline_delta, baseline_ratio"
                f" (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def relative(self) -> bool:
        return self.absolute is None


class FormRuleConfig(_Section):
    """One form cue: when it deviates, for how long, and how it settles."""

    enabled: bool = True
    match: Literal["any", "all"] = "any"
    conditions: Annotated[tuple[Condition, ...], Field(min_length=1)]
    smoothing_s: Annotated[float, Field(ge=1.0, le=600.0)] = 10.0
    sustain_s: Seconds = 20.0
    #: Once spoken-for, the deviation must shrink to this share of its threshold's distance from
    #: the baseline before the rule clears (no flapping on a value that hovers at the line).
    hysteresis_rel: Fraction = 0.5
    #: Overrides ``scheduling.same_code_cooldown_s`` for this code.
    cooldown_s: Seconds | None = None
    #: The band shown as ``evidence.target`` (e.g. lean [4, 15]); derived when not given.
    target: tuple[float | None, float | None] | None = None


def _c(**kwargs: Any) -> Condition:
    return Condition.model_validate(kwargs)


#: DESIGN §1's default triggers, one entry per form cue code.
DEFAULT_FORM_RULES: dict[str, FormRuleConfig] = {
    "lean_forward": FormRuleConfig(
        conditions=(
            _c(signal="trunk_lean_deg", when="below", absolute=4.0),
            _c(signal="trunk_lean_deg", when="below", baseline_delta=-4.0),
        ),
        target=(4.0, 15.0),
    ),
    "lean_less": FormRuleConfig(
        conditions=(
            _c(signal="trunk_lean_deg", when="above", absolute=15.0),
            _c(signal="trunk_lean_deg", when="above", baseline_delta=5.0),
        ),
        target=(4.0, 15.0),
    ),
    "core_engage": FormRuleConfig(
        conditions=(
            _c(signal="lean_variability_deg", when="above", baseline_ratio=2.0, at_least=1.5),
            _c(signal="lateral_sway_cm", when="above", baseline_ratio=1.6),
            _c(signal="vertical_oscillation_cm", when="above", baseline_ratio=1.25),
        ),
    ),
    "arm_swing": FormRuleConfig(
        conditions=(_c(signal="trunk_rotation_deg", when="below", baseline_ratio=0.6),),
    ),
    "rotation_relax": FormRuleConfig(
        conditions=(_c(signal="trunk_rotation_deg", when="above", baseline_ratio=1.6),),
    ),
    "breathe_deep": FormRuleConfig(
        conditions=(
            _c(signal="breath_depth_rel", when="below", baseline_ratio=0.7),
            _c(
                signal="breathing_rate_bpm",
                when="above",
                baseline_ratio=1.25,
                same_speed_mps=0.3,
                same_cadence_spm=5.0,
            ),
        ),
    ),
    "stride_shorten": FormRuleConfig(
        match="all",
        conditions=(
            _c(signal="stride_length_m", when="above", baseline_ratio=1.06, same_speed_mps=0.3),
            _c(signal="cadence_spm", when="below", baseline_ratio=0.95, same_speed_mps=0.3),
        ),
    ),
}


class SchedulingConfig(_Section):
    """How often cues may speak (DESIGN §1 scheduling defaults)."""

    same_code_cooldown_s: Seconds = 120.0
    #: An uncorrected fault is repeated ever less often: each repeat multiplies the cooldown by
    #: this, up to ``max_cooldown_s``; correcting it resets the cooldown.
    repeat_backoff: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0
    max_cooldown_s: Seconds = 960.0
    form_min_gap_s: Seconds = 45.0
    max_form_cues_per_hour: Annotated[int | None, Field(ge=1)] = None
    #: A cue the runner corrected within this long after hearing it fades...
    fading_window_s: Seconds = 60.0
    #: ...its sustain time is multiplied by this per correction (up to three times).
    fading_sustain_factor: Annotated[float, Field(ge=1.0, le=10.0)] = 1.5


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
    #: Baselines apply to conditions without a speed match when learned within this of the speed.
    baseline_match_mps: Annotated[float, Field(gt=0.0, le=5.0)] = 0.75

    @model_validator(mode="after")
    def _window_in_order(self) -> Self:
        if self.baseline_until_s <= self.baseline_from_s:
            raise ValueError("baseline_until_s must be after baseline_from_s")
        return self


class PhaseConfig(_Section):
    """When the runner counts as running, and when a stop is a cool-down."""

    running_from_speed_mps: Annotated[float, Field(gt=0.0, le=5.0)] = 1.8
    running_from_cadence_spm: Annotated[float, Field(gt=0.0, le=250.0)] = 140.0
    running_after_s: Seconds = 5.0
    cooldown_after_stop_s: Seconds = 180.0
    cooldown_min_running_s: Seconds = 600.0


class WarmupConfig(_Section):
    """The warm-up checklist: calibration, then the exercises paced one after another."""

    checklist: tuple[str, ...] = (
        "warmup_core",
        "warmup_glutes",
        "warmup_dynamic",
        "warmup_stretch",
        "warmup_rotation",
    )
    first_after_s: Seconds = 10.0
    pace_s: Seconds = 90.0
    #: Warmed up: heart rate at this share of HRmax (a slight-sweat proxy) ...
    hr_fraction_of_max: Fraction = 0.6
    #: ... or this long warming up.
    min_duration_s: Seconds = 480.0

    @model_validator(mode="after")
    def _known_codes(self) -> Self:
        for code in self.checklist:
            if code not in CATALOG or CATALOG[code].kind != "warmup":
                raise ValueError(f"checklist: {code!r} is not a warm-up cue code")
        return self


class CooldownConfig(_Section):
    foam_roll_after_s: Seconds = 60.0


class PainConfig(_Section):
    """Pain triage (DESIGN §1)."""

    early_running_s: Seconds = 600.0
    severe_level: Annotated[int, Field(ge=1, le=10)] = 7
    recurring_runs: Annotated[int, Field(ge=2, le=100)] = 3
    recurring_window_days: Annotated[float, Field(gt=0.0, le=365.0)] = 14.0
    back_locations: tuple[str, ...] = ("low_back", "mid_back", "upper_back")


class RuleConfig(_Section):
    """Everything the coach is tuned by."""

    language: str = "en"
    scheduling: SchedulingConfig = SchedulingConfig()
    steady: SteadyConfig = SteadyConfig()
    phases: PhaseConfig = PhaseConfig()
    warmup: WarmupConfig = WarmupConfig()
    cooldown: CooldownConfig = CooldownConfig()
    pain: PainConfig = PainConfig()
    form: dict[str, FormRuleConfig] = Field(default_factory=lambda: dict(DEFAULT_FORM_RULES))

    @model_validator(mode="before")
    @classmethod
    def _merge_form_defaults(cls, data: Any) -> Any:
        """A file's ``[form.CODE]`` table changes only the fields it names."""
        if not isinstance(data, dict) or not isinstance(data.get("form"), dict):
            return data
        merged: dict[str, Any] = {}
        for code, default in DEFAULT_FORM_RULES.items():
            merged[code] = default.model_dump()
        for code, override in data["form"].items():
            if code not in FORM_CODES:
                raise ValueError(f"form.{code}: not a form cue code ({', '.join(FORM_CODES)})")
            if isinstance(override, dict):
                merged[code] = {**merged[code], **override}
            else:
                merged[code] = override
        return {**data, "form": merged}


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def parse_rule_config(text: str, source: str = "<rules>") -> RuleConfig:
    """Validate rule TOML; errors name the source and the dotted path of the bad field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return RuleConfig.model_validate(data)
    except ValidationError as exc:
        raise RuleConfigError(f"{source}: {_first_error(exc)}") from exc


def load_rule_config(path: str | Path) -> RuleConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleConfigError(f"{source}: cannot read rules: {exc.strerror}") from exc
    return parse_rule_config(text, source)
