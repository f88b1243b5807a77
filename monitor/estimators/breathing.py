"""Breathing from a chest band: rate, depth against the runner's own baseline, steps per breath.

The band reads chest stretch (arbitrary units) plus what running adds: a bounce at step
frequency (2.5-3.3 Hz), a slow wander and creep of its zero, and noise. The estimator works
causally on samples in any split (a notification or a second of them per call: the results
are the same, bit for bit), in one compiled pass per call (:func:`_band_kernel`, numba):

1. **Filter** — a band-pass (Butterworth high-pass 0.05 Hz order 2, low-pass 1.6 Hz order 6)
   keeps breaths (6-80 per minute) and removes drift and the step bounce (-23 dB at 2.5 Hz,
   -35 dB at 3 Hz). Two more filters watch for running: the step band (2.2-3.8 Hz) and the
   noise floor (above 5 Hz). All three run sample by sample as ``scipy.signal.sosfilt`` does,
   their state carried across calls. Nothing looks ahead.
2. **Breaths** — a hysteresis on the filtered signal (±0.35 × its running RMS, and never
   under 4 × the noise in the breath band) splits it into rising and falling halves; the
   powers behind the threshold, and running (step 4), are updated once per ``FRAME_S``
   frame of samples counted from the (re)start (one notification of the simulated band), the
   threshold staying put within a frame; the first frame after a (re)start sets its own. The
   trough before each rise is a breath onset, the crest before each fall its peak (both placed
   to a fraction of a sample by a parabola). Wiggles smaller than the hysteresis cannot add a
   breath. A breath runs onset to onset; its amplitude is its peak minus the mean of its two
   troughs (a linear drift cancels). Event times are moved back by the filter's phase delay at
   the breath's own frequency, so window membership follows the true onsets (within 25 ms).
3. **Metrics** over the valid breaths wholly in the last 15 s that were known by then (the
   truth's definition): ``breathing_rate_bpm`` = 60 × breaths ÷ their total time;
   ``breath_depth_rel`` = their mean amplitude ÷ the baseline amplitude. At least
   ``MIN_BREATHS`` breaths, else null and ``warming_up``.
4. **Baseline** — the median amplitude of ``BASELINE_BREATHS`` breaths that start once the
   runner has run for ``BASELINE_SETTLE_S`` (as known when the breath is confirmed; standing
   breaths are shallower, about 0.6, and would bias it); depth is null and ``warming_up``
   until then. Running is what the session says through
   :meth:`BreathingEstimator.note_cadence` while that is fresh, else what the band itself
   sees (:func:`band_says_running`: a step band standing out of both the noise floor and the
   breaths' own harmonics; a band that barely bounces, or a very noisy one, never says so,
   and then only the cadence can start the baseline). A baseline stored from an
   earlier run (:attr:`BreathingEstimator.baseline_amplitude`, in filtered band units) may be
   passed in: valid for the same band at the same sample rate.

Gaps: lost notifications up to ``MAX_BRIDGE_S`` are bridged by a straight line so the filters
keep their state. A breath whose trough or peak lies on a bridge (or within the
``TAINT_AFTER_S`` the filter then needs to settle) is left out, and so is one the bridge
crosses unless its length agrees (±30 %) with the recent breaths': a bridge can hide a whole
trough and merge two breaths into one. A longer gap restarts filters and breath detection,
while the breaths before it stay in the window. After ``STALE_AFTER_S`` without band samples both
metrics are null with quality ``stale``.

``steps_per_breath`` is the session's to combine (it owns the cadence):
:func:`steps_per_breath` / :func:`steps_per_breath_metric`.

Fallbacks without a band: :class:`RrBreathingEstimator` (respiratory sinus arrhythmia in the RR
intervals; ``ok`` only when the spectrum shows one clear respiratory line, else null) and
:func:`breathing_rate_from_chest_acc` (at rest only; None while moving — see there why).
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from monitor.estimators.heart_rate import BeatTimeline
from monitor.metrics import STALE_AFTER_S, MetricName, MetricValue, Quality
from sensors.gatt.heart_rate import HeartRateMeasurement
from sensors.jit import jit

FloatArray = NDArray[np.float64]

#: Breaths wholly inside this many seconds make the rate and the depth (truth's window).
BREATH_WINDOW_S: Final = 15.0
#: Breath band-pass: a high-pass that removes drift and creep, a low-pass that removes steps.
HIGHPASS_HZ: Final = 0.05
HIGHPASS_ORDER: Final = 2
LOWPASS_HZ: Final = 1.6
LOWPASS_ORDER: Final = 6
#: Band where the band's bounce with every step lives (150-230 steps/min), and the noise floor.
STEP_BAND_HZ: Final = (2.2, 3.8)
NOISE_FROM_HZ: Final = 5.0
#: Hysteresis half-width relative to the running RMS of the filtered signal (a breath's swing
#: is about ±1.4 RMS).
HYSTERESIS_REL: Final = 0.35
#: ...and never under this many standard deviations of the noise inside the breath band.
HYSTERESIS_NOISE_SIGMAS: Final = 4.0
#: Time constants of the hysteresis' RMS and of the band powers that tell running.
LEVEL_TAU_S: Final = 4.0
POWER_TAU_S: Final = 5.0
#: Breath durations outside this range are artefacts (80 breaths/min is an all-out sprint).
MIN_BREATH_S: Final = 0.6
MAX_BREATH_S: Final = 15.0
#: Fewest breaths in the window for a rate (one breath's length is too jittery on its own).
MIN_BREATHS: Final = 2
#: Gaps up to this long are bridged; longer ones restart detection.
MAX_BRIDGE_S: Final = 2.0
#: After a bridged gap the filter's output is not trusted for extremes this long (its errors
#: fade over about 0.6 s; 0.3 s keeps them under 0.1 breath/min at 5 % packet loss).
TAINT_AFTER_S: Final = 0.3
#: Baseline: breaths after running this long, and how many of them.
BASELINE_SETTLE_S: Final = 20.0
BASELINE_BREATHS: Final = 30
#: Cadence from which the runner runs (with flight); below it the breaths are not the baseline.
RUNNING_FROM_SPM: Final = 130.0
#: Running, as the band sees it: the step band's power density this far above the noise floor's
#: (white noise gives 1) and its power this share of the breaths' (a breath's own harmonics
#: give about 1e-3); ON to start running, OFF to stop.
STEP_OVER_NOISE_ON: Final = 3.5
STEP_OVER_NOISE_OFF: Final = 2.5
STEP_OVER_BREATH_ON: Final = 3e-3
STEP_OVER_BREATH_OFF: Final = 2e-3
#: Below this cadence nobody is stepping: steps per breath is undefined.
MIN_STEPPING_SPM: Final = 60.0

_BREATH, _STEP, _NOISE = 0, 1, 2
#: Hysteresis threshold, band powers and running are updated once per frame of this many
#: seconds (10 samples at 25 Hz: one notification of the band), counted from the (re)start.
FRAME_S: Final = 0.4
_TAINTS_KEPT: Final = 32

# The kernel's signal state (reset by a restart), one float64 vector per estimator:
_P_LEVEL, _P_BREATH, _P_STEP, _P_NOISE, _THRESHOLD = 0, 1, 2, 3, 4
_FRAME_POS, _SUM_BREATH, _SUM_STEP, _SUM_NOISE = 5, 6, 7, 8  # the frame in progress
_HYST, _GENUINE, _SEG_LEN = 9, 10, 11  # hysteresis phase, its half-cycle's state and length
# The half-cycle's extremum so far with the samples either side (for the parabola).
_EXT_T, _EXT_V, _EXT_PREV_T, _EXT_PREV_V, _EXT_NEXT_T, _EXT_NEXT_V, _NEED_NEXT = range(12, 19)
_PREV_T, _PREV_V = 19, 20  # the last filtered sample
_LAST_T, _LAST_X = 21, 22  # the last input sample (NaN after a (re)start: no gap to check)
# The last trough and the peak after it (NaN time: none) and whether a bridge tainted them.
_TROUGH_T, _TROUGH_V, _TROUGH_TAINTED, _PEAK_T, _PEAK_V, _PEAK_TAINTED = range(23, 29)
_N_SIGNAL: Final = 29
# What outlives a restart (a second vector): running, the cadence hint, the baseline, and the
# heads and lengths of the rings of breaths and bridges.
_SINCE, _BAND_RUNNING, _HINT_T, _HINT_CAD, _BASELINE, _N_AMPS = 0, 1, 2, 3, 4, 5
_BREATHS_HEAD, _BREATHS_LEN, _TAINTS_LEN, _TAINTS_NEXT = 6, 7, 8, 9
_N_BOOK: Final = 10
# Constants per estimator, as a vector for the kernel.
_C_FRAME, _C_DECAY, _C_LEVEL_DECAY, _C_NOISE_SCALE, _C_STEP_SCALE = 0, 1, 2, 3, 4
_C_MAX_SEG, _C_N_BREATH, _C_N_STEP, _C_GAP, _C_WINDOW = 5, 6, 7, 8, 9
_N_CONSTS: Final = 10
# Columns of the breaths ring (a :class:`Breath` per row).
_ONSET, _END, _DURATION, _AMPLITUDE, _VALID, _CONFIRMED = 0, 1, 2, 3, 4, 5


def _signal_at_restart() -> FloatArray:
    st = np.zeros(_N_SIGNAL)  # powers 0: the next frame is a first one; phase 0: unknown
    st[_EXT_T:_NEED_NEXT] = st[_PREV_T : _LAST_X + 1] = np.nan
    st[_TROUGH_T] = st[_PEAK_T] = np.nan
    return st


_SIGNAL_AT_RESTART: Final = _signal_at_restart()


# -- pure numerics ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def band_filters(sample_rate_hz: float) -> tuple[FloatArray, ...]:
    """SOS of the breath band-pass, the step band-pass and the noise high-pass at this rate.

    A rate too low to see the step band (under about 12 Hz) gets empty step and noise filters:
    running then comes only from :meth:`BreathingEstimator.note_cadence`.
    """
    fs = float(sample_rate_hz)
    breath = np.vstack(
        (
            signal.butter(HIGHPASS_ORDER, HIGHPASS_HZ, "highpass", fs=fs, output="sos"),
            signal.butter(LOWPASS_ORDER, LOWPASS_HZ, "lowpass", fs=fs, output="sos"),
        )
    )
    if fs / 2.0 <= NOISE_FROM_HZ * 1.2:
        empty = np.zeros((0, 6))
        return (breath, empty, empty)
    step = signal.butter(2, STEP_BAND_HZ, "bandpass", fs=fs, output="sos")
    noise = signal.butter(2, NOISE_FROM_HZ, "highpass", fs=fs, output="sos")
    return (breath, step, noise)


@functools.lru_cache(maxsize=8)
def _cascade(sample_rate_hz: float) -> tuple[FloatArray, FloatArray]:
    """The three filters' sections stacked (breath, step, noise) for the kernel, and their
    state after a unit input forever (times ``x0``: the steady state for a constant ``x0``)."""
    filters = band_filters(sample_rate_hz)
    sos = np.ascontiguousarray(np.vstack(filters))
    unit = [signal.sosfilt_zi(f) if f.shape[0] else np.zeros((0, 2)) for f in filters]
    zi = np.ascontiguousarray(np.vstack(unit))
    sos.flags.writeable = zi.flags.writeable = False
    return sos, zi


@functools.lru_cache(maxsize=8)
def _phase_delay_table(sample_rate_hz: float) -> FloatArray:
    """Phase delay (s, row 1) of the breath band-pass over the breath frequencies (row 0)."""
    freqs = np.linspace(0.05, LOWPASS_HZ, 128)
    _, h = signal.sosfreqz(band_filters(sample_rate_hz)[_BREATH], worN=freqs, fs=sample_rate_hz)
    phase = np.unwrap(np.angle(h))
    table: FloatArray = np.vstack((freqs, -phase / (2.0 * np.pi * freqs)))
    table.flags.writeable = False
    return table


@jit
def band_says_running(
    step_power: float,
    noise_power: float,
    breath_power: float,
    noise_per_step_bandwidth: float,
    was_running: bool,
) -> bool:
    """Whether the band bounces with steps: the step band's power density stands out of the
    noise floor's, and its power is more than a breath's own harmonics put there.

    ``noise_per_step_bandwidth`` converts powers to densities (noise band width ÷ step band
    width). Thresholds have hysteresis: ``was_running`` picks the lower pair.
    """
    over_noise = STEP_OVER_NOISE_OFF if was_running else STEP_OVER_NOISE_ON
    over_breath = STEP_OVER_BREATH_OFF if was_running else STEP_OVER_BREATH_ON
    return (
        step_power * noise_per_step_bandwidth > over_noise * noise_power
        and step_power > over_breath * breath_power
    )


@jit
def _interp(x: float, xp: FloatArray, fp: FloatArray) -> float:
    """``np.interp`` at one point, with its arithmetic (so the same bits)."""
    if x <= xp[0]:
        return float(fp[0])
    if x >= xp[-1]:
        return float(fp[-1])
    j = int(np.searchsorted(xp, x, side="right")) - 1
    if xp[j] == x:
        return float(fp[j])
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    return float(slope * (x - xp[j]) + fp[j])


@jit
def _sections(sos: FloatArray, zi: FloatArray, first: int, stop: int, x: float) -> float:
    """One sample through sections ``first:stop`` (transposed direct form II, as ``sosfilt``)."""
    for s in range(first, stop):
        y = sos[s, 0] * x + zi[s, 0]
        zi[s, 0] = sos[s, 1] * x - sos[s, 4] * y + zi[s, 1]
        zi[s, 1] = sos[s, 2] * x - sos[s, 5] * y
        x = y
    return x


@jit
def _refine(
    t_prev: float, a: float, t_j: float, b: float, t_next: float, c: float
) -> tuple[float, float]:
    """Time and value of the extremum ``(t_j, b)`` by a parabola through its neighbours
    (unrefined without a sample before it: NaN ``t_prev``)."""
    if math.isnan(t_prev):
        return t_j, b
    den = a - 2.0 * b + c
    if den == 0.0:
        return t_j, b
    off = min(max(0.5 * (a - c) / den, -0.5), 0.5)
    t_k = t_next if off > 0 else t_prev
    return t_j + off * abs(t_k - t_j), b - 0.25 * (a - c) * off


@jit
def _tainted(taints: FloatArray, book: FloatArray, t_s: float) -> bool:
    """Whether ``t_s`` lies on a bridge (or in the settling time after it)."""
    for k in range(int(book[_TAINTS_LEN])):  # noqa: SIM110 (numba: no generators)
        if taints[k, 0] <= t_s <= taints[k, 1]:
            return True
    return False


@jit
def _consistent(breaths: FloatArray, book: FloatArray, duration_s: float) -> bool:
    """Whether ``duration_s`` agrees (±30 %) with the valid ones of the last 8 breaths."""
    cap, head, n = breaths.shape[0], int(book[_BREATHS_HEAD]), int(book[_BREATHS_LEN])
    recent = np.empty(8)
    m = 0
    for k in range(max(0, n - 8), n):
        row = (head + k) % cap
        if breaths[row, _VALID] != 0.0:
            recent[m] = breaths[row, _DURATION]
            m += 1
    return m >= 3 and bool(abs(duration_s / np.median(recent[:m]) - 1.0) < 0.3)


@jit
def _on_trough(
    t_s: float,
    value: float,
    confirmed_t_s: float,
    st: FloatArray,
    book: FloatArray,
    c: FloatArray,
    breaths: FloatArray,
    taints: FloatArray,
    amps: FloatArray,
    delay: FloatArray,
) -> None:
    """A trough: with the trough and the peak before it, a breath (valid or not)."""
    prev_t, prev_v, peak_t, peak_v = st[_TROUGH_T], st[_TROUGH_V], st[_PEAK_T], st[_PEAK_V]
    prev_tainted, peak_tainted = st[_TROUGH_TAINTED] != 0.0, st[_PEAK_TAINTED] != 0.0
    tainted = _tainted(taints, book, t_s)
    st[_TROUGH_T], st[_TROUGH_V], st[_TROUGH_TAINTED] = t_s, value, 1.0 if tainted else 0.0
    st[_PEAK_T] = math.nan
    if math.isnan(prev_t) or math.isnan(peak_t) or not prev_t < peak_t < t_s:
        return
    duration_s = t_s - prev_t
    amplitude = peak_v - 0.5 * (prev_v + value)
    valid = (
        MIN_BREATH_S <= duration_s <= MAX_BREATH_S
        and amplitude > 0.0
        and not (prev_tainted or peak_tainted or tainted)
    )
    if valid:
        # A bridge that hid a trough merged two breaths: their length gives it away.
        for k in range(int(book[_TAINTS_LEN])):
            if taints[k, 0] < t_s and taints[k, 1] > prev_t:
                valid = _consistent(breaths, book, duration_s)
                break
    delay_s = _interp(1.0 / duration_s, delay[0], delay[1])
    cap, head, n = breaths.shape[0], int(book[_BREATHS_HEAD]), int(book[_BREATHS_LEN])
    row = (head + n) % cap  # the ring holds every breath a window can need: never full
    breaths[row, _ONSET] = prev_t - delay_s
    breaths[row, _END] = t_s - delay_s
    breaths[row, _DURATION] = duration_s
    breaths[row, _AMPLITUDE] = amplitude
    breaths[row, _VALID] = 1.0 if valid else 0.0
    breaths[row, _CONFIRMED] = confirmed_t_s
    n += 1
    horizon = confirmed_t_s - c[_C_WINDOW] - MAX_BREATH_S
    while breaths[head, _CONFIRMED] < horizon:
        head = (head + 1) % cap
        n -= 1
    book[_BREATHS_HEAD], book[_BREATHS_LEN] = head, n
    # The baseline: valid breaths that start once the runner has run a while.
    since = book[_SINCE]
    if not math.isnan(book[_BASELINE]) or not valid or math.isnan(since):
        return
    if prev_t - delay_s < since + BASELINE_SETTLE_S:
        return
    n_amps = int(book[_N_AMPS])
    amps[n_amps] = amplitude
    n_amps += 1
    if n_amps >= BASELINE_BREATHS:
        book[_BASELINE] = np.median(amps[:n_amps])
        n_amps = 0
    book[_N_AMPS] = n_amps


@jit
def _frame_end(st: FloatArray, book: FloatArray, c: FloatArray, t_s: float, first: bool) -> None:
    """A frame is complete: its powers go into the running ones, which set the next frame's
    hysteresis threshold and whether the runner runs (as of ``t_s``, its last sample)."""
    n = c[_C_FRAME]
    p_breath, p_step, p_noise = st[_SUM_BREATH] / n, st[_SUM_STEP] / n, st[_SUM_NOISE] / n
    if first:  # the first frame after a (re)start: its own powers
        st[_P_LEVEL] = st[_P_BREATH] = max(p_breath, 1e-300)
        st[_P_STEP], st[_P_NOISE] = p_step, p_noise
    else:
        decay, level_decay = c[_C_DECAY], c[_C_LEVEL_DECAY]
        st[_P_LEVEL] = level_decay * st[_P_LEVEL] + (1.0 - level_decay) * p_breath
        st[_P_BREATH] = decay * st[_P_BREATH] + (1.0 - decay) * p_breath
        st[_P_STEP] = decay * st[_P_STEP] + (1.0 - decay) * p_step
        st[_P_NOISE] = decay * st[_P_NOISE] + (1.0 - decay) * p_noise
    st[_THRESHOLD] = max(
        HYSTERESIS_REL * math.sqrt(st[_P_LEVEL]),
        HYSTERESIS_NOISE_SIGMAS * math.sqrt(st[_P_NOISE]) * c[_C_NOISE_SCALE],
    )
    st[_FRAME_POS] = st[_SUM_BREATH] = st[_SUM_STEP] = st[_SUM_NOISE] = 0.0
    if t_s - book[_HINT_T] <= STALE_AFTER_S:  # the session's cadence, while fresh (NaN: none)
        running = book[_HINT_CAD] >= RUNNING_FROM_SPM
    elif c[_C_N_STEP] > 0:
        running = band_says_running(
            st[_P_STEP], st[_P_NOISE], st[_P_BREATH], c[_C_STEP_SCALE], book[_BAND_RUNNING] != 0.0
        )
        book[_BAND_RUNNING] = 1.0 if running else 0.0
    else:
        running = False
    if not running:
        book[_SINCE] = math.nan
    elif math.isnan(book[_SINCE]):
        book[_SINCE] = t_s


@jit
def _detect(
    t_s: float,
    y: float,
    st: FloatArray,
    book: FloatArray,
    c: FloatArray,
    breaths: FloatArray,
    taints: FloatArray,
    amps: FloatArray,
    delay: FloatArray,
) -> None:
    """One filtered sample through the hysteresis, and the extremum a change of phase confirms."""
    if st[_NEED_NEXT] != 0.0:  # the sample after the extremum, for its parabola
        st[_EXT_NEXT_T], st[_EXT_NEXT_V], st[_NEED_NEXT] = t_s, y, 0.0
    state, threshold = st[_HYST], st[_THRESHOLD]
    new_half = False
    if state == 0.0:
        if abs(y) > threshold:  # the phase becomes known: a first (cut) half-cycle starts
            st[_HYST] = 1.0 if y > 0.0 else -1.0
            new_half = True
    elif (y < -threshold) if state > 0.0 else (y > threshold):
        if st[_GENUINE] == 0.0:
            # The first half-cycle after a (re)start is cut short: its extremum is not one.
            st[_GENUINE] = 1.0
        else:
            te, ve = _refine(
                st[_EXT_PREV_T],
                st[_EXT_PREV_V],
                st[_EXT_T],
                st[_EXT_V],
                st[_EXT_NEXT_T],
                st[_EXT_NEXT_V],
            )
            if state < 0.0:  # rose: the trough before is an onset
                _on_trough(te, ve, t_s, st, book, c, breaths, taints, amps, delay)
            else:  # fell: the crest before is the peak
                st[_PEAK_T], st[_PEAK_V] = te, ve
                st[_PEAK_TAINTED] = 1.0 if _tainted(taints, book, te) else 0.0
        st[_HYST] = -state
        new_half = True
    if new_half:
        st[_SEG_LEN] = 1.0
    elif state != 0.0:
        st[_SEG_LEN] += 1.0
    # The half-cycle's extremum (the first one, as argmin/argmax): max rising, min falling.
    if new_half or (state > 0.0 and y > st[_EXT_V]) or (state < 0.0 and y < st[_EXT_V]):
        st[_EXT_T], st[_EXT_V], st[_NEED_NEXT] = t_s, y, 1.0
        st[_EXT_PREV_T], st[_EXT_PREV_V] = st[_PREV_T], st[_PREV_V]
    st[_PREV_T], st[_PREV_V] = t_s, y


@jit
def _band_kernel(
    t_s: FloatArray,
    x: FloatArray,
    start: int,
    sos: FloatArray,
    zi: FloatArray,
    st: FloatArray,
    book: FloatArray,
    c: FloatArray,
    hold: FloatArray,
    breaths: FloatArray,
    taints: FloatArray,
    amps: FloatArray,
    delay: FloatArray,
) -> int:
    """Samples ``start:`` through the filters, frames, hysteresis and breaths; stops before a
    sample that follows a gap and returns its index (``t_s.size`` without one). ``zi`` (filter
    state), ``st`` and ``book`` carry over; ``hold`` keeps the first frame after a (re)start
    until it is complete (its own powers set its threshold)."""
    frame = int(c[_C_FRAME])
    n_breath, n_step = int(c[_C_N_BREATH]), int(c[_C_N_STEP])
    n_sections = sos.shape[0]
    gap_s = c[_C_GAP]
    i = start
    while i < t_s.size:
        t = t_s[i]
        if t - st[_LAST_T] > gap_s:
            break
        xi = x[i]
        y = _sections(sos, zi, 0, n_breath, xi)
        st[_SUM_BREATH] += y * y
        if n_step > 0:
            ys = _sections(sos, zi, n_breath, n_breath + n_step, xi)
            yn = _sections(sos, zi, n_breath + n_step, n_sections, xi)
            st[_SUM_STEP] += ys * ys
            st[_SUM_NOISE] += yn * yn
        st[_LAST_T], st[_LAST_X] = t, xi
        pos = int(st[_FRAME_POS])
        if st[_P_LEVEL] == 0.0:  # the first frame after a (re)start
            hold[pos, 0], hold[pos, 1] = t, y
            if pos + 1 < frame:
                st[_FRAME_POS] = pos + 1
            else:
                _frame_end(st, book, c, t, True)
                for k in range(frame):
                    _detect(hold[k, 0], hold[k, 1], st, book, c, breaths, taints, amps, delay)
        else:
            if pos == 0 and st[_HYST] != 0.0 and st[_SEG_LEN] + frame > c[_C_MAX_SEG]:
                # A half-cycle longer than any breath by this frame's end: no breathing to
                # see; the next change of phase starts afresh.
                st[_TROUGH_T] = st[_PEAK_T] = math.nan
                st[_GENUINE] = 0.0
                st[_SEG_LEN] = c[_C_MAX_SEG] - frame
            _detect(t, y, st, book, c, breaths, taints, amps, delay)
            if pos + 1 < frame:
                st[_FRAME_POS] = pos + 1
            else:
                _frame_end(st, book, c, t, False)
        i += 1
    return i


@jit
def _window(
    breaths: FloatArray, book: FloatArray, t_s: float, window_s: float
) -> tuple[int, float, float]:
    """Count, total duration and total amplitude of the valid breaths wholly in the window
    ending at ``t_s`` and known by then."""
    cap, head = breaths.shape[0], int(book[_BREATHS_HEAD])
    lo = t_s - window_s
    count, duration_s, amplitude = 0, 0.0, 0.0
    for k in range(int(book[_BREATHS_LEN])):
        row = (head + k) % cap
        if (
            breaths[row, _VALID] != 0.0
            and breaths[row, _CONFIRMED] <= t_s
            and breaths[row, _ONSET] > lo
        ):
            count += 1
            duration_s += breaths[row, _DURATION]
            amplitude += breaths[row, _AMPLITUDE]
    return count, duration_s, amplitude


def steps_per_breath(cadence_spm: float | None, breathing_rate_bpm: float | None) -> float | None:
    """Locomotor-respiratory coupling: steps per breath = cadence ÷ breathing rate.

    None when either is unknown, the runner is not stepping or there is no breathing rate.
    """
    if cadence_spm is None or breathing_rate_bpm is None:
        return None
    if cadence_spm < MIN_STEPPING_SPM or breathing_rate_bpm <= 0.0:
        return None
    return cadence_spm / breathing_rate_bpm


_QUALITY_RANK: Final[dict[Quality, int]] = {
    "ok": 0,
    "relative": 1,
    "uncalibrated": 2,
    "warming_up": 3,
    "stale": 4,
    "missing": 5,
}


def steps_per_breath_metric(cadence: MetricValue, breathing_rate: MetricValue) -> MetricValue:
    """``steps_per_breath`` from the session's cadence and breathing rate metrics.

    Its quality is the worse of the two; with both ``ok`` and a runner not stepping the value is
    null with quality ``ok`` (nothing to measure, as stride length does).
    """
    worst = max(cadence.quality, breathing_rate.quality, key=_QUALITY_RANK.__getitem__)
    if worst in ("stale", "missing", "warming_up"):
        return MetricValue(None, worst)
    return MetricValue(steps_per_breath(cadence.value, breathing_rate.value), worst)


# -- the band estimator ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breath:
    """One breath, onset to onset. Times are phase-delay corrected; ``confirmed_t_s`` is the
    time of the sample that closed it (when a causal reader may first know it)."""

    onset_t_s: float
    end_t_s: float
    duration_s: float
    amplitude: float
    valid: bool
    confirmed_t_s: float


class BreathingEstimator:
    """Streaming breathing rate and depth from a chest band.

    Feed :meth:`update` samples with their host times, in order, split into calls however the
    caller likes (from a :class:`sensors.timing.SequenceTimer`: ``timed.t_s`` with
    ``block.stretch[timed.start:]``, a notification or a second of them at a time: the results
    are the same); gaps are recognised from the times. Ask :meth:`metrics_at` for the metrics
    at any time. :meth:`note_cadence` is optional (see the module docstring). A caller that
    queues samples sets :attr:`before_processing`.
    """

    provides: Final[tuple[MetricName, ...]] = ("breathing_rate_bpm", "breath_depth_rel")

    def __init__(
        self,
        *,
        sample_rate_hz: float,
        baseline_amplitude: float | None = None,
        window_s: float = BREATH_WINDOW_S,
    ) -> None:
        if not sample_rate_hz > 2.0 * LOWPASS_HZ:
            raise ValueError(f"sample_rate_hz={sample_rate_hz!r} is too low for breaths")
        if baseline_amplitude is not None and not baseline_amplitude > 0.0:
            raise ValueError(f"baseline_amplitude={baseline_amplitude!r} must be > 0")
        self.sample_rate_hz = rate = float(sample_rate_hz)
        self.window_s = window_s
        #: Called first by every method that reads or changes the state: a queueing caller's
        #: flush (as :attr:`TrunkImuEstimator.before_processing`).
        self.before_processing: Callable[[], None] | None = None
        self._sos, self._unit_zi = _cascade(rate)
        self._delay = _phase_delay_table(rate)
        n_breath, n_step = (f.shape[0] for f in band_filters(rate)[:2])
        # Power -> density conversions (without a step band there is no noise floor either).
        bw_step = STEP_BAND_HZ[1] - STEP_BAND_HZ[0]
        bw_noise = rate / 2.0 - NOISE_FROM_HZ
        period_s = 1.0 / rate
        frame = max(1, round(FRAME_S * rate))
        c = np.zeros(_N_CONSTS)
        c[_C_FRAME] = frame
        c[_C_DECAY] = math.exp(-frame * period_s / POWER_TAU_S)
        c[_C_LEVEL_DECAY] = math.exp(-frame * period_s / LEVEL_TAU_S)
        c[_C_NOISE_SCALE] = math.sqrt((LOWPASS_HZ - HIGHPASS_HZ) / bw_noise) if n_step else 0.0
        c[_C_STEP_SCALE] = bw_noise / bw_step if n_step else 0.0
        c[_C_MAX_SEG] = int(MAX_BREATH_S * rate)
        c[_C_N_BREATH], c[_C_N_STEP] = n_breath, n_step
        c[_C_GAP] = 1.5 * period_s
        c[_C_WINDOW] = window_s
        self._hold = np.zeros((frame, 2))
        # Every breath a window can need: a breath takes at least two samples.
        self._breaths = np.zeros((int((window_s + MAX_BREATH_S) * rate / 2) + 8, 6))
        self._taints = np.zeros((_TAINTS_KEPT, 2))  # bridges (and settling): (from, to)
        self._amps = np.zeros(BASELINE_BREATHS)
        self._book = np.zeros(_N_BOOK)
        book = self._book
        book[_SINCE] = book[_HINT_T] = book[_HINT_CAD] = np.nan
        book[_BASELINE] = np.nan if baseline_amplitude is None else baseline_amplitude
        self._st = _SIGNAL_AT_RESTART.copy()
        self._zi = np.zeros_like(self._unit_zi)  # filter state
        self._zi_unset = True  # until the first sample (after a (re)start)
        self._kernel_state = (
            self._sos,
            self._zi,
            self._st,
            self._book,
            c,
            self._hold,
            self._breaths,
            self._taints,
            self._amps,
            self._delay,
        )
        self._last_t_s: float | None = None

    def _restart(self) -> None:
        """Forget the signal's state (after a gap too long to bridge)."""
        self._st[:] = _SIGNAL_AT_RESTART
        self._zi_unset = True

    def _flush(self) -> None:
        if self.before_processing is not None:
            self.before_processing()

    # -- input -------------------------------------------------------------------------------

    @property
    def baseline_amplitude(self) -> float | None:
        """Baseline breath amplitude (filtered peak-to-peak, band units): store it per runner."""
        self._flush()
        baseline = float(self._book[_BASELINE])
        return None if math.isnan(baseline) else baseline

    @property
    def running(self) -> bool:
        """Whether the runner runs, as the cadence hint or (without one) the band says."""
        self._flush()
        return not math.isnan(self._book[_SINCE])

    def note_cadence(self, t_s: float, cadence_spm: float | None) -> None:
        """Optional: the session's cadence at ``t_s``; while fresh (3 s) it decides running
        for the samples after it."""
        self._flush()
        book = self._book
        if cadence_spm is None:
            book[_HINT_T] = book[_HINT_CAD] = math.nan
        else:
            book[_HINT_T], book[_HINT_CAD] = t_s, cadence_spm

    def update(self, t_s: FloatArray, stretch: FloatArray) -> None:
        """Take samples in time order: host times (s) and raw stretch (band units)."""
        t_s = np.asarray(t_s, dtype=np.float64)
        x = np.asarray(stretch, dtype=np.float64)
        if t_s.shape != x.shape or t_s.ndim != 1:
            raise ValueError(f"t_s {t_s.shape} and stretch {x.shape} must be equal 1-D shapes")
        if t_s.size == 0:
            return
        last_t_s = self._last_t_s
        if last_t_s is not None and t_s[0] <= last_t_s:
            keep = t_s > last_t_s  # already seen: a caller that does not use a timer
            t_s, x = t_s[keep], x[keep]
            if t_s.size == 0:
                return
        self._run(t_s, x)
        self._last_t_s = float(t_s[-1])

    def _run(self, t_s: FloatArray, x: FloatArray) -> None:
        """Samples through the kernel, gap by gap: a short gap is bridged, a long one restarts."""
        state = self._kernel_state
        i = 0
        while True:
            if self._zi_unset:  # (re)start: the filters as if this value had been forever
                np.multiply(self._unit_zi, float(x[i]), out=self._zi)
                self._zi_unset = False
            i = _band_kernel(t_s, x, i, *state)
            if i == t_s.size:
                return
            gap_s = float(t_s[i]) - float(self._st[_LAST_T])
            if gap_s > MAX_BRIDGE_S:
                self._restart()
            else:
                fill_t, fill_x = self._bridge(gap_s, float(t_s[i]), float(x[i]))
                _band_kernel(fill_t, fill_x, 0, *state)

    def _bridge(self, gap_s: float, t0_s: float, x0: float) -> tuple[FloatArray, FloatArray]:
        """Lost samples before ``(t0_s, x0)`` filled by a straight line, so the filters keep
        their state; the breaths they touch are not used."""
        last_t_s, last_x = float(self._st[_LAST_T]), float(self._st[_LAST_X])
        n_fill = round(gap_s * self.sample_rate_hz) - 1
        frac = np.arange(1, n_fill + 1) / (n_fill + 1)
        book = self._book
        k = int(book[_TAINTS_NEXT])
        self._taints[k] = (last_t_s, t0_s + TAINT_AFTER_S)
        book[_TAINTS_NEXT] = (k + 1) % _TAINTS_KEPT
        book[_TAINTS_LEN] = min(book[_TAINTS_LEN] + 1, _TAINTS_KEPT)
        return last_t_s + frac * gap_s, last_x + frac * (x0 - last_x)

    # -- output ------------------------------------------------------------------------------

    def breaths_at(self, t_s: float) -> list[Breath]:
        """The valid breaths wholly in the window ending at ``t_s`` and known by then."""
        self._flush()
        cap, head = self._breaths.shape[0], int(self._book[_BREATHS_HEAD])
        rows = self._breaths[(head + np.arange(int(self._book[_BREATHS_LEN]))) % cap]
        lo = t_s - self.window_s
        return [
            Breath(onset, end, duration, amplitude, True, confirmed)
            for onset, end, duration, amplitude, valid, confirmed in rows.tolist()
            if valid and confirmed <= t_s and onset > lo
        ]

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]:
        """Rate and depth from band samples up to ``t_s``; null once silent > 3 s."""
        self._flush()
        if self._last_t_s is None:
            warming = MetricValue(None, "warming_up")
            return {name: warming for name in self.provides}
        if t_s - self._last_t_s > STALE_AFTER_S:
            stale = MetricValue(None, "stale")
            return {name: stale for name in self.provides}
        count, duration_s, amplitude = _window(self._breaths, self._book, t_s, self.window_s)
        if count < MIN_BREATHS:
            warming = MetricValue(None, "warming_up")
            return {name: warming for name in self.provides}
        rate = MetricValue(60.0 * count / duration_s, "ok")
        baseline = float(self._book[_BASELINE])
        if math.isnan(baseline):
            depth = MetricValue(None, "warming_up")
        else:
            depth = MetricValue(amplitude / count / baseline, "ok")
        return {"breathing_rate_bpm": rate, "breath_depth_rel": depth}


