"""``runmon analyze``: replay a recording through the live estimators and rules, as fast as the
machine allows, into the JSON of DESIGN §3.4.

Stateless unless given a history: a fresh runner with no stored baseline, so the same recording
always gives the same JSON.

One replay core serves two sinks. :func:`analyze_to_json` (what the CLI runs) streams: each
second's row goes into the output document as the session closes it, and only what stays small
is kept (the cues, the bad input seen, and a running per-metric summary), so peak memory does
not depend on the recording's length. :func:`analyze_recording` keeps the rows in memory as an
:class:`Analysis` for tests and benchmarks. Both share the summary's arithmetic
(:class:`MetricsSummary`) and the JSON of a row (:meth:`MetricRow.to_json`), so the streamed
document equals ``Analysis.to_json()`` of the same recording.

The streamed document lists ``runner`` and ``series`` first and ``duration_s``, ``cues`` and
``summary`` after the rows (JSON objects are unordered; those are known only at the end).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TextIO

from monitor.history import History
from monitor.metrics import METRIC_DECIMALS, METRIC_NAMES, MetricName, MetricRow
from monitor.session import RunnerSession, SessionOutput
from rules.baseline import Baselines
from rules.coach import CueDecision
from rules.config import RuleConfig
from sensors.recording import RecordingReader

#: ``--json -``: the document goes to standard output.
STDOUT: Final = "-"

_encode: Final[Callable[[Any], str]] = json.JSONEncoder(separators=(",", ":")).encode

__all__ = [
    "STDOUT",
    "Analysis",
    "AnalysisJsonWriter",
    "AnalysisResult",
    "MetricsSummary",
    "RowSink",
    "analyze_recording",
    "analyze_to_json",
    "open_output",
    "replay",
    "summarize_metrics",
]


# -- the summary ---------------------------------------------------------------------------------


#: Values a metric's summary holds before folding them into its running figures: folding is
#: C-speed ``math.fsum``, ``min`` and ``max`` over the batch instead of Python work per value.
_FOLD_EVERY: Final = 256


class _MetricStats:
    __slots__ = ("count", "max", "min", "pending", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.pending: list[float] = []

    def fold(self) -> None:
        pending = self.pending
        if not pending:
            return
        # The comparisons of the builtins min() and max(): the first of equals stays.
        low, high = min(pending), max(pending)
        if self.count == 0:
            self.min, self.max = low, high
        else:
            if low < self.min:
                self.min = low
            if high > self.max:
                self.max = high
        self.count += len(pending)
        # Exactly math.fsum of all values while they fit one batch; beyond, within half an ulp
        # per batch of it: the printed mean (1-3 decimals) is the same.
        self.total = math.fsum((self.total, *pending))
        pending.clear()


class MetricsSummary:
    """Per metric, over the rows seen so far: mean, min, max and the share of seconds with a
    value. Bounded memory: a count, a sum, the min, the max and a batch of values.
    """

    __slots__ = ("_pending", "_stats", "rows")

    def __init__(self) -> None:
        self.rows = 0
        self._stats: dict[MetricName, _MetricStats] = {
            name: _MetricStats() for name in METRIC_NAMES
        }
        self._pending = [(name, stats, stats.pending) for name, stats in self._stats.items()]

    def add(self, row: MetricRow) -> None:
        self.rows += 1
        values = row.values
        for name, stats, pending in self._pending:
            v = values[name].value
            if v is not None:
                pending.append(v)
                if len(pending) >= _FOLD_EVERY:
                    stats.fold()

    def to_json(self) -> dict[str, dict[str, float | None]]:
        summary: dict[str, dict[str, float | None]] = {}
        for name, stats in self._stats.items():
            stats.fold()
            if stats.count:
                digits = METRIC_DECIMALS[name]
                summary[name] = {
                    "mean": round(stats.total / stats.count, digits),
                    "min": round(stats.min, digits),
                    "max": round(stats.max, digits),
                    "coverage": round(stats.count / self.rows, 4),
                }
            else:
                summary[name] = {"mean": None, "min": None, "max": None, "coverage": 0.0}
        return summary


def summarize_metrics(rows: Iterable[MetricRow]) -> dict[str, dict[str, float | None]]:
    """Per metric: mean, min, max and the share of seconds that had a value."""
    summary = MetricsSummary()
    for row in rows:
        summary.add(row)
    return summary.to_json()


# -- results -------------------------------------------------------------------------------------


@dataclass(slots=True)
class AnalysisResult:
    """An analysis without its rows: small, whatever the recording's length."""

    runner: str
    duration_s: float
    row_count: int
    cues: list[CueDecision]
    errors: int
    warnings: list[str]
    baselines: Baselines
    metrics: dict[str, dict[str, float | None]]

    def summary_json(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "warnings": list(self.warnings),
            "metrics": self.metrics,
            "baseline": self.baselines.to_json(),
        }

    def tail_json(self) -> dict[str, Any]:
        """The document's fields besides ``runner`` and ``series``."""
        return {
            "duration_s": round(self.duration_s, 4),
            "cues": [cue.to_json() for cue in self.cues],
            "summary": self.summary_json(),
        }


