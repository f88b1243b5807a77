"""Virtual straps: what they send decodes with the production decoders to what they meant."""

from __future__ import annotations

import io
import json
from collections import Counter

import numpy as np
import pytest

from sensors import uuids
from sensors.gatt.battery import decode_battery_level
from sensors.gatt.heart_rate import decode_heart_rate_measurement, encode_heart_rate_measurement
from sensors.gatt.runmon_breath import decode_breath_block, encode_breath_block
from sensors.gatt.runmon_imu import decode_imu_block, decode_imu_config, encode_imu_block
from sensors.recording import (
    BadLine,
    ConnectionEvent,
    Notification,
    Record,
    RecordingReader,
)
from simulators.breath_band import VirtualBreathBand
from simulators.hr_strap import VirtualHeartRateStrap
from simulators.imu import VirtualImu
from simulators.link import receive_time
from simulators.model import VirtualRunner, simulate
from simulators.scenario import BreathSpec, HeartRateSpec, ImuSpec, Scenario, parse_scenario
from simulators.session import recording_header, simulated_records, write_recording
from simulators.truth import truth_arrays


def scenario(duration_s: float = 90.0, imu: str = "", hr: str = "", band: str = "") -> Scenario:
    return parse_scenario(
        f"""
name = "straps"
duration_s = {duration_s}

[sensors.chest]
profile = "runmon_imu"
placement = "upper_back"
{imu}

[sensors.chest.mount]
forward = "-x"
left = "-y"
up = "+z"

[sensors.hr]
profile = "heart_rate"
{hr}

[sensors.band]
profile = "runmon_breath"
{band}

[[timeline]]
t_s = 0
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 10
speed_mps = 0.0
cadence_spm = 0

[[timeline]]
t_s = 16
speed_mps = 3.4
cadence_spm = 174
"""
    )


def _runner(s: Scenario, seed: int = 1) -> VirtualRunner:
    return simulate(s, s.duration_s, seed)


def _imu(s: Scenario, seed: int = 1) -> VirtualImu:
    spec = s.sensors["chest"]
    assert isinstance(spec, ImuSpec)
    return VirtualImu("chest", spec, _runner(s, seed), np.random.SeedSequence([seed, 1]))


def _data(records: list[Record], char: str) -> list[Notification]:
    return [r for r in records if isinstance(r, Notification) and r.char == char]


def test_imu_blocks_round_trip_within_wire_resolution_and_sequence_wraps() -> None:
    s = scenario(duration_s=80.0, imu="sample_rate_hz = 1000\nsamples_per_notification = 40")
    imu = _imu(s)
    expected_sequence = 0
    n = 0
    for _, block in imu.blocks():
        decoded = decode_imu_block(encode_imu_block(block))
        assert decoded.sequence == block.sequence == expected_sequence
        assert decoded.sample_rate_hz == 1000
        assert np.abs(decoded.acc_g - block.acc_g).max() <= 0.5 / 2048 + 1e-12
        assert block.gyro_dps is not None
        assert decoded.gyro_dps is not None
        assert np.abs(decoded.gyro_dps - block.gyro_dps).max() <= 0.5 / 16 + 1e-12
        expected_sequence = (expected_sequence + 40) % 65536
        n += 40
    assert n > 65536  # the sequence number wrapped at least once


def test_imu_records_carry_exactly_the_encoded_blocks() -> None:
    imu = _imu(scenario(duration_s=30.0))
    sent = {block.sequence: encode_imu_block(block) for _, block in imu.blocks()}
    records = list(imu.records())
    data = _data(records, uuids.RUNMON_IMU_DATA)
    assert len(data) == len(sent)  # no loss configured
    for record in data:
        block = decode_imu_block(record.payload)
        assert record.payload == sent[block.sequence]
        assert block.n_samples == 19
        assert block.gyro_dps is not None
    times = [receive_time(r) for r in records]
    assert times == sorted(times)
    config = _data(records, uuids.RUNMON_IMU_CONFIG)
    assert len(config) == 1
    parsed = decode_imu_config(config[0].payload)
    assert (parsed.sample_rate_hz, parsed.placement) == (200, "upper_back")
    assert decode_battery_level(_data(records, uuids.BATTERY_LEVEL)[0].payload).level_pct == 76