# -- fallbacks without a band ----------------------------------------------------------------

#: RR-derived breathing: seconds of beats analysed, and the fewest beats worth a spectrum.
RR_WINDOW_S: Final = 30.0
RR_MIN_BEATS: Final = 30
#: The tachogram is resampled at this rate for its spectrum.
RR_RESAMPLE_HZ: Final = 4.0
#: Breathing searched between these rates (and below 0.45 × the heart rate: the beats sample it).
RR_MIN_BPM: Final = 6.0
RR_MAX_BPM: Final = 80.0
#: The respiratory line must hold this share of the band's power and stand this far above the
#: band's median power density: a flat or many-peaked spectrum gives no rate.
RR_LINE_SHARE: Final = 0.25
RR_LINE_OVER_MEDIAN: Final = 20.0

#: Chest-accelerometer breathing: seconds analysed, and the band searched.
ACC_WINDOW_S: Final = 30.0
ACC_MIN_BPM: Final = 6.0
ACC_MAX_BPM: Final = 40.0
#: Acceleration RMS (g) left after a 0.5 s moving average beyond which the wearer walks or runs:
#: gait swamps the breathing tilt (a few thousandths of a g) by orders of magnitude.
ACC_MOVING_RMS_G: Final = 0.02
ACC_LINE_SHARE: Final = 0.4
ACC_LINE_OVER_MEDIAN: Final = 20.0
_ACC_RESAMPLE_HZ: Final = 10.0
_MIN_FFT_POINTS: Final = 2048


