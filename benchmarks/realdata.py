"""Cadence and contact time on the real sacral force-plate data set (shared by bench and tests).

31 treadmill trials of one runner (Alcantara et al. 2022, PeerJ 10:e12752): a sacral vertical
accelerometer at 500 Hz against the force plate's vertical ground reaction force. The plate's
contacts (force above 0.05 body weights) are the truth; the accelerometer's go through the same
contact detector the trunk estimator uses.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.estimators.gait import Contact, detect_contacts

DATASET = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "sacral-accel-grf"
SAMPLE_RATE_HZ = 500.0
PLATE_THRESHOLD_BW = 0.05


@dataclass(frozen=True, slots=True)
class RealDataErrors:
    trials: int
    cadence_mae_spm: float
    contact_mae_ms: float


def _cadence_spm(contacts: list[Contact]) -> float:
    first, last = contacts[0].touchdown_s, contacts[-1].touchdown_s
    return 60.0 * (len(contacts) - 1) / (last - first)


def sacral_errors(dataset: Path = DATASET) -> RealDataErrors:
    """Per trial: cadence and mean contact time from the sensor against the plate."""
    acc = np.loadtxt(dataset / "Accelerometer_one_sub.csv", delimiter=",")
    grf = np.loadtxt(dataset / "GRF_one_sub.csv", delimiter=",")
    n = grf.shape[1]
    t = np.arange(n) / SAMPLE_RATE_HZ
    cadence_err, contact_err = [], []
    for trial in range(grf.shape[0]):
        plate = detect_contacts(t, grf[trial], threshold_g=PLATE_THRESHOLD_BW)
        sensed = detect_contacts(t, acc[trial, :n])  # the first n columns: vertical
        cadence_err.append(abs(_cadence_spm(sensed) - _cadence_spm(plate)))
        diffs = []
        for contact in plate:
            nearest = min(sensed, key=lambda s: abs(s.touchdown_s - contact.touchdown_s))
            if abs(nearest.touchdown_s - contact.touchdown_s) < 0.08:
                diffs.append(nearest.duration_s - contact.duration_s)
        contact_err.append(abs(1000.0 * float(np.mean(diffs))))
    return RealDataErrors(
        trials=grf.shape[0],
        cadence_mae_spm=statistics.fmean(cadence_err),
        contact_mae_ms=statistics.fmean(contact_err),
    )
