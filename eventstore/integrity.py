"""Tamper evidence: recompute the hash chain and name the first broken link."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventstore.recorder import RapportRecorder


@dataclass(frozen=True)
class BrokenLink:
    position: int
    account_id: UUID
    version: int
    problem: str


@dataclass(frozen=True)
class IntegrityReport:
    events: int
    head_position: int | None
    head_hash: str | None
    first_break: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


CONTENT_CHANGED = (
    "the event's content no longer matches its hash: a column was changed after it "
    "was written"
)
LINK_BROKEN = (
    "prev_hash does not match the hash of the event before it: an event was "
    "removed, inserted or re-hashed"
)


def verify(recorder: RapportRecorder) -> IntegrityReport:
    with recorder.datastore.transaction(commit=False) as cur:
        # One snapshot for both reads, so a concurrent write cannot split them.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute(recorder.select_head)
        head = cur.fetchone()
        cur.execute(recorder.select_first_break)
        broken = cur.fetchone()
    assert head is not None  # noqa: S101 - an aggregate always returns a row
    return IntegrityReport(
        events=head["events"],
        head_position=head["position"],
        head_hash=None if head["hash"] is None else bytes(head["hash"]).hex(),
        first_break=None
        if broken is None
        else BrokenLink(
            position=broken["notification_id"],
            account_id=broken["originator_id"],
            version=broken["originator_version"],
            problem=LINK_BROKEN if broken["link_broken"] else CONTENT_CHANGED,
        ),
    )
