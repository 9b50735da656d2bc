"""Personal data sealed in the event payload, one key per subject (crypto-shredding).

The domain says which fields are personal and whose they are
(``domain.account.rewrite_personal_data``). Writing, each such value is
encrypted with AES-256-GCM under its subject's key and stored as a ``sealed``
envelope that also carries the value's erased form. Reading, the envelope is
opened with the key, or, once the key is destroyed, read as its erased form.

Keys live in ``rapport_subject_keys``. Recording a ``PersonalDataErased``
event destroys them in the same transaction (a trigger, run as the owner:
the application's role can create keys but never change or delete one).
Values recorded in plain text before sealing existed read as erased once
their subject is erased, although their bytes stay in the table; snapshots
taken before sealing are dropped at migration.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    Transcoding,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

from domain.account import Account, rewrite_personal_data
from domain.errors import SubjectErased
from domain.personal import erased_value
from eventstore.recorder import keys_table_name, recorder_of

NONCE_BYTES = 12
SEALED_SINCE_STATE_VERSION = 3
# How long another process may keep using a key it fetched before an erasure;
# the erasing process (once the erasure commits), and any process reading the
# erasure event, drop it at once.
KEY_CACHE_SECONDS = 5.0
KEY_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Sealed:
    """A personal value encrypted under its subject's key, with its erased form."""

    subject: UUID
    data: bytes
    erased: Any


class SealedAsDict(Transcoding):
    type = Sealed
    name = "sealed"

    def encode(self, obj: Sealed) -> dict[str, Any]:
        return {
            "subject": obj.subject,
            "data": base64.b64encode(obj.data).decode(),
            "erased": obj.erased,
        }

    def decode(self, data: dict[str, Any]) -> Sealed:
        return Sealed(data["subject"], binascii.a2b_base64(data["data"]), data["erased"])


@dataclass(frozen=True)
class KeyState:
    """A subject's key as last read: ``None`` if it has none or was erased."""

    key: bytes | None
    erased: bool
    cipher: AESGCM | None = field(default=None, compare=False)
    """The key's cipher, made once: reading a history opens many values."""
    associated: bytes = b""
    """The associated data binding a value to its subject (``_associated``)."""


NO_KEY = KeyState(None, erased=False)
ERASED = KeyState(None, erased=True)


@dataclass(frozen=True)
class AccountKeys:
    """Every key of one account, read in one query."""

    fetched: float
    subjects: dict[int, KeyState]
    """By subject (its UUID's ``int``); a subject missing here has no key."""
    erased: bool
    """The account was erased: so is every subject of it, with or without a key."""

    def state(self, subject_id: UUID) -> KeyState | None:
        """The subject's key; ``None`` if it was not there when read."""
        state = self.subjects.get(subject_id.int)
        return ERASED if state is None and self.erased else state