def spectral_line_hz(
    series: FloatArray,
    sample_rate_hz: float,
    band_hz: tuple[float, float],
    *,
    min_share: float,
    min_over_median: float,
    weight_f2: bool = False,
) -> float | None:
    """Frequency of the one clear spectral line of ``series`` inside ``band_hz``, or None.

    Hann-windowed, zero-padded periodogram (``weight_f2``: times f², the spectrum of the rate of
    change, which whitens a 1/f² wander); the strongest bin's main lobe must hold ``min_share``
    of the band's power and the bin stand ``min_over_median`` times above the band's median,
    else there is no line to report. Refined by a parabola through the log powers.
    """
    n = series.size
    n_fft = max(_MIN_FFT_POINTS, 1 << (n - 1).bit_length())
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    power = np.abs(np.fft.rfft(series * np.hanning(n), n_fft)) ** 2
    if weight_f2:
        power *= freqs**2
    band = np.flatnonzero((freqs >= band_hz[0]) & (freqs <= band_hz[1]))
    if band.size < 8:
        return None
    in_band = power[band]
    k = int(in_band.argmax())
    lobe_bins = max(1, round(2.0 * n_fft / n))  # the Hann main lobe: ±2 bins of the series
    lobe = float(in_band[max(0, k - lobe_bins) : k + lobe_bins + 1].sum())
    total = float(in_band.sum())
    if total <= 0.0 or lobe < min_share * total:
        return None
    if in_band[k] < min_over_median * float(np.median(in_band)):
        return None
    idx = int(band[k])
    if not 0 < idx < power.size - 1:
        return None
    a, b, c = np.log(power[idx - 1 : idx + 2] + 1e-300)
    den = a - 2.0 * b + c
    offset = 0.5 * (a - c) / den if den < 0.0 else 0.0
    return float(freqs[idx] + offset * (freqs[1] - freqs[0]))


