"""A simulated run: a scenario's runner and sensors as one time-ordered stream of records.

The same stream becomes a recording (``runmon simulate``) or feeds the live service (``runmon
demo``): one source, so a replay and a live run see identical bytes.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from sensors.recording import (
    Record,
    RecordingHeader,
    RecordingWriter,
    RunnerProfile,
)
from sensors.recording import (
    SensorSpec as HeaderSensorSpec,
)
from simulators.footpod import footpod_records
from simulators.runner import simulate_runner
from simulators.scenario import Scenario


def recording_header(scenario: Scenario, started_at: datetime | None = None) -> RecordingHeader:
    """The header a real capture of this scenario's sensors would carry."""
    start = started_at or datetime(2026, 1, 1, 7, 0, tzinfo=UTC)
    sensors = [
        HeaderSensorSpec(
            id=sensor_id,
            profile=spec.profile,
            cadence_unit=spec.declared_cadence_unit,
        )
        for sensor_id, spec in scenario.sensors.items()
    ]
    return RecordingHeader(
        format="runmon-recording",
        version=1,
        runner=scenario.runner.id,
        started_at=start,
        sensors=sensors,
        runner_profile=RunnerProfile(hr_max_bpm=scenario.runner.hr_max_bpm),
        meta={"simulator": {"scenario": scenario.name}},
    )


def simulated_records(scenario: Scenario, duration_s: float, seed: int) -> Iterator[Record]:
    """Every sensor's records, merged in receive-time order; deterministic per seed."""
    track = simulate_runner(scenario, duration_s, seed)
    streams = []
    for index, (sensor_id, spec) in enumerate(scenario.sensors.items()):
        # Each sensor draws from its own stream so adding a sensor leaves the others unchanged.
        rng = np.random.default_rng([seed, index + 1])
        streams.append(footpod_records(sensor_id, spec, track, duration_s, rng))
    return heapq.merge(*streams, key=_record_time)


def _record_time(record: Record) -> float:
    return record.t if record.t is not None else 0.0


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
