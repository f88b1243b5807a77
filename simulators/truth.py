"""Ground truth: every metric of DESIGN §3.3, per whole second, measured on the simulated motion.

Truth never echoes a target and never runs an estimator: it measures the virtual runner's
motion the way the metric is defined, causally (the row at ``t_s`` uses motion up to ``t_s``).

- Steps: a *contact* is where the sensor point's vertical specific force (world vertical) is
  above ``CONTACT_THRESHOLD_G``; its start is a touchdown, its end a toe-off, both located to
  sub-microsecond by bisection on the force. A *step* runs from a touchdown to the next, a
  *stride* over two steps. Steps longer than ``MAX_STEP_S`` (a stop) and contacts longer than
  ``MAX_CONTACT_S`` (no flight: walking, standing) do not count.
- ``cadence_spm``: 60 × steps ÷ their total time, over the steps that lie wholly in the last
  ``GAIT_WINDOW_S``; 0 when there are none (not running).
- ``ground_contact_ms``: mean contact time of the contacts that start and end in that window.
- ``vertical_oscillation_cm``: per step, the peak-to-peak of the sensor's vertical displacement
  (the double integral of its vertical acceleration, closed form) between its touchdowns;
  averaged over the window's steps.
- ``trunk_rotation_deg``: per stride, the peak-to-peak of the segment's azimuth (where its
  forward axis points about the vertical) after removing the straight line between the
  stride's ends (the turn of a bend); averaged over the window's strides. The thorax when a
  chest or upper-back strap is worn, else the pelvis.
- ``trunk_lean_deg``: the thorax's pitch (how far its forward axis dips below the horizontal;
  0 standing upright), time-averaged over the whole strides from the window's first touchdown.
- ``lateral_sway_cm``: per stride, the peak-to-peak of the segment's side-to-side displacement
  after removing the chord; averaged over the window's strides.
- ``lean_variability_deg``: the standard deviation of stride-averaged thorax pitch around its
  least-squares line (a deliberate change of lean is not instability), over the strides (two
  steps, every touchdown starting one) that end in the last ``LEAN_VARIABILITY_WINDOW_S``;
  null below ``LEAN_VARIABILITY_MIN_STRIDES`` strides.
- ``speed_mps``: distance run in the window ÷ its length; ``stride_length_m``: speed ÷ steps
  per second (null below 60 steps/min).
- ``breathing_rate_bpm``: 60 × breaths ÷ their total time, over the breaths (onset to onset)
  wholly in the last ``BREATH_WINDOW_S``; ``breath_depth_rel``: their mean peak-to-peak chest
  expansion, in baseline breaths; ``steps_per_breath``: cadence ÷ breathing rate.
- ``heart_rate_bpm``: 60 ÷ the mean RR interval of the beats in the last ``HEART_WINDOW_S``.

A metric is null when there is nothing to measure (no steps, no strides) and, by default, when
no worn sensor could measure it (no IMU: no trunk metrics; no footpod: no speed; no band: no
breathing; no HR strap: no heart rate), so truth and ``runmon analyze`` compare like for like.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from simulators.body import (
    G_MPS2,
    Segment,
    lateral_sway_m,
    segment_orientation,
    vertical_motion,
)
from simulators.model import VirtualRunner, simulate
from simulators.physiology import breath_waveform
from simulators.scenario import Scenario
from simulators.signals import FloatArray

#: The metric fields of DESIGN §3.3, in row order (the same as ``monitor.metrics``).
METRIC_NAMES: Final = (
    "cadence_spm",
    "speed_mps",
    "stride_length_m",
    "trunk_lean_deg",
    "trunk_rotation_deg",
    "vertical_oscillation_cm",
    "ground_contact_ms",
    "breathing_rate_bpm",
    "breath_depth_rel",
    "steps_per_breath",
    "heart_rate_bpm",
    "lateral_sway_cm",
    "lean_variability_deg",
)

TRUTH_RATE_HZ: Final = 200.0
CONTACT_THRESHOLD_G: Final = 0.1
GAIT_WINDOW_S: Final = 5.0
BREATH_WINDOW_S: Final = 15.0
HEART_WINDOW_S: Final = 5.0
LEAN_VARIABILITY_WINDOW_S: Final = 30.0
LEAN_VARIABILITY_MIN_STRIDES: Final = 12
MAX_STEP_S: Final = 1.0
MAX_CONTACT_S: Final = 0.6
MIN_STEPPING_SPM: Final = 60.0
_CHUNK_S: Final = 600.0
_BISECTIONS: Final = 32
_DECIMALS: Final = 4


@dataclass(frozen=True, slots=True)
class Gait:
    """Steps and strides measured on the motion (arrays per touchdown, step and stride)."""

    touchdown_s: FloatArray
    contact_s: FloatArray  # per touchdown; NaN when it did not end in flight
    step_ok: np.ndarray[tuple[int], np.dtype[np.bool_]]  # step i: touchdown i to i + 1
    step_vo_m: FloatArray
    stride_rotation_deg: FloatArray  # stride i: touchdown i to i + 2; NaN if not a stride
    stride_sway_m: FloatArray  # stride i, like the rotation
    lean_t_s: FloatArray  # the grid and the running integral of pitch on it
    lean_integral_rad_s: FloatArray


def _specific_force_g(runner: VirtualRunner, t_s: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 + vertical_motion(runner.body.steps, t_s).accel_mps2 / G_MPS2
    return out


def _crossings(runner: VirtualRunner, lo: FloatArray, hi: FloatArray, rising: bool) -> FloatArray:
    """Where the vertical force crosses the threshold between ``lo`` and ``hi`` (bisection)."""
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2.0
        above = _specific_force_g(runner, mid) > CONTACT_THRESHOLD_G
        after = above if rising else ~above
        hi = np.where(after, mid, hi)
        lo = np.where(after, lo, mid)
    out: FloatArray = (lo + hi) / 2.0
    return out


def _reduce_ptp(values: FloatArray, starts: np.ndarray[Any, np.dtype[np.intp]]) -> FloatArray:
    """Peak-to-peak of ``values`` over consecutive segments starting at ``starts``."""
    out: FloatArray = np.maximum.reduceat(values, starts) - np.minimum.reduceat(values, starts)
    return out


@dataclass(frozen=True, slots=True)
class _Sampled:
    """The motion on the truth grid: what the per-step and per-stride measures look at."""

    t_s: FloatArray
    force_g: FloatArray  # vertical specific force, world vertical
    height_m: FloatArray
    azimuth_rad: FloatArray  # of the segment whose rotation truth reports
    pitch_rad: FloatArray  # of the thorax
    sway_m: FloatArray  # of the segment whose rotation truth reports


def _sample(runner: VirtualRunner, segment: Segment) -> _Sampled:
    grid = np.arange(0.0, runner.duration_s, 1.0 / TRUTH_RATE_HZ)
    force, height, azimuth, pitch, sway = (np.empty(grid.size) for _ in range(5))
    per_chunk = int(_CHUNK_S * TRUTH_RATE_HZ)  # bounded temporaries for any duration
    for start in range(0, grid.size, per_chunk):
        part = slice(start, start + per_chunk)
        vertical = vertical_motion(runner.body.steps, grid[part])
        force[part] = 1.0 + vertical.accel_mps2 / G_MPS2
        height[part] = vertical.height_m
        thorax = segment_orientation(runner.body, grid[part], "thorax")
        pitch[part] = thorax[:, 1]
        if segment == "thorax":
            azimuth[part] = thorax[:, 0]
        else:
            azimuth[part] = segment_orientation(runner.body, grid[part], segment)[:, 0]
        sway[part] = lateral_sway_m(runner.body, grid[part], segment)
    return _Sampled(grid, force, height, azimuth, pitch, sway)


def _contacts(runner: VirtualRunner, sampled: _Sampled) -> tuple[FloatArray, FloatArray]:
    """Touchdown times and each one's contact time (NaN: it did not end in a flight)."""
    t = sampled.t_s
    above = sampled.force_g > CONTACT_THRESHOLD_G
    rise = np.flatnonzero(~above[:-1] & above[1:])
    fall = np.flatnonzero(above[:-1] & ~above[1:])
    touchdown = _crossings(runner, t[rise], t[rise + 1], rising=True)
    toe_off = _crossings(runner, t[fall], t[fall + 1], rising=False)
    # Each touchdown's contact ends at the first toe-off after it, if before the next touchdown.
    j = np.searchsorted(toe_off, touchdown, side="right")
    ends = np.where(j < toe_off.size, toe_off[np.minimum(j, toe_off.size - 1)], np.inf)
    next_touchdown = np.append(touchdown[1:], np.inf)
    contact = ends - touchdown
    ok = (ends < next_touchdown) & (contact <= MAX_CONTACT_S)
    return touchdown, np.where(ok, contact, np.nan)


