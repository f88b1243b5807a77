"""Form rules: a smoothed signal that leaves its band, against absolute or personal thresholds,
for long enough — then a cue candidate with the evidence that triggered it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.baseline import Baseline, Baselines
from rules.config import Condition, FormRuleConfig, SchedulingConfig, SteadyConfig

Metrics = Mapping[str, float | None]
Qualities = Mapping[str, str]

#: At most this many corrections stretch a rule's sustain time (fading).
MAX_FADING_STEPS = 3


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cue that wants to be spoken now."""

    code: str
    created_t_s: float
    evidence: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Check:
    """One condition evaluated: its value, threshold and whether it deviates."""

    condition: Condition
    value: float
    threshold: float
    baseline: float | None
    deviating: bool

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.condition.signal,
            "value": round(self.value, 3),
            "threshold": round(self.threshold, 3),
        }
        if self.baseline is not None:
            out["baseline"] = round(self.baseline, 3)
        return out


class SmoothedRow:
    """One second as the form rules see it: the signals smoothed over one window, the metrics'
    qualities, and the baselines that apply at the smoothed speed.

    Every rule that smooths over the same window reads the same row, so the baseline near the
    smoothed speed is looked up once per tolerance, not once per condition.
    """

    __slots__ = ("near", "qualities", "values")

    def __init__(
        self,
        values: Mapping[str, float | None],
        qualities: Qualities,
        baselines: Baselines,
        tolerances_mps: Iterable[float],
    ) -> None:
        self.values = values
        self.qualities = qualities
        speed = values.get("speed_mps")
        #: :meth:`Baselines.near` the smoothed speed, by tolerance (no speed: the latest learned).
        self.near: dict[float, Baseline | None] = {}
        for tolerance in tolerances_mps:
            self.near[tolerance] = baselines.near(speed, tolerance)


class _Test:
    """One condition, ready to compare with a row.

    The threshold of a relative condition depends only on the baseline it is compared with, so
    it is kept until another baseline applies.
    """

    __slots__ = (
        "_baseline",
        "_reference",
        "_threshold",
        "absolute",
        "below",
        "condition",
        "needs_speed",
        "same_cadence_spm",
        "signal",
        "tolerance_mps",
    )

    def __init__(self, condition: Condition, steady: SteadyConfig) -> None:
        self.condition = condition
        self.signal = condition.signal
        self.below = condition.when == "below"
        self.absolute = condition.absolute
        #: Baselines apply when learned within this of the smoothed speed, which must be known
        #: when the condition asks for the same speed.
        self.needs_speed = condition.same_speed_mps is not None
        self.tolerance_mps = (
            condition.same_speed_mps
            if condition.same_speed_mps is not None
            else steady.baseline_match_mps
        )
        self.same_cadence_spm = condition.same_cadence_spm
        self._baseline: Baseline | None = None
        self._reference: float | None = None
        self._threshold = 0.0

    def compare(self, row: SmoothedRow) -> tuple[float, float, float | None] | None:
        """The smoothed value, its threshold and the baseline reference behind it (``None`` for
        an absolute band); ``None`` when the condition cannot be evaluated."""
        value = row.values.get(self.signal)
        if value is None:
            return None
        if self.absolute is not None:
            if row.qualities.get(self.signal, "ok") != "ok":
                return None  # uncalibrated or relative: no absolute bands
            return value, self.absolute, None
        if self.needs_speed and row.values.get("speed_mps") is None:
            return None
        baseline = row.near[self.tolerance_mps]
        if baseline is None:
            return None
        if self.same_cadence_spm is not None:
            cadence = row.values.get("cadence_spm")
            base_cadence = baseline.metrics.get("cadence_spm")
            if cadence is None or base_cadence is None:
                return None
            if abs(cadence - base_cadence) > self.same_cadence_spm:
                return None
        if baseline is not self._baseline:
            self._baseline = baseline
            self._reference = baseline.metrics.get(self.signal)
            if self._reference is not None:
                self._threshold = _relative_threshold(self.condition, self._reference)
        if self._reference is None:
            return None
        return value, self._threshold, self._reference


