"""``vger delete`` and ``vger prune``: forget snapshots.

Only snapshot objects are removed here; the space their data used comes back
with ``vger compact``. Retention is applied per source label, with the most
specific policy: the source's own, else the repository's, else the global one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from vger.config.model import RetentionConfig
from vger.errors import ObjectNotFound
from vger.maintenance.retention import Candidate, Decision, decide
from vger.repository import format as fmt
from vger.repository.repository import Repository
from vger.repository.snapshot import Snapshot


@dataclass
class PruneEntry:
    snapshot: Snapshot
    decision: Decision | None  # None: no policy applies to this label, kept as is

    @property
    def keep(self) -> bool:
        return self.decision is None or self.decision.keep

    @property
    def reason(self) -> str:
        if self.decision is None:
            return "no retention rule for this source"
        return ", ".join(self.decision.reasons) if self.decision.reasons else "prune"


def plan_prune(
    repo: Repository,
    policy_for: Callable[[str], RetentionConfig | None],
    tz: dt.tzinfo | None = None,
) -> list[PruneEntry]:
    """Decide every snapshot, grouped per source label, newest first within a label."""
    by_label: dict[str, list[Snapshot]] = defaultdict(list)
    for snap in repo.snapshots():
        by_label[snap.source_label].append(snap)
    entries: list[PruneEntry] = []
    for label in sorted(by_label):
        snaps = {s.hex_id: s for s in by_label[label]}
        policy = policy_for(label)
        if policy is None or policy.is_empty:
            entries.extend(PruneEntry(s, None) for s in sorted(snaps.values(), key=lambda s: -s.time_start))
            continue
        decisions = decide([Candidate(s.hex_id, s.time_start) for s in snaps.values()], policy, tz)
        entries.extend(PruneEntry(snaps[d.candidate.id], d) for d in decisions)
    return entries


def delete_snapshot(repo: Repository, snap: Snapshot) -> None:
    try:
        repo.backend.delete(fmt.SNAPSHOTS_PREFIX + snap.hex_id)
    except ObjectNotFound:
        pass  # already gone: deleting is idempotent
