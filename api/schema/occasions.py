"""Keeping in touch: the occasions coming up (contacts' birthdays, founding
days, first deals' anniversaries) and whether each was greeted. A greeting is
an interaction on the GREETING channel that marks its occasion
(``logInteraction`` with ``occasion``)."""

from __future__ import annotations

import datetime as dt

import strawberry

from api.context import Info
from api.schema.access import sees_personal_data
from api.schema.accounts import Account, Contact
from api.schema.scalars import InvalidArgument, OccasionKind, page_size
from domain.values import OccasionKind as Kind
from projections import queries

# A birthday is the contact's personal data; a founding date is the account's.
_PERSONAL_KINDS = frozenset({Kind.BIRTHDAY, Kind.FOUNDING_DAY})


@strawberry.type(description="An occasion worth a personal greeting, in one year.")
class UpcomingOccasion:
    account: Account
    contact: Contact | None = strawberry.field(
        description="Whose birthday; null for the account's own occasions."
    )
    kind: OccasionKind
    year: int = strawberry.field(
        description="The year of this occurrence: pass it as the greeting's "
        "`occasion.year`."
    )
    greeted: bool = strawberry.field(
        description="A greeting marked this occasion for this year."
    )
    _date: strawberry.Private[dt.date]
    _since: strawberry.Private[dt.date]
    _personal: strawberry.Private[bool]

    @strawberry.field(
        description="When it falls this year (29 February on 28 February in other "
        "years). Withheld (null) for birthdays and founding days from roles that "
        "may not see personal data."
    )
    def date(self, info: Info) -> dt.date | None:
        return self._date if not self._personal or sees_personal_data(info) else None

    @strawberry.field(
        description="When it began: the birthday, the founding date, or the first "
        "deal's day. Withheld like `date`."
    )
    def since(self, info: Info) -> dt.date | None:
        return self._since if not self._personal or sees_personal_data(info) else None


@strawberry.type
class OccasionQueries:
    @strawberry.field(
        description="Occasions from today (UTC) to `days` days ahead, both included, "
        "soonest first, of the accounts within reach (and managed by `manager`, if "
        "given). Worked out when read; a removed or erased contact has no birthday."
    )
    async def upcoming_occasions(
        self,
        info: Info,
        days: int = 14,
        manager: str | None = None,
        first: int = 100,
    ) -> list[UpcomingOccasion]:
        if not 0 <= days <= queries.MAX_OCCASION_DAYS:
            msg = f"days must be between 0 and {queries.MAX_OCCASION_DAYS}"
            raise InvalidArgument(msg)
        runtime = info.context.runtime
        limit = page_size(first, runtime.settings.max_page_size)
        async with runtime.pool.connection() as conn:
            rows = await queries.upcoming_occasions(
                conn,
                days,
                limit,
                manager=manager,
                managers=info.context.managers(),
            )
        occasions = []
        for row in rows:
            info.context.accounts.prime(row["account_id"], row)
            kind = Kind(row["occasion_kind"])
            occasions.append(
                UpcomingOccasion(
                    account=Account.from_row(row),
                    contact=None
                    if row["occasion_contact"] is None
                    else Contact.from_json(row["occasion_contact"]),
                    kind=kind,
                    year=row["occasion_year"],
                    greeted=row["greeted"],
                    _date=row["occasion_date"],
                    _since=row["occasion_since"],
                    _personal=kind in _PERSONAL_KINDS,
                )
            )
        return occasions
