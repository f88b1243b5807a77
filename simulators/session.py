"""A simulated run: a scenario's runner and sensors as one time-ordered stream of records.

The same stream becomes a recording (``runmon simulate``) or feeds the live service (``runmon
demo``): one source, so a replay and a live run see identical bytes. Its ground truth
(``runmon simulate --truth``) comes from :func:`write_truth`, the same runner for the same
scenario, duration and seed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from sensors.recording import (
    ControlEvent,
    MountSpec,
    PainEvent,
    Record,
    RecordingHeader,
    RecordingWriter,
    RunnerProfile,
)
from sensors.recording import (
    SensorSpec as HeaderSensorSpec,
)
from simulators.breath_band import VirtualBreathBand
from simulators.footpod import footpod_records
from simulators.hr_strap import VirtualHeartRateStrap
from simulators.imu import VirtualImu
from simulators.link import receive_time
from simulators.model import VirtualRunner, simulate
from simulators.polar_h10 import VirtualPolarH10
from simulators.scenario import (
    FootpodSpec,
    HeartRateSpec,
    ImuSpec,
    PmdSpec,
    Scenario,
    SensorSpecType,
)
from simulators.truth import truth_series, write_truth

__all__ = [
    "effective_duration_s",
    "event_records",
    "recording_header",
    "sensor_records",
    "simulated_records",
    "truth_series",
    "write_recording",
    "write_truth",
]


def _header_sensor(sensor_id: str, spec: SensorSpecType) -> HeaderSensorSpec:
    """A sensor's header entry: what a real capture declares for it, per profile."""
    if isinstance(spec, FootpodSpec):
        return HeaderSensorSpec(
            id=sensor_id, profile=spec.profile, cadence_unit=spec.declared_cadence_unit
        )
    if isinstance(spec, ImuSpec | PmdSpec):
        mount = MountSpec(forward=spec.mount.forward, left=spec.mount.left, up=spec.mount.up)
        settings = None
        if isinstance(spec, PmdSpec):
            settings = {"acc": {"sample_rate_hz": spec.sample_rate_hz, "range_g": spec.range_g}}
        return HeaderSensorSpec(
            id=sensor_id,
            profile=spec.profile,
            placement=spec.placement,
            mount=mount,
            settings=settings,
        )
    return HeaderSensorSpec(id=sensor_id, profile=spec.profile)


def recording_header(scenario: Scenario, started_at: datetime | None = None) -> RecordingHeader:
    """The header a real capture of this scenario's sensors would carry."""
    start = started_at or datetime(2026, 1, 1, 7, 0, tzinfo=UTC)
    return RecordingHeader(
        format="runmon-recording",
        version=1,
        runner=scenario.runner.id,
        started_at=start,
        sensors=[_header_sensor(i, spec) for i, spec in scenario.sensors.items()],
        runner_profile=RunnerProfile(hr_max_bpm=scenario.runner.hr_max_bpm),
        meta={"simulator": {"scenario": scenario.name}},
    )


def sensor_records(
    runner: VirtualRunner, index: int, sensor_id: str, spec: SensorSpecType
) -> Iterator[Record]:
    """One virtual sensor's records, from its own random stream (index = declaration order).

    Each sensor draws from its own stream, so adding a sensor leaves the others unchanged.
    """
    seed = runner.seed
    if isinstance(spec, FootpodSpec):
        rng = np.random.default_rng([seed, index + 1])
        return footpod_records(sensor_id, spec, runner.track, runner.duration_s, rng)
    seeds = np.random.SeedSequence([seed, index + 1])
    if isinstance(spec, ImuSpec):
        return VirtualImu(sensor_id, spec, runner, seeds).records()
    if isinstance(spec, HeartRateSpec):
        return VirtualHeartRateStrap(sensor_id, spec, runner, seeds).records()
    if isinstance(spec, PmdSpec):
        return VirtualPolarH10(sensor_id, spec, runner, seeds).records()
    return VirtualBreathBand(sensor_id, spec, runner, seeds).records()


def event_records(scenario: Scenario, duration_s: float) -> list[Record]:
    """The scenario's pain reports and control commands up to ``duration_s``, in time order."""
    out: list[Record] = []
    for event in sorted(scenario.events, key=lambda e: e.t_s):
        if event.t_s > duration_s:
            break
        t = round(event.t_s, 4)
        if event.pain is not None:
            pain = event.pain
            out.append(PainEvent(t, pain.level, pain.location, pain.radiating))
        elif event.control is not None:
            out.append(ControlEvent(t, event.control.action, event.control.minutes))
    return out


def simulated_records(scenario: Scenario, duration_s: float, seed: int) -> Iterator[Record]:
    """Every sensor's records and the runner's app events, merged in receive-time order;
    deterministic per seed."""
    runner = simulate(scenario, duration_s, seed)
    streams: list[Iterator[Record]] = [
        sensor_records(runner, index, sensor_id, spec)
        for index, (sensor_id, spec) in enumerate(scenario.sensors.items())
    ]
    streams.append(iter(event_records(scenario, duration_s)))
    return heapq.merge(*streams, key=receive_time)


def effective_duration_s(scenario: Scenario, duration_s: float | None) -> float:
    """``--duration`` caps the scenario at that many seconds of simulated time."""
    if duration_s is None:
        return scenario.duration_s
    return min(scenario.duration_s, duration_s)


def write_recording(
    scenario: Scenario,
    target: str | Path | TextIO,
    *,
    duration_s: float | None = None,
    seed: int = 0,
    started_at: datetime | None = None,
) -> int:
    """Simulate the scenario into a recording; returns the number of records written."""
    duration = effective_duration_s(scenario, duration_s)
    header = recording_header(scenario, started_at)
    header.meta["simulator"].update({"seed": seed, "duration_s": duration})
    count = 0
    with RecordingWriter(target, header) as writer:
        for record in simulated_records(scenario, duration, seed):
            writer.write_record(record)
            count += 1
    return count
