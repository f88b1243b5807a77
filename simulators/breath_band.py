"""A virtual runmon Breath band: chest stretch as a real band reads it.

The reading is the clean chest expansion of :mod:`simulators.physiology` (one baseline breath
= ``units_per_breath``) on an offset, plus what a real band adds: a bounce with every step
(in proportion to the trunk's vertical displacement), a slow wander and a steady creep of the
baseline (the band slipping, sweat), and noise; sampled on the band's own drifting clock and
batched ``samples_per_notification`` to a notification.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

import numpy as np

from sensors import uuids
from sensors.gatt._wire import U16_MAX
from sensors.gatt.battery import BatteryLevel, encode_battery_level
from sensors.gatt.runmon_breath import BreathBlock, encode_breath_block
from sensors.recording import Record
from simulators.body import vertical_motion
from simulators.link import Link, sensor_records
from simulators.model import VirtualRunner
from simulators.scenario import BreathSpec
from simulators.signals import FloatArray, ar1

_CHUNK_NOTIFICATIONS: Final = 256
STREAM_DELAY_S: Final = 0.25
SEND_DELAY_S: Final = 0.001


class VirtualBreathBand:
    """One band on one runner; ``blocks()`` before the link, ``records()`` after."""

    def __init__(
        self,
        sensor_id: str,
        spec: BreathSpec,
        runner: VirtualRunner,
        seeds: np.random.SeedSequence,
    ) -> None:
        params_seed, self._noise_seed, self._link_seed = seeds.spawn(3)
        params = np.random.default_rng(params_seed)
        self.sensor_id = sensor_id
        self.spec = spec
        self.runner = runner
        self.link = Link.open(spec.link, params, runner.duration_s)
        self._wander_rel = ar1(params, int(runner.duration_s) + 3, spec.drift_rel, 120.0, 1.0)
        self.stream_start_s = self.link.connect_s + STREAM_DELAY_S
        self.sample_period_s = 1.0 / (spec.sample_rate_hz * (1.0 + spec.clock_drift_ppm * 1e-6))
        available = (runner.duration_s - SEND_DELAY_S - self.stream_start_s) / self.sample_period_s
        self.n_notifications = max(0, math.floor(available) // spec.samples_per_notification)

    def stretch(self, t_s: FloatArray, rng: np.random.Generator) -> FloatArray:
        """The band's reading at the true times ``t_s`` (before rounding to the wire)."""
        spec = self.spec
        height_cm = 100.0 * vertical_motion(self.runner.body.steps, t_s).height_m
        relative = (
            self.runner.breathing.expansion_rel(t_s)
            + spec.step_artefact_per_cm * height_cm
            + np.interp(t_s, np.arange(self._wander_rel.size), self._wander_rel)
            + spec.creep_rel_per_h * t_s / 3600.0
            + rng.normal(0.0, spec.noise_rel, t_s.size)
        )
        out: FloatArray = np.clip(
            spec.offset_units + spec.units_per_breath * relative, 0.0, float(U16_MAX)
        )
        return out

    def blocks(self) -> Iterator[tuple[float, BreathBlock]]:
        """Every notification the band sends, with its send time (before the link)."""
        rng = np.random.default_rng(self._noise_seed)
        per = self.spec.samples_per_notification
        for first in range(0, self.n_notifications, _CHUNK_NOTIFICATIONS):
            count = min(_CHUNK_NOTIFICATIONS, self.n_notifications - first)
            index = np.arange(first * per, (first + count) * per)
            t_s: FloatArray = self.stream_start_s + index.astype(np.float64) * self.sample_period_s
            values = self.stretch(t_s, rng)
            for i in range(count):
                rows = slice(i * per, (i + 1) * per)
                yield (
                    float(t_s[rows.stop - 1]) + SEND_DELAY_S,
                    BreathBlock(
                        sequence=int(index[rows.start]) % 65536,
                        sample_rate_hz=self.spec.sample_rate_hz,
                        stretch=values[rows],
                    ),
                )

    def records(self) -> Iterator[Record]:
        """Connects, reads and data notifications in receive-time order."""
        reads = [(uuids.BATTERY_LEVEL, encode_battery_level(BatteryLevel(self.spec.battery_pct)))]
        return sensor_records(
            self.link,
            self._link_seed,
            self.sensor_id,
            reads,
            uuids.RUNMON_BREATH_DATA,
            ((t, encode_breath_block(block)) for t, block in self.blocks()),
            _CHUNK_NOTIFICATIONS,
        )
