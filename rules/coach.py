"""The coach: a stream of 1 Hz metric snapshots in, well-timed cue decisions out.

Pure and deterministic: time is the snapshot's ``t_s`` (data time), baselines come in and go out
as data, so a live run and a replay of its recording decide exactly the same cues.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.baseline import Baseline, BaselineLearner, Baselines
from rules.catalog import CATALOG, Phase
from rules.config import PhaseConfig, RuleConfig, SchedulingConfig, StrideShortenConfig

Metrics = Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class CueDecision:
    """A cue to speak now, with the evidence that triggered it."""

    t_s: float
    code: str
    text: str
    priority: int
    ttl_s: float
    phase: Phase
    evidence: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "t_s": round(self.t_s, 3),
            "code": self.code,
            "text": self.text,
            "priority": self.priority,
            "evidence": dict(self.evidence),
        }


@dataclass(slots=True)
class _Candidate:
    code: str
    created_t_s: float
    evidence: Mapping[str, Any]


class _RollingMean:
    """Mean of the non-null values of the last ``window_s`` seconds (causal smoothing)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._values: deque[tuple[float, float]] = deque()

    def update(self, t_s: float, value: float | None) -> float | None:
        if value is not None:
            self._values.append((t_s, value))
        while self._values and self._values[0][0] <= t_s - self.window_s:
            self._values.popleft()
        if not self._values:
            return None
        return sum(v for _, v in self._values) / len(self._values)


class StrideShortenRule:
    """Over-striding at the same speed: stride up and cadence down against the baseline."""

    code = "stride_shorten"

    def __init__(self, config: StrideShortenConfig) -> None:
        self.config = config
        self._speed = _RollingMean(config.smoothing_s)
        self._stride = _RollingMean(config.smoothing_s)
        self._cadence = _RollingMean(config.smoothing_s)
        self._since_t_s: float | None = None
        self._active = False

    def update(self, t_s: float, metrics: Metrics, baselines: Baselines) -> _Candidate | None:
        speed = self._speed.update(t_s, metrics.get("speed_mps"))
        stride = self._stride.update(t_s, metrics.get("stride_length_m"))
        cadence = self._cadence.update(t_s, metrics.get("cadence_spm"))
        cfg = self.config
        baseline = None if speed is None else baselines.near(speed, cfg.speed_tolerance_mps)
        base_stride = None if baseline is None else baseline.metrics.get("stride_length_m")
        base_cadence = None if baseline is None else baseline.metrics.get("cadence_spm")
        if stride is None or cadence is None or base_stride is None or base_cadence is None:
            self._since_t_s, self._active = None, False
            return None
        stride_rel = stride / base_stride - 1.0
        cadence_rel = 1.0 - cadence / base_cadence
        # Hysteresis: once active, the deviation must shrink well below the threshold to clear.
        scale = cfg.hysteresis_rel if self._active else 1.0
        deviating = (
            stride_rel > scale * cfg.stride_above_baseline_rel
            and cadence_rel > scale * cfg.cadence_below_baseline_rel
        )
        if not deviating:
            self._since_t_s, self._active = None, False
            return None
        if self._since_t_s is None:
            self._since_t_s = t_s
        sustained_s = t_s - self._since_t_s
        if sustained_s < cfg.sustain_s:
            return None
        self._active = True
        assert baseline is not None  # narrowed above through base_stride
        return _Candidate(
            self.code,
            t_s,
            {
                "metric": "stride_length_m",
                "value": round(stride, 3),
                "baseline": round(base_stride, 3),
                "target": [None, round(base_stride * (1.0 + cfg.stride_above_baseline_rel), 3)],
                "cadence_spm": round(cadence, 1),
                "baseline_cadence_spm": round(base_cadence, 1),
                "speed_mps": round(speed, 2) if speed is not None else None,
                "baseline_speed_mps": round(baseline.speed_mps, 2),
                "sustained_s": round(sustained_s, 1),
            },
        )