def breathing_rate_from_rr(
    beat_t_s: FloatArray, rr_s: FloatArray, *, min_span_s: float = 0.5 * RR_WINDOW_S
) -> float | None:
    """Breathing rate (1/min) from RR intervals by respiratory sinus arrhythmia, or None.

    The heart speeds up on inspiration, so the RR series (``rr_s[i]`` ends at the beat at
    ``beat_t_s[i]``) is modulated at the breathing frequency. Ectopic or missed beats (over 20 %
    off the median) are dropped, the series is resampled evenly at 4 Hz and a quadratic trend
    removed; the rate is the one clear line (:func:`spectral_line_hz`, f²-weighted against the
    heart rate's own slow wander) between 6/min and the lower of 80/min and 0.45 × the heart
    rate (the beats sample the modulation). None without such a line: no honest number then.
    """
    t = np.asarray(beat_t_s, dtype=np.float64)
    rr = np.asarray(rr_s, dtype=np.float64)
    if t.size < RR_MIN_BEATS:
        return None
    median_rr = float(np.median(rr))
    keep = np.abs(rr - median_rr) < 0.2 * median_rr
    t, rr = t[keep], rr[keep]
    if t.size < RR_MIN_BEATS or t[-1] - t[0] < min_span_s:
        return None
    x = np.arange(0.0, t[-1] - t[0], 1.0 / RR_RESAMPLE_HZ)
    series = np.interp(x, t - t[0], rr)
    series -= np.polyval(np.polyfit(x, series, 2), x)
    max_hz = min(RR_MAX_BPM / 60.0, 0.45 / median_rr)
    line_hz = spectral_line_hz(
        series,
        RR_RESAMPLE_HZ,
        (RR_MIN_BPM / 60.0, max_hz),
        min_share=RR_LINE_SHARE,
        min_over_median=RR_LINE_OVER_MEDIAN,
        weight_f2=True,
    )
    return None if line_hz is None else 60.0 * line_hz