class FormRule:
    """One form cue's rule; fed one snapshot per second of data time.

    The rule reads its signals smoothed over ``window_s`` (by the coach, which shares the
    rolling means between rules): ``signals`` names the ones it needs, ``tolerances_mps`` the
    speed tolerances of the baselines its conditions compare with.
    """

    __slots__ = (
        "_active",
        "_fading_factor",
        "_fading_window_s",
        "_hysteresis_rel",
        "_match_all",
        "_since_t_s",
        "_spoken_t_s",
        "_tests",
        "code",
        "config",
        "corrections",
        "signals",
        "steady",
        "tolerances_mps",
        "window_s",
    )

    def __init__(
        self,
        code: str,
        config: FormRuleConfig,
        steady: SteadyConfig,
        scheduling: SchedulingConfig,
    ) -> None:
        self.code = code
        self.config = config
        self.steady = steady
        self.window_s = config.smoothing_s
        self._fading_window_s = scheduling.fading_window_s
        self._fading_factor = scheduling.fading_sustain_factor
        self._tests = tuple(_Test(c, steady) for c in config.conditions)
        #: The conditions' signals, and the speed and cadence its baselines are matched on.
        self.signals = frozenset({t.signal for t in self._tests} | {"speed_mps", "cadence_spm"})
        self.tolerances_mps = frozenset(t.tolerance_mps for t in self._tests if t.absolute is None)
        self._match_all = config.match == "all"
        self._hysteresis_rel = config.hysteresis_rel
        self._since_t_s: float | None = None
        self._active = False
        self._spoken_t_s: float | None = None
        self.corrections = 0

    def sustain_s(self) -> float:
        """Sustain time, stretched for a runner who corrected this cue quickly before."""
        steps = min(self.corrections, MAX_FADING_STEPS)
        return self.config.sustain_s * self._fading_factor**steps

    def spoken(self, t_s: float) -> None:
        self._spoken_t_s = t_s

    def update(self, t_s: float, row: SmoothedRow) -> Candidate | None:
        """Feed one second: ``row`` holds (at least) the rule's ``signals``, smoothed over its
        ``window_s``, and its ``tolerances_mps``."""
        if not self._deviating(row):
            self._clear(t_s)
            return None
        if self._since_t_s is None:
            self._since_t_s = t_s
        sustained_s = t_s - self._since_t_s
        if sustained_s < self.sustain_s():
            return None
        checks = [self._check(test, row) for test in self._tests]
        hits = [c for c in checks if c is not None and c.deviating]
        self._active = True
        evidence: dict[str, Any] = hits[0].evidence()
        evidence["target"] = list(self._target(hits[0]))
        evidence["sustained_s"] = round(sustained_s, 1)
        if len(hits) > 1:
            evidence["also"] = [c.evidence() for c in hits[1:]]
        speed = row.values.get("speed_mps")
        if speed is not None:
            evidence["speed_mps"] = round(speed, 2)
        return Candidate(self.code, t_s, evidence)

    @property
    def active(self) -> bool:
        """Whether the rule is in a deviation it has sustained (spoken-for or about to be)."""
        return self._active

    def _deviating(self, row: SmoothedRow) -> bool:
        """Whether any (``match = "any"``) or every (``"all"``) condition deviates; a condition
        that cannot be evaluated (no value, no baseline) does not deviate."""
        for test in self._tests:
            found = test.compare(row)
            if found is None:
                deviating = False
            else:
                value, threshold, reference = found
                deviating = self._beyond(test, value, threshold, reference)
            if deviating and not self._match_all:
                return True
            if not deviating and self._match_all:
                return False
        return self._match_all

    def _clear(self, t_s: float) -> None:
        if self._active and self._spoken_t_s is not None:
            if t_s - self._spoken_t_s <= self._fading_window_s:
                self.corrections += 1
            self._spoken_t_s = None
        self._since_t_s, self._active = None, False

    def _check(self, test: _Test, row: SmoothedRow) -> _Check | None:
        found = test.compare(row)
        if found is None:
            return None
        value, threshold, reference = found
        deviating = self._beyond(test, value, threshold, reference)
        return _Check(test.condition, value, threshold, reference, deviating)

    def _beyond(self, test: _Test, value: float, threshold: float, reference: float | None) -> bool:
        if self._active and reference is not None:
            # Hysteresis: while spoken-for, clear only once well back towards the baseline.
            threshold = reference + self._hysteresis_rel * (threshold - reference)
        return value < threshold if test.below else value > threshold

    def _target(self, check: _Check) -> tuple[float | None, float | None]:
        if self.config.target is not None:
            return self.config.target
        bound = round(check.threshold, 3)
        return (bound, None) if check.condition.when == "below" else (None, bound)


def _relative_threshold(cond: Condition, reference: float) -> float:
    if cond.baseline_delta is not None:
        threshold = reference + cond.baseline_delta
    else:
        assert cond.baseline_ratio is not None
        threshold = reference * cond.baseline_ratio
    if cond.at_least is not None:
        threshold = max(threshold, cond.at_least)
    if cond.at_most is not None:
        threshold = min(threshold, cond.at_most)
    return threshold
