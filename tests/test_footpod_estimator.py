"""Footpod metrics: units, calibration, smoothing, staleness — what a runner's watch would show."""

from __future__ import annotations

import pytest

from monitor.estimators.footpod import FootpodEstimator
from sensors.gatt.rsc import RscMeasurement


def _m(speed_mps: float, cadence_raw: int) -> RscMeasurement:
    return RscMeasurement(
        speed_mps=speed_mps,
        cadence_raw_per_min=cadence_raw,
        stride_length_m=None,
        total_distance_m=None,
        is_running=speed_mps >= 2.0,
    )


def test_steps_per_minute_and_stride_length_from_speed_and_cadence() -> None:
    est = FootpodEstimator(cadence_unit="steps")
    for t in range(10):
        est.update(float(t), _m(3.0, 180))
    metrics = est.metrics_at(9.5)
    assert metrics["cadence_spm"].value == pytest.approx(180.0)
    assert metrics["speed_mps"].value == pytest.approx(3.0)
    # 3 m/s at 3 steps/s: 1 m per step (the running-watch convention).
    assert metrics["stride_length_m"].value == pytest.approx(1.0)
    assert {v.quality for v in metrics.values()} == {"ok"}


def test_strides_per_minute_are_doubled() -> None:
    est = FootpodEstimator(cadence_unit="strides")
    est.update(0.0, _m(3.0, 85))
    assert est.metrics_at(0.5)["cadence_spm"].value == pytest.approx(170.0)


@pytest.mark.parametrize(("raw", "expected_spm"), [(86, 172.0), (172, 172.0)])
def test_auto_unit_decides_at_running_speed(raw: int, expected_spm: float) -> None:
    est = FootpodEstimator(cadence_unit="auto")
    est.update(0.0, _m(3.2, raw))
    assert est.metrics_at(0.5)["cadence_spm"].value == pytest.approx(expected_spm)


def test_auto_unit_is_undecided_while_walking_slowly() -> None:
    est = FootpodEstimator(cadence_unit="auto")
    est.update(0.0, _m(1.2, 55))
    metrics = est.metrics_at(0.5)
    assert metrics["cadence_spm"].value is None
    assert metrics["cadence_spm"].quality == "warming_up"
    assert metrics["speed_mps"].value == pytest.approx(1.2)


def test_speed_factor_calibrates_speed_and_stride() -> None:
    est = FootpodEstimator(cadence_unit="steps", speed_factor=1.1)
    est.update(0.0, _m(3.0, 180))
    metrics = est.metrics_at(0.5)
    assert metrics["speed_mps"].value == pytest.approx(3.3)
    assert metrics["stride_length_m"].value == pytest.approx(1.1)


def test_null_and_stale_after_three_seconds_of_silence_then_recovers() -> None:
    est = FootpodEstimator(cadence_unit="steps")
    est.update(10.0, _m(3.0, 170))
    assert est.metrics_at(13.0)["cadence_spm"].value is not None
    stale = est.metrics_at(13.5)["cadence_spm"]
    assert stale.value is None
    assert stale.quality == "stale"
    est.update(20.0, _m(3.1, 172))
    recovered = est.metrics_at(20.2)["cadence_spm"]
    assert recovered.quality == "ok"
    assert recovered.value == pytest.approx(172.0)


def test_warming_up_before_first_reading() -> None:
    est = FootpodEstimator()
    assert {v.quality for v in est.metrics_at(1.0).values()} == {"warming_up"}
    assert all(v.value is None for v in est.metrics_at(1.0).values())


def test_smoothing_window_is_causal() -> None:
    est = FootpodEstimator(cadence_unit="steps", window_s=5.0)
    for t in range(5):
        est.update(float(t), _m(3.0, 170))
    est.update(5.0, _m(3.0, 200))
    # At 4.5 the reading of t=5 does not exist yet.
    assert est.metrics_at(4.5)["cadence_spm"].value == pytest.approx(170.0)
    assert est.metrics_at(5.0)["cadence_spm"].value == pytest.approx((4 * 170 + 200) / 5)


def test_standing_still_has_no_stride_length() -> None:
    est = FootpodEstimator(cadence_unit="steps")
    est.update(0.0, _m(0.0, 0))
    metrics = est.metrics_at(0.5)
    assert metrics["cadence_spm"].value == 0.0
    assert metrics["stride_length_m"].value is None