def test_imu_arrives_at_connection_events_after_it_was_sent() -> None:
    imu = _imu(
        scenario(duration_s=20.0, imu="link.connection_interval_ms = 45\nlink.jitter_ms = 0")
    )
    sent = {block.sequence: t for t, block in imu.blocks()}
    interval = 0.045
    for record in _data(list(imu.records()), uuids.RUNMON_IMU_DATA):
        send_t = sent[decode_imu_block(record.payload).sequence]
        assert send_t <= record.t + 1e-4 < send_t + interval + 2e-4
        phase = ((record.t - imu.link.anchor_s) / interval) % 1.0
        assert min(phase, 1.0 - phase) < 0.01


def test_imu_clock_drift_stretches_sample_times() -> None:
    fast = _imu(scenario(duration_s=60.0, imu="clock_drift_ppm = 400"))
    slow = _imu(scenario(duration_s=60.0, imu="clock_drift_ppm = -400"))
    span = 10_000
    assert fast.sample_times(span, 1)[0] - fast.sample_times(0, 1)[0] == pytest.approx(
        span / (200 * 1.0004)
    )
    assert slow.n_notifications > 0
    assert fast.n_notifications >= slow.n_notifications


def test_imu_packet_loss_and_link_drops() -> None:
    s = scenario(
        duration_s=120.0,
        imu="link.packet_loss = 0.2\nlink.drops = [{ t_s = 40.0, duration_s = 5.0 }]",
    )
    imu = _imu(s)
    records = list(imu.records())
    data = _data(records, uuids.RUNMON_IMU_DATA)
    assert 0.7 * imu.n_notifications < len(data) < 0.78 * imu.n_notifications
    assert not any(40.0 <= r.t < 45.0 for r in data)
    events = [(r.t, r.kind) for r in records if isinstance(r, ConnectionEvent)]
    assert [kind for _, kind in events] == ["connect", "disconnect", "connect"]
    assert events[1][0] == 40.0
    assert events[2][0] == 45.0
    assert len(_data(records, uuids.RUNMON_IMU_CONFIG)) == 2  # read again on reconnect
    # The strap kept sampling: sequence numbers jump over the gap.
    sequences = [decode_imu_block(r.payload).sequence for r in data]
    gaps = np.diff(sequences)
    assert set(gaps.tolist()) - {19}
    assert (gaps % 19 == 0).all()


def test_hr_strap_round_trip_and_rr_intervals_are_the_heartbeats() -> None:
    s = scenario(duration_s=120.0)
    runner = _runner(s)
    spec = s.sensors["hr"]
    assert isinstance(spec, HeartRateSpec)
    strap = VirtualHeartRateStrap("hr", spec, runner, np.random.SeedSequence([1, 2]))
    measurements = list(strap.measurements())
    assert len(measurements) >= 118
    all_rr: list[float] = []
    for _, m in measurements:
        decoded = decode_heart_rate_measurement(encode_heart_rate_measurement(m))
        assert decoded.heart_rate_bpm == m.heart_rate_bpm
        assert decoded.contact == "contact"
        assert all(
            abs(a - b) <= 0.5 / 1024
            for a, b in zip(decoded.rr_intervals_s, m.rr_intervals_s, strict=True)
        )
        all_rr += decoded.rr_intervals_s
    beats = runner.heart.beats_s
    first = np.searchsorted(beats, strap.link.connect_s)
    expected = np.diff(beats)[first:][: len(all_rr)]
    assert np.abs(np.array(all_rr) - expected).max() <= 0.5 / 1024 + 1e-12
    # The displayed heart rate follows truth.
    truth = truth_arrays(runner)["heart_rate_bpm"]
    for t, m in measurements[10:]:
        assert m.heart_rate_bpm == pytest.approx(truth[int(t) - 1], abs=6.0)
    records = list(strap.records())
    hr = _data(records, uuids.HEART_RATE_MEASUREMENT)
    assert len(hr) == len(measurements)
    assert decode_heart_rate_measurement(hr[-1].payload).heart_rate_bpm > 120  # running


