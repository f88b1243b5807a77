"""``make bench``: measured figures, printed as one Markdown table (never asserted: the machine
is shared and noisy; the tests check correctness with honest margins).

Sections: estimation accuracy on simulator ground truth (a sweep of speeds, cadences, mounts,
packet loss and gyro bias) and on the real sacral force-plate data set; replay speed and memory
of ``runmon analyze`` on 1-hour and 4-hour recordings, with VQF's orientation-only throughput as
the reference; and the coach's detection latency and false cues per scenario.

Run: ``.venv/bin/python -m benchmarks [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.realdata import sacral_errors
from monitor.analyze import Analysis, analyze_recording
from monitor.metrics import MetricName
from rules.catalog import FORM_CODES
from sensors import uuids
from sensors.gatt import decode_imu_block
from sensors.recording import Notification, RecordingReader
from simulators.scenario import Scenario, load_scenario, parse_scenario
from simulators.session import truth_series, write_recording

ROOT = Path(__file__).resolve().parent.parent
STEADY_TOML = ROOT / "simulators" / "scenarios" / "steady.toml"
DECLARED_MOUNT = 'forward = "+x"\nleft = "+y"\nup = "+z"'

Row = tuple[str, str, str]

#: Running starts at 60 s; steady (DESIGN §1: 60 s within the bands) from 120 s, and the
#: estimators' own windows (the breath-depth baseline) are full by 150 s.
STEADY_FROM_S = 150

ABSOLUTE: dict[MetricName, tuple[str, str, float | None]] = {
    "cadence_spm": ("cadence", "steps/min MAE", 1.0),
    "trunk_lean_deg": ("trunk lean (gyro)", "° MAE", 0.5),
    "trunk_rotation_deg": ("trunk rotation", "° MAE", 1.5),
    "vertical_oscillation_cm": ("vertical oscillation", "cm MAE", 1.0),
    "ground_contact_ms": ("ground contact time", "ms MAE", 20.0),
    "breathing_rate_bpm": ("breathing rate", "breaths/min MAE", 1.0),
    "steps_per_breath": ("steps per breath", "MAE", 0.2),
    "breath_depth_rel": ("breath depth", "MAE (baseline = 1)", 0.1),
    "heart_rate_bpm": ("heart rate", "bpm MAE", 1.0),
    "lateral_sway_cm": ("lateral sway (runmon)", "cm MAE", None),
    "lean_variability_deg": ("lean variability (runmon)", "° MAE", None),
}
RELATIVE: dict[MetricName, tuple[str, str, float | None]] = {
    "speed_mps": ("speed, footpod", "% MAE", 2.0),
    "stride_length_m": ("stride length, footpod", "% MAE", 2.0),
}


# -- accuracy on simulated runs ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    text: str
    seed: int


def _sweep(quick: bool) -> Iterator[Variant]:
    """Speeds 2.3-5 m/s with cadences 150-195, three mounts, packet loss and gyro bias."""
    base = STEADY_TOML.read_text()
    paces = [(2.3, 150), (3.0, 165), (4.0, 180), (5.0, 195)]
    mounts = [
        DECLARED_MOUNT,
        'forward = "+z"\nleft = "+x"\nup = "+y"',
        'forward = "-y"\nleft = "+z"\nup = "-x"',
    ]
    seeds = 2 if quick else 4
    for i, (speed, cadence) in enumerate(paces):
        for seed in range(seeds):
            mount = mounts[(i + seed) % len(mounts)]
            text = base.replace(
                "speed_mps = 3.2\ncadence_spm = 172",
                f"speed_mps = {speed}\ncadence_spm = {cadence}",
            )
            text = text.replace(DECLARED_MOUNT, mount)
            if seed % 2:
                text = text.replace(
                    "[sensors.chest.mount]",
                    "gyro_bias_dps = 1.0\n\n[sensors.chest.link]\npacket_loss = 0.02\n\n"
                    "[sensors.chest.mount]",
                )
            yield Variant(f"{speed} m/s {cadence} spm seed {seed}", text, 100 * i + seed)


def _run(
    variant: Variant, workdir: Path, duration_s: float
) -> tuple[Analysis, list[dict[str, Any]]]:
    scenario = parse_scenario(variant.text, variant.name).model_copy(
        update={"duration_s": duration_s}
    )
    path = workdir / "variant.jsonl"
    write_recording(scenario, path, seed=variant.seed)
    truth: list[dict[str, Any]] = truth_series(scenario, duration_s, variant.seed)["series"]
    return analyze_recording(path), truth


def bench_accuracy(workdir: Path, quick: bool) -> list[Row]:
    duration_s = 240.0 if quick else 360.0
    abs_errors: dict[str, list[float]] = {m: [] for m in ABSOLUTE}
    rel_errors: dict[str, list[float]] = {m: [] for m in RELATIVE}
    seconds = covered = 0
    runs = 0
    for variant in _sweep(quick):
        runs += 1
        analysis, truth = _run(variant, workdir, duration_s)
        rows = {row.t_s: row for row in analysis.rows}
        for want in truth:
            t_s = int(want["t_s"])
            if t_s < STEADY_FROM_S or t_s not in rows:
                continue
            row = rows[t_s]
            seconds += 1
            expected_metrics = [m for m in ABSOLUTE if want.get(m) is not None]
            covered += all(row.value(m) is not None for m in expected_metrics)
        for metric in ABSOLUTE:
            abs_errors[metric] += [
                abs(g - w) for t, g, w in _pairs(analysis, truth, metric) if t >= 90
            ]
        for metric in RELATIVE:
            rel_errors[metric] += [
                100.0 * abs(g / w - 1.0)
                for t, g, w in _pairs(analysis, truth, metric)
                if t >= 90 and w
            ]
    label = f"{runs} simulated runs"
    out: list[Row] = []
    for metric, (name, unit, target) in ABSOLUTE.items():
        out.append(_accuracy_row(f"{name} ({label})", unit, abs_errors[metric], target))
    for metric, (name, unit, target) in RELATIVE.items():
        out.append(_accuracy_row(f"{name} ({label})", unit, rel_errors[metric], target))
    out.append(
        (
            f"seconds of steady running with every metric ({label})",
            "%",
            f"{100.0 * covered / max(seconds, 1):.1f} (target ≥ 95)",
        )
    )
    out += _imu_only_speed(workdir)
    return out


def _pairs(
    analysis: Analysis, truth: list[dict[str, Any]], metric: MetricName
) -> Iterator[tuple[int, float, float]]:
    """(second, estimate, truth) wherever both have a value."""
    rows = {row.t_s: row for row in analysis.rows}
    for want in truth:
        t_s = int(want["t_s"])
        expected = want.get(metric)
        row = rows.get(t_s)
        got = None if row is None else row.value(metric)
        if expected is not None and got is not None:
            yield t_s, got, float(expected)


def _accuracy_row(what: str, unit: str, errors: list[float], target: float | None) -> Row:
    if not errors:
        return (what, unit, "n/a (not estimated)")
    value = f"{statistics.fmean(errors):.3g}"
    return (what, unit, value + (f" (target ≤ {target:g})" if target is not None else ""))


def _imu_only_speed(workdir: Path) -> list[Row]:
    """Speed and stride length from the IMU alone after the footpod's battery dies."""
    scenario = load_scenario("steady").model_copy(update={"duration_s": 900.0})
    path = workdir / "footpod_dies.jsonl"
    write_recording(scenario, path, seed=11)
    lines = path.read_text().splitlines(keepends=True)
    kept = [lines[0]] + [
        line
        for line in lines[1:]
        if not (json.loads(line).get("sensor") == "foot" and json.loads(line)["t"] > 300)
    ]
    path.write_text("".join(kept))
    truth: list[dict[str, Any]] = truth_series(scenario, 900.0, 11, observable_only=False)["series"]
    analysis = analyze_recording(path)
    out: list[Row] = []
    speeds: tuple[tuple[MetricName, str], ...] = (
        ("speed_mps", "speed"),
        ("stride_length_m", "stride length"),
    )
    for metric, name in speeds:
        errors = [
            100.0 * abs(got / want - 1.0)
            for t_s, got, want in _pairs(analysis, truth, metric)
            if t_s > 320 and want
        ]
        out.append(
            _accuracy_row(
                f"{name}, IMU only after the footpod died (10 min)", "% MAE", errors, 10.0
            )
        )
    return out