@dataclass(slots=True)
class Analysis:
    """An analysis with every row in memory (tests, benchmarks; the CLI streams instead)."""

    runner: str
    duration_s: float
    rows: list[MetricRow]
    cues: list[CueDecision]
    errors: int
    warnings: list[str]
    baselines: Baselines

    def result(self) -> AnalysisResult:
        return AnalysisResult(
            runner=self.runner,
            duration_s=self.duration_s,
            row_count=len(self.rows),
            cues=self.cues,
            errors=self.errors,
            warnings=self.warnings,
            baselines=self.baselines,
            metrics=summarize_metrics(self.rows),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "runner": self.runner,
            "series": [row.to_json() for row in self.rows],
            **self.result().tail_json(),
        }


# -- the replay core -----------------------------------------------------------------------------


class RowSink(Protocol):
    """Where the rows of a replay go, in order, as the session closes each second."""

    def start(self, runner: str) -> None: ...

    def row(self, row: MetricRow) -> None: ...


def replay(
    source: str | Path,
    sink: RowSink,
    *,
    rules: RuleConfig | None = None,
    history: History | None = None,
) -> AnalysisResult:
    """Replay ``source`` into ``sink``; raises :class:`sensors.errors.RecordingError` on a fatal
    line.

    With a ``history`` the runner's stored baselines and pain history are used, and the session
    is stored back (before this returns); without one the replay is stateless.
    """
    cues: list[CueDecision] = []
    summary = MetricsSummary()

    def collect(item: SessionOutput) -> None:
        if isinstance(item, MetricRow):
            summary.add(item)
            sink.row(item)
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
        sink.start(session.runner)
        for record in reader:
            session.feed(record)
        session.finish()
    result = AnalysisResult(
        runner=session.runner,
        duration_s=session.last_t_s,
        row_count=summary.rows,
        cues=cues,
        errors=session.diagnostics.errors,
        warnings=session.diagnostics.warnings,
        baselines=session.coach.baselines,
        metrics=summary.to_json(),
    )
    if history is not None:
        history.record_session(
            runner=header.runner,
            started_at=header.started_at,
            duration_s=result.duration_s,
            summary=result.summary_json(),
            cues=cues,
            pain_reports=session.coach.pain_reports,
            baselines=session.coach.baselines,
        )
    return result


class _RowList:
    def __init__(self) -> None:
        self.rows: list[MetricRow] = []

    def start(self, runner: str) -> None:
        pass

    def row(self, row: MetricRow) -> None:
        self.rows.append(row)


def analyze_recording(
    source: str | Path,
    *,
    rules: RuleConfig | None = None,
    history: History | None = None,
) -> Analysis:
    """Replay ``source`` keeping every row; raises :class:`sensors.errors.RecordingError` on a
    fatal line. Memory grows with the recording: :func:`analyze_to_json` does not.

    With a ``history`` the runner's stored baselines and pain history are used, and the session
    is stored back; without one the analysis is stateless.
    """
    sink = _RowList()
    result = replay(source, sink, rules=rules, history=history)
    return Analysis(
        runner=result.runner,
        duration_s=result.duration_s,
        rows=sink.rows,
        cues=result.cues,
        errors=result.errors,
        warnings=result.warnings,
        baselines=result.baselines,
    )


# -- the JSON document, streamed -----------------------------------------------------------------


class AnalysisJsonWriter:
    """Writes the document of DESIGN §3.4 to ``stream`` row by row (compact, one line).

    ``start`` opens it with ``runner`` and the ``series`` array, each ``row`` appends one
    element, ``finish`` closes the array and adds ``duration_s``, ``cues`` and ``summary``.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._separator = ""

    def start(self, runner: str) -> None:
        self._stream.write(f'{{"runner":{_encode(runner)},"series":[')

    def row(self, row: MetricRow) -> None:
        self._stream.write(self._separator + _encode(row.to_json()))
        self._separator = ","

    def finish(self, result: AnalysisResult) -> None:
        tail = "".join(f",{_encode(k)}:{_encode(v)}" for k, v in result.tail_json().items())
        self._stream.write(f"]{tail}}}\n")


@contextmanager
def open_output(out: str | Path) -> Iterator[TextIO]:
    """A text stream for the document at ``out`` (``"-"``: standard output).

    A regular file (or a new one) is written to a temporary file beside it and renamed into
    place only when the block completes, so a replay that stops on a bad line leaves no
    half-written document (and an existing one untouched). Anything else that exists (a pipe,
    ``/dev/null``, ``/dev/stdout``) is written directly.
    """
    if str(out) == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(out)
    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8") as stream:
            yield stream
        return
    target = path.resolve()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", buffering=1 << 16) as stream:
            yield stream
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def analyze_to_json(
    source: str | Path,
    out: str | Path | TextIO,
    *,
    rules: RuleConfig | None = None,
    history: History | None = None,
) -> AnalysisResult:
    """Replay ``source`` streaming the JSON of DESIGN §3.4 to ``out`` (a path, ``"-"`` for
    standard output, or an open text stream); peak memory does not grow with the recording.

    Raises :class:`sensors.errors.RecordingError` on a fatal line (a file ``out`` is then not
    written; a stream has received part of the document). With a ``history``, as
    :func:`analyze_recording`.
    """
    if not isinstance(out, str | Path):
        writer = AnalysisJsonWriter(out)
        result = replay(source, writer, rules=rules, history=history)
        writer.finish(result)
        return result
    with open_output(out) as stream:
        return analyze_to_json(source, stream, rules=rules, history=history)
