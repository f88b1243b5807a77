"""One channel per worn sensor: decode its notifications, time its samples, feed its estimators.

A channel knows its profile's characteristics; it hands decoded, timed data to the estimators
that profile drives and answers "what do you measure at t?" for the fusion step. A payload that
does not decode raises :class:`~sensors.errors.DecodeError`; the session counts it and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

import numpy as np

from monitor.estimators.breathing import BreathingEstimator, RrBreathingEstimator
from monitor.estimators.footpod import FootpodEstimator
from monitor.estimators.gait import FloatArray
from monitor.estimators.heart_rate import HeartRateEstimator
from monitor.estimators.trunk import TrunkImuEstimator
from monitor.metrics import MetricName, MetricValue
from sensors import uuids
from sensors.gatt import _wire, decoder_for
from sensors.gatt.battery import decode_battery_level
from sensors.gatt.heart_rate import decode_heart_rate_measurement
from sensors.gatt.polar_pmd import PmdMeasurementType, decode_pmd_data
from sensors.gatt.rsc import decode_rsc_measurement
from sensors.gatt.runmon_breath import decode_breath_block
from sensors.gatt.runmon_imu import (
    ACC_LSB_PER_G,
    FLAG_GYRO,
    GYRO_LSB_PER_DPS,
    ImuBlock,
    decode_imu_block,
)
from sensors.profiles import DEFAULT_MOUNTS
from sensors.recording import MountSpec, Notification, SensorSpec
from sensors.timing import SequenceTimer, TimestampTimer


@dataclass(slots=True)
class SensorState:
    """What the service reports on ``sensors/{sensor}``."""

    connected: bool = False
    #: The link dropped (a disconnect event) and has not come back yet.
    disconnected: bool = False
    battery_pct: int | None = None
    last_data_t_s: float | None = None
    decode_errors: int = 0


class Estimator(Protocol):
    """What every streaming estimator answers, once per second of data time."""

    @property
    def provides(self) -> tuple[MetricName, ...]: ...

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]: ...


class Channel:
    """A sensor whose data runmon decodes but does not (yet) estimate from."""

    #: The estimators this channel feeds, for the fusion step.
    estimators: tuple[Estimator, ...] = ()

    def __init__(self, spec: SensorSpec) -> None:
        self.spec = spec
        self.state = SensorState()

    def handle(self, note: Notification) -> None:
        """Decode and use one notification; raises DecodeError for a bad payload."""
        if note.char == uuids.BATTERY_LEVEL:
            self.state.battery_pct = decode_battery_level(note.payload).level_pct
            return
        self.handle_data(note)
        self.state.last_data_t_s = note.t

    def handle_data(self, note: Notification) -> None:
        decoder = decoder_for(note.char)
        if decoder is not None:
            decoder(note.payload)

    def reconnected(self) -> None:
        """The link came back: sample numbering may restart."""


class FootpodChannel(Channel):
    def __init__(self, spec: SensorSpec) -> None:
        super().__init__(spec)
        self.footpod = FootpodEstimator(
            cadence_unit=spec.cadence_unit, speed_factor=spec.speed_factor
        )
        self.estimators = (self.footpod,)

    def handle_data(self, note: Notification) -> None:
        if note.char == uuids.RSC_MEASUREMENT:
            self.footpod.update(note.t, decode_rsc_measurement(note.payload))
        else:
            super().handle_data(note)


def _mount(spec: SensorSpec) -> MountSpec:
    mount = spec.effective_mount
    if mount is not None:
        return mount
    default = DEFAULT_MOUNTS["runmon_imu"]
    return MountSpec(forward=default["forward"], left=default["left"], up=default["up"])


#: Scale of each (acc, gyro) plane of a runmon IMU record, in g and °/s per LSB.
_IMU_SCALE: Final = np.array([1.0 / ACC_LSB_PER_G, 1.0 / GYRO_LSB_PER_DPS]).reshape(2, 1)


class _QueuedImu(NamedTuple):
    """A notification whose header checked out; its samples are decoded when needed.

    A named tuple: one is made per notification, and a tuple is the cheapest record to make.
    """

    t_s: float
    sequence: int
    n: int
    flags: int
    payload: bytes
    block: ImuBlock | None  # decoded on arrival: a payload the quick check did not vouch for


def _quick_imu_header(payload: bytes) -> tuple[int, int, int, int] | None:
    """(flags, sequence, sample rate, n) of a runmon IMU payload that passes every check of
    :func:`decode_imu_block`; None for any other (let the decoder say what is wrong)."""
    if len(payload) < _wire.BLOCK_HEADER.size:
        return None
    version, flags, sequence, rate, n = _wire.BLOCK_HEADER.unpack_from(payload)
    record = 12 if flags == FLAG_GYRO else 6  # bytes per sample: acc (+ gyro) x,y,z i16
    if (
        version != _wire.BLOCK_VERSION
        or flags & ~FLAG_GYRO
        or not _wire.MIN_SAMPLE_RATE_HZ <= rate <= _wire.MAX_SAMPLE_RATE_HZ
        or len(payload) != _wire.BLOCK_HEADER.size + n * record
    ):
        return None
    return flags, sequence, rate, n


class ImuChannel(Channel):
    """A runmon IMU strap: sequence-numbered blocks of acc (and gyro).

    Notifications are checked (header and length) as they arrive, so a bad one is still reported
    on its own line, but decoded and timed in arrival order only when the trunk estimator next
    processes: one array conversion for a second of blocks instead of one per notification.
    """

    def __init__(self, spec: SensorSpec) -> None:
        super().__init__(spec)
        self.trunk: TrunkImuEstimator | None = None
        self.timer: SequenceTimer | None = None
        self._queue: list[_QueuedImu] = []

    def handle_data(self, note: Notification) -> None:
        if note.char != uuids.RUNMON_IMU_DATA:
            super().handle_data(note)
            return
        header = _quick_imu_header(note.payload)
        block = None
        if header is None:
            block = decode_imu_block(note.payload)  # raises the DecodeError that says why
            flags = FLAG_GYRO if block.gyro_dps is not None else 0
            header = (flags, block.sequence, block.sample_rate_hz, block.n_samples)
        flags, sequence, sample_rate_hz, n = header
        if self.trunk is None or self.timer is None:
            self.timer = SequenceTimer(sample_rate_hz)
            self.trunk = TrunkImuEstimator(
                mount=_mount(self.spec),
                sample_rate_hz=sample_rate_hz,
                placement=self.spec.placement,
            )
            self.trunk.before_processing = self.flush
            self.estimators = (self.trunk,)
        self._queue.append(_QueuedImu(note.t, sequence, n, flags, note.payload, block))

    def flush(self) -> None:
        """Decode and time the queued notifications, in arrival order, into the estimator."""
        queue, self._queue = self._queue, []
        if not queue or self.trunk is None or self.timer is None:
            return
        first = queue[0]
        acc: FloatArray
        gyro: FloatArray | None
        if all(q.block is None and q.n == first.n and q.flags == first.flags for q in queue):
            # The usual second: same-shaped blocks, decoded in one pass.
            acc, gyro = _decode_imu_batch([q.payload for q in queue], first.n, first.flags)
        else:
            blocks = [decode_imu_block(q.payload) if q.block is None else q.block for q in queue]
            acc = np.concatenate([b.acc_g for b in blocks])
            gyros = [b.gyro_dps for b in blocks if b.gyro_dps is not None]
            # A second with a block that lacks the gyro is processed without (as the estimator
            # would anyway).
            gyro = np.concatenate(gyros) if len(gyros) == len(blocks) else None
        timed = self.timer.push_many(
            [q.t_s for q in queue], [q.sequence for q in queue], [q.n for q in queue]
        )
        if timed.kept is not None:
            acc = acc[timed.kept]
            gyro = None if gyro is None else gyro[timed.kept]
        self.trunk.update(timed.t_s, acc, gyro)

    def reconnected(self) -> None:
        if self.timer is not None:
            self.flush()
            self.timer.reset()


def _decode_imu_batch(
    payloads: list[bytes], n: int, flags: int
) -> tuple[FloatArray, FloatArray | None]:
    """acc and gyro, each (k * n, 3), of k same-shaped, checked runmon IMU payloads."""
    size = len(payloads[0])
    raw = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), size)
    # Drop the headers, then read the records as i16 (acc x,y,z[, gyro x,y,z]) per sample.
    records = np.ascontiguousarray(raw[:, _wire.BLOCK_HEADER.size :]).view("<i2")
    if flags & FLAG_GYRO:
        planes = records.reshape(len(payloads) * n, 2, 3) * _IMU_SCALE
        return planes[:, 0], planes[:, 1]
    return records.reshape(len(payloads) * n, 3) * _IMU_SCALE[0, 0], None


class PmdChannel(Channel):
    """A Polar PMD strap (H10): accelerometer frames stamped by the sensor's clock, no gyro."""

    def __init__(self, spec: SensorSpec) -> None:
        super().__init__(spec)
        settings = (spec.settings or {}).get("acc", {})
        self.sample_rate_hz = float(settings.get("sample_rate_hz", 200))
        self.timer = TimestampTimer(self.sample_rate_hz)
        self.trunk = TrunkImuEstimator(
            mount=_mount(spec), sample_rate_hz=self.sample_rate_hz, placement=spec.placement
        )
        self.estimators = (self.trunk,)

    def handle_data(self, note: Notification) -> None:
        if note.char != uuids.PMD_DATA:
            super().handle_data(note)
            return
        frame = decode_pmd_data(note.payload)
        if frame.measurement_type != PmdMeasurementType.ACC:
            return
        timed = self.timer.push(note.t, frame.timestamp_ns, frame.samples.shape[0])
        if timed is None:
            return
        self.trunk.update(timed.t_s, np.asarray(frame.samples[timed.start :]), None)

    def reconnected(self) -> None:
        self.timer.reset()


