"""``make bench``: measured figures, printed as one table (never asserted: the machine is noisy).

Each row says what was measured, on what, and the figure. Run: ``.venv/bin/python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from monitor.analyze import analyze_recording
from simulators.scenario import load_scenario
from simulators.session import write_recording

Row = tuple[str, str, str]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_analyze_speed(workdir: Path, hours: float) -> list[Row]:
    """``runmon analyze`` throughput on a ``steady`` recording stretched to ``hours``."""
    scenario = load_scenario("steady").model_copy(update={"duration_s": hours * 3600.0})
    path = workdir / f"steady_{hours:g}h.jsonl"
    t0 = time.perf_counter()
    lines = write_recording(scenario, path, seed=1)
    simulate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    analysis = analyze_recording(path)
    analyze_s = time.perf_counter() - t0
    duration_s = analysis.duration_s
    what = f"steady, {hours:g} h, footpod only"
    return [
        (f"simulate ({what})", "x real time", f"{duration_s / simulate_s:,.0f}"),
        (f"analyze ({what})", "records/s", f"{lines / analyze_s:,.0f}"),
        (f"analyze ({what})", "x real time", f"{duration_s / analyze_s:,.0f}"),
        (f"analyze ({what})", "peak RSS MB (process)", f"{_peak_rss_mb():.0f}"),
    ]


def bench_cue_latency(workdir: Path, seeds: int) -> list[Row]:
    """Detection latency and false cues of the form-fault scenarios, through the estimators."""
    rows: list[Row] = []
    for name in ("stride_shorten",):
        scenario = load_scenario(name)
        onset = scenario.fault_onset_s or 0.0
        latencies: list[float] = []
        false_cues = 0
        hours = 0.0
        for seed in range(seeds):
            path = workdir / f"{name}_{seed}.jsonl"
            write_recording(scenario, path, seed=seed)
            analysis = analyze_recording(path)
            hours += analysis.duration_s / 3600.0
            hits = [c for c in analysis.cues if c.code in scenario.expected_cues and c.t_s > onset]
            false_cues += len([c for c in analysis.cues if c not in hits])
            if hits:
                latencies.append(hits[0].t_s - onset)
        detected = f"{len(latencies)}/{seeds}"
        median = f"{statistics.median(latencies):.0f}" if latencies else "n/a"
        worst = f"{max(latencies):.0f}" if latencies else "n/a"
        rows += [
            (f"{name} scenario, {seeds} seeds", "detected", detected),
            (f"{name} scenario, {seeds} seeds", "latency s (median / max)", f"{median} / {worst}"),
            (f"{name} scenario, {seeds} seeds", "false cues per hour", f"{false_cues / hours:.2f}"),
        ]
    steady = load_scenario("steady")
    false_cues = 0
    for seed in range(max(1, seeds // 2)):
        path = workdir / f"steady_{seed}.jsonl"
        write_recording(steady, path, seed=seed)
        false_cues += len(analyze_recording(path).cues)
    runs = max(1, seeds // 2)
    rows.append((f"steady scenario, {runs} seeds x 30 min", "form cues", str(false_cues)))
    return rows


def _print_table(rows: list[Row]) -> None:
    widths = [max(len(r[i]) for r in [("measurement", "unit", "value"), *rows]) for i in range(3)]
    header = ("measurement", "unit", "value")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--seeds", type=int, default=10, help="seeds per scenario (10)")
    parser.add_argument("--quick", action="store_true", help="1 h recording only, 3 seeds")
    args = parser.parse_args()
    seeds = 3 if args.quick else args.seeds
    suites: list[Callable[[Path], list[Row]]] = [
        lambda d: bench_analyze_speed(d, 1.0),
        lambda d: bench_cue_latency(d, seeds),
    ]
    if not args.quick:
        suites.insert(1, lambda d: bench_analyze_speed(d, 4.0))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="runmon-bench-") as tmp:
        for suite in suites:
            rows += suite(Path(tmp))
    _print_table(rows)


if __name__ == "__main__":
    main()
