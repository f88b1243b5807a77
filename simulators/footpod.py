"""A virtual RSC footpod: what a real one sends, encoded with the production encoder.

Cadence goes out as steps or strides per minute, speed with the pod's calibration error and
noise. Its battery can run flat mid-run (``battery_dies_at_s``): the level falls from
``battery_pct`` at connect to 0, notified at every whole percent, and at that moment the pod
stops sending and the link goes down for good (a ``disconnect`` event, no reconnect). With a
``link``, notifications travel through the shared :class:`~simulators.link.Link` model
(connection events, packet loss, link drops); without one, they arrive after a small uniform
delay (``jitter_s``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sensors import uuids
from sensors.gatt.battery import BatteryLevel, encode_battery_level
from sensors.gatt.rsc import RscMeasurement, encode_rsc_measurement
from sensors.recording import ConnectionEvent, Notification, Record
from simulators.link import Link, connection_records, receive_time
from simulators.runner import RunnerTrack
from simulators.scenario import FootpodSpec

_MAX_SPEED_MPS = 255.0  # u16 in 1/256 m/s


def _battery_notes(
    sensor_id: str, spec: FootpodSpec, connect_s: float, end_s: float
) -> list[Notification]:
    """A battery level notification at every whole percent lost before ``end_s``: the level
    falls evenly from ``battery_pct`` at connect and reads 0 for the last step before death."""
    dies = spec.battery_dies_at_s
    if dies is None or dies <= connect_s or spec.battery_pct == 0:
        return []
    step_s = (dies - connect_s) / (spec.battery_pct + 1)
    notes = []
    for level in range(spec.battery_pct - 1, -1, -1):
        t = round(connect_s + step_s * (spec.battery_pct - level), 4)
        if t >= end_s:
            break
        payload = encode_battery_level(BatteryLevel(level))
        notes.append(Notification(t=t, sensor=sensor_id, char=uuids.BATTERY_LEVEL, payload=payload))
    return notes


def footpod_records(
    sensor_id: str,
    spec: FootpodSpec,
    track: RunnerTrack,
    duration_s: float,
    rng: np.random.Generator,
) -> Iterator[Record]:
    """Connect, a battery read, then one RSC Measurement per ``interval_s`` until the end."""
    connect_t = round(float(rng.uniform(0.05, 0.3)), 4)
    first_t = connect_t + 0.1 + float(rng.uniform(0.0, spec.interval_s))
    dies = spec.battery_dies_at_s
    stop_s = duration_s if dies is None else min(duration_s, dies)
    send_t = np.arange(first_t, duration_s, spec.interval_s)
    # Host receive time: the connection interval adds a small positive delay.
    recv_t = send_t + rng.uniform(0.0, spec.jitter_s, send_t.size)
    recv_t = np.maximum.accumulate(recv_t) if send_t.size else recv_t
    speed = track.at("speed_mps", send_t) * (1.0 + spec.speed_error_rel)
    speed = np.clip(speed + rng.normal(0.0, spec.speed_noise_mps, send_t.size), 0.0, None)
    speed = np.where(track.at("speed_mps", send_t) > 0.0, speed, 0.0)
    kept = send_t < stop_s
    battery_read = encode_battery_level(BatteryLevel(spec.battery_pct))
    records: list[Record]
    link: Link | None = None
    if spec.link is None:
        records = [
            ConnectionEvent(t=connect_t, sensor=sensor_id, kind="connect", line_no=0),
            Notification(
                t=connect_t + 0.05,
                sensor=sensor_id,
                char=uuids.BATTERY_LEVEL,
                payload=battery_read,
                line_no=0,
            ),
        ]
    else:
        link_rng = np.random.default_rng(rng.integers(0, 2**63))
        interval_s = spec.link.connection_interval_ms / 1000.0
        link = Link(
            spec=spec.link,
            connect_s=connect_t,
            anchor_s=connect_t + float(link_rng.uniform(0.0, interval_s)),
            down_s=tuple(
                (d.t_s, d.t_s + d.duration_s)
                for d in sorted(spec.link.drops, key=lambda d: d.t_s)
                if connect_t < d.t_s < stop_s
            ),
            end_s=stop_s,
        )
        records = connection_records(link, sensor_id, [(uuids.BATTERY_LEVEL, battery_read)])
        recv_t, delivered = link.deliver(send_t, link_rng)
        kept &= delivered
    if dies is not None and dies < duration_s:
        kept &= recv_t < dies
        if link is None or not link.is_down(np.array([dies]))[0]:  # else it is down already
            records.append(ConnectionEvent(t=round(dies, 4), sensor=sensor_id, kind="disconnect"))
    battery = _battery_notes(sensor_id, spec, connect_t, stop_s)
    if link is not None:  # a level change while the link is down goes unheard
        battery = [n for n in battery if not link.is_down(np.array([n.t]))[0]]
    records += battery
    cadence_spm = track.at("cadence_spm", send_t)
    divisor = 2.0 if spec.sends_cadence_as == "strides" else 1.0
    cadence_raw = np.clip(np.rint(cadence_spm / divisor), 0, 255).astype(int)
    distance_m = track.at("distance_m", send_t) * (1.0 + spec.speed_error_rel)
    for i in np.flatnonzero(kept).tolist():
        steps_per_s = cadence_spm[i] / 60.0
        stride_m = (2.0 * float(speed[i]) / steps_per_s) if steps_per_s > 0.5 else 0.0
        measurement = RscMeasurement(
            speed_mps=min(float(speed[i]), _MAX_SPEED_MPS),
            cadence_raw_per_min=int(cadence_raw[i]),
            stride_length_m=min(stride_m, 655.35),
            total_distance_m=float(distance_m[i]),
            is_running=bool(speed[i] >= 2.0),
        )
        records.append(
            Notification(
                t=round(float(recv_t[i]), 4),
                sensor=sensor_id,
                char=uuids.RSC_MEASUREMENT,
                payload=encode_rsc_measurement(measurement),
                line_no=0,
            )
        )
    records.sort(key=receive_time)  # stable: a connect stays before the reads it triggers
    yield from records
