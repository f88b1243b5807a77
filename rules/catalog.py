"""The cue catalog (DESIGN §1): stable codes, default texts, priority and time-to-live.

Codes are a public contract: add codes, never rename them. Texts are keyed by language so apps
and later translations can ship their own; English is the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Phase = Literal["warmup", "running", "cooldown", "ended"]
CueKind = Literal["warmup", "form", "cooldown", "pain"]


@dataclass(frozen=True, slots=True)
class CueSpec:
    """One catalog entry. ``priority`` 1 is most urgent; ``ttl_s`` bounds how late it may speak."""

    code: str
    kind: CueKind
    priority: int
    ttl_s: float
    texts: Mapping[str, str]

    def text(self, language: str = "en") -> str:
        """The cue's text in ``language``, falling back to English."""
        return self.texts.get(language) or self.texts["en"]


FORM_TTL_S: Final = 5.0
OTHER_TTL_S: Final = 30.0


def _cue(code: str, kind: CueKind, priority: int, text_en: str) -> CueSpec:
    ttl_s = FORM_TTL_S if kind == "form" else OTHER_TTL_S
    return CueSpec(code, kind, priority, ttl_s, MappingProxyType({"en": text_en}))


_ENTRIES: Final = (
    _cue("calibrate_stand", "warmup", 2, "Stand tall and still for five seconds."),
    _cue("warmup_core", "warmup", 3, "Activate your core: front and side planks."),
    _cue(
        "warmup_glutes",
        "warmup",
        3,
        "Wake up your glutes: clam shells and side-lying hip extensions.",
    ),
    _cue("warmup_dynamic", "warmup", 3, "Gentle squats or lunges, with arm movements."),
    _cue("warmup_stretch", "warmup", 3, "Stretch calves and hamstrings: reach for your toes."),
    _cue("warmup_rotation", "warmup", 3, "Add rotational exercises for your trunk."),
    _cue(
        "warmup_incomplete",
        "warmup",
        3,
        "You skipped part of your warm-up: ease in for the first minutes.",
    ),
    _cue("lean_forward", "form", 2, "Lean your trunk slightly forward, from the ankles."),
    _cue("lean_less", "form", 2, "Run tall: only a slight forward lean."),
    _cue("core_engage", "form", 2, "Pull in your deep core muscles."),
    _cue("arm_swing", "form", 2, "Let your arms swing and your upper body rotate."),
    _cue("rotation_relax", "form", 2, "Relax your arms: swing them forward and back, not across."),
    _cue("breathe_deep", "form", 2, "Breathe deeply: let your rib cage expand."),
    _cue("stride_shorten", "form", 2, "Shorten your stride: quicker, lighter steps."),
    _cue(
        "cooldown_stretch",
        "cooldown",
        3,
        "Cool down and stretch your calves and hamstrings before you shower.",
    ),
    _cue("foam_roll", "cooldown", 3, "Foam-roll your lower and upper back."),
    _cue("pain_start", "pain", 2, "Pain early in the run: check your warm-up routine next time."),
    _cue(
        "pain_mid",
        "pain",
        2,
        "Your back may be doing your core's work: core in, slight lean, relaxed arm swing.",
    ),
    _cue(
        "pain_after",
        "pain",
        3,
        "Likely overuse: cool down, stretch calves and hamstrings, foam-roll your back.",
    ),
    _cue(
        "pain_severe", "pain", 1, "Severe pain: stop running and walk. Get it checked if it stays."
    ),
    _cue(
        "see_pt",
        "pain",
        1,
        "Pain that lasts or runs down your legs: see a physical therapist.",
    ),
)

#: Every cue by code, in catalog order.
CATALOG: Final[Mapping[str, CueSpec]] = MappingProxyType({c.code: c for c in _ENTRIES})

#: The codes of the running-form cues (each has a scenario of its own in the simulators).
FORM_CODES: Final[tuple[str, ...]] = tuple(c.code for c in _ENTRIES if c.kind == "form")