class RrBreathingEstimator:
    """Fallback breathing rate from a heart-rate strap's RR intervals (no band worn).

    Feed it the same Heart Rate Measurements as :class:`HeartRateEstimator`. The value is
    :func:`breathing_rate_from_rr` over the beats of the last ``window_s``: quality ``ok`` when
    the respiratory line is clear (within 1 breath/min on the simulator), null and
    ``warming_up`` without a clear line or with too few beats, ``stale`` after 3 s without
    notifications. Computed once per asked time (about 0.2 ms), not per notification.
    """

    provides: Final[tuple[MetricName, ...]] = ("breathing_rate_bpm",)

    def __init__(self, *, window_s: float = RR_WINDOW_S) -> None:
        self.window_s = window_s
        self.timeline = BeatTimeline()
        self._beats: deque[tuple[float, float, float]] = deque()  # (beat, RR, receive time)
        self._last_t_s: float | None = None
        self._cache: tuple[float, float | None] | None = None

    def update(self, t_s: float, measurement: HeartRateMeasurement) -> None:
        self._last_t_s = t_s if self._last_t_s is None else max(self._last_t_s, t_s)
        self._cache = None
        if measurement.contact == "no_contact":
            self._beats.clear()
            self.timeline.reset()
            return
        rr = measurement.rr_intervals_s
        for beat_t_s, rr_s in zip(self.timeline.place(t_s, rr), rr, strict=True):
            self._beats.append((beat_t_s, rr_s, t_s))
        horizon = self._last_t_s - self.window_s - 5.0
        while self._beats and self._beats[0][0] < horizon:
            self._beats.popleft()

    def rate_at(self, t_s: float) -> float | None:
        """:func:`breathing_rate_from_rr` over the beats received by ``t_s`` in the window."""
        if self._cache is not None and self._cache[0] == t_s:
            return self._cache[1]
        lo = t_s - self.window_s
        beats = [(b, r) for b, r, recv in self._beats if recv <= t_s and b > lo]
        rate = None
        if len(beats) >= RR_MIN_BEATS:
            arr = np.array(beats)
            rate = breathing_rate_from_rr(arr[:, 0], arr[:, 1], min_span_s=0.5 * self.window_s)
        self._cache = (t_s, rate)
        return rate

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]:
        """The fallback rate from notifications up to ``t_s``; null once silent > 3 s."""
        if self._last_t_s is None:
            return {"breathing_rate_bpm": MetricValue(None, "warming_up")}
        if t_s - self._last_t_s > STALE_AFTER_S:
            return {"breathing_rate_bpm": MetricValue(None, "stale")}
        rate = self.rate_at(t_s)
        quality: Quality = "ok" if rate is not None else "warming_up"
        return {"breathing_rate_bpm": MetricValue(rate, quality)}