def bench_real_data() -> list[Row]:
    """Cadence and contact time on the sacral force-plate data set."""
    errors = sacral_errors()
    label = f"real sacral accelerometer vs force plate, {errors.trials} trials"
    return [
        (f"cadence ({label})", "steps/min MAE", f"{errors.cadence_mae_spm:.2f} (anchor ≈ 1)"),
        (f"ground contact time ({label})", "ms MAE", f"{errors.contact_mae_ms:.1f} (anchor ≈ 20)"),
    ]


# -- speed and memory -----------------------------------------------------------------------------

_ANALYZE_CHILD = """
import time
t_start = time.perf_counter()
import contextlib, json, resource, sys
import monitor.analyze  # imported before the clock starts, as before the CLI's lazy import
from monitor.cli import main
def status_mb(field):
    # /proc/self/status belongs to this program's address space (Linux); ru_maxrss would also
    # count the parent's pages this process carried between fork and exec.
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import_rss_mb = status_mb("VmRSS")
recording, out, warm_up, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def run(path):
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the CLI's status line; stdout: the figures
        code = main(["analyze", path, "--json", out])
    if code != 0:
        sys.exit(code)
    return time.perf_counter() - t0
# Start-up: imports, and the first call into compiled code (numba loads its cached machine
# code and initialises once per process) on a one-minute recording.
run(warm_up)
start_up_s = time.perf_counter() - t_start
elapsed = min(run(recording) for _ in range(repeats))
peak_rss_mb = status_mb("VmHWM")
with open(out) as f:
    duration_s = json.load(f)["duration_s"]
print(json.dumps({"elapsed_s": elapsed, "duration_s": duration_s, "peak_rss_mb": peak_rss_mb,
                  "start_up_s": start_up_s, "import_rss_mb": import_rss_mb}))
"""


