"""``runmon analyze``: replay a recording through the live estimators and rules, as fast as the
machine allows, into the JSON of DESIGN §3.4.

Stateless unless given a history: a fresh runner with no stored baseline, so the same recording
always gives the same JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.history import History
from monitor.metrics import METRIC_DECIMALS, METRIC_NAMES, MetricRow
from monitor.session import RunnerSession
from rules.baseline import Baselines
from rules.coach import CueDecision
from rules.config import RuleConfig
from sensors.recording import RecordingReader


@dataclass(slots=True)
class Analysis:
    runner: str
    duration_s: float
    rows: list[MetricRow]
    cues: list[CueDecision]
    errors: int
    warnings: list[str]
    baselines: Baselines

    def to_json(self) -> dict[str, Any]:
        return {
            "runner": self.runner,
            "duration_s": round(self.duration_s, 4),
            "series": [row.to_json() for row in self.rows],
            "cues": [cue.to_json() for cue in self.cues],
            "summary": {
                "errors": self.errors,
                "warnings": list(self.warnings),
                "metrics": summarize_metrics(self.rows),
                "baseline": self.baselines.to_json(),
            },
        }


def analyze_recording(
    source: str | Path,
    *,
    rules: RuleConfig | None = None,
    history: History | None = None,
) -> Analysis:
    """Replay ``source``; raises :class:`sensors.errors.RecordingError` on a fatal line.

    With a ``history`` the runner's stored baselines and pain history are used, and the session
    is stored back; without one the analysis is stateless.
    """
    rows: list[MetricRow] = []
    cues: list[CueDecision] = []

    def collect(item: MetricRow | CueDecision) -> None:
        if isinstance(item, MetricRow):
            rows.append(item)
        else:
            cues.append(item)

    config = rules if rules is not None else RuleConfig()
    with RecordingReader(source) as reader:
        header = reader.header
        baselines: Baselines | None = None
        prior_pain: tuple[float, ...] = ()
        if history is not None:
            baselines = history.baselines(header.runner)
            prior_pain = history.prior_pain_days_ago(
                header.runner, header.started_at, config.pain.back_locations
            )
        session = RunnerSession(
            header,
            rules=config,
            baselines=baselines,
            prior_back_pain_days_ago=prior_pain,
            on_output=collect,
        )
        for record in reader:
            session.feed(record)
        session.finish()
    analysis = Analysis(
        runner=session.runner,
        duration_s=session.last_t_s,
        rows=rows,
        cues=cues,
        errors=session.diagnostics.errors,
        warnings=session.diagnostics.warnings,
        baselines=session.coach.baselines,
    )
    if history is not None:
        history.record_session(
            runner=header.runner,
            started_at=header.started_at,
            duration_s=analysis.duration_s,
            summary=analysis.to_json()["summary"],
            cues=cues,
            pain_reports=session.coach.pain_reports,
            baselines=session.coach.baselines,
        )
    return analysis


def summarize_metrics(rows: Sequence[MetricRow]) -> dict[str, dict[str, float | None]]:
    """Per metric: mean, min, max and the share of seconds that had a value."""
    summary: dict[str, dict[str, float | None]] = {}
    for name in METRIC_NAMES:
        values = [v for row in rows if (v := row.value(name)) is not None]
        digits = METRIC_DECIMALS[name]
        coverage = len(values) / len(rows) if rows else 0.0
        if values:
            mean = math.fsum(values) / len(values)
            summary[name] = {
                "mean": round(mean, digits),
                "min": round(min(values), digits),
                "max": round(max(values), digits),
                "coverage": round(coverage, 4),
            }
        else:
            summary[name] = {"mean": None, "min": None, "max": None, "coverage": 0.0}
    return summary


def write_analysis(analysis: Analysis, out: str | Path) -> None:
    Path(out).write_text(json.dumps(analysis.to_json(), separators=(",", ":")) + "\n")
