"""A virtual runmon IMU strap: the trunk's motion as a real strap would send it.

The strap's axes sit on the body per its declared ``mount`` and a further unknown tilt (what
the standing calibration must absorb). Each sample is the motion's mean over its sample
interval (an ideal averaging decimation filter). It samples on its own clock, which runs
``clock_drift_ppm`` fast against the host's; adds a constant-plus-wandering gyro bias, an
accelerometer bias and white noise; saturates at the wire's ±16 g and ±2048 °/s; batches
``samples_per_notification`` samples per notification with the sequence number of the first;
and sends them over a :class:`~simulators.link.Link`. On every connect the host reads the
config and battery characteristics, as a real central does.

Samples are generated in chunks, so memory stays bounded for any duration and a live demo can
start at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from sensors import uuids
from sensors.gatt.battery import BatteryLevel, encode_battery_level
from sensors.gatt.runmon_imu import (
    ACC_LSB_PER_G,
    GYRO_LSB_PER_DPS,
    ImuBlock,
    ImuConfig,
    encode_imu_block,
    encode_imu_config,
)
from sensors.recording import Record
from simulators.body import G_MPS2, Segment, evaluate
from simulators.link import Link, sensor_records
from simulators.model import VirtualRunner
from simulators.scenario import ImuSpec, ScenarioMount
from simulators.signals import FloatArray, ar1

_CHUNK_NOTIFICATIONS: Final = 256
#: The largest values the wire holds (i16), where a real sensor saturates too.
_ACC_LIMIT_G: Final = 32767 / ACC_LSB_PER_G
_GYRO_LIMIT_DPS: Final = 32767 / GYRO_LSB_PER_DPS
#: From connect to the first sample: the central subscribes, the strap starts its FIFO.
STREAM_DELAY_S: Final = 0.25
#: From the last sample of a notification to the strap handing it to its radio.
SEND_DELAY_S: Final = 0.0005


def mount_matrix(mount: ScenarioMount) -> FloatArray:
    """(3, 3) segment-from-sensor rotation of the declared mount: rows forward, left, up."""
    out = np.zeros((3, 3))
    for row, axis in enumerate((mount.forward, mount.left, mount.up)):
        out[row, "xyz".index(axis[1])] = 1.0 if axis[0] == "+" else -1.0
    return out


def tilt_matrix(tilt_forward_deg: float, tilt_side_deg: float) -> FloatArray:
    """(3, 3) rotation that tips the strap's up axis forward, then towards the left."""
    f, s = math.radians(tilt_forward_deg), math.radians(-tilt_side_deg)
    ry = np.array(
        [[math.cos(f), 0.0, math.sin(f)], [0.0, 1.0, 0.0], [-math.sin(f), 0.0, math.cos(f)]]
    )
    rx = np.array(
        [[1.0, 0.0, 0.0], [0.0, math.cos(s), -math.sin(s)], [0.0, math.sin(s), math.cos(s)]]
    )
    out: FloatArray = ry @ rx
    return out


def segment_of(placement: str) -> Segment:
    return "pelvis" if placement == "pelvis" else "thorax"


@dataclass(frozen=True, slots=True)
class ImuSamples:
    """Consecutive samples: their true times and what the strap measured (before the wire).

    Sample n covers the interval of one sample period that ends at ``t_s[n]``: like an
    averaging decimation filter, its values are the motion's mean over it (half a sample of
    group delay).
    """

    first_index: int
    t_s: FloatArray
    acc_g: FloatArray
    gyro_dps: FloatArray


