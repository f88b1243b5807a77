"""The virtual runner: the scenario's targets plus the variability of a real runner.

For now it carries speed and cadence (what a footpod sees); the trunk kinematics, breathing and
heart rate join it as their sensors arrive. Everything is sampled on a fixed grid once, so
sensors read it with array lookups rather than per-sample Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulators.scenario import Scenario

GRID_HZ = 10.0


@dataclass(frozen=True, slots=True)
class RunnerTrack:
    """The runner's true state on a ``GRID_HZ`` grid from 0 to the duration."""

    t_s: NDArray[np.float64]
    speed_mps: NDArray[np.float64]
    cadence_spm: NDArray[np.float64]
    distance_m: NDArray[np.float64]

    def at(self, name: str, t_s: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """A state variable linearly interpolated at ``t_s``."""
        values: NDArray[np.float64] = getattr(self, name)
        return np.asarray(np.interp(t_s, self.t_s, values), dtype=np.float64)


def _ar1(rng: np.random.Generator, n: int, std: float, tau_s: float) -> NDArray[np.float64]:
    """Smooth random wander: an AR(1) process with stationary ``std`` and time constant."""
    if n == 0 or std == 0.0:
        return np.zeros(n)
    a = float(np.exp(-1.0 / (GRID_HZ * tau_s)))
    shocks = rng.normal(0.0, std * np.sqrt(1.0 - a * a), n)
    out = np.empty(n)
    # A first-order IIR filter: scipy.signal.lfilter does it without a Python loop.
    from scipy.signal import lfilter

    out[:] = lfilter([1.0], [1.0, -a], shocks)
    return out


def simulate_runner(scenario: Scenario, duration_s: float, seed: int) -> RunnerTrack:
    """The runner's true speed, cadence and distance, deterministic per seed."""
    rng = np.random.default_rng(seed)
    n = int(np.floor(duration_s * GRID_HZ)) + 2
    t_s = np.arange(n, dtype=np.float64) / GRID_HZ
    speed_target = scenario.target("speed_mps", t_s)
    cadence_target = scenario.target("cadence_spm", t_s)
    moving = speed_target > 0.0
    # Runners wander by a few cm/s and about a step per minute around what they intend.
    speed = np.where(moving, speed_target + _ar1(rng, n, 0.03, 8.0), 0.0)
    cadence = np.where(cadence_target > 0.0, cadence_target + _ar1(rng, n, 0.8, 5.0), 0.0)
    speed = np.clip(speed, 0.0, None)
    cadence = np.clip(cadence, 0.0, None)
    distance = np.concatenate(([0.0], np.cumsum((speed[1:] + speed[:-1]) / (2.0 * GRID_HZ))))
    return RunnerTrack(t_s=t_s, speed_mps=speed, cadence_spm=cadence, distance_m=distance)
