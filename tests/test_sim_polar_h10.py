"""The virtual Polar H10: PMD ACC frames that the monitor's decoder and timer read correctly."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.channels import PmdChannel, make_channel
from sensors import uuids
from sensors.gatt.polar_pmd import PmdMeasurementType, decode_pmd_data
from sensors.recording import Notification, Record
from sensors.timing import TimestampTimer
from simulators.errors import ScenarioError
from simulators.model import simulate
from simulators.polar_h10 import VirtualPolarH10
from simulators.scenario import PmdSpec, Scenario, parse_scenario
from simulators.session import recording_header, simulated_records
from simulators.truth import truth_arrays

NS_2000_TO_2026 = 820_540_800 * 10**9  # 2026-01-01T00:00Z in ns since 2000-01-01


def scenario(h10: str = "", duration_s: float = 60.0) -> Scenario:
    return parse_scenario(
        f"""
name = "h10"
duration_s = {duration_s}

[sensors.h10]
profile = "polar_pmd"
{h10}

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


def _h10(s: Scenario, seed: int = 1) -> VirtualPolarH10:
    spec = s.sensors["h10"]
    assert isinstance(spec, PmdSpec)
    return VirtualPolarH10(
        "h10", spec, simulate(s, s.duration_s, seed), np.random.SeedSequence([seed, 1])
    )


def _data(records: list[Record]) -> list[Notification]:
    return [r for r in records if isinstance(r, Notification) and r.char == uuids.PMD_DATA]


def test_header_declares_the_h10_mount_and_acc_settings() -> None:
    (entry,) = recording_header(scenario()).sensors
    assert entry.profile == "polar_pmd"
    assert entry.placement == "chest"
    assert entry.settings == {"acc": {"sample_rate_hz": 200, "range_g": 8}}
    assert entry.mount is not None
    assert (entry.mount.forward, entry.mount.left, entry.mount.up) == ("+z", "+x", "+y")
    assert isinstance(make_channel(entry), PmdChannel)


@pytest.mark.parametrize("frame_type", ["compressed", "uncompressed"])
def test_frames_decode_with_the_default_factor_to_what_the_sensor_measured(frame_type: str) -> None:
    s = scenario(f'frame_type = "{frame_type}"')
    h10 = _h10(s)
    frames = [f for _, f in h10.frames()]
    payloads = [p for _, p in h10.payloads()]
    decoded = [decode_pmd_data(p) for p in payloads]  # the monitor's call: factor 1.0
    assert all(len(p) <= 229 for p in payloads)  # MTU 232
    assert [d.samples.tolist() for d in decoded] == [f.samples.tolist() for f in frames]
    assert all(d.measurement_type == PmdMeasurementType.ACC for d in decoded)
    assert {d.compressed for d in decoded} == {frame_type == "compressed"}
    assert {d.frame_type for d in decoded} == {1}
    sizes = np.array([d.n_samples for d in decoded])
    if frame_type == "uncompressed":
        assert set(sizes[:-1].tolist()) == {36}
    else:
        assert 36 <= np.median(sizes) <= 120
        assert sizes.max() <= 256
        assert all(len(p) > 229 - 30 for p in payloads[:-1])  # filled to the MTU
    # All samples, in order, with nothing lost or repeated: the sensor's measurement in mG.
    samples = np.concatenate([d.samples for d in decoded])
    expected = h10.samples_mg(0, samples.shape[0], np.random.default_rng(h10._noise_seed)) / 1000
    assert np.array_equal(samples, expected)
    # Standing upright, the H10's +y points up: 1 g there; below 8 g everywhere.
    standing = samples[: 200 * 8]
    assert np.allclose(standing.mean(axis=0), [0.0, 1.0, 0.0], atol=0.05)
    assert np.abs(samples).max() <= 8.0
    assert samples[200 * 20 :, 1].max() > 1.8  # running: stance peaks


def test_timestamps_are_the_last_samples_by_the_sensors_drifting_clock() -> None:
    s = scenario("clock_drift_ppm = 200")
    h10 = _h10(s)
    decoded = [decode_pmd_data(p) for _, p in h10.payloads()]
    stamps = np.array([d.timestamp_ns for d in decoded])
    counts = np.array([d.n_samples for d in decoded])
    assert abs(int(stamps[0]) - NS_2000_TO_2026 - 7 * 3600 * 10**9) < 5 * 10**9  # 07:00 ± 5 s
    assert np.all(np.abs(np.diff(stamps) - counts[1:] * 5_000_000) <= 1)  # 200 Hz on its clock
    # True sample times run 200 ppm fast against the host clock.
    last = np.cumsum(counts) - 1
    true_t = h10.sample_times(0, int(last[-1]) + 1)[last]
    sensor_s = (stamps - stamps[0]) / 1e9
    assert np.allclose(true_t - true_t[0], sensor_s / (1 + 200e-6), atol=1e-6)


def test_the_monitors_timer_places_the_samples_at_their_true_times() -> None:
    s = scenario(duration_s=90.0)
    h10 = _h10(s, seed=3)
    notes = _data(list(h10.records()))
    timer = TimestampTimer(200.0)
    got: list[float] = []
    for note in notes:
        frame = decode_pmd_data(note.payload)
        timed = timer.push(note.t, frame.timestamp_ns, frame.n_samples)
        assert timed is not None
        got += timed.t_s[-1:].tolist()
    last_index = np.round(
        (
            np.array([decode_pmd_data(n.payload).timestamp_ns for n in notes])
            - h10.first_timestamp_ns
        )
        / 5e6
    ).astype(int)
    true_last = h10.sample_times(0, int(last_index[-1]) + 1)[last_index]
    error = np.array(got) - true_last
    assert np.abs(error[len(error) // 2 :]).max() < 0.05  # within the link's latency


def test_packet_loss_and_drops_lose_whole_frames() -> None:
    s = scenario("link.packet_loss = 0.1\nlink.drops = [{ t_s = 30, duration_s = 5 }]")
    records = list(simulated_records(s, s.duration_s, 2))
    notes = _data(records)
    assert not [n for n in notes if 30.0 <= n.t < 35.0]
    stamps = np.array([decode_pmd_data(n.payload).timestamp_ns for n in notes])
    assert np.all(np.diff(stamps) > 0)
    sent = len(list(_h10(s, 2).frames()))
    assert 0.7 * sent < len(notes) < 0.95 * sent


def test_truth_is_the_same_body_and_a_chest_accelerometer_sees_the_lean() -> None:
    s = scenario(duration_s=90.0)
    runner = simulate(s, s.duration_s, 1)
    truth = truth_arrays(runner)
    assert np.nanmean(truth["trunk_lean_deg"][40:]) == pytest.approx(7.0, abs=1.5)


@pytest.mark.parametrize(
    ("h10", "name"),
    [
        ("sample_rate_hz = 130", "sample_rate_hz"),
        ("gyro = true", "gyro"),
        ('frame_type = "raw"', "frame_type"),
        ("mtu = 10", "mtu"),
        ("range_g = 16", "range_g"),
    ],
)
def test_h10_errors_name_the_bad_field(h10: str, name: str) -> None:
    with pytest.raises(ScenarioError, match=rf"sensors\.h10\.{name}"):
        scenario(h10)