class SubjectKeys:
    """Each subject's key: created on first use, destroyed by an erasure.

    Keys are read an account at a time, and many accounts at once for a batch
    of events (``prefetch``), and kept for ``KEY_CACHE_SECONDS``.
    """

    def __init__(self, datastore: PostgresDatastore, table: str) -> None:
        self.datastore = datastore
        names = {"schema": Identifier(datastore.schema), "table": Identifier(table)}
        # Shared by the command threads and the projection runner's thread.
        # Reads of the cache take no lock; storing and forgetting do.
        self._lock = threading.Lock()
        self._cache: dict[int, AccountKeys] = {}
        # Moves on every forget: keys read before it are not kept.
        self._forgotten = 0
        # A racing writer's key wins; both then read the one stored.
        self._create = SQL(
            "INSERT INTO {schema}.{table} (account_id, subject_id, key)"
            " VALUES (%(account)s, %(subject)s, %(key)s) ON CONFLICT DO NOTHING"
        ).format(**names)
        self._keys = SQL(
            "SELECT account_id, subject_id, key, erased_at IS NOT NULL AS erased"
            " FROM {schema}.{table} WHERE account_id = ANY(%s)"
        ).format(**names)

    def for_sealing(self, account_id: UUID, subject_id: UUID) -> KeyState:
        """The subject's key, created if it has none; no key once erased."""
        state = self.state(account_id, subject_id)
        if state.key is not None or state.erased:
            return state
        with self.datastore.transaction(commit=True) as cur:
            params = {"account": account_id, "subject": subject_id}
            cur.execute(self._create, params | {"key": AESGCM.generate_key(256)})
        self.forget(account_id)
        return self.state(account_id, subject_id)

    def state(
        self, account_id: UUID, subject_id: UUID, *, sealed: bool = False
    ) -> KeyState:
        """The subject's key (none if it has none or was erased, with the
        whole account or alone).

        ``sealed``: asked to open a sealed value, whose key was committed
        before it. A subject missing from the account's cached keys then means
        another process made its key since (a contact added there), and the
        account's keys are read again.
        """
        keys = self._cache.get(account_id.int)
        state = None if keys is None else keys.state(subject_id)
        if (
            keys is None
            or time.monotonic() - keys.fetched >= KEY_CACHE_SECONDS
            or (sealed and state is None)
        ):
            state = self._fetch([account_id])[account_id.int].state(subject_id)
        return state or NO_KEY

    def prefetch(self, account_ids: Iterable[UUID]) -> None:
        """Read the keys of these accounts that are not cached, in one query."""
        now, cache = time.monotonic(), self._cache
        stale = {
            account_id
            for account_id in account_ids
            if (keys := cache.get(account_id.int)) is None
            or now - keys.fetched >= KEY_CACHE_SECONDS
        }
        if stale:
            self._fetch(list(stale))

    def _fetch(self, account_ids: list[UUID]) -> dict[int, AccountKeys]:
        with self._lock:
            forgotten = self._forgotten
        fetched = time.monotonic()
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self._keys, (account_ids,))
            rows = cur.fetchall()
        erased_accounts = {
            row["account_id"].int
            for row in rows
            if row["erased"] and row["subject_id"] == row["account_id"]
        }
        subjects: dict[int, dict[int, KeyState]] = {a.int: {} for a in account_ids}
        for row in rows:
            account, subject = row["account_id"], row["subject_id"]
            if row["erased"] or account.int in erased_accounts:
                state = ERASED
            else:
                key = bytes(row["key"])
                state = KeyState(
                    key,
                    erased=False,
                    cipher=AESGCM(key),
                    associated=_associated(account, subject),
                )
            subjects[account.int][subject.int] = state
        found = {
            account: AccountKeys(fetched, states, account in erased_accounts)
            for account, states in subjects.items()
        }
        with self._lock:
            # Keys read before an erasure that committed meanwhile are not kept.
            if forgotten == self._forgotten:
                if len(self._cache) + len(found) > KEY_CACHE_SIZE:
                    self._cache.clear()
                self._cache.update(found)
        return found

    def forget(self, account_id: UUID) -> None:
        with self._lock:
            self._forgotten += 1
            self._cache.pop(account_id.int, None)


