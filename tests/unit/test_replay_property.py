"""Any sequence of commands, refused ones included, replays to the same state."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.account import Account
from domain.errors import DomainError
from domain.values import (
    AccountKind,
    Channel,
    ComplaintSeverity,
    Direction,
    PurchaseIntent,
    SatisfactionLevel,
    Stage,
    Tier,
)

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)

commands = st.one_of(
    st.tuples(st.just("stage"), st.sampled_from(list(Stage))),
    st.tuples(st.just("tier"), st.sampled_from(list(Tier))),
    st.tuples(st.just("manager"), st.sampled_from(["bob", "carol", "dan"])),
    st.tuples(st.just("log"), st.sampled_from(list(Channel))),
    st.tuples(st.just("confirm"), st.integers(min_value=0, max_value=5)),
    st.tuples(st.just("complain"), st.sampled_from(list(ComplaintSeverity))),
    st.tuples(
        st.sampled_from(["acknowledge", "escalate", "resolve", "reopen", "close"]),
        st.integers(min_value=0, max_value=5),
    ),
    st.tuples(st.just("survey"), st.integers(min_value=-1, max_value=11)),
    st.tuples(st.just("deal"), st.sampled_from(["0.10", "0.20", "1e3", "0", "12.345"])),
)


def survey_or_deal(account: Account, kind: str, arg: object) -> None:
    """Survey ids and deal ids repeat now and then: a repeat is refused."""
    if kind == "survey":
        score = int(str(arg))
        account.record_survey(
            survey_id=UUID(int=2000 + score % 3),
            satisfaction=list(SatisfactionLevel)[score % 5],
            intent_to_buy_again=list(PurchaseIntent)[score % 3],
            likelihood_to_recommend=score,
            comment="fine",
            answered_at=NOW,
        )
    else:
        account.close_deal(
            deal_id=UUID(int=3000 + len(account.deals) % 4),
            amount=str(arg),
            currency="EUR",
            product="wrenches",
            closed_at=NOW,
        )


def complain(account: Account, kind: str, arg: object, filed: list[UUID]) -> None:
    if kind == "complain":
        complaint_id = UUID(int=1000 + len(filed))
        account.file_complaint(
            complaint_id=complaint_id,
            category="delivery",
            severity=ComplaintSeverity(str(arg)),
            description="late",
            channel=Channel.EMAIL,
            filed_at=NOW,
        )
        filed.append(complaint_id)
        return
    if not filed:
        return
    complaint_id = filed[int(str(arg)) % len(filed)]
    if kind == "acknowledge":
        account.acknowledge_complaint(complaint_id=complaint_id, acknowledged_at=NOW)
    elif kind == "escalate":
        account.escalate_complaint(
            complaint_id=complaint_id, escalated_to="carol", escalated_at=NOW
        )
    elif kind == "resolve":
        account.resolve_complaint(
            complaint_id=complaint_id, resolution="refund", resolved_at=NOW
        )
    elif kind == "reopen":
        account.reopen_complaint(complaint_id=complaint_id, reason="again", reopened_at=NOW)
    else:
        account.close_complaint(complaint_id=complaint_id, closed_at=NOW)


def run(
    account: Account, command: tuple[str, object], logged: list[UUID], filed: list[UUID]
) -> None:
    kind, arg = command
    if kind in {"survey", "deal"}:
        survey_or_deal(account, kind, arg)
        return
    if kind in {"complain", "acknowledge", "escalate", "resolve", "reopen", "close"}:
        complain(account, kind, arg, filed)
        return
    if kind == "stage":
        account.change_stage(stage=Stage(str(arg)))
    elif kind == "tier":
        account.change_tier(tier=Tier(str(arg)), reason="review")
    elif kind == "manager":
        account.assign_manager(manager=str(arg))
    elif kind == "log":
        interaction_id = UUID(int=len(logged) + 1)
        account.log_interaction(
            interaction_id=interaction_id,
            channel=Channel(str(arg)),
            direction=Direction.OUTBOUND,
            occurred_at=NOW,
        )
        logged.append(interaction_id)
    elif logged:
        account.record_written_confirmation(
            interaction_id=logged[int(str(arg)) % len(logged)], confirmed_at=NOW
        )


@settings(max_examples=150, deadline=None)
@given(st.lists(commands, max_size=30))
def test_any_command_sequence_replays_to_the_same_state(sequence):
    account = Account.open(name="Acme", kind=AccountKind.ORGANIZATION)
    logged: list[UUID] = []
    filed: list[UUID] = []
    for command in sequence:
        with contextlib.suppress(DomainError):  # a refused command leaves no event
            run(account, command, logged, filed)
    state: Account | None = None
    for event in account.collect_events():
        state = event.mutate(state)  # type: ignore[arg-type]
    assert isinstance(state, Account)
    assert state.version == account.version
    assert vars(state) == vars(account)