def _step_oscillation(sampled: _Sampled, touchdown: FloatArray) -> FloatArray:
    """Peak-to-peak vertical displacement between consecutive touchdowns."""
    if touchdown.size < 2:
        return np.zeros(0)
    starts = np.searchsorted(sampled.t_s, touchdown)
    out = _reduce_ptp(sampled.height_m, starts[:-1])
    # reduceat's last segment runs to the end of the grid; the last step ends at a touchdown.
    last = sampled.height_m[starts[-2] : starts[-1]]
    out[-1] = float(np.ptp(last)) if last.size else 0.0
    return out


def _stride_rotation(sampled: _Sampled, touchdown: FloatArray) -> FloatArray:
    """Per stride (touchdown i to i + 2): peak-to-peak azimuth after removing the chord, °."""
    return np.rad2deg(_stride_ptp(sampled.t_s, sampled.azimuth_rad, touchdown))


def _stride_ptp(t: FloatArray, values: FloatArray, touchdown: FloatArray) -> FloatArray:
    """Per stride (touchdown i to i + 2): peak-to-peak of ``values`` after removing the chord."""
    rotation = np.full(max(touchdown.size - 2, 0), np.nan)
    for parity in (0, 1):  # strides from either foot: two tilings of the time axis
        bounds = touchdown[parity::2]
        if bounds.size < 2:
            continue
        inside = (t >= bounds[0]) & (t < bounds[-1])
        t_in = t[inside]
        k = np.searchsorted(bounds, t_in, side="right") - 1
        az_bounds = np.interp(bounds, t, values)
        frac = (t_in - bounds[k]) / (bounds[k + 1] - bounds[k])
        chord = az_bounds[k] + frac * (az_bounds[k + 1] - az_bounds[k])
        ptp = _reduce_ptp(values[inside] - chord, np.searchsorted(t_in, bounds[:-1]))
        rotation[parity::2][: ptp.size] = ptp
    return rotation


