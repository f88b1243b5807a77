"""Session phases (warm-up, running, cool-down, ended) and the cues that belong to them."""

from __future__ import annotations

from collections.abc import Mapping

from rules.catalog import Phase
from rules.config import CooldownConfig, PhaseConfig, WarmupConfig
from rules.form import Candidate

Metrics = Mapping[str, float | None]


class PhaseTracker:
    """Warm-up until the runner has been running a few seconds; cool-down after a real stop.

    A stop of ``cooldown_after_stop_s`` after ``cooldown_min_running_s`` of running is a
    cool-down; a shorter one (a traffic light) is not. Running again leaves the cool-down.
    """

    __slots__ = (
        "_last_t_s",
        "_moving_since_s",
        "_stopped",
        "_stopped_since_s",
        "config",
        "phase",
        "running_since_s",
        "running_total_s",
    )

    def __init__(self, config: PhaseConfig) -> None:
        self.config = config
        self.phase: Phase = "warmup"
        self.running_since_s: float | None = None
        self.running_total_s = 0.0
        self._moving_since_s: float | None = None
        self._stopped_since_s: float | None = None
        self._last_t_s: float | None = None
        self._stopped = False

    def moving(self, metrics: Metrics, qualities: Mapping[str, str]) -> bool:
        """Running pace or running cadence. A speed only counts when it is measured (``ok``):
        an uncalibrated IMU speed can make warm-up drills look like a run."""
        speed, cadence = metrics.get("speed_mps"), metrics.get("cadence_spm")
        speed_ok = qualities.get("speed_mps", "ok") == "ok"
        return (speed is not None and speed_ok and speed >= self.config.running_from_speed_mps) or (
            cadence is not None and cadence >= self.config.running_from_cadence_spm
        )

    def running_for_s(self, t_s: float) -> float:
        """Seconds since running first started (0 before)."""
        return 0.0 if self.running_since_s is None else t_s - self.running_since_s

    def update(
        self, t_s: float, metrics: Metrics, qualities: Mapping[str, str] | None = None
    ) -> Phase:
        moving = self.moving(metrics, qualities if qualities is not None else {})
        dt_s = 0.0 if self._last_t_s is None else max(0.0, t_s - self._last_t_s)
        self._last_t_s = t_s
        if moving:
            self._stopped_since_s = None
            if self._moving_since_s is None:
                self._moving_since_s = t_s
        else:
            self._moving_since_s = None
            if self._stopped_since_s is None:
                self._stopped_since_s = t_s
        moving_long_enough = (
            self._moving_since_s is not None
            and t_s - self._moving_since_s >= self.config.running_after_s
        )
        if self.phase == "warmup" and moving_long_enough:
            self.phase, self.running_since_s = "running", t_s
        elif self.phase == "running":
            if moving:
                self.running_total_s += dt_s
            elif (
                self._stopped_since_s is not None
                and t_s - self._stopped_since_s >= self.config.cooldown_after_stop_s
                and self.running_total_s >= self.config.cooldown_min_running_s
            ):
                self.phase = "cooldown"
        elif self.phase == "cooldown" and moving_long_enough and not self._stopped:
            self.phase = "running"
        return self.phase

    def stop(self) -> Phase:
        """The session was stopped: a run becomes its cool-down, a warm-up just ends."""
        self._stopped = True
        self.phase = "cooldown" if self.phase == "running" else "ended"
        return self.phase

    def end(self) -> Phase:
        self.phase = "ended"
        return self.phase


class Warmup:
    """``calibrate_stand``, the paced checklist, and ``warmup_incomplete`` if running came early."""

    __slots__ = (
        "_calibration_offered",
        "_next_item",
        "_verdict_given",
        "config",
        "has_trunk_imu",
        "hr_max_bpm",
        "started_s",
        "warmed_up",
    )

    def __init__(
        self, config: WarmupConfig, *, has_trunk_imu: bool, hr_max_bpm: float | None
    ) -> None:
        self.config = config
        self.has_trunk_imu = has_trunk_imu
        self.hr_max_bpm = hr_max_bpm
        self.started_s: float | None = None
        self.warmed_up = False
        self._next_item = 0
        self._calibration_offered = False
        self._verdict_given = False

    def update(self, t_s: float, phase: Phase, metrics: Metrics) -> list[Candidate]:
        if self.started_s is None:
            self.started_s = t_s
        if phase != "warmup" and self._verdict_given:
            return []  # nothing more to say
        out: list[Candidate] = []
        if phase == "warmup":
            if self.has_trunk_imu and not self._calibration_offered:
                self._calibration_offered = True
                out.append(Candidate("calibrate_stand", t_s, {"reason": "trunk sensor worn"}))
            self._judge(t_s, metrics)
            checklist = self.config.checklist
            if self._next_item < len(checklist):
                due_s = (
                    self.started_s
                    + self.config.first_after_s
                    + self._next_item * self.config.pace_s
                )
                if t_s >= due_s:
                    code = checklist[self._next_item]
                    self._next_item += 1
                    out.append(Candidate(code, t_s, {"step": self._next_item}))
        elif phase == "running" and not self._verdict_given:
            self._verdict_given = True
            if not self.warmed_up:
                out.append(Candidate("warmup_incomplete", t_s, self._evidence(t_s, metrics)))
        return out

    def _judge(self, t_s: float, metrics: Metrics) -> None:
        assert self.started_s is not None
        hr = metrics.get("heart_rate_bpm")
        hot = (
            hr is not None
            and self.hr_max_bpm is not None
            and hr >= self.config.hr_fraction_of_max * self.hr_max_bpm
        )
        if hot or t_s - self.started_s >= self.config.min_duration_s:
            self.warmed_up = True

    def _evidence(self, t_s: float, metrics: Metrics) -> dict[str, object]:
        assert self.started_s is not None
        evidence: dict[str, object] = {
            "warmup_s": round(t_s - self.started_s, 1),
            "warmup_min_s": self.config.min_duration_s,
        }
        if self.hr_max_bpm is not None:
            evidence["heart_rate_bpm"] = metrics.get("heart_rate_bpm")
            evidence["heart_rate_target_bpm"] = round(
                self.config.hr_fraction_of_max * self.hr_max_bpm
            )
        return evidence


class Cooldown:
    """``cooldown_stretch`` when the cool-down begins, ``foam_roll`` paced after it."""

    __slots__ = ("_foam_done", "_stretch_t_s", "config")

    def __init__(self, config: CooldownConfig) -> None:
        self.config = config
        self._stretch_t_s: float | None = None
        self._foam_done = False

    def update(self, t_s: float, phase: Phase) -> list[Candidate]:
        if phase not in ("cooldown", "ended"):
            return []
        if self._stretch_t_s is None:
            if phase == "ended":
                return []
            self._stretch_t_s = t_s
            return [Candidate("cooldown_stretch", t_s, {"phase": phase})]
        if not self._foam_done and t_s - self._stretch_t_s >= self.config.foam_roll_after_s:
            self._foam_done = True
            return [Candidate("foam_roll", t_s, {"after_s": self.config.foam_roll_after_s})]
        return []