class BreathChannel(Channel):
    """A runmon Breath band: sequence-numbered blocks of chest stretch.

    As :class:`ImuChannel`: notifications are checked (header and length) as they arrive, so a
    bad one is still reported on its own line, and decoded and timed in arrival order when the
    estimator next needs them (once per second of data: one array conversion and one estimator
    call for a second's notifications; the estimator's results do not depend on the split).
    """

    _HEADER: Final = _wire.BLOCK_HEADER
    _RATES: Final = range(_wire.MIN_SAMPLE_RATE_HZ, _wire.MAX_SAMPLE_RATE_HZ + 1)

    def __init__(self, spec: SensorSpec) -> None:
        super().__init__(spec)
        self.breathing: BreathingEstimator | None = None
        self.timer: SequenceTimer | None = None
        self._queue: list[tuple[float, int, int, bytes]] = []  # (t, sequence, n, payload)

    def handle_data(self, note: Notification) -> None:
        if note.char != uuids.RUNMON_BREATH_DATA:
            super().handle_data(note)
            return
        payload = note.payload
        header = self._quick_header(payload)
        if header is None:
            block = decode_breath_block(payload)  # raises the DecodeError that says why
            header = (block.sequence, block.sample_rate_hz, block.n_samples)
        sequence, sample_rate_hz, n = header
        if (
            self.breathing is None
            or self.timer is None
            or self.breathing.sample_rate_hz != sample_rate_hz
        ):
            self._queue = []  # for the estimator being replaced: nobody reads it any more
            self.timer = SequenceTimer(sample_rate_hz)
            self.breathing = BreathingEstimator(sample_rate_hz=sample_rate_hz)
            self.breathing.before_processing = self.flush
            self.estimators = (self.breathing,)
        self._queue.append((note.t, sequence, n, payload))

    @classmethod
    def _quick_header(cls, payload: bytes) -> tuple[int, int, int] | None:
        """(sequence, sample rate, n) of a payload that passes every check of
        :func:`decode_breath_block`; None for any other (the decoder says what is wrong)."""
        size = cls._HEADER.size
        if len(payload) < size:
            return None
        version, flags, sequence, rate, n = cls._HEADER.unpack_from(payload)
        if (
            version != _wire.BLOCK_VERSION
            or flags
            or rate not in cls._RATES
            or len(payload) != size + 2 * n
        ):
            return None
        return sequence, rate, n

    def flush(self) -> None:
        """Decode and time the queued notifications, in arrival order, into the estimator."""
        queue = self._queue
        if not queue or self.breathing is None or self.timer is None:
            return
        self._queue = []
        size = self._HEADER.size
        # Every queued payload decodes: its stretch values (u16) follow the header.
        stretch = np.frombuffer(b"".join([q[3][size:] for q in queue]), dtype="<u2")
        timed = self.timer.push_many(
            [q[0] for q in queue], [q[1] for q in queue], [q[2] for q in queue]
        )
        x = stretch if timed.kept is None else stretch[timed.kept]
        self.breathing.update(timed.t_s, x.astype(np.float64))

    def reconnected(self) -> None:
        if self.timer is not None:
            self.flush()
            self.timer.reset()


class HeartRateChannel(Channel):
    """A heart-rate strap: HR and RR intervals, and breathing rate from the RR's rhythm."""

    def __init__(self, spec: SensorSpec) -> None:
        super().__init__(spec)
        self.heart = HeartRateEstimator()
        self.rr_breathing = RrBreathingEstimator()
        self.estimators = (self.heart,)

    def handle_data(self, note: Notification) -> None:
        if note.char != uuids.HEART_RATE_MEASUREMENT:
            super().handle_data(note)
            return
        measurement = decode_heart_rate_measurement(note.payload)
        self.heart.update(note.t, measurement)
        self.rr_breathing.update(note.t, measurement)


def make_channel(spec: SensorSpec) -> Channel:
    """The channel for a header's sensor entry."""
    if spec.profile == "rsc":
        return FootpodChannel(spec)
    if spec.profile == "runmon_imu":
        return ImuChannel(spec)
    if spec.profile == "polar_pmd":
        return PmdChannel(spec)
    if spec.profile == "runmon_breath":
        return BreathChannel(spec)
    if spec.profile == "heart_rate":
        return HeartRateChannel(spec)
    return Channel(spec)
