"""The application service: one method per command, each get → command → save."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from domain.account import (
    Account,
    ComplaintRecord,
    Contact,
    InteractionRecord,
    Occasion,
)
from domain.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    ConcurrencyConflict,
    InvalidValue,
)
from domain.values import (
    AccountKind,
    Address,
    Channel,
    Classification,
    ComplaintSeverity,
    ComplaintStatus,
    ContactChannel,
    ContactChannelKind,
    Direction,
    FollowedKind,
    Influence,
    PurchaseIntent,
    RelationshipType,
    SatisfactionLevel,
    Stage,
    Tier,
)

# Without an expected version, a command that lost a race is re-run on the
# fresh state (its rules checked again) this many times before giving up.
CONFLICT_RETRIES = 3
SNAPSHOT_INTERVAL = 100
LOCK_STRIPES = 64


@dataclass(frozen=True)
class CommandMeta:
    """Who issued a command and why; stored beside every event it produces."""

    actor: str
    command_id: UUID = field(default_factory=uuid4)
    correlation_id: UUID = field(default_factory=uuid4)
    causation_id: UUID | None = None
    idempotent: bool = False
    """The client chose ``command_id``: a command recorded with it before is
    not run again, and its first outcome is the answer."""
    authorize: Callable[[Account], None] | None = field(default=None, compare=False)
    """Raises if the actor may not act on this account: called with the state
    a command starts from and with the state it leaves."""

    def allows(self, account: Account) -> None:
        if self.authorize is not None:
            self.authorize(account)


@dataclass(frozen=True)
class Outcome:
    """What a client needs after a command: where the account now stands."""

    account_id: UUID
    version: int
    position: int
    created_id: UUID | None = None


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class AddressAsDict(Transcoding):
    type = Address
    name = "address"

    def encode(self, obj: Address) -> dict[str, str]:
        return {
            "street": obj.street,
            "city": obj.city,
            "postal_code": obj.postal_code,
            "country": obj.country,
        }

    def decode(self, data: dict[str, str]) -> Address:
        return Address(**data)


class ContactChannelAsDict(Transcoding):
    type = ContactChannel
    name = "contact_channel"

    def encode(self, obj: ContactChannel) -> dict[str, str]:
        return {"kind": str(obj.kind), "value": obj.value}

    def decode(self, data: dict[str, str]) -> ContactChannel:
        return ContactChannel(kind=ContactChannelKind(data["kind"]), value=data["value"])


class ContactAsDict(Transcoding):
    type = Contact
    name = "contact"

    def encode(self, obj: Contact) -> dict[str, Any]:
        return {
            "contact_id": obj.contact_id,
            "name": obj.name,
            "role": obj.role,
            "influence": str(obj.influence),
            "email": obj.email,
            "phone": obj.phone,
            "birthday": obj.birthday,
            "preferences": obj.preferences,
            "erased": obj.erased,
        }

    def decode(self, data: dict[str, Any]) -> Contact:
        return Contact(**(data | {"influence": Influence(data["influence"])}))


class InteractionRecordAsDict(Transcoding):
    type = InteractionRecord
    name = "interaction_record"

    def encode(self, obj: InteractionRecord) -> dict[str, Any]:
        return {
            "channel": str(obj.channel),
            "occurred_at": obj.occurred_at,
            "confirmed": obj.confirmed,
        }

    def decode(self, data: dict[str, Any]) -> InteractionRecord:
        return InteractionRecord(**(data | {"channel": Channel(data["channel"])}))


class ComplaintRecordAsDict(Transcoding):
    type = ComplaintRecord
    name = "complaint_record"

    def encode(self, obj: ComplaintRecord) -> dict[str, Any]:
        return {
            "status": str(obj.status),
            "escalation_level": obj.escalation_level,
            "updated_at": obj.updated_at,
        }

    def decode(self, data: dict[str, Any]) -> ComplaintRecord:
        return ComplaintRecord(**(data | {"status": ComplaintStatus(data["status"])}))


def project_account(account: Account | None, events: Iterable[Any]) -> Account | None:
    """Apply ``events`` in order: eventsourcing's own projector, without its
    check of each event against a runtime protocol (a costly ``isinstance``
    on Python 3.11)."""
    for event in events:
        account = event.mutate(account)
    return account


class Accounts(Application[UUID]):
    """The customer file. Its events table is ``rapport_events``.

    A snapshot every SNAPSHOT_INTERVAL events keeps the replay of long
    histories (and the state at a past version) short.
    """

    name = "rapport"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        Account: SNAPSHOT_INTERVAL
    }
    snapshotting_projectors: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], Any]] = {
        Account: project_account
    }

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._get_locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        # Where idempotent commands' first outcomes are kept (set by the store).
        self.recorded_outcome: Callable[[UUID], Outcome | None] = lambda _: None

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(AddressAsDict())
        transcoder.register(ContactChannelAsDict())
        transcoder.register(ContactAsDict())
        transcoder.register(InteractionRecordAsDict())
        transcoder.register(ComplaintRecordAsDict())

    def open_account(
        self,
        meta: CommandMeta,
        *,
        account_id: UUID | None = None,
        name: str,
        kind: AccountKind,
        business_category: str = "",
        address: Address | None = None,
        channels: tuple[ContactChannel, ...] = (),
        special_requirements: str = "",
        purchase_characteristics: str = "",
        manager: str | None = None,
        founded_on: date | None = None,
    ) -> Outcome:
        """With ``manager``, the account is opened and assigned in one step."""
        account = Account.open(
            account_id=account_id,
            name=name,
            kind=kind,
            business_category=business_category,
            address=address,
            channels=channels,
            special_requirements=special_requirements,
            purchase_characteristics=purchase_characteristics,
            founded_on=founded_on,
        )
        if manager is not None:
            account.assign_manager(manager=manager, reason="opened by its manager")

        def save() -> Outcome:
            try:
                return self._save(account, meta)
            except IntegrityError:
                raise AccountAlreadyExists(account.id) from None

        return self._once(meta, account_id, save)

    def get_account(self, account_id: UUID, version: int | None = None) -> Account:
        """The account now (from the cache, brought up to date), or at ``version``.

        The cached account is updated in place and then copied for the caller;
        one lock per stripe of ids keeps another thread's update from landing
        in the middle of a copy.
        """
        lock = self._get_locks[hash(account_id) % len(self._get_locks)]
        try:
            with lock if version is None else contextlib.nullcontext():
                account: object = self.repository.get(
                    account_id, version=version, projector_func=project_account
                )
        except AggregateNotFoundError:
            raise AccountNotFound(account_id) from None
        assert isinstance(account, Account)  # noqa: S101 - the only aggregate here
        return account

    def update_profile(
        self,
        meta: CommandMeta,
        account_id: UUID,
        expected_version: int | None = None,
        **changes: Any,
    ) -> Outcome:
        return self._change(
            meta, account_id, expected_version, lambda a: a.update_profile(**changes)
        )

    def add_contact(
        self,
        meta: CommandMeta,
        account_id: UUID,
        expected_version: int | None = None,
        contact_id: UUID | None = None,
        **contact: Any,
    ) -> Outcome:
        contact_id = contact_id or uuid4()
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.add_contact(contact_id=contact_id, **contact),
            created_id=contact_id,
        )

    def update_contact(
        self,
        meta: CommandMeta,
        account_id: UUID,
        contact_id: UUID,
        expected_version: int | None = None,
        *,
        name: str | None = None,
        role: str | None = None,
        influence: Influence | None = None,
        email: str | None = None,
        phone: str | None = None,
        birthday: date | None = None,
        preferences: str | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.update_contact(
                contact_id=contact_id,
                name=name,
                role=role,
                influence=influence,
                email=email,
                phone=phone,
                birthday=birthday,
                preferences=preferences,
            ),
        )

    def remove_contact(
        self,
        meta: CommandMeta,
        account_id: UUID,
        contact_id: UUID,
        reason: str,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.remove_contact(contact_id=contact_id, reason=reason),
        )

    def assign_manager(
        self,
        meta: CommandMeta,
        account_id: UUID,
        manager: str,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.assign_manager(manager=manager, reason=reason),
        )

    def change_classification(
        self,
        meta: CommandMeta,
        account_id: UUID,
        classification: Classification,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.change_classification(classification=classification, reason=reason),
        )

    def change_relationship_type(
        self,
        meta: CommandMeta,
        account_id: UUID,
        relationship_type: RelationshipType,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.change_relationship_type(
                relationship_type=relationship_type, reason=reason
            ),
        )

    def change_tier(
        self,
        meta: CommandMeta,
        account_id: UUID,
        tier: Tier,
        reason: str,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.change_tier(tier=tier, reason=reason),
        )

    def change_stage(
        self,
        meta: CommandMeta,
        account_id: UUID,
        stage: Stage,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.change_stage(stage=stage, reason=reason),
        )

    def log_interaction(  # noqa: PLR0913 - one keyword per field of the event
        self,
        meta: CommandMeta,
        account_id: UUID,
        *,
        channel: Channel,
        direction: Direction,
        occurred_at: datetime,
        participants: tuple[str, ...] = (),
        summary: str = "",
        outcome: str = "",
        effort_minutes: int = 0,
        expected_version: int | None = None,
        interaction_id: UUID | None = None,
        occasion: Occasion | None = None,
        cost: tuple[Decimal | str, str] | None = None,
    ) -> Outcome:
        """A greeting may mark an ``occasion`` (once a year each); a gift may
        carry its ``cost`` (an amount and its currency)."""
        interaction_id = interaction_id or uuid4()
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.log_interaction(
                interaction_id=interaction_id,
                channel=channel,
                direction=direction,
                occurred_at=occurred_at,
                participants=participants,
                summary=summary,
                outcome=outcome,
                effort_minutes=effort_minutes,
                occasion=occasion,
                cost=cost,
            ),
            created_id=interaction_id,
        )

    def record_written_confirmation(
        self,
        meta: CommandMeta,
        account_id: UUID,
        interaction_id: UUID,
        *,
        confirmed_at: datetime,
        channel: Channel = Channel.EMAIL,
        note: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.record_written_confirmation(
                interaction_id=interaction_id,
                confirmed_at=confirmed_at,
                channel=channel,
                note=note,
            ),
        )

    def erase_personal_data(
        self,
        meta: CommandMeta,
        account_id: UUID,
        *,
        contact_id: UUID | None = None,
        reason: str,
        expected_version: int | None = None,
    ) -> Outcome:
        """Erase a contact's personal data, or with no contact the account's.

        The event store destroys the subject's key in the transaction that
        records the erasure; from then on the values read back as erased.
        """
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.erase_personal_data(contact_id=contact_id, reason=reason),
        )

    def file_complaint(
        self,
        meta: CommandMeta,
        account_id: UUID,
        *,
        category: str,
        severity: ComplaintSeverity,
        description: str,
        channel: Channel,
        filed_at: datetime,
        contact_id: UUID | None = None,
        expected_version: int | None = None,
        complaint_id: UUID | None = None,
    ) -> Outcome:
        complaint_id = complaint_id or uuid4()
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.file_complaint(
                complaint_id=complaint_id,
                category=category,
                severity=severity,
                description=description,
                channel=channel,
                filed_at=filed_at,
                contact_id=contact_id,
            ),
            created_id=complaint_id,
        )

    def acknowledge_complaint(
        self,
        meta: CommandMeta,
        account_id: UUID,
        complaint_id: UUID,
        *,
        acknowledged_at: datetime,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.acknowledge_complaint(
                complaint_id=complaint_id, acknowledged_at=acknowledged_at
            ),
        )

    def escalate_complaint(
        self,
        meta: CommandMeta,
        account_id: UUID,
        complaint_id: UUID,
        *,
        escalated_to: str,
        escalated_at: datetime,
        level: int | None = None,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.escalate_complaint(
                complaint_id=complaint_id,
                escalated_to=escalated_to,
                escalated_at=escalated_at,
                level=level,
                reason=reason,
            ),
        )

    def resolve_complaint(
        self,
        meta: CommandMeta,
        account_id: UUID,
        complaint_id: UUID,
        *,
        resolution: str,
        resolved_at: datetime,
        root_cause: str = "",
        prevention_action: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.resolve_complaint(
                complaint_id=complaint_id,
                resolution=resolution,
                resolved_at=resolved_at,
                root_cause=root_cause,
                prevention_action=prevention_action,
            ),
        )

    def reopen_complaint(
        self,
        meta: CommandMeta,
        account_id: UUID,
        complaint_id: UUID,
        *,
        reason: str,
        reopened_at: datetime,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.reopen_complaint(
                complaint_id=complaint_id, reason=reason, reopened_at=reopened_at
            ),
        )

    def close_complaint(
        self,
        meta: CommandMeta,
        account_id: UUID,
        complaint_id: UUID,
        *,
        closed_at: datetime,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.close_complaint(complaint_id=complaint_id, closed_at=closed_at),
        )

    def record_survey(
        self,
        meta: CommandMeta,
        account_id: UUID,
        *,
        satisfaction: SatisfactionLevel,
        intent_to_buy_again: PurchaseIntent,
        likelihood_to_recommend: int,
        answered_at: datetime,
        comment: str = "",
        contact_id: UUID | None = None,
        expected_version: int | None = None,
        survey_id: UUID | None = None,
    ) -> Outcome:
        survey_id = survey_id or uuid4()
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.record_survey(
                survey_id=survey_id,
                satisfaction=satisfaction,
                intent_to_buy_again=intent_to_buy_again,
                likelihood_to_recommend=likelihood_to_recommend,
                answered_at=answered_at,
                comment=comment,
                contact_id=contact_id,
            ),
            created_id=survey_id,
        )

    def close_deal(
        self,
        meta: CommandMeta,
        account_id: UUID,
        *,
        amount: Decimal | str,
        currency: str,
        product: str,
        closed_at: datetime,
        place: str = "",
        expected_version: int | None = None,
        deal_id: UUID | None = None,
    ) -> Outcome:
        deal_id = deal_id or uuid4()
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.close_deal(
                deal_id=deal_id,
                amount=amount,
                currency=currency,
                product=product,
                closed_at=closed_at,
                place=place,
            ),
            created_id=deal_id,
        )

    def schedule_follow_up(
        self,
        meta: CommandMeta,
        account_id: UUID,
        *,
        due: datetime,
        owner: str,
        reason: str,
        follows_kind: FollowedKind,
        follows_id: UUID,
        expected_version: int | None = None,
        follow_up_id: UUID | None = None,
    ) -> Outcome:
        follow_up_id = follow_up_id or uuid4()
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.schedule_follow_up(
                follow_up_id=follow_up_id,
                due=due,
                owner=owner,
                reason=reason,
                follows_kind=follows_kind,
                follows_id=follows_id,
            ),
            created_id=follow_up_id,
        )

    def complete_follow_up(
        self,
        meta: CommandMeta,
        account_id: UUID,
        follow_up_id: UUID,
        *,
        completed_at: datetime,
        outcome: str = "",
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.complete_follow_up(
                follow_up_id=follow_up_id, completed_at=completed_at, outcome=outcome
            ),
        )

    def cancel_follow_up(
        self,
        meta: CommandMeta,
        account_id: UUID,
        follow_up_id: UUID,
        *,
        reason: str,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.cancel_follow_up(follow_up_id=follow_up_id, reason=reason),
        )

    def agree_goal(
        self,
        meta: CommandMeta,
        account_id: UUID,
        *,
        description: str,
        owner: str,
        due: date,
        phase: str = "",
        expected_version: int | None = None,
        goal_id: UUID | None = None,
    ) -> Outcome:
        goal_id = goal_id or uuid4()
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.agree_goal(
                goal_id=goal_id, description=description, owner=owner, due=due, phase=phase
            ),
            created_id=goal_id,
        )

    def achieve_goal(
        self,
        meta: CommandMeta,
        account_id: UUID,
        goal_id: UUID,
        *,
        achieved_at: datetime,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.achieve_goal(goal_id=goal_id, achieved_at=achieved_at),
        )

    def drop_goal(
        self,
        meta: CommandMeta,
        account_id: UUID,
        goal_id: UUID,
        *,
        reason: str,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._change(
            meta,
            account_id,
            expected_version,
            lambda a: a.drop_goal(goal_id=goal_id, reason=reason),
        )

    def _change(
        self,
        meta: CommandMeta,
        account_id: UUID,
        expected_version: int | None,
        command: Callable[[Account], None],
        created_id: UUID | None = None,
    ) -> Outcome:
        """Run a command on the current state; a lost race is never a lost update.

        With an expected version the caller decides: a mismatch, or a writer
        that got in first, is a ConcurrencyConflict. Without one the command is
        re-run on the fresh state, its rules checked again.
        """
        return self._once(
            meta,
            account_id,
            lambda: self._change_once(
                meta, account_id, expected_version, command, created_id
            ),
        )

    def _change_once(
        self,
        meta: CommandMeta,
        account_id: UUID,
        expected_version: int | None,
        command: Callable[[Account], None],
        created_id: UUID | None,
    ) -> Outcome:
        cached = self._cached_account(account_id)
        if cached is not None:
            outcome = self._change_cached(
                cached, meta, expected_version, command, created_id
            )
            if outcome is not None:
                return outcome
        for attempt in range(CONFLICT_RETRIES + 1):
            account = self.get_account(account_id)
            meta.allows(account)
            if expected_version is not None and account.version != expected_version:
                raise ConcurrencyConflict(expected_version, account.version)
            command(account)
            try:
                return self._save(account, meta, created_id)
            except IntegrityError:
                if expected_version is not None or attempt == CONFLICT_RETRIES:
                    latest = self.get_account(account_id).version
                    raise ConcurrencyConflict(expected_version, latest) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _cached_account(self, account_id: UUID) -> Account | None:
        """A copy of the account this process keeps, as it is (no read of the
        events after its version), or ``None`` if it keeps none."""
        cache = self.repository.cache
        if cache is None:
            return None
        # The lock of get_account: a fast-forward updates the cached account in place.
        with self._get_locks[hash(account_id) % len(self._get_locks)]:
            try:
                cached: object = cache.get(account_id)
            except KeyError:
                return None
            assert isinstance(cached, Account)  # noqa: S101 - the only aggregate here
            return copy.deepcopy(cached)

    def _change_cached(
        self,
        account: Account,
        meta: CommandMeta,
        expected_version: int | None,
        command: Callable[[Account], None],
        created_id: UUID | None,
    ) -> Outcome | None:
        """The command on the cached account, without reading the store first.

        This process's commands keep that account current, so it usually is.
        If another process wrote since, the command's events take a version
        that is taken, and the insert fails. Then, and whenever the command is
        refused here, the answer is ``None``: nothing was written, and the
        command runs again on the account read from the store, which decides.
        """
        try:
            meta.allows(account)
            if expected_version is not None and account.version != expected_version:
                return None
            command(account)
        except Exception:  # noqa: BLE001 - judged again on the stored account
            return None
        try:
            return self._save(account, meta, created_id)
        except IntegrityError:
            return None

    def _remember(self, account: Account) -> None:
        """Cache the account a command just saved: it is the committed state at
        its version, so the next command starts from it (``_change_cached``),
        and a read's fast-forward finds nothing to read and decode. The
        command's copy is not used again after its save."""
        cache = self.repository.cache
        if cache is not None:
            with self._get_locks[hash(account.id) % len(self._get_locks)]:
                cache.put(account.id, account)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot a saved account from memory when its last event falls on
        the interval, instead of replaying it from the store (eventsourcing's
        way, still taken for an interval crossed mid-save)."""
        for event in processing_event.events:
            account = processing_event.aggregates.get(event.originator_id)
            version = event.originator_version
            if not isinstance(account, Account) or version % SNAPSHOT_INTERVAL:
                continue
            if account.version == version and self.snapshots is not None:
                self.snapshots.put([Account.Snapshot.take(account)])
            else:
                self.take_snapshot(event.originator_id, version, project_account)

    def _once(
        self, meta: CommandMeta, account_id: UUID | None, run: Callable[[], Outcome]
    ) -> Outcome:
        """Run a command, or, if its id was recorded before, answer as it did."""
        if not meta.idempotent:
            return run()
        try:
            outcome = self.recorded_outcome(meta.command_id) or run()
        except Exception:
            # A retry that raced the first attempt fails on what the first one
            # wrote (its command id, the account id it opened, the version it
            # took, or a rule its events now break): it answers as the first did.
            first = self.recorded_outcome(meta.command_id)
            if first is None:
                raise
            outcome = first
        if account_id is not None and outcome.account_id != account_id:
            msg = f"commandId {meta.command_id} was used for another account's command"
            raise InvalidValue("commandId", msg)
        return outcome

    def _save(
        self, account: Account, meta: CommandMeta, created_id: UUID | None = None
    ) -> Outcome:
        meta.allows(account)
        recordings = self.save(account, meta=meta, created_id=created_id)
        outcome = Outcome(
            account_id=account.id,
            version=account.version,
            position=recordings[-1].notification.id,
            created_id=created_id,
        )
        # Read before: once cached, another thread may bring it up to date.
        self._remember(account)
        return outcome
