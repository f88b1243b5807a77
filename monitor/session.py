"""One runner's streaming session: records in, one metric row per second and cues out.

The only code path from sensor bytes to cues: live BLE, MQTT gateway ingest and offline replay
all feed :class:`RunnerSession` the same records, so a replay decides what the live run decided.
Rows are emitted on data time: the row of second ``k`` is built from records with ``t <= k``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from monitor.channels import (
    BreathChannel,
    FootpodChannel,
    HeartRateChannel,
    SensorState,
    make_channel,
)
from monitor.estimators.breathing import steps_per_breath_metric
from monitor.estimators.speed import ImuSpeedModel
from monitor.estimators.trunk import TrunkImuEstimator
from monitor.fusion import fuse, stride_length
from monitor.metrics import MetricName, MetricRow, MetricValue
from rules.baseline import Baselines
from rules.coach import Coach, CueDecision, SessionContext
from rules.config import RuleConfig
from sensors.errors import DecodeError
from sensors.recording import (
    BadLine,
    ConnectionEvent,
    ControlEvent,
    Notification,
    PainEvent,
    Record,
    RecordingHeader,
)

log = logging.getLogger(__name__)

#: Profiles that measure the trunk's motion: the runner is asked to stand still to calibrate.
IMU_PROFILES: Final = frozenset({"runmon_imu", "polar_pmd"})

#: Warnings kept verbatim; beyond this only the count grows (a broken sensor must not eat RAM).
MAX_WARNINGS_KEPT: Final = 200

SessionOutput = MetricRow | CueDecision

__all__ = ["RunnerSession", "SensorState", "SessionDiagnostics", "SessionOutput"]


@dataclass(slots=True)
class SessionDiagnostics:
    """Bad input seen so far: counted, the first ones kept with their line numbers."""

    errors: int = 0
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.errors += 1
        if len(self.warnings) < MAX_WARNINGS_KEPT:
            self.warnings.append(message)
        if self.errors <= 10 or self.errors % 1000 == 0:
            log.warning("%s (bad input #%d)", message, self.errors)


class RunnerSession:
    """Streaming state of one runner: sensors -> estimators -> 1 Hz rows -> coach -> cues."""

    def __init__(
        self,
        header: RecordingHeader,
        *,
        rules: RuleConfig | None = None,
        baselines: Baselines | None = None,
        prior_back_pain_days_ago: tuple[float, ...] = (),
        on_output: Callable[[SessionOutput], None] | None = None,
    ) -> None:
        self.header = header
        self.runner = header.runner
        hr_max = header.runner_profile.hr_max_bpm
        context = SessionContext(
            has_trunk_imu=any(s.profile in IMU_PROFILES for s in header.sensors),
            hr_max_bpm=float(hr_max) if hr_max is not None else None,
            prior_back_pain_days_ago=prior_back_pain_days_ago,
        )
        self.coach = Coach(rules, baselines, context=context)
        self.diagnostics = SessionDiagnostics()
        self.channels = {spec.id: make_channel(spec) for spec in header.sensors}
        #: The channels that take part in the breathing metrics, in channel order.
        self._breathing_channels = [
            channel
            for channel in self.channels.values()
            if isinstance(channel, (BreathChannel, HeartRateChannel))
        ]
        self._speed_model = ImuSpeedModel()
        self.last_t_s = 0.0
        self._next_row_t_s = 1
        self._on_output = on_output

    # -- input -------------------------------------------------------------------------------

    def set_output(self, on_output: Callable[[SessionOutput], None] | None) -> None:
        """Where closed seconds go as they happen (the live service publishes them)."""
        self._on_output = on_output

    def feed(self, record: Record) -> list[SessionOutput]:
        """Take one record; returns the rows (and cues) of the seconds it closed."""
        t_s = record.t
        # Most records close no second: skip the call (a replay feeds ~15 per second of data).
        out = self.advance_to(t_s) if t_s is not None and t_s > self._next_row_t_s else []
        if isinstance(record, Notification):
            channel = self.channels[record.sensor]
            try:
                channel.handle(record)
            except DecodeError as exc:
                channel.state.decode_errors += 1
                self.diagnostics.warn(f"line {record.line_no}: sensor {record.sensor!r}: {exc}")
        elif isinstance(record, ConnectionEvent):
            channel = self.channels[record.sensor]
            channel.state.connected = record.kind == "connect"
            channel.state.disconnected = record.kind == "disconnect"
            if record.kind == "connect":
                channel.reconnected()
        elif isinstance(record, BadLine):
            self.diagnostics.warn(f"line {record.line_no}: {record.reason}")
        elif isinstance(record, PainEvent):
            self.coach.pain(record.t, record.level, record.location, record.radiating)
        elif isinstance(record, ControlEvent):
            self.coach.control(record.t, record.action, record.minutes)
        if t_s is not None and t_s > self.last_t_s:
            self.last_t_s = t_s
        return out

    def feed_all(self, records: Iterable[Record]) -> list[SessionOutput]:
        out: list[SessionOutput] = []
        for record in records:
            out.extend(self.feed(record))
        return out

    def advance_to(self, t_s: float) -> list[SessionOutput]:
        """Close every whole second before ``t_s`` (data at exactly ``k`` belongs to row ``k``)."""
        out: list[SessionOutput] = []
        while self._next_row_t_s < t_s:
            out.extend(self._close_second(self._next_row_t_s))
            self._next_row_t_s += 1
        return out

    def finish(self, end_t_s: float | None = None) -> list[SessionOutput]:
        """Close the seconds up to and including the end of the data."""
        end = self.last_t_s if end_t_s is None else end_t_s
        out: list[SessionOutput] = []
        while self._next_row_t_s <= end:
            out.extend(self._close_second(self._next_row_t_s))
            self._next_row_t_s += 1
        return out

    # -- per second --------------------------------------------------------------------------

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]:
        footpod: dict[MetricName, MetricValue] | None = None
        trunks: list[dict[MetricName, MetricValue]] = []
        others: list[dict[MetricName, MetricValue]] = []
        feature: float | None = None
        for channel in self.channels.values():
            for estimator in channel.estimators:
                metrics = estimator.metrics_at(t_s)
                if isinstance(channel, FootpodChannel) and footpod is None:
                    footpod = metrics
                elif isinstance(estimator, TrunkImuEstimator):
                    trunks.append(metrics)
                    feature = feature or estimator.step_length_feature(t_s)
                else:
                    others.append(metrics)
        values = fuse(footpod, trunks, others)
        if trunks:
            self._imu_speed(values, footpod, feature)
        self._breathing(t_s, values)
        return values

    def _breathing(self, t_s: float, values: dict[MetricName, MetricValue]) -> None:
        """The band first; without one (or while it says nothing) the RR intervals' rhythm."""
        cadence = values["cadence_spm"]
        for channel in self._breathing_channels:
            if isinstance(channel, BreathChannel) and channel.breathing is not None:
                channel.breathing.note_cadence(t_s, cadence.value)
            if isinstance(channel, HeartRateChannel) and values["breathing_rate_bpm"].value is None:
                fallback = channel.rr_breathing.metrics_at(t_s)["breathing_rate_bpm"]
                if fallback.value is not None or values["breathing_rate_bpm"].quality == "missing":
                    values["breathing_rate_bpm"] = fallback
                    values["steps_per_breath"] = steps_per_breath_metric(cadence, fallback)

    def _imu_speed(
        self,
        values: dict[MetricName, MetricValue],
        footpod: dict[MetricName, MetricValue] | None,
        feature: float | None,
    ) -> None:
        """Learn the IMU speed model while the footpod speaks; stand in for it when it does not."""
        cadence = values["cadence_spm"].value
        speed = None if footpod is None else footpod["speed_mps"]
        if speed is not None and speed.value is not None and speed.quality == "ok":
            if cadence is not None and feature is not None:
                self._speed_model.learn(speed.value, cadence, feature)
            return
        values["speed_mps"] = self._speed_model.speed(cadence, feature)
        values["stride_length_m"] = stride_length(values["speed_mps"], values["cadence_spm"])

    def _close_second(self, t_s: int) -> list[SessionOutput]:
        values = self.metrics_at(t_s)
        metrics: dict[str, float | None] = {}
        qualities: dict[str, str] = {}
        for name, value in values.items():
            metrics[name] = value.value
            qualities[name] = value.quality
        cues = self.coach.update(float(t_s), metrics, qualities)
        row = MetricRow(t_s=t_s, phase=self.coach.phase, values=values)
        out: list[SessionOutput] = [row, *cues]
        if self._on_output is not None:
            for item in out:
                self._on_output(item)
        return out
