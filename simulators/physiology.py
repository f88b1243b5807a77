"""The virtual runner's breathing and heart: what the band and the HR strap sense, and truth.

Breathing is a phase that advances at the breathing rate; each whole number is the onset of an
inspiration (the chest at its smallest). Locked breathing advances at exactly cadence ÷
steps_per_breath while running, so every breath takes the same number of steps; free breathing
follows its own rate and wanders against the steps. The chest expansion is depth × a waveform of
the phase (inspiration 42 % of the cycle, peak-to-peak 1 = one baseline breath).

The heart beats where its phase passes whole numbers; its rate follows the effort with a lag,
drifts up slowly over a long run, and is modulated by breathing (respiratory sinus arrhythmia,
faster on inspiration; strong at rest, weak while running), so the RR intervals carry the
breathing as real ones do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.interpolate import PchipInterpolator

from simulators.body import engagement_of
from simulators.runner import GRID_HZ, RunnerTrack
from simulators.scenario import Scenario
from simulators.signals import (
    FloatArray,
    ar1,
    cumulative_integral,
    first_order_lag,
    level_times,
)

REST_BREATHING_BPM: Final = 14.0
#: Depth of a breath at rest relative to the running baseline.
REST_DEPTH_REL: Final = 0.6
INSPIRATION_SHARE: Final = 0.42
HR_TAU_S: Final = 30.0
#: Cardiac drift while running, bpm per minute.
HR_DRIFT_BPM_PER_MIN: Final = 0.08


def breath_waveform(phase: FloatArray) -> FloatArray:
    """Chest expansion over a breath: 0 at the onset, 1 at the end of inspiration."""
    u = phase - np.floor(phase)
    inhale = 0.5 - 0.5 * np.cos(math.pi * u / INSPIRATION_SHARE)
    exhale = 0.5 + 0.5 * np.cos(math.pi * (u - INSPIRATION_SHARE) / (1.0 - INSPIRATION_SHARE))
    out: FloatArray = np.where(u < INSPIRATION_SHARE, inhale, exhale)
    return out


@dataclass(frozen=True, slots=True)
class BreathingPlan:
    """Breath onsets and the smooth phase and depth behind them."""

    onsets_s: FloatArray
    phase_and_depth: PchipInterpolator

    def phase(self, t_s: FloatArray) -> FloatArray:
        out: FloatArray = self.phase_and_depth(t_s)[:, 0]
        return out

    def expansion_rel(self, t_s: FloatArray) -> FloatArray:
        """Clean chest expansion (no artefacts): one baseline breath is 1 peak-to-peak."""
        values = self.phase_and_depth(t_s)
        out: FloatArray = values[:, 1] * breath_waveform(values[:, 0])
        return out


def plan_breathing(
    scenario: Scenario, track: RunnerTrack, rng: np.random.Generator
) -> BreathingPlan:
    t = track.t_s
    n = t.size
    running = engagement_of(track.cadence_spm)
    steps_per_breath = scenario.target("steps_per_breath", t)
    locked_rate = track.cadence_spm / steps_per_breath
    if scenario.sets("breathing_rate_bpm"):
        own_rate = scenario.target("breathing_rate_bpm", t)
        rest_rate = own_rate
    else:
        own_rate = locked_rate
        rest_rate = np.full(n, REST_BREATHING_BPM)
    if scenario.runner.breathing == "locked":
        running_rate = locked_rate
    else:
        running_rate = own_rate * (1.0 + ar1(rng, n, 0.04, 20.0, GRID_HZ))
    rest_rate = rest_rate * (1.0 + ar1(rng, n, 0.08, 15.0, GRID_HZ))
    rate_bpm = (1.0 - running) * rest_rate + running * running_rate
    phase = float(rng.uniform(0.0, 1.0)) + cumulative_integral(rate_bpm / 60.0, GRID_HZ)
    depth = (
        scenario.target("breath_depth_rel", t)
        * (REST_DEPTH_REL + (1.0 - REST_DEPTH_REL) * running)
        * (1.0 + ar1(rng, n, 0.06, 2.0, GRID_HZ))
    )
    levels = np.arange(math.ceil(phase[0]), math.floor(phase[-1]) + 1, dtype=np.float64)
    onsets = level_times(phase, t, levels, float(rate_bpm[-1]) / 60.0)
    interp = PchipInterpolator(t, np.column_stack((phase, np.clip(depth, 0.0, None))), axis=0)
    return BreathingPlan(onsets_s=onsets, phase_and_depth=interp)


@dataclass(frozen=True, slots=True)
class HeartPlan:
    """The times of the heart's beats (R peaks)."""

    beats_s: FloatArray

    @property
    def rr_s(self) -> FloatArray:
        """RR interval ending at each beat but the first."""
        out: FloatArray = np.diff(self.beats_s)
        return out


def effort_heart_rate_bpm(scenario: Scenario, track: RunnerTrack) -> FloatArray:
    """A heart that follows the effort: rest standing, rising with speed, lagging, drifting."""
    rest = float(scenario.runner.hr_rest_bpm)
    reserve = float(scenario.runner.hr_max_bpm) - rest
    share = np.where(track.speed_mps > 0.0, np.clip(0.22 + 0.125 * track.speed_mps, 0.0, 0.95), 0.0)
    lagged = first_order_lag(rest + reserve * share, HR_TAU_S, GRID_HZ)
    running_min = cumulative_integral(engagement_of(track.cadence_spm), GRID_HZ) / 60.0
    out: FloatArray = lagged + HR_DRIFT_BPM_PER_MIN * running_min * engagement_of(track.cadence_spm)
    return out


def plan_heart(
    scenario: Scenario,
    track: RunnerTrack,
    breathing: BreathingPlan,
    rng: np.random.Generator,
) -> HeartPlan:
    t = track.t_s
    n = t.size
    if scenario.sets("heart_rate_bpm"):
        base = scenario.target("heart_rate_bpm", t)
    else:
        base = effort_heart_rate_bpm(scenario, track)
    running = engagement_of(track.cadence_spm)
    rsa = 0.05 * (1.0 - running) + 0.012 * running
    breath = breathing.phase(t)
    rate_bpm = (
        base
        * (1.0 + rsa * np.sin(2.0 * math.pi * breath))
        * (1.0 + ar1(rng, n, 0.012, 3.0, GRID_HZ))
    )
    phase = float(rng.uniform(0.0, 1.0)) + cumulative_integral(rate_bpm / 60.0, GRID_HZ)
    levels = np.arange(math.ceil(phase[0]), math.floor(phase[-1]) + 1, dtype=np.float64)
    beats = level_times(phase, t, levels, float(rate_bpm[-1]) / 60.0)
    return HeartPlan(beats_s=beats)
