"""The one address shape of DESIGN.md section 10, shared by auth's address book, orders and pricing.

It lives in contracts, not in libs/common: it is a wire shape parts exchange (auth answers it,
orders stores it, pricing reads it), not a facility of the service kernel. Countries are checked
against pycountry's ISO 3166-1 table, as pricing does, because a pattern alone takes "XX".
"""

from __future__ import annotations

import uuid
from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


def iso_country(value: str) -> str:
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US)")
    return code


Country = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2), AfterValidator(iso_country)
]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Address(BaseModel):
    """What a client writes: the fields every part agrees on, nothing else."""

    model_config = ConfigDict(extra="forbid")

    name: _Text
    line1: _Text
    line2: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    city: _Short
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    country: Country
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()./-]{5,24}$")] | None
    ) = None


class SavedAddress(BaseModel):
    """An address-book entry as auth answers it.

    Read leniently on purpose: an entry converted from a first-wave profile whose country was not
    a real ISO code is shown as it was stored (never lost, never a 500) until its owner edits it.
    """

    id: uuid.UUID
    is_default: bool
    name: str
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str
    phone: str | None = None
