"""Money: an exact decimal amount in an ISO 4217 currency, never a float.

Amounts are ``decimal.Decimal`` in the domain, text in the events (``"0.10"``)
and ``numeric`` in PostgreSQL, so sums are exact. An amount has at most as
many decimals as its currency's minor unit (two for EUR, none for JPY, three
for KWD) and is kept with exactly that many, so ``1250.5`` EUR is recorded as
``1250.50``. Amounts in different currencies are never added together.
"""

from __future__ import annotations

import re
from decimal import Decimal

from domain.errors import InvalidValue

# Active ISO 4217 codes and their minor units (decimals), from the ISO 4217
# list; codes without a minor unit (precious metals, XDR, test codes) are left
# out: they are not what a customer pays in.


def _codes(text: str) -> list[str]:
    return text.split()


MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        _codes(
            "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV "
            "BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK "
            "DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL "
            "HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL "
            "MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO "
            "NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK "
            "SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
            "UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
        ),
        2,
    ),
    **dict.fromkeys(
        _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_codes("CLF UYW"), 4),
}
CURRENCIES = frozenset(MINOR_UNITS)
# Fifteen digits before the point: more than any deal, and far from numeric's limits.
MAX_WHOLE_DIGITS = 15
_PLAIN_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def currency_code(field: str, code: str) -> str:
    """An ISO 4217 code, in capitals (``eur`` is ``EUR``)."""
    normalised = code.strip().upper()
    if normalised not in CURRENCIES:
        raise InvalidValue(field, f"{code!r} is not an ISO 4217 currency code")
    return normalised


def amount_in(field: str, amount: Decimal | str, currency: str) -> Decimal:
    """A positive amount with no more decimals than ``currency`` has, given as a
    ``Decimal`` or as plain decimal text (``1250.50``: no sign, no exponent),
    kept with exactly the currency's decimals. A float is refused: it cannot
    hold most amounts exactly."""
    if isinstance(amount, str):
        if not _PLAIN_DECIMAL.match(amount):
            raise InvalidValue(
                field, f"{field} must be a positive decimal such as 1250.50: {amount!r}"
            )
        amount = Decimal(amount)
    elif not isinstance(amount, Decimal):
        raise InvalidValue(field, f"{field} must be a decimal, not {type(amount).__name__}")
    if not amount.is_finite() or amount <= 0:
        raise InvalidValue(field, f"{field} must be a positive amount")
    if amount.adjusted() >= MAX_WHOLE_DIGITS:
        raise InvalidValue(
            field, f"{field} has more than {MAX_WHOLE_DIGITS} digits before the point"
        )
    decimals = MINOR_UNITS[currency]
    exact = amount.quantize(Decimal(1).scaleb(-decimals))
    if exact != amount:
        raise InvalidValue(
            field, f"{currency} amounts have at most {decimals} decimals: {amount}"
        )
    return exact


def money_text(amount: Decimal, currency: str) -> str:
    """An exact amount as text, with the currency's decimals (``0.30``, ``1500``)."""
    decimals = MINOR_UNITS.get(currency)
    if decimals is not None:
        exact = amount.quantize(Decimal(1).scaleb(-decimals))
        if exact == amount:
            amount = exact
    return f"{amount:f}"
