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
    anchor_problem: str | None = None
    """Set when a head saved earlier (``expect``) is no longer in the chain."""

    @property
    def intact(self) -> bool:
        return self.first_break is None and self.anchor_problem is None


CONTENT_CHANGED = (
    "the event's content no longer matches its hash: a column was changed after it "
    "was written"
)
LINK_BROKEN = (
    "prev_hash does not match the hash of the event before it: an event was "
    "removed, inserted or re-hashed"
)


def verify(
    recorder: RapportRecorder, expect: tuple[int, str] | None = None
) -> IntegrityReport:
    """Recompute the chain; with ``expect`` (a head saved earlier), check it is still there.

    The chain alone shows any change up to its newest event. Someone who can
    write as the owner could still drop the newest events, or rewrite the chain
    from some row on and re-hash everything after it; a head kept elsewhere and
    checked with ``expect`` catches both.
    """
    with recorder.datastore.transaction(commit=False) as cur:
        # One snapshot for every read, so a concurrent write cannot split them.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute(recorder.select_head)
        head = cur.fetchone()
        cur.execute(recorder.select_first_break)
        broken = cur.fetchone()
        anchor_problem = None
        if expect is not None:
            position, expected_hash = expect
            cur.execute(recorder.select_hash_at, (position,))
            found = cur.fetchone()
            if found is None:
                anchor_problem = f"position {position} is gone: events were removed"
            elif bytes(found["hash"] or b"").hex() != expected_hash.lower():
                anchor_problem = (
                    f"position {position} no longer has hash {expected_hash}: "
                    "the chain was rewritten"
                )
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
        anchor_problem=anchor_problem,
    )