def bench_speed(workdir: Path, hours: float) -> list[Row]:
    """``runmon analyze`` of a ``steady`` recording as ``runmon simulate`` writes it."""
    scenario: Scenario = load_scenario("steady").model_copy(update={"duration_s": hours * 3600.0})
    path = workdir / f"steady_{hours:g}h.jsonl"
    records = write_recording(scenario, path, seed=1)
    warm_up = workdir / "steady_1min.jsonl"
    write_recording(scenario.model_copy(update={"duration_s": 60.0}), warm_up, seed=2)
    # A fresh process, running what ``runmon analyze REC --json OUT`` runs (the rows streamed
    # into a real file) after a warm-up; best of a few runs on this shared machine. Its peak
    # memory is the analysis's own.
    repeats = 3
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _ANALYZE_CHILD,
            str(path),
            str(path.with_suffix(".json")),
            str(warm_up),
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout)
    elapsed = figures["elapsed_s"]
    samples = scenario.duration_s * (200 + 25) + 2 * scenario.duration_s  # IMU, band, pod, HR
    what = f"analyze, steady {hours:g} h (200 Hz IMU+gyro, 25 Hz band, footpod, HR)"
    rows: list[Row] = [
        (what, f"seconds (best of {repeats})", f"{elapsed:.2f}"),
        (what, "notifications/s", f"{records / elapsed:,.0f}"),
        (what, "samples/s", f"{samples / elapsed:,.0f}"),
        (what, "x real time (target ≥ 2000)", f"{figures['duration_s'] / elapsed:,.0f}"),
        (what, "peak RSS MB", f"{figures['peak_rss_mb']:.0f}"),
    ]
    if hours == 1.0:
        rows.append(
            (
                "analyze process start-up (imports, first call into compiled code)",
                "seconds, once per process",
                f"{figures['start_up_s']:.2f}",
            )
        )
        rows.append(
            (
                "analyze process after its imports, before any data",
                "RSS MB",
                f"{figures['import_rss_mb']:.0f}",
            )
        )
        rows.append(_vqf_reference(path))
    return rows


