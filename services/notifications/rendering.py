"""E-mails from the Jinja2 files in ``templates/``: ``<name>.subject``, ``<name>.txt`` and ``<name>.html``.

Only the HTML part is autoescaped (a customer's name is text everywhere, markup nowhere); the plain
text part is sent as text, where markup is inert. The subject is one header line: any line break or
control character a name brings is folded into a space, so nothing can add a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
NAMES = frozenset(p.stem for p in TEMPLATES.glob("*.subject"))

# ISO 4217 currencies whose minor unit is not the cent; every other one has two decimals
_DECIMALS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX"), 0),
    **dict.fromkeys(("UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def money(amount: int, currency: str) -> str:
    """Minor units as the amount a customer reads: 123456 EUR -> "1,234.56 EUR"."""
    decimals = _DECIMALS.get(currency.upper(), 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "") + f" {currency.upper()}"


def web_url(url: str | None) -> str | None:
    """The URL when it is http(s) with a host, else None: a ``javascript:`` link escapes no escaping."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def one_line(text: str) -> str:
    """Text for a header: control characters and line breaks become one space."""
    return _CONTROL.sub(" ", text).strip()


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["money"] = money
    env.filters["web_url"] = web_url
    return env


def render(name: str, context: dict[str, Any]) -> Rendered:
    """The three parts of template ``name`` over ``context`` (which holds ``shop`` and ``recipient``)."""
    env = environment()
    subject = one_line(env.get_template(f"{name}.subject").render(context))
    return Rendered(
        subject=subject[:250],
        text=env.get_template(f"{name}.txt").render(context).strip() + "\n",
        html=env.get_template(f"{name}.html").render(context),
    )