def measure_gait(runner: VirtualRunner, segment: Segment) -> Gait:
    """Touchdowns, contacts, per-step vertical oscillation and per-stride rotation."""
    sampled = _sample(runner, segment)
    touchdown, contact = _contacts(runner, sampled)
    step_ok = (np.diff(touchdown) <= MAX_STEP_S) & np.isfinite(contact[:-1])
    stride_ok = step_ok[:-1] & step_ok[1:]
    rotation = np.where(stride_ok, _stride_rotation(sampled, touchdown), np.nan)
    pitch = sampled.pitch_rad
    lean_integral = np.concatenate(([0.0], np.cumsum((pitch[1:] + pitch[:-1]) / 2.0)))
    return Gait(
        touchdown_s=touchdown,
        contact_s=contact,
        step_ok=step_ok,
        step_vo_m=_step_oscillation(sampled, touchdown),
        stride_rotation_deg=rotation,
        stride_sway_m=np.where(
            stride_ok, _stride_ptp(sampled.t_s, sampled.sway_m, touchdown), np.nan
        ),
        lean_t_s=sampled.t_s,
        lean_integral_rad_s=lean_integral / TRUTH_RATE_HZ,
    )


def _window_mean(
    values: FloatArray, first: np.ndarray[Any, Any], stop: np.ndarray[Any, Any]
) -> FloatArray:
    """Mean of the finite ``values[first:stop]`` per row (NaN when none), by cumulative sums."""
    ok = np.isfinite(values)
    sums = np.concatenate(([0.0], np.cumsum(np.where(ok, values, 0.0))))
    counts = np.concatenate(([0], np.cumsum(ok)))
    first = np.clip(first, 0, values.size)
    stop = np.clip(stop, first, values.size)
    n = counts[stop] - counts[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(n > 0, (sums[stop] - sums[first]) / np.maximum(n, 1), np.nan)
    return out


def _rate_per_min(events_s: FloatArray, t_s: FloatArray, window_s: float) -> FloatArray:
    """60 × intervals ÷ their time, over the events in (t - window, t]; NaN below two."""
    if events_s.size < 2:
        return np.full(t_s.size, np.nan)
    first = np.searchsorted(events_s, t_s - window_s, side="right")
    stop = np.searchsorted(events_s, t_s, side="right")
    n = stop - first - 1
    span = events_s[np.maximum(stop - 1, 0)] - events_s[np.minimum(first, events_s.size - 1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(n >= 1, 60.0 * n / np.where(span > 0, span, np.nan), np.nan)
    return out


def _gait_metrics(gait: Gait, t_s: FloatArray) -> dict[str, FloatArray]:
    td = gait.touchdown_s
    first = np.searchsorted(td, t_s - GAIT_WINDOW_S, side="right")
    stop = np.searchsorted(td, t_s, side="right")  # touchdowns first .. stop - 1 in the window
    step_s = np.diff(td)
    steps_ok = np.where(gait.step_ok, step_s, np.nan)
    # Steps first .. stop - 2 lie wholly in the window.
    mean_step = _window_mean(steps_ok, first, stop - 1)
    cadence = np.where(np.isfinite(mean_step), 60.0 / mean_step, 0.0)
    # Contacts starting in the window that also ended by t: only the last can still be on.
    if td.size:
        last_on = np.maximum(stop - 1, 0)
        still_on = (stop > 0) & ~(
            td[last_on] + np.nan_to_num(gait.contact_s[last_on], nan=np.inf) <= t_s
        )
    else:
        still_on = np.zeros(t_s.size, dtype=bool)
    contact = _window_mean(gait.contact_s, first, stop - still_on) * 1000.0
    vo = _window_mean(np.where(gait.step_ok, gait.step_vo_m, np.nan), first, stop - 1) * 100.0
    rotation = _window_mean(gait.stride_rotation_deg, first, stop - 2)
    sway = _window_mean(gait.stride_sway_m, first, stop - 2) * 100.0
    # Lean: whole strides from the window's first touchdown, none of them interrupted.
    n_steps = np.maximum(stop - first - 1, 0)
    last = first + 2 * (n_steps // 2)
    bad = np.concatenate(([0], np.cumsum(~gait.step_ok)))
    a = np.clip(first, 0, max(td.size - 1, 0))
    b = np.clip(last, 0, max(td.size - 1, 0))
    clean = (n_steps >= 2) & (
        bad[np.minimum(b, bad.size - 1)] - bad[np.minimum(a, bad.size - 1)] == 0
    )
    if td.size:
        integral = np.interp(td, gait.lean_t_s, gait.lean_integral_rad_s)
        with np.errstate(invalid="ignore", divide="ignore"):
            lean = np.rad2deg((integral[b] - integral[a]) / (td[b] - td[a]))
        lean = np.where(clean, lean, np.nan)
    else:
        lean = np.full(t_s.size, np.nan)
    return {
        "cadence_spm": cadence,
        "ground_contact_ms": contact,
        "vertical_oscillation_cm": vo,
        "trunk_rotation_deg": rotation,
        "trunk_lean_deg": lean,
        "lateral_sway_cm": sway,
        "lean_variability_deg": _lean_variability(gait, t_s),
    }


def _lean_variability(gait: Gait, t_s: FloatArray) -> FloatArray:
    """Spread of stride-averaged lean over the strides ending in the last 30 s."""
    td = gait.touchdown_s
    if td.size < 3:
        return np.full(t_s.size, np.nan)
    integral = np.interp(td, gait.lean_t_s, gait.lean_integral_rad_s)
    stride_ok = gait.step_ok[:-1] & gait.step_ok[1:]
    lean = np.rad2deg((integral[2:] - integral[:-2]) / (td[2:] - td[:-2]))
    lean = np.where(stride_ok, lean, np.nan)
    ends = td[2:]
    first = np.searchsorted(ends, t_s - LEAN_VARIABILITY_WINDOW_S, side="right")
    stop = np.searchsorted(ends, t_s, side="right")
    ok = np.isfinite(lean)
    x = np.where(ok, lean, 0.0)
    u = np.where(ok, ends - ends[0], 0.0)  # stride end times, relative for precision

    def window_sum(values: FloatArray) -> FloatArray:
        sums = np.concatenate(([0.0], np.cumsum(values)))
        out: FloatArray = sums[stop] - sums[first]
        return out

    n = window_sum(ok.astype(np.float64))
    su, sx = window_sum(u), window_sum(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        stt = window_sum(u * u) - su * su / n
        sxx = window_sum(x * x) - sx * sx / n
        stx = window_sum(u * x) - su * sx / n
        var = (sxx - np.where(stt > 0, stx * stx / stt, 0.0)) / (n - 2)
    out: FloatArray = np.where(
        n >= LEAN_VARIABILITY_MIN_STRIDES, np.sqrt(np.maximum(var, 0.0)), np.nan
    )
    return out


def _breathing_metrics(runner: VirtualRunner, t_s: FloatArray) -> dict[str, FloatArray]:
    onsets = runner.breathing.onsets_s
    rate = _rate_per_min(onsets, t_s, BREATH_WINDOW_S)
    grid = np.arange(0.0, runner.duration_s, 1.0 / 50.0)
    if onsets.size < 2 or grid.size == 0:
        return {"breathing_rate_bpm": rate, "breath_depth_rel": np.full(t_s.size, np.nan)}
    values = runner.breathing.phase_and_depth(grid)
    expansion = values[:, 1] * breath_waveform(values[:, 0])
    starts = np.searchsorted(grid, onsets)
    complete = np.append(onsets[1:] <= grid[-1], False)
    depth = np.where(complete, _reduce_ptp(expansion, np.minimum(starts, grid.size - 1)), np.nan)
    first = np.searchsorted(onsets, t_s - BREATH_WINDOW_S, side="right")
    stop = np.searchsorted(onsets, t_s, side="right")
    return {"breathing_rate_bpm": rate, "breath_depth_rel": _window_mean(depth, first, stop - 1)}


def _observable(scenario: Scenario) -> set[str]:
    profiles = {spec.profile for spec in scenario.sensors.values()}
    placements = {
        spec.placement for spec in scenario.sensors.values() if spec.profile == "runmon_imu"
    }
    seen: set[str] = set()
    if "rsc" in profiles:
        seen |= {"cadence_spm", "speed_mps", "stride_length_m"}
    if "runmon_imu" in profiles:
        seen |= {
            "cadence_spm",
            "trunk_rotation_deg",
            "vertical_oscillation_cm",
            "ground_contact_ms",
        }
        seen.add("lateral_sway_cm")
        if placements & {"chest", "upper_back"}:
            seen |= {"trunk_lean_deg", "lean_variability_deg"}
    if "polar_pmd" in profiles:  # a chest accelerometer: no gyro, so no rotation nor sway
        seen |= {
            "cadence_spm",
            "vertical_oscillation_cm",
            "ground_contact_ms",
            "trunk_lean_deg",
            "lean_variability_deg",
        }
    if "runmon_breath" in profiles:
        seen |= {"breathing_rate_bpm", "breath_depth_rel"}
        if "cadence_spm" in seen:
            seen.add("steps_per_breath")
    if "heart_rate" in profiles:
        seen.add("heart_rate_bpm")
    return seen


def rotation_segment(scenario: Scenario) -> Segment:
    """The segment whose rotation truth reports: thorax unless only a pelvis strap is worn."""
    placements = {
        spec.placement for spec in scenario.sensors.values() if spec.profile == "runmon_imu"
    }
    return "pelvis" if placements == {"pelvis"} else "thorax"


def truth_arrays(runner: VirtualRunner) -> dict[str, FloatArray]:
    """Every metric at ``t_s`` = 1, 2, … whole seconds (NaN where undefined), plus ``t_s``."""
    t_s = np.arange(1.0, math.floor(runner.duration_s) + 1.0)
    gait = measure_gait(runner, rotation_segment(runner.scenario))
    out = _gait_metrics(gait, t_s)
    distance = np.interp(t_s, runner.track.t_s, runner.track.distance_m)
    before = np.interp(
        np.maximum(t_s - GAIT_WINDOW_S, 0.0), runner.track.t_s, runner.track.distance_m
    )
    speed = (distance - before) / np.minimum(t_s, GAIT_WINDOW_S)
    out["speed_mps"] = speed
    cadence = out["cadence_spm"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["stride_length_m"] = np.where(
            (cadence >= MIN_STEPPING_SPM) & (speed > 0.0), speed / (cadence / 60.0), np.nan
        )
    out |= _breathing_metrics(runner, t_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["steps_per_breath"] = np.where(
            cadence > 0.0, cadence / out["breathing_rate_bpm"], np.nan
        )
    out["heart_rate_bpm"] = _rate_per_min(runner.heart.beats_s, t_s, HEART_WINDOW_S)
    out["t_s"] = t_s
    return out


def _rows(arrays: Mapping[str, FloatArray], names: set[str]) -> list[dict[str, Any]]:
    columns: dict[str, list[float | None]] = {}
    for name in METRIC_NAMES:
        values = np.round(arrays[name], _DECIMALS)
        keep = np.isfinite(values) & (name in names)
        columns[name] = [
            v if k else None for v, k in zip(values.tolist(), keep.tolist(), strict=True)
        ]
    rows: list[dict[str, Any]] = []
    for i, t in enumerate(arrays["t_s"].tolist()):
        row: dict[str, Any] = {"t_s": int(t)}
        for name in METRIC_NAMES:
            row[name] = columns[name][i]
        rows.append(row)
    return rows


def truth_series(
    scenario: Scenario,
    duration_s: float | None = None,
    seed: int = 0,
    *,
    observable_only: bool = True,
) -> dict[str, Any]:
    """Ground truth in the shape of DESIGN §3.4: ``{"series": [{"t_s": 1, <metrics>}, …]}``.

    The same runner as ``write_recording(scenario, …, duration_s=…, seed=…)`` produces.
    ``observable_only=False`` also reports metrics that no worn sensor measures.
    """
    duration = scenario.duration_s if duration_s is None else min(scenario.duration_s, duration_s)
    runner = simulate(scenario, duration, seed)
    names = _observable(scenario) if observable_only else set(METRIC_NAMES)
    return {
        "scenario": scenario.name,
        "seed": seed,
        "duration_s": duration,
        "series": _rows(truth_arrays(runner), names),
    }


def write_truth(
    scenario: Scenario,
    path: str | Path,
    *,
    duration_s: float | None = None,
    seed: int = 0,
) -> int:
    """Write the truth JSON of ``runmon simulate --truth``; returns the number of rows."""
    doc = truth_series(scenario, duration_s, seed)
    Path(path).write_text(json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n")
    return len(doc["series"])
