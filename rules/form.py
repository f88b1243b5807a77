"""Form rules: a smoothed signal that leaves its band, against absolute or personal thresholds,
for long enough — then a cue candidate with the evidence that triggered it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.baseline import Baseline, Baselines
from rules.config import Condition, FormRuleConfig, SteadyConfig
from rules.signals import RollingMean

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


class FormRule:
    """One form cue's rule; fed one snapshot per second of data time."""

    def __init__(self, code: str, config: FormRuleConfig, steady: SteadyConfig) -> None:
        self.code = code
        self.config = config
        self.steady = steady
        signals = {c.signal for c in config.conditions} | {"speed_mps", "cadence_spm"}
        self._means = {name: RollingMean(config.smoothing_s) for name in signals}
        self._since_t_s: float | None = None
        self._active = False
        self._spoken_t_s: float | None = None
        self.corrections = 0

    def sustain_s(self, fading_factor: float) -> float:
        """Sustain time, stretched for a runner who corrected this cue quickly before."""
        return self.config.sustain_s * fading_factor ** min(self.corrections, MAX_FADING_STEPS)

    def spoken(self, t_s: float) -> None:
        self._spoken_t_s = t_s

    def update(
        self,
        t_s: float,
        signals: Metrics,
        qualities: Qualities,
        baselines: Baselines,
        *,
        fading_window_s: float,
        fading_factor: float,
    ) -> Candidate | None:
        smoothed = {name: mean.update(t_s, signals.get(name)) for name, mean in self._means.items()}
        checks = [self._check(c, smoothed, qualities, baselines) for c in self.config.conditions]
        evaluable = [c for c in checks if c is not None]
        if self.config.match == "all":
            deviating = len(evaluable) == len(checks) and all(c.deviating for c in evaluable)
        else:
            deviating = any(c.deviating for c in evaluable)
        if not deviating:
            self._clear(t_s, fading_window_s)
            return None
        if self._since_t_s is None:
            self._since_t_s = t_s
        sustained_s = t_s - self._since_t_s
        if sustained_s < self.sustain_s(fading_factor):
            return None
        self._active = True
        hits = [c for c in evaluable if c.deviating]
        evidence: dict[str, Any] = hits[0].evidence()
        evidence["target"] = list(self._target(hits[0]))
        evidence["sustained_s"] = round(sustained_s, 1)
        if len(hits) > 1:
            evidence["also"] = [c.evidence() for c in hits[1:]]
        speed = smoothed.get("speed_mps")
        if speed is not None:
            evidence["speed_mps"] = round(speed, 2)
        return Candidate(self.code, t_s, evidence)

    @property
    def active(self) -> bool:
        """Whether the rule is in a deviation it has sustained (spoken-for or about to be)."""
        return self._active

    def _clear(self, t_s: float, fading_window_s: float) -> None:
        if self._active and self._spoken_t_s is not None:
            if t_s - self._spoken_t_s <= fading_window_s:
                self.corrections += 1
            self._spoken_t_s = None
        self._since_t_s, self._active = None, False

    def _check(
        self,
        cond: Condition,
        smoothed: Mapping[str, float | None],
        qualities: Qualities,
        baselines: Baselines,
    ) -> _Check | None:
        value = smoothed.get(cond.signal)
        if value is None:
            return None
        if cond.absolute is not None:
            quality = qualities.get(cond.signal, "ok")
            if quality != "ok":
                return None  # uncalibrated or relative: no absolute bands
            deviating = self._beyond(cond, value, cond.absolute, None)
            return _Check(cond, value, cond.absolute, None, deviating)
        baseline = self._baseline_for(cond, smoothed, baselines)
        if baseline is None:
            return None
        reference = baseline.metrics.get(cond.signal)
        if reference is None:
            return None
        threshold = _relative_threshold(cond, reference)
        deviating = self._beyond(cond, value, threshold, reference)
        return _Check(cond, value, threshold, reference, deviating)

    def _beyond(
        self, cond: Condition, value: float, threshold: float, reference: float | None
    ) -> bool:
        if self._active and reference is not None:
            # Hysteresis: while spoken-for, clear only once well back towards the baseline.
            threshold = reference + self.config.hysteresis_rel * (threshold - reference)
        return value < threshold if cond.when == "below" else value > threshold

    def _baseline_for(
        self, cond: Condition, smoothed: Mapping[str, float | None], baselines: Baselines
    ) -> Baseline | None:
        speed = smoothed.get("speed_mps")
        if cond.same_speed_mps is not None:
            if speed is None:
                return None
            baseline = baselines.near(speed, cond.same_speed_mps)
        else:
            baseline = baselines.near(speed, self.steady.baseline_match_mps)
        if baseline is None:
            return None
        if cond.same_cadence_spm is not None:
            cadence = smoothed.get("cadence_spm")
            base_cadence = baseline.metrics.get("cadence_spm")
            if cadence is None or base_cadence is None:
                return None
            if abs(cadence - base_cadence) > cond.same_cadence_spm:
                return None
        return baseline

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
