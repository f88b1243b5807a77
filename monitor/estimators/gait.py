"""Foot contacts from a trunk sensor's vertical specific force.

A pure function over numpy arrays and its streaming twin, so they run the same on simulated
straps, recordings and the real force-plate data set.

A *contact* is where the sensor's vertical specific force (along the world vertical, in g) is
above a threshold: the trunk is pushed up only while a foot is on the ground, and in flight it
falls freely (0 g). Touchdown and toe-off are the threshold crossings, interpolated between
samples; a dip shorter than ``merge_s`` inside a stance (a heel-strike transient) does not split
the contact, and a contact shorter than ``min_contact_s`` is a bump, not a stance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

G_MPS2: Final = 9.80665
#: Vertical specific force above which a foot is on the ground. Checked against the force plate
#: of the sacral data set (``make bench``): 0.3 g gives unbiased contact times there.
CONTACT_THRESHOLD_G: Final = 0.3
MERGE_DIP_S: Final = 0.03
MIN_CONTACT_S: Final = 0.08
#: Longer than this is no running contact (walking, standing).
MAX_CONTACT_S: Final = 0.6
#: A step longer than this is a stop, not a step.
MAX_STEP_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Contact:
    touchdown_s: float
    toeoff_s: float

    @property
    def duration_s(self) -> float:
        return self.toeoff_s - self.touchdown_s


def _events(t_s: FloatArray, x: FloatArray, level: float) -> list[tuple[float, bool]]:
    """Where ``x`` rises above or falls below ``level``, in time order: (time interpolated
    between the samples, whether rising). Each lies in its own sample interval, so index order
    is time order."""
    above = x > level
    idx = np.flatnonzero(above[:-1] != above[1:]) + 1
    if idx.size == 0:
        return []
    x0, x1 = x[idx - 1], x[idx]
    frac = np.where(x1 != x0, (level - x0) / np.where(x1 != x0, x1 - x0, 1.0), 1.0)
    times = t_s[idx - 1] + frac * (t_s[idx] - t_s[idx - 1])
    return list(zip(times.tolist(), above[idx].tolist(), strict=True))


class ContactDetector:
    """Streaming contacts: feed consecutive chunks, get the contacts that completed."""

    def __init__(
        self,
        threshold_g: float = CONTACT_THRESHOLD_G,
        merge_s: float = MERGE_DIP_S,
        min_contact_s: float = MIN_CONTACT_S,
    ) -> None:
        self.threshold_g = threshold_g
        self.merge_s = merge_s
        self.min_contact_s = min_contact_s
        self._last_t: float | None = None
        self._last_x = 0.0
        self._open_s: float | None = None  # touchdown of the contact in progress
        self._pending: Contact | None = None  # ended, but a short dip may still extend it

    def reset(self) -> None:
        """Forget the contact in progress (after a data gap)."""
        self._last_t = None
        self._open_s = None
        self._pending = None

    def push(self, t_s: FloatArray, vertical_g: FloatArray) -> list[Contact]:
        if t_s.size == 0:
            return []
        if self._last_t is not None:
            t_s = np.concatenate(([self._last_t], t_s))
            vertical_g = np.concatenate(([self._last_x], vertical_g))
        elif vertical_g[0] > self.threshold_g:
            self._open_s = float(t_s[0])
        self._last_t, self._last_x = float(t_s[-1]), float(vertical_g[-1])
        done: list[Contact] = []
        for time_s, rise in _events(t_s, vertical_g, self.threshold_g):
            if rise:
                if self._pending is not None and time_s - self._pending.toeoff_s < self.merge_s:
                    self._open_s = self._pending.touchdown_s  # a dip inside the stance
                else:
                    self._flush(done)
                    self._open_s = time_s
                self._pending = None
            elif self._open_s is not None:
                self._pending = Contact(self._open_s, time_s)
                self._open_s = None
        # A contact that ended more than merge_s ago can no longer be extended.
        pending = self._pending
        settled = pending is not None and self._last_t - pending.toeoff_s >= self.merge_s
        if settled and self._open_s is None:
            self._flush(done)
        return done

    def _flush(self, done: list[Contact]) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and self.min_contact_s <= pending.duration_s <= MAX_CONTACT_S:
            done.append(pending)


def detect_contacts(
    t_s: FloatArray, vertical_g: FloatArray, threshold_g: float = CONTACT_THRESHOLD_G
) -> list[Contact]:
    """All contacts of a whole recording (the offline twin of :class:`ContactDetector`)."""
    detector = ContactDetector(threshold_g)
    contacts = detector.push(t_s, vertical_g)
    # Close what the end of the data leaves pending.
    contacts += detector.push(np.array([t_s[-1] + 1.0]), np.array([0.0]))
    return contacts
