"""The whole virtual runner: speed and cadence, trunk, breathing and heart, from one seed.

Each part draws from its own random stream, so adding a part (or a sensor) leaves the others
unchanged; the speed/cadence track is exactly what the footpod always saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.body import BodyPlan, plan_body
from simulators.physiology import BreathingPlan, HeartPlan, plan_breathing, plan_heart
from simulators.runner import RunnerTrack, simulate_runner
from simulators.scenario import Scenario


@dataclass(frozen=True, slots=True)
class VirtualRunner:
    """Everything the sensors sense and truth measures, for one scenario, duration and seed."""

    scenario: Scenario
    duration_s: float
    seed: int
    track: RunnerTrack
    body: BodyPlan
    breathing: BreathingPlan
    heart: HeartPlan


def simulate(scenario: Scenario, duration_s: float, seed: int) -> VirtualRunner:
    """The runner of ``scenario`` over ``duration_s``; deterministic per seed."""
    track = simulate_runner(scenario, duration_s, seed)
    body = plan_body(scenario, track, np.random.default_rng([seed, 0, 1]))
    breathing = plan_breathing(scenario, track, np.random.default_rng([seed, 0, 2]))
    heart = plan_heart(scenario, track, breathing, np.random.default_rng([seed, 0, 3]))
    return VirtualRunner(
        scenario=scenario,
        duration_s=duration_s,
        seed=seed,
        track=track,
        body=body,
        breathing=breathing,
        heart=heart,
    )
