"""Who speaks, and when: priority first, per-code cooldown, a gap between form cues, ttl.

DESIGN §1: the same code is not repeated within its cooldown; at most one form cue per
``form_min_gap_s``; the highest-priority pending cue wins; a cue that could not be spoken
within its ttl is dropped, never spoken late. Answers to a pain report are exempt from the
cooldown: every report the runner makes deserves its answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from rules.catalog import CATALOG
from rules.config import SchedulingConfig
from rules.form import Candidate

_HOUR_S = 3600.0


class Scheduler:
    __slots__ = (
        "_cooldowns",
        "_form_spoken_s",
        "_repeats",
        "config",
        "expired",
        "last_spoken_s",
        "pending",
    )

    def __init__(
        self, config: SchedulingConfig, cooldown_overrides: Mapping[str, float | None]
    ) -> None:
        self.config = config
        self._cooldowns = {
            code: (override if override is not None else config.same_code_cooldown_s)
            for code, override in cooldown_overrides.items()
        }
        self.pending: dict[str, Candidate] = {}
        self.last_spoken_s: dict[str, float] = {}
        self._repeats: dict[str, int] = {}
        self._form_spoken_s: deque[float] = deque()
        self.expired = 0

    def offer(self, candidate: Candidate) -> None:
        """Queue a candidate; a newer one of the same code replaces the older."""
        self.pending[candidate.code] = candidate

    def discard(self, keep_kinds: frozenset[str]) -> None:
        """Drop pending cues except those of ``keep_kinds`` (muting)."""
        self.pending = {c: v for c, v in self.pending.items() if CATALOG[c].kind in keep_kinds}

    def pick(self, t_s: float) -> Candidate | None:
        if not self.pending:
            return None
        for code, cand in list(self.pending.items()):
            if t_s - cand.created_t_s > CATALOG[code].ttl_s:
                del self.pending[code]
                self.expired += 1
        eligible = [c for c in self.pending.values() if self._may_speak(c.code, t_s)]
        if not eligible:
            return None
        best = min(eligible, key=lambda c: (CATALOG[c.code].priority, c.created_t_s, c.code))
        del self.pending[best.code]
        # Repeats within one episode of a fault (until the runner corrects it).
        self._repeats[best.code] = self._repeats[best.code] + 1 if best.code in self._repeats else 0
        self.last_spoken_s[best.code] = t_s
        if CATALOG[best.code].kind == "form":
            self._form_spoken_s.append(t_s)
        return best

    def corrected(self, code: str) -> None:
        """The runner fixed what ``code`` was about: the next episode starts fresh."""
        self._repeats.pop(code, None)

    def cooldown_s(self, code: str) -> float:
        base = self._cooldowns.get(code, self.config.same_code_cooldown_s)
        backoff = self.config.repeat_backoff ** self._repeats.get(code, 0)
        return min(base * backoff, max(base, self.config.max_cooldown_s))

    def _may_speak(self, code: str, t_s: float) -> bool:
        kind = CATALOG[code].kind
        if kind == "pain":
            return True
        last = self.last_spoken_s.get(code)
        if last is not None and t_s - last < self.cooldown_s(code):
            return False
        if kind != "form":
            return True
        while self._form_spoken_s and self._form_spoken_s[0] <= t_s - _HOUR_S:
            self._form_spoken_s.popleft()
        if self._form_spoken_s and t_s - self._form_spoken_s[-1] < self.config.form_min_gap_s:
            return False
        limit = self.config.max_form_cues_per_hour
        return limit is None or len(self._form_spoken_s) < limit
