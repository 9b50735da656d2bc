"""Targets for complaints: how soon each severity is acknowledged and resolved.

Only a few dissatisfied customers complain; most just buy less or leave. So
every complaint's timing is measured against the target of its severity,
counted from the moment it was filed. The targets are configuration, not
history: changing them changes which complaints read as breached, never an
event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import timedelta

from domain.values import ComplaintSeverity

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Target:
    """Acknowledge within ``acknowledge`` and resolve within ``resolve`` of filing."""

    acknowledge: timedelta
    resolve: timedelta


@dataclass(frozen=True)
class ComplaintTargets:
    """One target per severity; the defaults are the ones a service desk starts with."""

    critical: Target = Target(timedelta(hours=1), timedelta(hours=24))
    high: Target = Target(timedelta(hours=4), timedelta(days=3))
    medium: Target = Target(timedelta(hours=24), timedelta(days=7))
    low: Target = Target(timedelta(hours=72), timedelta(days=14))

    def __post_init__(self) -> None:
        for severity in ComplaintSeverity:
            target = self.of(severity)
            if target.acknowledge <= timedelta(0):
                msg = f"the {severity} acknowledgement target must be positive"
                raise ValueError(msg)
            if target.resolve < target.acknowledge:
                msg = (
                    f"the {severity} resolution target cannot be shorter than its "
                    "acknowledgement target"
                )
                raise ValueError(msg)

    def of(self, severity: ComplaintSeverity) -> Target:
        target: Target = getattr(self, ComplaintSeverity(severity).value)
        return target

    @classmethod
    def parse(cls, text: str) -> ComplaintTargets:
        """Targets from ``critical=1h/24h,high=4h/3d``: per severity, the time to
        acknowledge and the time to resolve, each a whole number of minutes (m),
        hours (h) or days (d). Severities left out keep their defaults; an
        empty text is all defaults.
        """
        changes: dict[str, Target] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, durations = part.partition("=")
            severity = name.strip().lower()
            if severity not in {f.name for f in fields(cls)}:
                msg = f"unknown complaint severity {name.strip()!r} in {text!r}"
                raise ValueError(msg)
            if severity in changes:
                msg = f"complaint severity {severity} is given twice in {text!r}"
                raise ValueError(msg)
            acknowledge, slash, resolve = durations.partition("/")
            if not slash:
                msg = f"{part!r}: expected {severity}=ACKNOWLEDGE/RESOLVE, as in 4h/3d"
                raise ValueError(msg)
            changes[severity] = Target(_duration(acknowledge), _duration(resolve))
        return replace(cls(), **changes)


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        msg = f"{text.strip()!r} is not a duration such as 90m, 4h or 3d"
        raise ValueError(msg)
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


DEFAULT_COMPLAINT_TARGETS = ComplaintTargets()