def test_hr_strap_can_send_u16_heart_rate() -> None:
    s = scenario(duration_s=10.0, hr="hr_u16 = true\nrr_intervals = false")
    spec = s.sensors["hr"]
    assert isinstance(spec, HeartRateSpec)
    strap = VirtualHeartRateStrap("hr", spec, _runner(s), np.random.SeedSequence([1, 2]))
    payloads = [r.payload for r in _data(list(strap.records()), uuids.HEART_RATE_MEASUREMENT)]
    assert payloads
    assert all(p[0] & 0x01 and not p[0] & 0x10 for p in payloads)


def test_breath_band_round_trip_and_it_breathes() -> None:
    s = scenario(duration_s=60.0)
    runner = _runner(s)
    spec = s.sensors["band"]
    assert isinstance(spec, BreathSpec)
    band = VirtualBreathBand("band", spec, runner, np.random.SeedSequence([1, 3]))
    values = []
    expected_sequence = 0
    for _, block in band.blocks():
        decoded = decode_breath_block(encode_breath_block(block))
        assert decoded.sequence == block.sequence == expected_sequence
        assert decoded.sample_rate_hz == 25
        assert decoded.n_samples == 10
        assert np.abs(decoded.stretch - block.stretch).max() <= 0.5
        expected_sequence += 10
        values.append(decoded.stretch)
    stretch = np.concatenate(values)
    running = stretch[-25 * 20 :]
    # About one baseline breath (2000 units) peak to peak, with artefacts on top.
    assert 1500 < np.ptp(running) < 4000
    spectrum = np.abs(np.fft.rfft(running - running.mean()))
    freqs = np.fft.rfftfreq(running.size, 1 / 25)
    breathing_hz = freqs[np.argmax(spectrum)]
    assert breathing_hz == pytest.approx(174 / 4 / 60, abs=0.1)  # locked: 4 steps a breath
    records = list(band.records())
    assert len(_data(records, uuids.RUNMON_BREATH_DATA)) == band.n_notifications


def test_recording_header_declares_placement_and_mount() -> None:
    header = recording_header(scenario())
    by_id = {entry.id: entry for entry in header.sensors}
    chest = by_id["chest"]
    assert chest.profile == "runmon_imu"
    assert chest.placement == "upper_back"
    assert chest.mount is not None
    assert (chest.mount.forward, chest.mount.left, chest.mount.up) == ("-x", "-y", "+z")
    assert by_id["hr"].profile == "heart_rate"
    assert by_id["band"].profile == "runmon_breath"


def test_recording_reads_back_cleanly_and_is_deterministic_per_seed() -> None:
    s = scenario(duration_s=40.0)
    texts = []
    for seed in (5, 5, 6):
        out = io.StringIO()
        write_recording(s, out, seed=seed)
        texts.append(out.getvalue())
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]
    reader = RecordingReader(io.StringIO(texts[0]))
    records = list(reader)
    assert not [r for r in records if isinstance(r, BadLine)]
    counts = Counter(r.sensor for r in records if isinstance(r, Notification))
    assert counts["chest"] > 390
    assert counts["band"] > 90
    assert counts["hr"] > 35
    header = json.loads(texts[0].splitlines()[0])
    assert header["sensors"][0]["mount"] == {"forward": "-x", "left": "-y", "up": "+z"}


def test_simulated_records_are_merged_in_time_order() -> None:
    records = list(simulated_records(scenario(duration_s=30.0), 30.0, 2))
    times = [receive_time(r) for r in records]
    assert times == sorted(times)


def test_nothing_arrives_after_the_capture_ends_and_a_last_drop_never_reconnects() -> None:
    s = scenario(duration_s=30.0, imu="link.drops = [{ t_s = 25.0, duration_s = 60.0 }]")
    records = list(simulated_records(s, 30.0, 1))
    assert max(receive_time(r) for r in records) <= 30.0
    chest = [r for r in records if isinstance(r, ConnectionEvent) and r.sensor == "chest"]
    assert [r.kind for r in chest] == ["connect", "disconnect"]
    assert not [r for r in _data(records, uuids.RUNMON_IMU_DATA) if r.t >= 25.0]
