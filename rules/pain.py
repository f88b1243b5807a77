"""Pain triage (DESIGN §1): when it hurts says why; how much, and where, says what to do.

runmon coaches; it does not diagnose. Severe pain gets "stop"; pain down the legs, or back pain
on several recent runs, gets "see a physical therapist".
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.catalog import Phase
from rules.config import PainConfig
from rules.form import Candidate


@dataclass(frozen=True, slots=True)
class PainReport:
    t_s: float
    level: int
    location: str
    radiating: bool


def triage(
    report: PainReport,
    *,
    phase: Phase,
    running_for_s: float,
    prior_back_pain_days_ago: tuple[float, ...],
    config: PainConfig,
) -> list[Candidate]:
    """The cues that answer one pain report, most urgent first."""
    if report.level <= 0:
        return []
    evidence = {
        "level": report.level,
        "location": report.location,
        "radiating": report.radiating,
        "phase": phase,
    }
    out: list[Candidate] = []
    if report.level >= config.severe_level:
        out.append(Candidate("pain_severe", report.t_s, evidence))
    is_back = report.location in config.back_locations
    recent = [d for d in prior_back_pain_days_ago if 0.0 <= d <= config.recurring_window_days]
    recurring = is_back and len(recent) + 1 >= config.recurring_runs
    if report.radiating or recurring:
        why = "radiating" if report.radiating else f"back pain on {len(recent) + 1} recent runs"
        out.append(Candidate("see_pt", report.t_s, {**evidence, "why": why}))
    if report.level >= config.severe_level:
        return out  # "stop and walk" is the answer; form tips would contradict it
    if phase in ("cooldown", "ended"):
        code = "pain_after"
    elif phase == "warmup" or running_for_s < config.early_running_s:
        code = "pain_start"
    else:
        code = "pain_mid"
    out.append(Candidate(code, report.t_s, {**evidence, "running_s": round(running_for_s, 1)}))
    return out
