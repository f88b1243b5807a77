"""The coach: a stream of 1 Hz metric snapshots (and pain and control events) in, well-timed
cue decisions out.

Pure and deterministic: time is the snapshot's ``t_s`` (data time); baselines and history come in
as data and go out as data, so a live run and a replay of its recording decide the same cues.
Events (pain, control) are taken between snapshots and acted on at the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.baseline import Baseline, BaselineLearner, Baselines
from rules.catalog import CATALOG, Phase
from rules.config import RuleConfig
from rules.form import Candidate, FormRule, SmoothedRow
from rules.pain import PainReport, triage
from rules.phases import Cooldown, PhaseTracker, Warmup
from rules.scheduler import Scheduler
from rules.signals import RollingMeans

Metrics = Mapping[str, float | None]

#: Snooze without a duration.
DEFAULT_SNOOZE_MIN = 10.0
_PAIN_ONLY = frozenset({"pain"})


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


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What the coach knows about the runner and the session before it starts."""

    has_trunk_imu: bool = False
    hr_max_bpm: float | None = None
    #: Days before this session on which earlier runs had back pain (from the history).
    prior_back_pain_days_ago: tuple[float, ...] = ()


@dataclass(slots=True)
class _Mute:
    muted: bool = False
    snoozed_until_s: float | None = None

    def silent(self, t_s: float) -> bool:
        return self.muted or (self.snoozed_until_s is not None and t_s < self.snoozed_until_s)


@dataclass(slots=True)
class _Events:
    pain: list[PainReport] = field(default_factory=list)
    stop: bool = False


class Coach:
    """One runner's coach for one session."""

    def __init__(
        self,
        config: RuleConfig | None = None,
        baselines: Baselines | None = None,
        *,
        context: SessionContext | None = None,
    ) -> None:
        self.config = config if config is not None else RuleConfig()
        self.context = context if context is not None else SessionContext()
        self.learner = BaselineLearner(self.config.steady, baselines)
        self._phases = PhaseTracker(self.config.phases)
        self._warmup = Warmup(
            self.config.warmup,
            has_trunk_imu=self.context.has_trunk_imu,
            hr_max_bpm=self.context.hr_max_bpm,
        )
        self._cooldown = Cooldown(self.config.cooldown)
        self._rules = [
            FormRule(code, rule, self.config.steady, self.config.scheduling)
            for code, rule in self.config.form.items()
            if rule.enabled
        ]
        # One set of rolling means per smoothing window, shared by the rules that use it, with
        # the speed tolerances of their baselines.
        signals: dict[float, set[str]] = {}
        tolerances: dict[float, set[float]] = {}
        for rule in self._rules:
            signals.setdefault(rule.window_s, set()).update(rule.signals)
            tolerances.setdefault(rule.window_s, set()).update(rule.tolerances_mps)
        self._smoothing = [
            (RollingMeans(window_s, sorted(names)), tuple(sorted(tolerances[window_s])))
            for window_s, names in signals.items()
        ]
        self._scheduler = Scheduler(
            self.config.scheduling,
            {code: rule.cooldown_s for code, rule in self.config.form.items()},
        )
        self._mute = _Mute()
        self._events = _Events()
        self.learned: list[Baseline] = []
        self.pain_reports: list[PainReport] = []
        self.spoken: list[CueDecision] = []

    @property
    def phase(self) -> Phase:
        return self._phases.phase

    @property
    def baselines(self) -> Baselines:
        return self.learner.baselines

    @property
    def muted(self) -> bool:
        return self._mute.muted

    # -- events ----------------------------------------------------------------------------

    def pain(self, t_s: float, level: int, location: str, radiating: bool) -> None:
        """A pain report from the runner; answered at the next snapshot."""
        report = PainReport(t_s, level, location, radiating)
        self.pain_reports.append(report)
        self._events.pain.append(report)

    def control(self, t_s: float, action: str, minutes: float | None = None) -> None:
        """``mute``, ``unmute``, ``snooze`` (for ``minutes``), ``start`` or ``stop``."""
        if action == "mute":
            self._mute.muted = True
            self._scheduler.discard(_PAIN_ONLY)
        elif action == "unmute":
            self._mute = _Mute()
        elif action == "snooze":
            length_min = minutes if minutes is not None else DEFAULT_SNOOZE_MIN
            self._mute.snoozed_until_s = t_s + 60.0 * length_min
            self._scheduler.discard(_PAIN_ONLY)
        elif action == "stop":
            self._events.stop = True
        # "start" begins a session; the coach is that session, so there is nothing to do.

    def end(self) -> None:
        """The session is over (the live feed ended)."""
        self._phases.end()

    # -- the 1 Hz step -----------------------------------------------------------------------

    def update(
        self, t_s: float, metrics: Metrics, qualities: Mapping[str, str] | None = None
    ) -> list[CueDecision]:
        """Feed the snapshot of second ``t_s``; returns the cues to speak now (at most one)."""
        qualities = qualities if qualities is not None else {}
        if self._events.stop:
            self._events.stop = False
            phase = self._phases.stop()
        elif self._phases.phase == "ended":
            phase = "ended"
        else:
            phase = self._phases.update(t_s, metrics, qualities)

        if phase == "running":
            learned = self.learner.update(t_s, metrics)
            if learned is not None:
                self.learned.append(learned)
        candidates = self._form(t_s, phase, metrics, qualities)
        candidates += self._warmup.update(t_s, phase, metrics)
        candidates += self._cooldown.update(t_s, phase)
        for report in self._events.pain:
            candidates += triage(
                report,
                phase=phase,
                running_for_s=self._phases.running_for_s(t_s),
                prior_back_pain_days_ago=self.context.prior_back_pain_days_ago,
                config=self.config.pain,
            )
        self._events.pain.clear()

        if candidates:
            silent = self._mute.silent(t_s)
            for candidate in candidates:
                if not silent or CATALOG[candidate.code].kind == "pain":
                    self._scheduler.offer(candidate)
        chosen = self._scheduler.pick(t_s)
        if chosen is None:
            return []
        for rule in self._rules:
            if rule.code == chosen.code:
                rule.spoken(t_s)
        spec = CATALOG[chosen.code]
        decision = CueDecision(
            t_s=t_s,
            code=spec.code,
            text=spec.text(self.config.language),
            priority=spec.priority,
            ttl_s=spec.ttl_s,
            phase=phase,
            evidence=chosen.evidence,
        )
        self.spoken.append(decision)
        return [decision]

    def _form(
        self, t_s: float, phase: Phase, metrics: Metrics, qualities: Mapping[str, str]
    ) -> list[Candidate]:
        """Feed the form rules (in every phase: a deviation is timed from when it starts); their
        candidates count while running."""
        rows: dict[float, SmoothedRow] = {}
        for means, tolerances in self._smoothing:
            smoothed = means.update(t_s, metrics)
            rows[means.window_s] = SmoothedRow(
                smoothed, qualities, self.learner.baselines, tolerances
            )
        candidates: list[Candidate] = []
        for rule in self._rules:
            candidate = rule.update(t_s, rows[rule.window_s])
            if candidate is not None and phase == "running":
                candidates.append(candidate)
            elif not rule.active:
                self._scheduler.corrected(rule.code)
        return candidates
