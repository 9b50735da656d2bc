"""Who may do what, enforced on fields: roles per operation, personal data per role.

Operations name the roles allowed (`allow`). Which accounts an agent or a
manager reaches is decided where accounts are read (the request's account
loader and the lists' SQL) and where commands run (`CommandMeta.authorize`):
an account out of reach reads as absent. Personal fields carry `Personal()`:
a role that may not see personal data gets them withheld.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info as AnyInfo

from api.auth import Principal, Role

WITHHELD = "[withheld]"

EVERYONE = tuple(Role)
WRITERS = (Role.AGENT, Role.MANAGER, Role.ADMIN)
AUDITORS = (Role.AUDITOR, Role.ADMIN)
STREAM_READERS = (Role.SERVICE, Role.AUDITOR, Role.ADMIN)
INTEGRATORS = (Role.SERVICE, Role.ADMIN)
REASSIGNERS = (Role.MANAGER, Role.ADMIN)
ADMINS = (Role.ADMIN,)


class Forbidden(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "FORBIDDEN"})


def principal_of(info: AnyInfo[Any, Any]) -> Principal:
    principal: Principal | None = info.context.principal
    if principal is None:  # the transport let no request through without one
        raise Forbidden("not authenticated")
    return principal


class RoleIn(BasePermission):
    message = "forbidden"
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 - strawberry reads it

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    def has_permission(self, source: Any, info: AnyInfo[Any, Any], **kwargs: Any) -> bool:  # noqa: ARG002
        principal: Principal | None = info.context.principal
        if principal is not None and principal.role in self.roles:
            return True
        role = "no role" if principal is None else f"role {principal.role}"
        self.message = (
            f"forbidden: {info.field_name} needs one of the roles "
            f"{', '.join(self.roles)}; this request has {role}"
        )
        return False


def allow(*roles: Role) -> list[FieldExtension]:
    """For ``strawberry.field(extensions=...)``: only these roles."""
    return [PermissionExtension(permissions=[RoleIn(roles)], use_directives=False)]


def _withheld(value: Any) -> Any:
    if isinstance(value, str):
        return WITHHELD
    if isinstance(value, list | tuple):
        return []
    if isinstance(value, date):  # a date is never shown in part
        return None
    return value


def _sees(info: AnyInfo[Any, Any]) -> bool:
    principal: Principal | None = info.context.principal
    return principal is not None and principal.sees_personal_data


def sees_personal_data(info: AnyInfo[Any, Any]) -> bool:
    """For a field that is personal for some rows only (``Personal`` is for
    fields that always are)."""
    return _sees(info)


class Personal(FieldExtension):
    """A personal field: withheld (text ``[withheld]``, lists empty, dates null)
    from a role that may not see personal data."""

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: AnyInfo[Any, Any], **kwargs: Any
    ) -> Any:
        value = next_(source, info, **kwargs)
        return value if _sees(info) else _withheld(value)

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: AnyInfo[Any, Any],
        **kwargs: Any,
    ) -> Any:
        value = await next_(source, info, **kwargs)
        return value if _sees(info) else _withheld(value)


def personal() -> list[FieldExtension]:
    return [Personal()]
