"""Fusion: one value per metric from whatever sensors measured it.

Cadence from a footpod and a trunk IMU is combined by inverse variance (the IMU times every
step; a footpod reports a rounded, smoothed number), unless they disagree by more than a
footpod unit mix-up could explain, when the IMU wins. Stride length is always derived from the
fused speed and cadence (DESIGN §3.1). Steps per breath is cadence over breathing rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from monitor.estimators.breathing import steps_per_breath_metric
from monitor.metrics import METRIC_NAMES, MetricName, MetricValue

#: Typical errors (1 sigma) of cadence sources, steps/min.
CADENCE_SIGMA_IMU_SPM: Final = 0.5
CADENCE_SIGMA_FOOTPOD_SPM: Final = 1.5
#: Their inverse-variance weights.
_W_IMU: Final = 1.0 / CADENCE_SIGMA_IMU_SPM**2
_W_POD: Final = 1.0 / CADENCE_SIGMA_FOOTPOD_SPM**2
#: Disagreement beyond this means one source is wrong (a footpod counting strides as steps).
CADENCE_DISAGREE_SPM: Final = 10.0
#: Below this cadence nobody is stepping: stride length is undefined.
MIN_STEPPING_SPM: Final = 60.0

_QUALITY_RANK: Final = {
    "ok": 0,
    "relative": 1,
    "uncalibrated": 2,
    "warming_up": 3,
    "stale": 4,
    "missing": 5,
}


def _better(candidate: MetricValue, held: MetricValue) -> bool:
    """A value over no value; then the better quality (ties keep the one held)."""
    if (candidate.value is None) != (held.value is None):
        return held.value is None
    return _QUALITY_RANK[candidate.quality] < _QUALITY_RANK[held.quality]


def _take_best(
    out: dict[MetricName, MetricValue], source: Mapping[MetricName, MetricValue]
) -> None:
    """Merge one estimator's answers into ``out``, keeping the best value of each metric."""
    if out.keys().isdisjoint(source):
        out.update(source)  # the usual case: nobody else measured these metrics
        return
    for name, value in source.items():
        held = out.get(name)
        if held is None or _better(value, held):
            out[name] = value


def fuse(
    footpod: Mapping[MetricName, MetricValue] | None,
    trunks: Iterable[Mapping[MetricName, MetricValue]],
    others: Iterable[Mapping[MetricName, MetricValue]] = (),
) -> dict[MetricName, MetricValue]:
    """All metrics of a row from the estimators' answers (absent ones are ``missing``)."""
    out: dict[MetricName, MetricValue] = {}
    for source in trunks:
        _take_best(out, source)
    # Cadence comes from the trunks (and the footpod), never from the other estimators.
    imu_cadence = out.pop("cadence_spm", None)
    for source in others:
        if "cadence_spm" in source:
            source = {name: v for name, v in source.items() if name != "cadence_spm"}
        _take_best(out, source)
    out["cadence_spm"] = _fuse_cadence(
        None if footpod is None else footpod.get("cadence_spm"), imu_cadence
    )
    if footpod is not None:
        out["speed_mps"] = footpod["speed_mps"]
    out["stride_length_m"] = stride_length(out.get("speed_mps"), out["cadence_spm"])
    rate = out.get("breathing_rate_bpm")
    if rate is not None:
        out["steps_per_breath"] = steps_per_breath_metric(out["cadence_spm"], rate)
    missing = MetricValue.missing()
    return {name: out.get(name, missing) for name in METRIC_NAMES}


def _fuse_cadence(footpod: MetricValue | None, imu: MetricValue | None) -> MetricValue:
    """The footpod's and the best trunk IMU's cadence, combined."""
    if footpod is None and imu is None:
        return MetricValue.missing()
    if imu is None or imu.value is None:
        assert footpod is not None or imu is not None
        if footpod is not None and (footpod.value is not None or imu is None):
            return footpod
        assert imu is not None
        return imu
    if footpod is None or footpod.value is None:
        return imu
    if abs(imu.value - footpod.value) > CADENCE_DISAGREE_SPM:
        return imu
    fused = (_W_IMU * imu.value + _W_POD * footpod.value) / (_W_IMU + _W_POD)
    return MetricValue(fused, "ok")


def stride_length(speed: MetricValue | None, cadence: MetricValue) -> MetricValue:
    """Distance per step (the running-watch convention): speed over steps per second."""
    if speed is None:
        return MetricValue.missing()
    if speed.value is None or cadence.value is None:
        quality = speed.quality if speed.value is None else cadence.quality
        return MetricValue(None, quality)
    if cadence.value < MIN_STEPPING_SPM or speed.value <= 0.0:
        return MetricValue(None, "ok")
    quality = speed.quality if speed.quality != "ok" else cadence.quality
    return MetricValue(speed.value / (cadence.value / 60.0), quality)
