"""Which snapshots a retention policy keeps, and why.

Semantics (the restic way, which is also what borg users expect of buckets):

* Every rule is applied on its own to the snapshots of one source label, and a
  snapshot is kept if any rule keeps it (rules add up).
* ``keep_last N``: the N newest snapshots.
* ``keep_hourly/daily/weekly/monthly/yearly N``: walk snapshots newest first; the
  newest snapshot of each calendar period is kept, until N periods are covered.
  Periods without a snapshot do not count. Weeks are ISO weeks. Periods are
  taken in the given time zone (local time by default, as borg does).
  When the snapshots cover fewer than N periods, the oldest snapshot is kept
  too (``daily (oldest)``), as restic and borg do: a young repository keeps its
  first backup instead of only the newest of each day.
* ``keep_within D``: every snapshot not older than D before the *newest*
  snapshot of that label (not before "now": a machine that stopped backing up
  does not lose its history to the passage of time). Units: ``h`` hours, ``d``
  days, ``w`` weeks, ``m`` months of 31 days, ``y`` years of 365 days (borg's
  arithmetic); a bare number means days.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vger.config.model import RetentionConfig
from vger.errors import ConfigError

_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 31 * 86400, "y": 365 * 86400}

_PERIODS: dict[str, Callable[[dt.datetime], tuple[int, ...]]] = {
    "keep_hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "keep_daily": lambda t: (t.year, t.month, t.day),
    "keep_weekly": lambda t: tuple(t.isocalendar()[:2]),
    "keep_monthly": lambda t: (t.year, t.month),
    "keep_yearly": lambda t: (t.year,),
}


@dataclass(frozen=True)
class Candidate:
    """What retention needs to know of a snapshot."""

    id: str
    time: float  # seconds since the epoch


@dataclass
class Decision:
    candidate: Candidate
    reasons: list[str] = field(default_factory=list)

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def parse_within(text: str) -> int:
    """``48h`` / ``2d`` / ``1w`` / ``6m`` / ``1y`` / ``7`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([hdwmy]?)\s*", str(text))
    if not match:
        raise ConfigError(f"keep_within: expected a number with an optional unit h/d/w/m/y, found {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2) or "d"]


def decide(
    candidates: Sequence[Candidate], rules: RetentionConfig, tz: dt.tzinfo | None = None
) -> list[Decision]:
    """One decision per candidate, newest first; each kept one lists the rules that keep it."""
    ordered = sorted(candidates, key=lambda c: (c.time, c.id), reverse=True)
    decisions = [Decision(c) for c in ordered]
    if not decisions:
        return decisions
    if rules.keep_last:
        for number, decision in enumerate(decisions[: rules.keep_last], start=1):
            decision.reasons.append(f"last #{number}")
    if rules.keep_within:
        horizon = ordered[0].time - parse_within(rules.keep_within)
        for decision in decisions:
            if decision.candidate.time >= horizon:
                decision.reasons.append(f"within {rules.keep_within}")
    for rule, period_of in _PERIODS.items():
        wanted = getattr(rules, rule)
        if not wanted:
            continue
        seen: set[tuple[int, ...]] = set()
        for decision in decisions:
            moment = dt.datetime.fromtimestamp(decision.candidate.time, tz)
            period = period_of(moment)
            if period in seen:
                continue
            seen.add(period)
            decision.reasons.append(f"{rule.removeprefix('keep_')} #{len(seen)}")
            if len(seen) >= wanted:
                break
        else:
            oldest = decisions[-1]
            label = rule.removeprefix("keep_")
            if not any(r.startswith(f"{label} #") for r in oldest.reasons):
                oldest.reasons.append(f"{label} (oldest)")
    return decisions
