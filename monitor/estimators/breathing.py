"""Breathing from a chest band: rate, depth against the runner's own baseline, steps per breath.

The band reads chest stretch (arbitrary units) plus what running adds: a bounce at step
frequency (2.5-3.3 Hz), a slow wander and creep of its zero, and noise. The estimator works
causally, one notification at a time, in O(block) numpy work (no per-sample Python):

1. **Filter** — a band-pass (Butterworth high-pass 0.05 Hz order 2, low-pass 1.6 Hz order 6)
   keeps breaths (6-80 per minute) and removes drift and the step bounce (-23 dB at 2.5 Hz,
   -35 dB at 3 Hz). Two more filters watch for running: the step band (2.2-3.8 Hz) and the
   noise floor (above 5 Hz). All three run as one precomputed linear map per block length with
   their state carried across blocks: exactly ``scipy.signal.sosfilt`` with ``zi``, without
   its per-call overhead. Nothing looks ahead.
2. **Breaths** — a hysteresis on the filtered signal (±0.35 × its running RMS, and never
   under 4 × the noise in the breath band) splits it into rising and falling halves; the
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
   runner has run for ``BASELINE_SETTLE_S`` (standing breaths are shallower, about 0.6, and
   would bias it); depth is null and ``warming_up`` until then. Running is what the session
   says through :meth:`BreathingEstimator.note_cadence` while that is fresh, else what the band
   itself sees (:func:`band_says_running`: a step band standing out of both the noise floor
   and the breaths' own harmonics; a band that barely bounces, or a very noisy one, never
   says so, and then only the cadence can start the baseline). A baseline stored from an
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
import itertools
import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from monitor.estimators.heart_rate import BeatTimeline
from monitor.metrics import STALE_AFTER_S, MetricName, MetricValue, Quality
from sensors.gatt.heart_rate import HeartRateMeasurement

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
_MAX_BLOCK: Final = 64  # longer inputs are processed in chunks of this many samples
_TAINTS_KEPT: Final = 32


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


def _steady_state(sos: FloatArray, x0: float) -> FloatArray:
    """Filter state after a constant input ``x0`` forever (the output of a band-pass is 0)."""
    if sos.shape[0] == 0:
        return np.zeros(0)
    out: FloatArray = (signal.sosfilt_zi(sos) * x0).ravel()
    return out


@functools.lru_cache(maxsize=128)
def _block_map(sample_rate_hz: float, n: int) -> FloatArray:
    """The filters over ``n`` samples as one matrix: [outputs; new state] = M @ [x; state].

    Columns are the responses of ``sosfilt`` to unit inputs and unit states, so the product is
    exactly the cascade (a linear map), at the cost of one small matrix product per block.
    """
    filters = band_filters(sample_rate_hz)
    sizes = [2 * sos.shape[0] for sos in filters]
    n_state = sum(sizes)
    out = np.zeros((len(filters) * n + n_state, n + n_state))
    offset = 0
    for k, (sos, size) in enumerate(zip(filters, sizes, strict=True)):
        if size == 0:
            continue
        rows = slice(k * n, (k + 1) * n)
        state_rows = slice(len(filters) * n + offset, len(filters) * n + offset + size)
        zero_state = np.zeros((sos.shape[0], 2))
        for j in range(n):
            impulse = np.zeros(n)
            impulse[j] = 1.0
            y, zf = signal.sosfilt(sos, impulse, zi=zero_state)
            out[rows, j] = y
            out[state_rows, j] = zf.ravel()
        for s in range(size):
            unit = np.zeros(size)
            unit[s] = 1.0
            y, zf = signal.sosfilt(sos, np.zeros(n), zi=unit.reshape(-1, 2))
            out[rows, n + offset + s] = y
            out[state_rows, n + offset + s] = zf.ravel()
        offset += size
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _phase_delay_table(sample_rate_hz: float) -> tuple[FloatArray, FloatArray]:
    """Phase delay (s) of the breath band-pass over the breath frequencies."""
    freqs = np.linspace(0.05, LOWPASS_HZ, 128)
    _, h = signal.sosfreqz(band_filters(sample_rate_hz)[_BREATH], worN=freqs, fs=sample_rate_hz)
    phase = np.unwrap(np.angle(h))
    delay: FloatArray = -phase / (2.0 * np.pi * freqs)
    return freqs, delay


def hysteresis_changes(y: FloatArray, threshold: float, state: int) -> list[tuple[int, int]]:
    """Where a hysteresis on ``y`` changes phase: (index, new state), in order.

    The state is +1 after ``y`` rose above ``threshold`` and -1 after it fell below
    ``-threshold``; ``state`` is the one before the first sample (0: not known yet, and the
    first excursion sets it). One vectorised search per change: a block holds one or two.
    """
    out: list[tuple[int, int]] = []
    i = 0
    if state == 0:
        beyond = np.abs(y) > threshold
        k = int(beyond.argmax())
        if not beyond[k]:
            return out
        state = 1 if y[k] > 0 else -1
        out.append((k, state))
        i = k + 1
    while i < y.size:
        rest = y[i:]
        crossed = rest < -threshold if state > 0 else rest > threshold
        k = int(crossed.argmax())
        if not crossed[k]:
            break
        i += k
        state = -state
        out.append((i, state))
        i += 1
    return out


def band_says_running(
    step_power: float,
    noise_power: float,
    breath_power: float,
    noise_per_step_bandwidth: float,
    *,
    was_running: bool,
) -> bool:
    """Whether the band bounces with steps: the step band's power density stands out of the
    noise floor's, and its power is more than a breath's own harmonics put there.

    ``noise_per_step_bandwidth`` converts powers to densities (noise band width ÷ step band
    width). Thresholds have hysteresis: ``was_running`` picks the lower pair.
    """
    over_noise, over_breath = (
        (STEP_OVER_NOISE_OFF, STEP_OVER_BREATH_OFF)
        if was_running
        else (STEP_OVER_NOISE_ON, STEP_OVER_BREATH_ON)
    )
    return (
        step_power * noise_per_step_bandwidth > over_noise * noise_power
        and step_power > over_breath * breath_power
    )


def refine_extremum(t_s: FloatArray, y: FloatArray, j: int) -> tuple[float, float]:
    """Time and value of the extremum at sample ``j`` by a parabola through its neighbours."""
    if 0 < j < y.size - 1:
        a, b, c = float(y[j - 1]), float(y[j]), float(y[j + 1])
        den = a - 2.0 * b + c
        if den != 0.0:
            off = min(max(0.5 * (a - c) / den, -0.5), 0.5)
            k = j + 1 if off > 0 else j - 1
            return float(t_s[j] + off * abs(t_s[k] - t_s[j])), b - 0.25 * (a - c) * off
    return float(t_s[j]), float(y[j])


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


@dataclass(slots=True)
class _Extremum:
    t_s: float  # filtered-signal time (not yet delay corrected)
    value: float
    tainted: bool


class BreathingEstimator:
    """Streaming breathing rate and depth from a chest band.

    Feed :meth:`update` each notification's samples with their host times, in order (from the
    caller's :class:`sensors.timing.SequenceTimer`: ``timed.t_s`` with
    ``block.stretch[timed.start:]``); gaps are recognised from the times. Ask :meth:`metrics_at`
    for the metrics at any time. :meth:`note_cadence` is optional (see the module docstring).
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
        self.sample_rate_hz = float(sample_rate_hz)
        self.window_s = window_s
        self._period_s = 1.0 / self.sample_rate_hz
        self._filters = band_filters(self.sample_rate_hz)
        self._has_step_band = self._filters[_STEP].shape[0] > 0
        # Power -> density conversions (without a step band there is no noise floor either).
        bw_step = STEP_BAND_HZ[1] - STEP_BAND_HZ[0]
        bw_noise = self.sample_rate_hz / 2.0 - NOISE_FROM_HZ
        self._step_density_scale = bw_noise / bw_step if self._has_step_band else 0.0
        self._breath_noise_scale = (
            math.sqrt((LOWPASS_HZ - HIGHPASS_HZ) / bw_noise) if self._has_step_band else 0.0
        )
        self._delay_freqs, self._delay_s = _phase_delay_table(self.sample_rate_hz)
        self._block_consts: dict[int, tuple[FloatArray, float, float]] = {}
        self._max_seg = int(MAX_BREATH_S * self.sample_rate_hz)
        capacity = self._max_seg + 4 * _MAX_BLOCK
        self._buf_t: FloatArray = np.zeros(capacity)
        self._buf_y: FloatArray = np.zeros(capacity)
        self._baseline = baseline_amplitude
        self._baseline_amps: list[float] = []
        self._breaths: deque[Breath] = deque()
        self._taints: deque[tuple[float, float]] = deque(maxlen=_TAINTS_KEPT)
        self._cadence_hint: tuple[float, float] | None = None
        self._running_since_t_s: float | None = None
        self._band_running = False
        self._last_t_s: float | None = None
        self._restart()

    def _restart(self) -> None:
        """Forget the signal's state (first data, or after a gap too long to bridge)."""
        self._state: FloatArray | None = None  # filter state; None until the first sample
        self._last_x = 0.0
        self._p_level = 0.0  # running power of the breath-filtered signal; 0: not started
        self._p_breath = 0.0
        self._p_step = 0.0
        self._p_noise = 0.0
        self._hyst_state = 0
        self._buf_len = 0  # filtered samples in the buffer
        self._seg_start = 0  # buffer index of the current half-cycle's first sample
        self._seg_genuine = False  # that half-cycle began at a transition, not at a (re)start
        self._trough: _Extremum | None = None
        self._peak: _Extremum | None = None

    # -- input -------------------------------------------------------------------------------

    @property
    def baseline_amplitude(self) -> float | None:
        """Baseline breath amplitude (filtered peak-to-peak, band units): store it per runner."""
        return self._baseline

    @property
    def running(self) -> bool:
        """Whether the runner runs, as the cadence hint or (without one) the band says."""
        return self._running_since_t_s is not None

    def note_cadence(self, t_s: float, cadence_spm: float | None) -> None:
        """Optional: the session's cadence at ``t_s``; while fresh (3 s) it decides running."""
        self._cadence_hint = None if cadence_spm is None else (t_s, cadence_spm)

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
        if last_t_s is not None and self._state is not None:
            gap_s = float(t_s[0]) - last_t_s
            if gap_s > MAX_BRIDGE_S:
                self._restart()
            elif gap_s > 1.5 * self._period_s:
                t_s, x = self._bridge(gap_s, t_s, x)
        if self._state is None:
            x0 = float(x[0])
            self._state = np.concatenate([_steady_state(sos, x0) for sos in self._filters])
        if t_s.size <= _MAX_BLOCK:
            self._process(t_s, x)
        else:
            for start in range(0, t_s.size, _MAX_BLOCK):
                self._process(t_s[start : start + _MAX_BLOCK], x[start : start + _MAX_BLOCK])
        self._last_t_s = float(t_s[-1])
        self._last_x = float(x[-1])

    def _bridge(
        self, gap_s: float, t_s: FloatArray, x: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Lost samples filled by a straight line, so the filters keep their state; the
        breaths they touch are not used."""
        assert self._last_t_s is not None
        n_fill = round(gap_s * self.sample_rate_hz) - 1
        frac = np.arange(1, n_fill + 1) / (n_fill + 1)
        fill_t = self._last_t_s + frac * gap_s
        fill_x = self._last_x + frac * (float(x[0]) - self._last_x)
        self._taints.append((self._last_t_s, float(t_s[0]) + TAINT_AFTER_S))
        return np.concatenate((fill_t, t_s)), np.concatenate((fill_x, x))

    # -- per block ---------------------------------------------------------------------------

    def _consts(self, n: int) -> tuple[FloatArray, float, float]:
        consts = self._block_consts.get(n)
        if consts is None:
            consts = (
                _block_map(self.sample_rate_hz, n),
                math.exp(-n * self._period_s / POWER_TAU_S),
                math.exp(-n * self._period_s / LEVEL_TAU_S),
            )
            self._block_consts[n] = consts
        return consts

    def _process(self, t_s: FloatArray, x: FloatArray) -> None:
        n = t_s.size
        matrix, decay, level_decay = self._consts(n)
        assert self._state is not None
        out = matrix @ np.concatenate((x, self._state))
        self._state = out[3 * n :]
        outputs = out[: 3 * n].reshape(3, n)
        p_breath, p_step, p_noise = ((outputs * outputs).sum(axis=1) / n).tolist()
        if self._p_level > 0.0:
            threshold = max(
                HYSTERESIS_REL * math.sqrt(self._p_level),
                HYSTERESIS_NOISE_SIGMAS * math.sqrt(self._p_noise) * self._breath_noise_scale,
            )
            self._p_level = level_decay * self._p_level + (1.0 - level_decay) * p_breath
            self._p_breath = decay * self._p_breath + (1.0 - decay) * p_breath
            self._p_step = decay * self._p_step + (1.0 - decay) * p_step
            self._p_noise = decay * self._p_noise + (1.0 - decay) * p_noise
        else:  # the first block after a (re)start: its own powers
            self._p_level = self._p_breath = max(p_breath, 1e-300)
            self._p_step, self._p_noise = p_step, p_noise
            threshold = max(
                HYSTERESIS_REL * math.sqrt(self._p_level),
                HYSTERESIS_NOISE_SIGMAS * math.sqrt(self._p_noise) * self._breath_noise_scale,
            )
        self._update_running(float(t_s[-1]))
        self._detect(t_s, outputs[0], threshold)

    def _update_running(self, t_s: float) -> None:
        hint = self._cadence_hint
        if hint is not None and t_s - hint[0] <= STALE_AFTER_S:
            running = hint[1] >= RUNNING_FROM_SPM
        elif self._has_step_band:
            self._band_running = band_says_running(
                self._p_step,
                self._p_noise,
                self._p_breath,
                self._step_density_scale,
                was_running=self._band_running,
            )
            running = self._band_running
        else:
            running = False
        if not running:
            self._running_since_t_s = None
        elif self._running_since_t_s is None:
            self._running_since_t_s = t_s

    def _detect(self, t_s: FloatArray, y: FloatArray, threshold: float) -> None:
        state = self._hyst_state
        # Most blocks cannot change the phase: only a swing past the opposite threshold does.
        if (state > 0 and float(y.min()) >= -threshold) or (
            state < 0 and float(y.max()) <= threshold
        ):
            self._append(t_s, y)
            return
        changes = hysteresis_changes(y, threshold, state)
        if not changes:
            if state != 0:
                self._append(t_s, y)
            return
        if state == 0:
            # The phase becomes known here: the first (cut) half-cycle starts at this sample.
            first, state = changes.pop(0)
            t_s, y = t_s[first:], y[first:]
            changes = [(i - first, s) for i, s in changes]
            self._buf_len = self._seg_start = 0
        base = self._append(t_s, y)
        bt, by = self._buf_t[: self._buf_len], self._buf_y[: self._buf_len]
        start = self._seg_start
        for i, new_state in changes:
            ci = base + i
            if not self._seg_genuine:
                # The first half-cycle after a (re)start is cut short: its extremum is not one.
                self._seg_genuine = True
            elif new_state > 0:  # rose: the trough before is an onset
                j = start + int(by[start:ci].argmin())
                self._on_trough(*refine_extremum(bt, by, j), confirmed_t_s=float(bt[ci]))
            else:  # fell: the crest before is the peak
                j = start + int(by[start:ci].argmax())
                te, ve = refine_extremum(bt, by, j)
                self._peak = _Extremum(te, ve, self._tainted(te))
            start = ci
            state = new_state
        self._seg_start = start
        self._hyst_state = state

    def _append(self, t_s: FloatArray, y: FloatArray) -> int:
        """Put filtered samples after the buffer's; returns the index of the first."""
        n = t_s.size
        if self._buf_len + n > self._buf_t.size:
            keep = slice(self._seg_start, self._buf_len)
            size = self._buf_len - self._seg_start
            self._buf_t[:size] = self._buf_t[keep]
            self._buf_y[:size] = self._buf_y[keep]
            self._buf_len, self._seg_start = size, 0
        base = self._buf_len
        self._buf_t[base : base + n] = t_s
        self._buf_y[base : base + n] = y
        self._buf_len = base + n
        if self._buf_len - self._seg_start > self._max_seg:
            # A half-cycle longer than any breath: no breathing to see; start afresh.
            self._seg_start = self._buf_len - self._max_seg
            self._trough = self._peak = None
            self._seg_genuine = False
        return base

    def _tainted(self, t_s: float) -> bool:
        return any(a <= t_s <= b for a, b in self._taints)

    def _on_trough(self, t_raw_s: float, value: float, *, confirmed_t_s: float) -> None:
        trough = _Extremum(t_raw_s, value, self._tainted(t_raw_s))
        prev, peak = self._trough, self._peak
        self._trough, self._peak = trough, None
        if prev is None or peak is None or not prev.t_s < peak.t_s < trough.t_s:
            return
        duration_s = trough.t_s - prev.t_s
        amplitude = peak.value - 0.5 * (prev.value + trough.value)
        touched = any(a < trough.t_s and b > prev.t_s for a, b in self._taints)
        # A bridge that hid a trough merged two breaths: their length gives it away.
        recent = [b.duration_s for b in itertools.islice(reversed(self._breaths), 8) if b.valid]
        consistent = len(recent) >= 3 and abs(duration_s / statistics.median(recent) - 1.0) < 0.3
        valid = (
            MIN_BREATH_S <= duration_s <= MAX_BREATH_S
            and amplitude > 0.0
            and not (prev.tainted or peak.tainted or trough.tainted)
            and (not touched or consistent)
        )
        delay_s = float(np.interp(1.0 / duration_s, self._delay_freqs, self._delay_s))
        breath = Breath(
            onset_t_s=prev.t_s - delay_s,
            end_t_s=trough.t_s - delay_s,
            duration_s=duration_s,
            amplitude=amplitude,
            valid=valid,
            confirmed_t_s=confirmed_t_s,
        )
        self._breaths.append(breath)
        horizon = confirmed_t_s - self.window_s - MAX_BREATH_S
        while self._breaths[0].confirmed_t_s < horizon:
            self._breaths.popleft()
        self._learn_baseline(breath)

    def _learn_baseline(self, breath: Breath) -> None:
        since = self._running_since_t_s
        if self._baseline is not None or not breath.valid or since is None:
            return
        if breath.onset_t_s < since + BASELINE_SETTLE_S:
            return
        self._baseline_amps.append(breath.amplitude)
        if len(self._baseline_amps) >= BASELINE_BREATHS:
            self._baseline = float(np.median(self._baseline_amps))
            self._baseline_amps = []

    # -- output ------------------------------------------------------------------------------

    def breaths_at(self, t_s: float) -> list[Breath]:
        """The valid breaths wholly in the window ending at ``t_s`` and known by then."""
        lo = t_s - self.window_s
        return [b for b in self._breaths if b.valid and b.confirmed_t_s <= t_s and b.onset_t_s > lo]

    def metrics_at(self, t_s: float) -> dict[MetricName, MetricValue]:
        """Rate and depth from band samples up to ``t_s``; null once silent > 3 s."""
        if self._last_t_s is None:
            warming = MetricValue(None, "warming_up")
            return {name: warming for name in self.provides}
        if t_s - self._last_t_s > STALE_AFTER_S:
            stale = MetricValue(None, "stale")
            return {name: stale for name in self.provides}
        breaths = self.breaths_at(t_s)
        if len(breaths) < MIN_BREATHS:
            warming = MetricValue(None, "warming_up")
            return {name: warming for name in self.provides}
        total_s = sum(b.duration_s for b in breaths)
        rate = MetricValue(60.0 * len(breaths) / total_s, "ok")
        if self._baseline is None:
            depth = MetricValue(None, "warming_up")
        else:
            mean_amp = sum(b.amplitude for b in breaths) / len(breaths)
            depth = MetricValue(mean_amp / self._baseline, "ok")
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