def breathing_rate_from_chest_acc(t_s: FloatArray, acc_g: FloatArray) -> float | None:
    """Breathing rate (1/min) from a chest accelerometer, at rest only; otherwise None.

    Breathing tilts the chest by a fraction of a degree, so gravity's direction in the sensor
    frame swings at the breathing rate by a few thousandths of a g: the band-passed
    (0.1-0.67 Hz) acceleration along its main axis of variation shows one spectral line there.
    Running shakes the strap by 2-6 g at the step frequency and sways it at the stride
    frequency, and a runner's breathing locks to the steps (a breath every 2-5 steps): what is
    left of breathing is orders of magnitude below the gait and shares its frequencies, so
    there is no honest estimate while the wearer moves (and the simulator's IMU carries no
    breathing at all: anything found there would be invented). None when the wearer moves
    (``ACC_MOVING_RMS_G``), when the window is under ``ACC_WINDOW_S / 2`` or sampled under
    4 Hz, or when no single line stands out. ``acc_g``: (n, 3) in g at times ``t_s``, one window
    (``ACC_WINDOW_S`` is the intended length).
    """
    t = np.asarray(t_s, dtype=np.float64)
    acc = np.asarray(acc_g, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[1] != 3 or acc.shape[0] != t.size:
        raise ValueError(f"acc_g {acc.shape} must be (n, 3) with n = {t.size} times")
    if t.size < 2 or t[-1] - t[0] < 0.5 * ACC_WINDOW_S:
        return None
    rate_hz = (t.size - 1) / (t[-1] - t[0])
    if rate_hz < 4.0:
        return None
    # Movement: what a 0.5 s moving average leaves (steps and their harmonics).
    width = max(1, round(0.5 * rate_hz))
    kernel = np.ones(width) / width
    smooth = np.stack([np.convolve(acc[:, k], kernel, mode="valid") for k in range(3)], axis=1)
    start = (width - 1) // 2
    residual = acc[start : start + smooth.shape[0]] - smooth
    if float(np.sqrt(np.mean(np.sum(residual**2, axis=1)))) > ACC_MOVING_RMS_G:
        return None
    x = np.arange(t[0], t[-1], 1.0 / _ACC_RESAMPLE_HZ)
    even = np.stack([np.interp(x, t, acc[:, k]) for k in range(3)], axis=1)
    sos = signal.butter(2, (0.1, 0.67), "bandpass", fs=_ACC_RESAMPLE_HZ, output="sos")
    # One closed window of past samples, not a stream: zero-phase filtering is causal here.
    band = signal.sosfiltfilt(sos, even - even.mean(axis=0), axis=0)
    _, vectors = np.linalg.eigh(np.cov(band.T))
    line_hz = spectral_line_hz(
        band @ vectors[:, -1],
        _ACC_RESAMPLE_HZ,
        (ACC_MIN_BPM / 60.0, ACC_MAX_BPM / 60.0),
        min_share=ACC_LINE_SHARE,
        min_over_median=ACC_LINE_OVER_MEDIAN,
    )
    return None if line_hz is None else 60.0 * line_hz
