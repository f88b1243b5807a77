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

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from sensors.jit import jit

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


@jit
def _push_contacts(
    t_s: FloatArray,
    x: FloatArray,
    level: float,
    merge_s: float,
    min_contact_s: float,
    max_contact_s: float,
    state: FloatArray,
    out: FloatArray,
) -> int:
    """The detector's loop over one chunk: contacts completed in it go to ``out`` (rows of
    touchdown, toe-off); returns how many. ``state`` is [last t, last x, touchdown of the
    contact in progress, pending contact's touchdown and toe-off], NaN for none."""
    last_t, last_x, open_s, pend_td, pend_to = state[0], state[1], state[2], state[3], state[4]
    found = 0
    start = 0
    if math.isnan(last_t):
        if x[0] > level:
            open_s = t_s[0]
        last_t, last_x = t_s[0], x[0]
        start = 1
    for i in range(start, t_s.size):
        x0, x1 = last_x, x[i]
        t0, t1 = last_t, t_s[i]
        last_t, last_x = t1, x1
        rise = x1 > level
        if (x0 > level) == rise:
            continue
        # The crossing, interpolated between the samples.
        frac = (level - x0) / (x1 - x0) if x1 != x0 else 1.0
        time_s = t0 + frac * (t1 - t0)
        if rise:
            if not math.isnan(pend_to) and time_s - pend_to < merge_s:
                open_s = pend_td  # a dip inside the stance
            else:
                if not math.isnan(pend_to) and min_contact_s <= pend_to - pend_td <= max_contact_s:
                    out[found, 0], out[found, 1] = pend_td, pend_to
                    found += 1
                open_s = time_s
            pend_td = pend_to = math.nan
        elif not math.isnan(open_s):
            pend_td, pend_to = open_s, time_s
            open_s = math.nan
    # A contact that ended more than merge_s ago can no longer be extended.
    if not math.isnan(pend_to) and last_t - pend_to >= merge_s and math.isnan(open_s):
        if min_contact_s <= pend_to - pend_td <= max_contact_s:
            out[found, 0], out[found, 1] = pend_td, pend_to
            found += 1
        pend_td = pend_to = math.nan
    state[0], state[1], state[2], state[3], state[4] = last_t, last_x, open_s, pend_td, pend_to
    return found


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
        self._state = np.full(5, np.nan)
        self._out = np.empty((0, 2))

    def reset(self) -> None:
        """Forget the contact in progress (after a data gap)."""
        self._state[:] = np.nan

    def push(self, t_s: FloatArray, vertical_g: FloatArray) -> list[Contact]:
        if t_s.size == 0:
            return []
        if self._out.shape[0] < t_s.size // 2 + 2:  # at most one contact per two crossings
            self._out = np.empty((t_s.size // 2 + 2, 2))
        found = _push_contacts(
            t_s,
            vertical_g,
            self.threshold_g,
            self.merge_s,
            self.min_contact_s,
            MAX_CONTACT_S,
            self._state,
            self._out,
        )
        return [Contact(td, to) for td, to in self._out[:found].tolist()]


def detect_contacts(
    t_s: FloatArray, vertical_g: FloatArray, threshold_g: float = CONTACT_THRESHOLD_G
) -> list[Contact]:
    """All contacts of a whole recording (the offline twin of :class:`ContactDetector`)."""
    detector = ContactDetector(threshold_g)
    contacts = detector.push(t_s, vertical_g)
    # Close what the end of the data leaves pending.
    contacts += detector.push(np.array([t_s[-1] + 1.0]), np.array([0.0]))
    return contacts
