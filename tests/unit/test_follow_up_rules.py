"""Follow-ups and goals: their lifecycles, what they may follow, their personal
texts; and the thank-you process's settings and ids. No I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from domain.account import PERSONAL_DATA, Account
from domain.errors import (
    ComplaintNotFound,
    DealNotFound,
    FollowUpAlreadyCancelled,
    FollowUpAlreadyCompleted,
    FollowUpExists,
    FollowUpNotFound,
    GoalAlreadyAchieved,
    GoalAlreadyDropped,
    GoalNotFound,
    InteractionNotFound,
    InvalidValue,
    SubjectErased,
)
from domain.values import (
    AccountKind,
    Channel,
    ComplaintSeverity,
    Direction,
    FollowedKind,
    FollowUpStatus,
    GoalStatus,
)
from projections.thank_you import ThankYouPolicy, thank_you_follow_up_id

AT = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
DUE = AT + timedelta(days=2)


def with_history() -> tuple[Account, dict[FollowedKind, object]]:
    """An account with one interaction, one deal and one complaint to follow."""
    account = Account.open(name="Acme Tools", kind=AccountKind.ORGANIZATION)
    followed = {kind: uuid4() for kind in FollowedKind}
    account.log_interaction(
        interaction_id=followed[FollowedKind.INTERACTION],
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        occurred_at=AT,
    )
    account.close_deal(
        deal_id=followed[FollowedKind.DEAL],
        amount="100",
        currency="EUR",
        product="wrenches",
        closed_at=AT,
    )
    account.file_complaint(
        complaint_id=followed[FollowedKind.COMPLAINT],
        category="delivery",
        severity=ComplaintSeverity.LOW,
        description="Late",
        channel=Channel.EMAIL,
        filed_at=AT,
    )
    account.collect_events()
    return account, followed


def schedule(account: Account, kind: FollowedKind, followed_id, **changes):
    follow_up_id = changes.pop("follow_up_id", uuid4())
    account.schedule_follow_up(
        **{
            "follow_up_id": follow_up_id,
            "due": DUE,
            "owner": "bob.martin",
            "reason": "Call Ann about the late order",
            "follows_kind": kind,
            "follows_id": followed_id,
        }
        | changes
    )
    return follow_up_id


@pytest.mark.parametrize("kind", list(FollowedKind))
def test_a_follow_up_follows_an_interaction_a_deal_or_a_complaint(kind):
    account, followed = with_history()
    follow_up_id = schedule(account, kind, followed[kind])
    (event,) = account.collect_events()
    assert isinstance(event, Account.FollowUpScheduled)
    assert (event.follows_kind, event.follows_id, event.due, event.owner) == (
        kind,
        followed[kind],
        DUE,
        "bob.martin",
    )
    assert account.follow_ups == {follow_up_id: FollowUpStatus.OPEN}


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (FollowedKind.INTERACTION, InteractionNotFound),
        (FollowedKind.DEAL, DealNotFound),
        (FollowedKind.COMPLAINT, ComplaintNotFound),
    ],
)
def test_what_a_follow_up_follows_must_be_on_the_account(kind, error):
    account, followed = with_history()
    other = next(v for k, v in followed.items() if k is not kind)
    with pytest.raises(error):
        schedule(account, kind, other)
    with pytest.raises(error):
        schedule(account, kind, uuid4())
    assert account.collect_events() == []


def test_a_follow_up_is_completed_once_and_then_is_final():
    account, followed = with_history()
    follow_up_id = schedule(account, FollowedKind.DEAL, followed[FollowedKind.DEAL])
    account.complete_follow_up(
        follow_up_id=follow_up_id, completed_at=AT, outcome="  Ann is happy  "
    )
    with pytest.raises(FollowUpAlreadyCompleted):
        account.complete_follow_up(follow_up_id=follow_up_id, completed_at=AT)
    with pytest.raises(FollowUpAlreadyCompleted):
        account.cancel_follow_up(follow_up_id=follow_up_id, reason="no need")
    events = account.collect_events()
    assert [type(e) for e in events] == [
        Account.FollowUpScheduled,
        Account.FollowUpCompleted,
    ]
    assert events[1].outcome == "Ann is happy"
    assert account.follow_ups[follow_up_id] is FollowUpStatus.COMPLETED


def test_a_cancelled_follow_up_is_neither_completed_nor_cancelled_again():
    account, followed = with_history()
    follow_up_id = schedule(
        account, FollowedKind.COMPLAINT, followed[FollowedKind.COMPLAINT]
    )
    with pytest.raises(InvalidValue) as refused:
        account.cancel_follow_up(follow_up_id=follow_up_id, reason="  ")
    assert refused.value.field == "reason"
    account.cancel_follow_up(follow_up_id=follow_up_id, reason="Solved by phone")
    with pytest.raises(FollowUpAlreadyCancelled):
        account.complete_follow_up(follow_up_id=follow_up_id, completed_at=AT)
    with pytest.raises(FollowUpAlreadyCancelled):
        account.cancel_follow_up(follow_up_id=follow_up_id, reason="again")
    assert account.follow_ups[follow_up_id] is FollowUpStatus.CANCELLED


def test_no_step_acts_on_a_follow_up_never_scheduled():
    account, _ = with_history()
    with pytest.raises(FollowUpNotFound):
        account.complete_follow_up(follow_up_id=uuid4(), completed_at=AT)
    with pytest.raises(FollowUpNotFound):
        account.cancel_follow_up(follow_up_id=uuid4(), reason="why")


def test_a_follow_up_id_is_used_once_and_its_refusal_is_a_validation_error():
    account, followed = with_history()
    deal_id = followed[FollowedKind.DEAL]
    follow_up_id = schedule(account, FollowedKind.DEAL, deal_id)
    with pytest.raises(FollowUpExists) as refused:
        schedule(account, FollowedKind.DEAL, deal_id, follow_up_id=follow_up_id)
    assert isinstance(refused.value, InvalidValue)
    assert refused.value.field == "followUpId"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"owner": " "}, "owner"),
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 4001}, "reason"),
        ({"due": datetime(2026, 1, 15, 10, 0)}, "due"),  # noqa: DTZ001 - no time zone on purpose
        ({"due": datetime(1899, 12, 31, tzinfo=UTC)}, "due"),
        ({"due": datetime.now(tz=UTC) + timedelta(days=3700)}, "due"),
    ],
)
def test_bad_follow_up_input_is_refused(changes, field):
    account, followed = with_history()
    with pytest.raises(InvalidValue) as refused:
        schedule(account, FollowedKind.DEAL, followed[FollowedKind.DEAL], **changes)
    assert refused.value.field == field
    assert account.collect_events() == []


def test_a_follow_up_may_be_due_in_the_past_and_completed_not_in_the_future():
    account, followed = with_history()
    follow_up_id = schedule(
        account, FollowedKind.DEAL, followed[FollowedKind.DEAL], due=AT - timedelta(days=9)
    )
    with pytest.raises(InvalidValue) as refused:
        account.complete_follow_up(
            follow_up_id=follow_up_id,
            completed_at=datetime.now(tz=UTC) + timedelta(days=3),
        )
    assert refused.value.field == "completedAt"


def test_a_goal_is_agreed_then_achieved_or_dropped_and_both_are_final():
    account, _ = with_history()
    kept, dropped = uuid4(), uuid4()
    for goal_id in (kept, dropped):
        account.agree_goal(
            goal_id=goal_id,
            description="Ann introduces us to the plant in Lyon",
            owner="bob.martin",
            due=date(2026, 6, 30),
            phase=" pilot ",
        )
    account.achieve_goal(goal_id=kept, achieved_at=AT)
    account.drop_goal(goal_id=dropped, reason="Plant closed")
    for goal_id, error in ((kept, GoalAlreadyAchieved), (dropped, GoalAlreadyDropped)):
        with pytest.raises(error):
            account.achieve_goal(goal_id=goal_id, achieved_at=AT)
        with pytest.raises(error):
            account.drop_goal(goal_id=goal_id, reason="again")
    with pytest.raises(GoalNotFound):
        account.achieve_goal(goal_id=uuid4(), achieved_at=AT)
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == [
        "GoalAgreed",
        "GoalAgreed",
        "GoalAchieved",
        "GoalDropped",
    ]
    assert events[0].phase == "pilot"
    assert account.goals == {kept: GoalStatus.ACHIEVED, dropped: GoalStatus.DROPPED}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": " "}, "description"),
        ({"owner": ""}, "owner"),
        ({"phase": "p" * 201}, "phase"),
        ({"due": date(1899, 1, 1)}, "due"),
    ],
)
def test_bad_goal_input_is_refused(changes, field):
    account, _ = with_history()
    with pytest.raises(InvalidValue) as refused:
        account.agree_goal(
            **{
                "goal_id": uuid4(),
                "description": "More volume",
                "owner": "bob.martin",
                "due": date(2026, 6, 30),
            }
            | changes
        )
    assert refused.value.field == field


def test_texts_that_can_name_people_are_the_accounts_personal_data():
    account_subject = {
        cls.__name__: (fields.fields, fields.subject)
        for cls, fields in PERSONAL_DATA.items()
    }
    assert account_subject["FollowUpScheduled"] == (("reason",), None)
    assert account_subject["FollowUpCompleted"] == (("outcome",), None)
    assert account_subject["FollowUpCancelled"] == (("reason",), None)
    assert account_subject["GoalAgreed"] == (("description",), None)
    assert account_subject["GoalDropped"] == (("reason",), None)
    assert "GoalAchieved" not in account_subject


def test_after_the_accounts_erasure_follow_ups_go_on_without_text():
    account, followed = with_history()
    open_one = schedule(account, FollowedKind.DEAL, followed[FollowedKind.DEAL])
    account.erase_personal_data(reason="GDPR request")
    with pytest.raises(SubjectErased):
        schedule(account, FollowedKind.DEAL, followed[FollowedKind.DEAL])
    later = schedule(account, FollowedKind.DEAL, followed[FollowedKind.DEAL], reason="")
    with pytest.raises(SubjectErased):
        account.complete_follow_up(follow_up_id=open_one, completed_at=AT, outcome="ok")
    account.complete_follow_up(follow_up_id=open_one, completed_at=AT)
    account.cancel_follow_up(follow_up_id=later, reason="")
    with pytest.raises(SubjectErased):
        account.agree_goal(
            goal_id=uuid4(), description="x", owner="bob", due=date(2026, 6, 30)
        )
    assert account.follow_ups == {
        open_one: FollowUpStatus.COMPLETED,
        later: FollowUpStatus.CANCELLED,
    }


def test_follow_ups_and_goals_survive_a_snapshot_and_older_ones_are_upcast():
    account, followed = with_history()
    follow_up_id = schedule(account, FollowedKind.DEAL, followed[FollowedKind.DEAL])
    goal_id = uuid4()
    account.agree_goal(goal_id=goal_id, description="x", owner="bob", due=date(2026, 6, 30))
    snapshot = Account.Snapshot.take(account)
    assert snapshot.state["class_version"] == Account.class_version
    restored = snapshot.mutate(None)
    assert restored.follow_ups == {follow_up_id: FollowUpStatus.OPEN}
    assert restored.goals == {goal_id: GoalStatus.AGREED}
    assert isinstance(restored.follow_ups[follow_up_id], FollowUpStatus)
    state: dict[str, object] = {}
    Account.upcast_v5_v6(state)
    assert state == {"follow_ups": [], "goals": []}


def test_the_thank_you_follow_up_id_comes_from_the_deal_alone():
    deal_id = uuid4()
    assert thank_you_follow_up_id(deal_id) == thank_you_follow_up_id(deal_id)
    assert thank_you_follow_up_id(deal_id) != thank_you_follow_up_id(uuid4())
    assert thank_you_follow_up_id(deal_id) != deal_id


def test_the_thank_you_policy_is_read_from_the_environment():
    assert ThankYouPolicy.from_env({}) == ThankYouPolicy(timedelta(hours=24), "unassigned")
    policy = ThankYouPolicy.from_env(
        {
            "RAPPORT_THANK_YOU_DELAY_HOURS": "1.5",
            "RAPPORT_THANK_YOU_FALLBACK_OWNER": " sales-desk ",
        }
    )
    assert policy == ThankYouPolicy(timedelta(minutes=90), "sales-desk")
    for hours in ("-1", "9000", "soon"):
        with pytest.raises(ValueError, match=r"."):
            ThankYouPolicy.from_env({"RAPPORT_THANK_YOU_DELAY_HOURS": hours})
