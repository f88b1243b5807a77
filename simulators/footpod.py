"""A virtual RSC footpod: what a real one sends, encoded with the production encoder."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sensors import uuids
from sensors.gatt.battery import BatteryLevel, encode_battery_level
from sensors.gatt.rsc import RscMeasurement, encode_rsc_measurement
from sensors.recording import ConnectionEvent, Notification, Record
from simulators.runner import RunnerTrack
from simulators.scenario import FootpodSpec

_MAX_SPEED_MPS = 255.0  # u16 in 1/256 m/s


def footpod_records(
    sensor_id: str,
    spec: FootpodSpec,
    track: RunnerTrack,
    duration_s: float,
    rng: np.random.Generator,
) -> Iterator[Record]:
    """Connect, a battery read, then one RSC Measurement per ``interval_s`` until the end."""
    connect_t = round(float(rng.uniform(0.05, 0.3)), 4)
    yield ConnectionEvent(t=connect_t, sensor=sensor_id, kind="connect", line_no=0)
    yield Notification(
        t=connect_t + 0.05,
        sensor=sensor_id,
        char=uuids.BATTERY_LEVEL,
        payload=encode_battery_level(BatteryLevel(spec.battery_pct)),
        line_no=0,
    )
    first_t = connect_t + 0.1 + float(rng.uniform(0.0, spec.interval_s))
    send_t = np.arange(first_t, duration_s, spec.interval_s)
    if send_t.size == 0:
        return
    # Host receive time: the connection interval adds a small positive delay.
    recv_t = send_t + rng.uniform(0.0, spec.jitter_s, send_t.size)
    recv_t = np.maximum.accumulate(recv_t)
    speed = track.at("speed_mps", send_t) * (1.0 + spec.speed_error_rel)
    speed = np.clip(speed + rng.normal(0.0, spec.speed_noise_mps, send_t.size), 0.0, None)
    speed = np.where(track.at("speed_mps", send_t) > 0.0, speed, 0.0)
    cadence_spm = track.at("cadence_spm", send_t)
    divisor = 2.0 if spec.sends_cadence_as == "strides" else 1.0
    cadence_raw = np.clip(np.rint(cadence_spm / divisor), 0, 255).astype(int)
    distance_m = track.at("distance_m", send_t) * (1.0 + spec.speed_error_rel)
    for i in range(send_t.size):
        steps_per_s = cadence_spm[i] / 60.0
        stride_m = (2.0 * float(speed[i]) / steps_per_s) if steps_per_s > 0.5 else 0.0
        measurement = RscMeasurement(
            speed_mps=min(float(speed[i]), _MAX_SPEED_MPS),
            cadence_raw_per_min=int(cadence_raw[i]),
            stride_length_m=min(stride_m, 655.35),
            total_distance_m=float(distance_m[i]),
            is_running=bool(speed[i] >= 2.0),
        )
        yield Notification(
            t=round(float(recv_t[i]), 4),
            sensor=sensor_id,
            char=uuids.RSC_MEASUREMENT,
            payload=encode_rsc_measurement(measurement),
            line_no=0,
        )
