"""The runner history (SQLite, stdlib): sessions, cues, pain reports and baselines.

The rules take baselines and pain history in as data and hand them back out; this module is
where they live between runs. One file may hold many runners. A session is keyed by runner and
start time, so analysing the same recording again replaces it instead of counting it twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from monitor.errors import HistoryError
from rules.baseline import Baseline, Baselines
from rules.coach import CueDecision
from rules.pain import PainReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    runner TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_s REAL NOT NULL,
    summary TEXT NOT NULL,
    UNIQUE (runner, started_at)
);
CREATE TABLE IF NOT EXISTS cues (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t_s REAL NOT NULL,
    code TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pain_reports (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t_s REAL NOT NULL,
    level INTEGER NOT NULL,
    location TEXT NOT NULL,
    radiating INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS baselines (
    runner TEXT NOT NULL,
    speed_band INTEGER NOT NULL,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (runner, speed_band)
);
"""


class History:
    """A history database; open it with ``with History(path) as h:``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot open the history database: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def baselines(self, runner: str) -> Baselines:
        rows = self._query("SELECT data FROM baselines WHERE runner = ?", (runner,))
        return Baselines(
            {b.speed_band: b for b in (Baseline.from_json(json.loads(r[0])) for r in rows)}
        )

    def prior_pain_days_ago(
        self, runner: str, before: datetime, locations: Iterable[str]
    ) -> tuple[float, ...]:
        """Days before ``before`` of earlier sessions with pain at one of ``locations``."""
        wanted = sorted(set(locations))
        marks = ",".join("?" for _ in wanted)
        rows = self._query(
            "SELECT DISTINCT s.started_at FROM sessions s"
            " JOIN pain_reports p ON p.session_id = s.id"
            f" WHERE s.runner = ? AND p.level > 0 AND p.location IN ({marks})",
            (runner, *wanted),
        )
        days = []
        for (started_at,) in rows:
            delta_days = (before - datetime.fromisoformat(started_at)).total_seconds() / 86400.0
            if delta_days > 0:
                days.append(round(delta_days, 4))
        return tuple(sorted(days))

    def sessions(self, runner: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, started_at, duration_s, summary FROM sessions WHERE runner = ?"
            " ORDER BY started_at",
            (runner,),
        )
        return [
            {"id": r[0], "started_at": r[1], "duration_s": r[2], "summary": json.loads(r[3])}
            for r in rows
        ]

    # -- writing ---------------------------------------------------------------------------

    def record_session(
        self,
        *,
        runner: str,
        started_at: datetime,
        duration_s: float,
        summary: dict[str, Any],
        cues: Sequence[CueDecision],
        pain_reports: Sequence[PainReport],
        baselines: Baselines,
    ) -> int:
        """Store one session (replacing an earlier copy of it) and the runner's baselines."""
        started = started_at.isoformat()
        try:
            with self._db:
                self._db.execute(
                    "DELETE FROM sessions WHERE runner = ? AND started_at = ?", (runner, started)
                )
                cursor = self._db.execute(
                    "INSERT INTO sessions (runner, started_at, duration_s, summary)"
                    " VALUES (?, ?, ?, ?)",
                    (runner, started, duration_s, json.dumps(summary)),
                )
                session_id = cursor.lastrowid
                assert session_id is not None
                self._db.executemany(
                    "INSERT INTO cues (session_id, t_s, code, evidence) VALUES (?, ?, ?, ?)",
                    [(session_id, c.t_s, c.code, json.dumps(dict(c.evidence))) for c in cues],
                )
                self._db.executemany(
                    "INSERT INTO pain_reports (session_id, t_s, level, location, radiating)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (session_id, p.t_s, p.level, p.location, int(p.radiating))
                        for p in pain_reports
                    ],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO baselines (runner, speed_band, data, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    [
                        (runner, band, json.dumps(b.to_json()), started)
                        for band, b in baselines.by_band.items()
                    ],
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot store the session: {exc}") from exc
        return session_id

    def _query(self, sql: str, params: Sequence[object]) -> list[Any]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: history query failed: {exc}") from exc