class VirtualImu:
    """One strap worn by one runner; ``records()`` is what a capture of it holds."""

    def __init__(
        self,
        sensor_id: str,
        spec: ImuSpec,
        runner: VirtualRunner,
        seeds: np.random.SeedSequence,
    ) -> None:
        params_seed, self._noise_seed, self._link_seed = seeds.spawn(3)
        params = np.random.default_rng(params_seed)
        self.sensor_id = sensor_id
        self.spec = spec
        self.runner = runner
        self.link = Link.open(spec.link, params, runner.duration_s)
        self.segment: Segment = segment_of(spec.placement)
        self.segment_from_sensor: FloatArray = tilt_matrix(
            spec.tilt_forward_deg, spec.tilt_side_deg
        ) @ mount_matrix(spec.mount)
        self.acc_bias_g: FloatArray = params.normal(0.0, spec.acc_bias_g, 3)
        self.gyro_bias_dps: FloatArray = params.normal(0.0, spec.gyro_bias_dps, 3)
        # The bias also wanders with temperature: a slow AR(1) on a 1 Hz grid.
        n_wander = int(runner.duration_s) + 3
        self._bias_wander_dps = np.column_stack(
            [ar1(params, n_wander, 0.05 * spec.gyro_bias_dps, 300.0, 1.0) for _ in range(3)]
        )
        self.stream_start_s = self.link.connect_s + STREAM_DELAY_S
        self.sample_period_s = 1.0 / (spec.sample_rate_hz * (1.0 + spec.clock_drift_ppm * 1e-6))
        available = (runner.duration_s - SEND_DELAY_S - self.stream_start_s) / self.sample_period_s
        self.n_notifications = max(0, math.floor(available) // spec.samples_per_notification)

    def sample_times(self, first_index: int, count: int) -> FloatArray:
        """True (host clock) times of samples ``first_index ..`` by the strap's drifting clock."""
        index = np.arange(first_index, first_index + count, dtype=np.float64)
        out: FloatArray = self.stream_start_s + index * self.sample_period_s
        return out

    def samples(self, first_index: int, count: int, rng: np.random.Generator) -> ImuSamples:
        """What the strap measures at samples ``first_index ..``, in its own axes."""
        t_s = self.sample_times(first_index, count)
        # Each sample is the mean over the sample interval that ends at its time.
        motion = evaluate(
            self.runner.body,
            t_s - self.sample_period_s / 2.0,
            self.segment,
            average_over_s=self.sample_period_s,
        )
        acc_g = motion.specific_force_mps2() @ self.segment_from_sensor / G_MPS2
        gyro_dps = np.rad2deg(motion.rates_rps) @ self.segment_from_sensor
        acc_g = acc_g + self.acc_bias_g + rng.normal(0.0, self.spec.acc_noise_g, acc_g.shape)
        wander = np.column_stack(
            [
                np.interp(t_s, np.arange(self._bias_wander_dps.shape[0]), column)
                for column in self._bias_wander_dps.T
            ]
        )
        gyro_dps = (
            gyro_dps
            + self.gyro_bias_dps
            + wander
            + rng.normal(0.0, self.spec.gyro_noise_dps, gyro_dps.shape)
        )
        return ImuSamples(
            first_index=first_index,
            t_s=t_s,
            acc_g=np.clip(acc_g, -_ACC_LIMIT_G, _ACC_LIMIT_G),
            gyro_dps=np.clip(gyro_dps, -_GYRO_LIMIT_DPS, _GYRO_LIMIT_DPS),
        )

    def blocks(self) -> Iterator[tuple[float, ImuBlock]]:
        """Every notification the strap sends, with its send time (before the link)."""
        rng = np.random.default_rng(self._noise_seed)  # the same stream on every call
        per = self.spec.samples_per_notification
        for first in range(0, self.n_notifications, _CHUNK_NOTIFICATIONS):
            count = min(_CHUNK_NOTIFICATIONS, self.n_notifications - first)
            chunk = self.samples(first * per, count * per, rng)
            for i in range(count):
                rows = slice(i * per, (i + 1) * per)
                index = (first + i) * per
                yield (
                    float(chunk.t_s[rows.stop - 1]) + SEND_DELAY_S,
                    ImuBlock(
                        sequence=index % 65536,
                        sample_rate_hz=self.spec.sample_rate_hz,
                        acc_g=chunk.acc_g[rows],
                        gyro_dps=chunk.gyro_dps[rows] if self.spec.gyro else None,
                    ),
                )

    def records(self) -> Iterator[Record]:
        """Connects, reads and data notifications in receive-time order."""
        reads = [
            (
                uuids.RUNMON_IMU_CONFIG,
                encode_imu_config(ImuConfig(self.spec.sample_rate_hz, self.spec.placement)),
            ),
            (uuids.BATTERY_LEVEL, encode_battery_level(BatteryLevel(self.spec.battery_pct))),
        ]
        return sensor_records(
            self.link,
            self._link_seed,
            self.sensor_id,
            reads,
            uuids.RUNMON_IMU_DATA,
            ((t, encode_imu_block(block)) for t, block in self.blocks()),
            _CHUNK_NOTIFICATIONS,
        )