class SealingMapper(Mapper[UUID]):
    """eventsourcing's mapper, sealing personal values on the way to the store."""

    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor, cipher)
        if isinstance(transcoder, JSONTranscoder):
            transcoder.register(SealedAsDict())
        self.keys: SubjectKeys | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        cls = type(domain_event)
        account_id = domain_event.originator_id
        if cls is Account.PersonalDataErased:
            self._subject_keys().forget(account_id)
        state = dict(vars(domain_event))
        # A snapshot is a cache: where its subject was erased since the state
        # was read, it keeps the erased form rather than fail a committed command.
        seal = partial(self._seal, account_id, cached=cls is Account.Snapshot)
        rewrite_personal_data(cls, state, account_id, seal)
        sealed = object.__new__(cls)
        object.__setattr__(sealed, "__dict__", state)
        return super().to_stored_event(sealed)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        event = super().to_domain_event(stored_event)
        cls, account_id = type(event), event.originator_id
        if cls is Account.PersonalDataErased:
            self._subject_keys().forget(account_id)
        try:
            rewrite_personal_data(
                cls, vars(event), account_id, partial(self._open, account_id)
            )
        except InvalidTag:
            msg = (
                f"a personal value of event {stored_event.originator_id}"
                f"/{stored_event.originator_version} does not open with its "
                "subject's key: the value or the key was altered"
            )
            raise MapperDeserialisationError(msg) from None
        return event

    def to_domain_events(
        self, stored_events: Sequence[StoredEvent]
    ) -> list[DomainEventProtocol[UUID]]:
        """Many events at once: their accounts' keys are read in one query."""
        accounts = {e.originator_id for e in stored_events}
        self._subject_keys().prefetch(
            a if isinstance(a, UUID) else UUID(a) for a in accounts
        )
        return [self.to_domain_event(stored) for stored in stored_events]

    def _subject_keys(self) -> SubjectKeys:
        if self.keys is None:
            msg = "the mapper has no key store: open the application with open_application"
            raise RuntimeError(msg)
        return self.keys

    def _seal(self, account_id: UUID, value: Any, subject: UUID, *, cached: bool) -> Any:
        erased = erased_value(value)
        if value == erased:
            return value  # nothing personal in it (empty, or already erased)
        state = self._subject_keys().for_sealing(account_id, subject)
        if state.cipher is None:
            if cached:
                return erased
            msg = f"the personal data of {subject} was erased; it is not recorded again"
            raise SubjectErased(msg)
        nonce = os.urandom(NONCE_BYTES)
        data = state.cipher.encrypt(nonce, self.transcoder.encode(value), state.associated)
        return Sealed(subject, nonce + data, erased)

    def _open(self, account_id: UUID, value: Any, subject: UUID) -> Any:
        if isinstance(value, Sealed):
            keys = self._subject_keys()
            state = keys.state(account_id, value.subject, sealed=True)
            if state.cipher is None:
                return value.erased
            nonce, data = value.data[:NONCE_BYTES], value.data[NONCE_BYTES:]
            plain = state.cipher.decrypt(nonce, data, state.associated)
            return self.transcoder.decode(plain)
        if value == erased_value(value):
            return value
        # Recorded in plain text before sealing: an erasure still applies.
        if self._subject_keys().state(account_id, subject).erased:
            return erased_value(value)
        return value


def _associated(account_id: UUID, subject: UUID) -> bytes:
    """Binds a ciphertext to its subject: it cannot be moved to another one."""
    return f"{account_id}/{subject}".encode()


def sealing_mapper(app: Application[Any]) -> SealingMapper:
    if not isinstance(app.mapper, SealingMapper):
        msg = f"{app.name} does not map events through {SealingMapper.__name__}"
        raise TypeError(msg)
    return app.mapper


def attach_keys(app: Application[Any]) -> None:
    """Give the application's mapper the key table beside its events table.

    Once an erasure commits, this process forgets the account's keys.
    """
    recorder = recorder_of(app)
    keys = SubjectKeys(recorder.datastore, keys_table_name(recorder.events_table_name))
    sealing_mapper(app).keys = keys
    recorder.erasure_listeners.append(keys.forget)


def drop_snapshots_before_sealing(app: Application[Any]) -> int:
    """Snapshots of an ``Account`` state before version 3 were written before
    personal data was sealed: they hold it in plain text (and lack removed
    contacts). They are only a cache; the owner drops them at migration, and
    later snapshots are sealed.
    """
    if app.snapshots is None:
        return 0
    recorder = app.snapshots.recorder
    if not isinstance(recorder, PostgresAggregateRecorder):
        return 0
    table = SQL("{}.{}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )
    with recorder.datastore.transaction(commit=True) as cur:
        cur.execute(
            SQL("DELETE FROM {} WHERE coalesce((convert_from(state, 'UTF8')::jsonb").format(
                table
            )
            + SQL(" #>> '{state,class_version}')::int, 1) < %s"),
            (SEALED_SINCE_STATE_VERSION,),
        )
        return cur.rowcount
