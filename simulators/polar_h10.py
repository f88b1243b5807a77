"""A virtual Polar H10: the chest's acceleration as Polar Measurement Data (PMD) ACC frames.

Accelerometer only (the H10 has no gyro), worn per its ``mount`` (the H10's own axes by default:
z out of the chest, x to the runner's left, y up) and a further unknown tilt. Each sample is the
motion's mean over its sample interval, plus a bias and white noise, quantised to the wire's mG
and saturated at ``range_g``. The sensor samples on its own clock, which runs
``clock_drift_ppm`` fast against the host's, and stamps every frame with that clock's time of
the frame's LAST sample, in ns since 2000-01-01 (DESIGN §3.1).

Frames are encoded with the production :func:`~sensors.gatt.polar_pmd.encode_pmd_data`:

- ``compressed`` (the default, as an H10 streams at 200 Hz): frame type 0x81, a reference
  sample (3 x i16 mG) and one block of deltas, holding as many samples as fit one notification
  of ``mtu - 3`` bytes (the sensor closes a frame when the next sample would not fit): about
  55–75 samples at the H10's MTU of 232. Raw values are mG with FACTOR 1.0, so
  ``decode_pmd_data``'s default ``acc_factor=1.0`` gives g.
- ``uncompressed``: frame type 0x01, 3 x i16 mG per sample, ``(mtu - 13) // 6`` samples per
  frame (36 at MTU 232).

On every connect the host reads the battery level, as a real central does. The control point
exchange (start request and response) is not recorded: the recording holds data only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

import numpy as np

from sensors import uuids
from sensors.gatt.battery import BatteryLevel, encode_battery_level
from sensors.gatt.polar_pmd import PmdFrame, PmdMeasurementType, encode_pmd_data
from sensors.recording import Record
from simulators.body import G_MPS2, evaluate
from simulators.imu import SEND_DELAY_S, mount_matrix, segment_of, tilt_matrix
from simulators.link import Link, sensor_records
from simulators.model import VirtualRunner
from simulators.scenario import PmdSpec
from simulators.signals import FloatArray

#: The PMD frame type bytes' low bits: ACC 3 x i16 mG (uncompressed 0x01; compressed 0x81).
ACC_FRAME_TYPE: Final = 1
#: The FACTOR an H10 would send for these frames, and what the monitor's decoder assumes.
ACC_FACTOR: Final = 1.0
#: From connect to the first sample: the central writes the start request, the sensor answers.
PMD_STREAM_DELAY_S: Final = 0.6
#: Data header: measurement type u8, timestamp u64, frame type u8.
_HEADER_BYTES: Final = 10
_REFERENCE_BYTES: Final = 6
_BLOCK_HEADER_BYTES: Final = 2
_UNCOMPRESSED_SAMPLE_BYTES: Final = 6
#: One block holds at most 255 deltas: a frame at most 256 samples.
_MAX_FRAME_SAMPLES: Final = 256
_CHUNK_SAMPLES: Final = 8192
_EPOCH_2000: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: The host clock's zero (a recording's default start) on the sensor's clock, before its offset.
_SESSION_START: Final = datetime(2026, 1, 1, 7, 0, tzinfo=UTC)


def frame_capacity(raw_mg: np.ndarray[tuple[int, int], np.dtype[np.int64]], max_bytes: int) -> int:
    """How many of the leading samples ``raw_mg`` (n, 3) one compressed frame of at most
    ``max_bytes`` holds: a reference and one block of the fewest bits its deltas need."""
    n = min(raw_mg.shape[0], _MAX_FRAME_SAMPLES)
    if n <= 1:
        return n
    deltas = np.diff(raw_mg[:n], axis=0)
    magnitude = np.maximum(deltas, ~deltas).max(axis=1)  # ~d = -d-1: the bits a negative needs
    running = np.maximum.accumulate(magnitude)
    width = np.ceil(np.log2(running.astype(np.float64) + 1.0)).astype(np.int64) + 1
    k = np.arange(1, n, dtype=np.int64)  # deltas in a frame of k + 1 samples
    size = _HEADER_BYTES + _REFERENCE_BYTES + _BLOCK_HEADER_BYTES + (3 * k * width[k - 1] + 7) // 8
    fits = np.flatnonzero(size <= max_bytes)
    return 1 if fits.size == 0 else int(fits[-1]) + 2


class VirtualPolarH10:
    """One H10 worn by one runner; ``records()`` is what a capture of it holds."""

    def __init__(
        self,
        sensor_id: str,
        spec: PmdSpec,
        runner: VirtualRunner,
        seeds: np.random.SeedSequence,
    ) -> None:
        params_seed, self._noise_seed, self._link_seed = seeds.spawn(3)
        params = np.random.default_rng(params_seed)
        self.sensor_id = sensor_id
        self.spec = spec
        self.runner = runner
        self.link = Link.open(spec.link, params, runner.duration_s)
        self.segment = segment_of(spec.placement)
        self.segment_from_sensor: FloatArray = tilt_matrix(
            spec.tilt_forward_deg, spec.tilt_side_deg
        ) @ mount_matrix(spec.mount)
        self.acc_bias_g: FloatArray = params.normal(0.0, spec.acc_bias_g, 3)
        self.stream_start_s = self.link.connect_s + PMD_STREAM_DELAY_S
        # The sensor's clock: set from the phone some time ago, a few seconds off by now.
        offset_ns = int(params.uniform(-3e9, 3e9))
        start_ns = (_SESSION_START - _EPOCH_2000).total_seconds() + self.stream_start_s
        self.first_timestamp_ns = round(start_ns * 1e9) + offset_ns
        self.nominal_period_ns = 1e9 / spec.sample_rate_hz
        self.sample_period_s = 1.0 / (spec.sample_rate_hz * (1.0 + spec.clock_drift_ppm * 1e-6))
        available = (runner.duration_s - SEND_DELAY_S - self.stream_start_s) / self.sample_period_s
        self.n_samples = max(0, math.floor(available) + 1)
        self.max_payload = spec.mtu - 3

    def sample_times(self, first_index: int, count: int) -> FloatArray:
        """True (host clock) times of samples ``first_index ..`` by the sensor's drifting clock."""
        index = np.arange(first_index, first_index + count, dtype=np.float64)
        out: FloatArray = self.stream_start_s + index * self.sample_period_s
        return out

    def timestamp_ns(self, index: int) -> int:
        """The sensor clock's time of sample ``index``, ns since 2000-01-01."""
        return self.first_timestamp_ns + round(index * self.nominal_period_ns)

    def samples_mg(
        self, first_index: int, count: int, rng: np.random.Generator
    ) -> np.ndarray[tuple[int, int], np.dtype[np.int64]]:
        """What the sensor measures at samples ``first_index ..``, in its own axes, as wire mG."""
        t_s = self.sample_times(first_index, count)
        period = self.sample_period_s
        motion = evaluate(self.runner.body, t_s - period / 2.0, self.segment, average_over_s=period)
        acc_g = motion.specific_force_mps2() @ self.segment_from_sensor / G_MPS2
        acc_g = acc_g + self.acc_bias_g + rng.normal(0.0, self.spec.acc_noise_g, acc_g.shape)
        limit = 1000 * self.spec.range_g
        out: np.ndarray[tuple[int, int], np.dtype[np.int64]] = np.clip(
            np.rint(acc_g * 1000.0), -limit, limit
        ).astype(np.int64)
        return out

    def frames(self) -> Iterator[tuple[float, PmdFrame]]:
        """Every frame the sensor sends, with its send time (before the link)."""
        rng = np.random.default_rng(self._noise_seed)  # the same stream on every call
        compressed = self.spec.frame_type == "compressed"
        per_frame = (self.max_payload - _HEADER_BYTES) // _UNCOMPRESSED_SAMPLE_BYTES
        pending = np.zeros((0, 3), dtype=np.int64)
        first = 0  # index of pending[0]
        produced = 0
        while produced < self.n_samples or pending.shape[0]:
            if produced < self.n_samples and pending.shape[0] < _MAX_FRAME_SAMPLES:
                count = min(_CHUNK_SAMPLES, self.n_samples - produced)
                pending = np.concatenate((pending, self.samples_mg(produced, count, rng)))
                produced += count
                continue
            n = frame_capacity(pending, self.max_payload) if compressed else per_frame
            n = min(n, pending.shape[0])
            if produced == self.n_samples and n == pending.shape[0] and n < per_frame // 2:
                break  # the capture ends before the last, short frame is full
            last = first + n - 1
            frame = PmdFrame(
                measurement_type=PmdMeasurementType.ACC,
                timestamp_ns=self.timestamp_ns(last),
                frame_type=ACC_FRAME_TYPE,
                compressed=compressed,
                samples=pending[:n] / 1000.0,
            )
            send_s = float(self.sample_times(last, 1)[0]) + SEND_DELAY_S
            yield send_s, frame
            pending = pending[n:]
            first += n

    def payloads(self) -> Iterator[tuple[float, bytes]]:
        """Every notification's send time and payload."""
        for send_s, frame in self.frames():
            payload = encode_pmd_data(frame, acc_factor=ACC_FACTOR)
            if len(payload) > self.max_payload:  # a frame that does not fit is a bug here
                raise AssertionError(f"PMD frame of {len(payload)} bytes > {self.max_payload}")
            yield send_s, payload

    def records(self) -> Iterator[Record]:
        """Connects, reads and data notifications in receive-time order."""
        reads = [(uuids.BATTERY_LEVEL, encode_battery_level(BatteryLevel(self.spec.battery_pct)))]
        return sensor_records(
            self.link,
            self._link_seed,
            self.sensor_id,
            reads,
            uuids.PMD_DATA,
            self.payloads(),
            256,
        )