def _vqf_reference(path: Path) -> Row:
    """VQF alone (orientation only) on the same IMU notifications, block by block."""
    from vqf import VQF

    blocks = []
    with RecordingReader(path) as reader:
        for record in reader:
            if isinstance(record, Notification) and record.char == uuids.RUNMON_IMU_DATA:
                block = decode_imu_block(record.payload)
                assert block.gyro_dps is not None
                blocks.append(
                    (
                        np.ascontiguousarray(block.gyro_dps * (np.pi / 180.0)),
                        np.ascontiguousarray(block.acc_g * 9.80665),
                    )
                )
    vqf = VQF(1.0 / 200.0)
    t0 = time.perf_counter()
    for gyr, acc in blocks:
        vqf.updateBatch(gyr, acc)
    elapsed = time.perf_counter() - t0
    samples = sum(g.shape[0] for g, _ in blocks)
    return (
        "reference: VQF orientation only, same IMU data, per notification",
        "samples/s (x real time)",
        f"{samples / elapsed:,.0f} ({samples / 200.0 / elapsed:,.0f})",
    )


# -- the coach ------------------------------------------------------------------------------------


def bench_coach(workdir: Path, quick: bool) -> list[Row]:
    """Each form fault's detection latency, false cues, and the long runs' behaviour."""
    seeds = 2 if quick else 5
    out: list[Row] = []
    for code in FORM_CODES:
        scenario = load_scenario(code)
        onset = scenario.fault_onset_s or 0.0
        latencies: list[float] = []
        others = 0
        for seed in range(seeds):
            path = workdir / f"{code}.jsonl"
            write_recording(scenario, path, seed=seed)
            cues = [c for c in analyze_recording(path).cues if c.code in FORM_CODES]
            hits = [c for c in cues if c.code == code and c.t_s > onset]
            others += sum(c.code != code for c in cues)
            if hits:
                latencies.append(hits[0].t_s - onset)
        detected = f"{len(latencies)}/{seeds}"
        latency = (
            f"{statistics.median(latencies):.0f} / {max(latencies):.0f}" if latencies else "n/a"
        )
        out.append(
            (
                f"{code} scenario, {seeds} seeds",
                "detected; latency s median / max (≤ 60); other form cues",
                f"{detected}; {latency}; {others}",
            )
        )
    steady_hours = 0.0
    steady_cues = 0
    for seed in range(seeds):
        path = workdir / "steady.jsonl"
        write_recording(load_scenario("steady"), path, seed=seed)
        analysis = analyze_recording(path)
        steady_hours += analysis.duration_s / 3600.0
        steady_cues += sum(c.code in FORM_CODES for c in analysis.cues)
    out.append(
        (
            f"steady scenario, {seeds} x 30 min",
            "form cues per hour (target 0)",
            f"{steady_cues / steady_hours:.2f}",
        )
    )
    fatigue = load_scenario("fatigue")
    path = workdir / "fatigue.jsonl"
    write_recording(fatigue, path, seed=1)
    cues = [c for c in analyze_recording(path).cues if c.code in FORM_CODES]
    core = [c.t_s for c in cues if c.code == "core_engage"]
    per_code: dict[str, list[float]] = {}
    for cue in cues:
        per_code.setdefault(cue.code, []).append(cue.t_s)
    densest = max(
        (
            max(sum(1 for u in times if t <= u < t + 600) for t in times)
            for code, times in per_code.items()
            if code != "core_engage"
        ),
        default=0,
    )
    out.append(
        (
            "fatigue scenario, 90 min (fatigue from 30 min)",
            "first core_engage at; most other form cues in 10 min (≤ 1)",
            f"{core[0] / 60:.1f} min; {densest}" if core else f"none; {densest}",
        )
    )
    return out


def _print_table(rows: list[Row]) -> None:
    print("| measurement | unit | value |")
    print("| --- | --- | --- |")
    for what, unit, value in rows:
        print(f"| {what} | {unit} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 4-hour recording")
    args = parser.parse_args()
    suites: list[Callable[[Path], list[Row]]] = [
        lambda d: bench_accuracy(d, args.quick),
        lambda d: bench_real_data(),
        lambda d: bench_speed(d, 1.0),
        lambda d: bench_coach(d, args.quick),
    ]
    if not args.quick:
        suites.insert(3, lambda d: bench_speed(d, 4.0))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="runmon-bench-") as tmp:
        for suite in suites:
            rows += suite(Path(tmp))
    _print_table(rows)


if __name__ == "__main__":
    main()