class _PhaseTracker:
    """Warm-up until the runner has been running a few seconds; cool-down after a real stop."""

    #: A stop this long after this much running is a cool-down, not a traffic light (DESIGN §1).
    COOLDOWN_AFTER_STOP_S = 180.0
    COOLDOWN_MIN_RUNNING_S = 600.0

    def __init__(self, config: PhaseConfig) -> None:
        self.config = config
        self.phase: Phase = "warmup"
        self.running_since_s: float | None = None
        self.running_total_s = 0.0
        self._moving_since_s: float | None = None
        self._stopped_since_s: float | None = None
        self._last_t_s: float | None = None

    def update(self, t_s: float, metrics: Metrics) -> Phase:
        speed, cadence = metrics.get("speed_mps"), metrics.get("cadence_spm")
        moving = (speed is not None and speed >= self.config.running_from_speed_mps) or (
            cadence is not None and cadence >= self.config.running_from_cadence_spm
        )
        dt_s = 0.0 if self._last_t_s is None else t_s - self._last_t_s
        self._last_t_s = t_s
        if moving:
            self._stopped_since_s = None
            if self._moving_since_s is None:
                self._moving_since_s = t_s
        else:
            self._moving_since_s = None
            if self._stopped_since_s is None:
                self._stopped_since_s = t_s
        if self.phase == "warmup":
            if self._moving_since_s is not None and (
                t_s - self._moving_since_s >= self.config.running_after_s
            ):
                self.phase, self.running_since_s = "running", t_s
        elif self.phase == "running":
            if moving:
                self.running_total_s += dt_s
            elif (
                self._stopped_since_s is not None
                and t_s - self._stopped_since_s >= self.COOLDOWN_AFTER_STOP_S
                and self.running_total_s >= self.COOLDOWN_MIN_RUNNING_S
            ):
                self.phase = "cooldown"
        return self.phase


@dataclass(slots=True)
class _Scheduler:
    """Who speaks: priority first, per-code cooldown, a minimum gap between form cues, ttl."""

    config: SchedulingConfig
    pending: dict[str, _Candidate] = field(default_factory=dict)
    last_spoken_s: dict[str, float] = field(default_factory=dict)
    form_spoken_s: deque[float] = field(default_factory=deque)

    def offer(self, candidate: _Candidate) -> None:
        self.pending[candidate.code] = candidate

    def pick(self, t_s: float) -> _Candidate | None:
        for code, cand in list(self.pending.items()):
            if t_s - cand.created_t_s > CATALOG[code].ttl_s:
                del self.pending[code]  # never spoken late
        eligible = [c for c in self.pending.values() if self._may_speak(c.code, t_s)]
        if not eligible:
            return None
        best = min(eligible, key=lambda c: (CATALOG[c.code].priority, c.created_t_s, c.code))
        del self.pending[best.code]
        self.last_spoken_s[best.code] = t_s
        if CATALOG[best.code].kind == "form":
            self.form_spoken_s.append(t_s)
        return best

    def _may_speak(self, code: str, t_s: float) -> bool:
        last = self.last_spoken_s.get(code)
        if last is not None and t_s - last < self.config.same_code_cooldown_s:
            return False
        if CATALOG[code].kind != "form":
            return True
        while self.form_spoken_s and self.form_spoken_s[0] <= t_s - 3600.0:
            self.form_spoken_s.popleft()
        if self.form_spoken_s and t_s - self.form_spoken_s[-1] < self.config.form_min_gap_s:
            return False
        limit = self.config.max_form_cues_per_hour
        return limit is None or len(self.form_spoken_s) < limit


class Coach:
    """One runner's coach for one session."""

    def __init__(
        self, config: RuleConfig | None = None, baselines: Baselines | None = None
    ) -> None:
        self.config = config if config is not None else RuleConfig()
        self.learner = BaselineLearner(self.config.steady, baselines)
        self._phases = _PhaseTracker(self.config.phases)
        self._scheduler = _Scheduler(self.config.scheduling)
        self._form_rules = [StrideShortenRule(self.config.form.stride_shorten)]
        self.learned: list[Baseline] = []

    @property
    def phase(self) -> Phase:
        return self._phases.phase

    @property
    def baselines(self) -> Baselines:
        return self.learner.baselines

    def update(self, t_s: float, metrics: Metrics) -> list[CueDecision]:
        """Feed the snapshot of second ``t_s``; returns the cues to speak now (at most one)."""
        phase = self._phases.update(t_s, metrics)
        if phase == "running":
            learned = self.learner.update(t_s, metrics)
            if learned is not None:
                self.learned.append(learned)
        for rule in self._form_rules:
            if not getattr(self.config.form, rule.code).enabled:
                continue
            candidate = rule.update(t_s, metrics, self.baselines)
            if candidate is not None and phase == "running":
                self._scheduler.offer(candidate)
        chosen = self._scheduler.pick(t_s)
        if chosen is None:
            return []
        spec = CATALOG[chosen.code]
        return [
            CueDecision(
                t_s=t_s,
                code=spec.code,
                text=spec.text(self.config.language),
                priority=spec.priority,
                ttl_s=spec.ttl_s,
                phase=phase,
                evidence=chosen.evidence,
            )
        ]
