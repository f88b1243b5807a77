"""A virtual heart-rate strap: one Heart Rate Measurement per interval, with RR intervals.

Like real straps it reports the RR intervals of the beats since its previous notification
(none when no beat fell in between) and a heart rate averaged over the last few beats; a lost
notification loses its RR intervals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np

from sensors import uuids
from sensors.gatt.battery import BatteryLevel, encode_battery_level
from sensors.gatt.heart_rate import (
    MAX_HEART_RATE_BPM,
    HeartRateMeasurement,
    encode_heart_rate_measurement,
)
from sensors.recording import Record
from simulators.link import Link, sensor_records
from simulators.model import VirtualRunner
from simulators.scenario import HeartRateSpec

#: The strap's displayed heart rate averages the RR intervals of this many recent beats.
AVERAGE_BEATS: Final = 4
#: Longest RR interval a strap still reports (longer: a missed beat, not a heartbeat).
_MAX_RR_S: Final = 63.0


class VirtualHeartRateStrap:
    """One strap on one runner; ``measurements()`` before the link, ``records()`` after."""

    def __init__(
        self,
        sensor_id: str,
        spec: HeartRateSpec,
        runner: VirtualRunner,
        seeds: np.random.SeedSequence,
    ) -> None:
        params_seed, self._link_seed = seeds.spawn(2)
        params = np.random.default_rng(params_seed)
        self.sensor_id = sensor_id
        self.spec = spec
        self.runner = runner
        self.link = Link.open(spec.link, params, runner.duration_s)
        first_s = self.link.connect_s + 0.3 + float(params.uniform(0.0, spec.interval_s))
        self.send_s = np.arange(first_s, runner.duration_s, spec.interval_s)

    def measurements(self) -> Iterator[tuple[float, HeartRateMeasurement]]:
        """Every measurement the strap sends, with its send time."""
        beats = self.runner.heart.beats_s
        rr = np.diff(beats)
        # Beat i (i >= 1) closes RR interval rr[i - 1]; beats up to each send time count.
        upto = np.searchsorted(beats, self.send_s, side="right")
        since = np.concatenate(([np.searchsorted(beats, self.link.connect_s)], upto[:-1]))
        for t, lo, hi in zip(self.send_s.tolist(), since.tolist(), upto.tolist(), strict=True):
            recent = rr[max(0, hi - 1 - AVERAGE_BEATS) : max(0, hi - 1)]
            hr_bpm = round(60.0 / float(recent.mean())) if recent.size else 0
            new_rr = rr[max(lo, 1) - 1 : max(hi, 1) - 1] if self.spec.rr_intervals else rr[:0]
            yield (
                t,
                HeartRateMeasurement(
                    heart_rate_bpm=min(hr_bpm, MAX_HEART_RATE_BPM),
                    contact="contact",
                    energy_kj=None,
                    rr_intervals_s=tuple(x for x in new_rr.tolist() if x < _MAX_RR_S),
                ),
            )

    def records(self) -> Iterator[Record]:
        """Connects, reads and measurements in receive-time order."""
        reads = [(uuids.BATTERY_LEVEL, encode_battery_level(BatteryLevel(self.spec.battery_pct)))]
        payloads = (
            (t, encode_heart_rate_measurement(m, hr_u16=self.spec.hr_u16))
            for t, m in self.measurements()
        )
        return sensor_records(
            self.link,
            self._link_seed,
            self.sensor_id,
            reads,
            uuids.HEART_RATE_MEASUREMENT,
            payloads,
            256,
        )
