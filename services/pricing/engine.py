"""The money engine: lines, a shipping method, tax rates and promotions in, one breakdown out.

Pure and synchronous on purpose: no database, no clock, no I/O. The service loads what applies
(the zone's method, the address's rates, live promotions with their usage counts) and hands it
here; the same inputs always give the same breakdown, which is what lets an order store the
answer instead of recomputing it later.

Decisions (DESIGN.md section 10 leaves them open; these follow what Saleor and Shopify do):
- Amounts are integers in minor units, rates basis points. Every rounding is half-even and
  happens once per line (a percentage of a line, a line's tax), never on the order as a whole.
- A fixed amount off the order is spread over the eligible lines by largest remainder, so every
  line carries its exact share of every discount and a later partial refund can follow it.
- Promotions in one stack apply in a fixed order (buy X get Y, percent off, amount off, free
  shipping), each to what the earlier ones left, so no line ever goes below zero.
- Stacking: the candidates are the automatic promotions whose rules pass plus the coupon. All
  stackable candidates combine into one offer; a non-stackable candidate is an offer alone; the
  customer gets the offer that saves the most (ties go to the one with the coupon in it).
- Free shipping "at or above" a method's threshold compares the subtotal before discounts, so a
  promotion never costs the customer the free shipping they had (and the best offer is simply
  the one that saves the most).
- Tax: every rate that matches the address applies (a country rate and a region rate add up,
  like GST and PST). A line's tax is rounded once at the combined rate and split over the rates
  by largest remainder; computed that way, tax-inclusive and tax-exclusive prices agree on the
  same gross to the cent.
- With tax-exclusive prices `total = subtotal - discount_total + shipping_total + tax_total`;
  with tax-inclusive prices the tax is already inside, so `total = subtotal - discount_total +
  shipping_total` and `tax_total` says how much of it is tax.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

BP = 10_000  # basis points in one whole


class ActionType(StrEnum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    FREE_SHIPPING = "free_shipping"
    BUY_X_GET_Y = "buy_x_get_y"


class RejectionReason(StrEnum):
    """Why a coupon does not apply; each has a sentence a shopper can act on."""

    NOT_STARTED = "not_started"
    EXPIRED = "expired"
    USED_UP = "used_up"
    USED_UP_BY_CUSTOMER = "used_up_by_customer"
    FIRST_ORDER_ONLY = "first_order_only"
    NOT_FOR_THESE_ITEMS = "not_for_these_items"
    MINIMUM_NOT_MET = "minimum_not_met"
    QUANTITY_NOT_MET = "quantity_not_met"
    NOT_COMBINABLE = "not_combinable"


# Order in which the actions of one stack apply: item-level freebies first, then percentages
# of what is left, then fixed amounts, then shipping (which no line discount touches).
_ACTION_ORDER = {
    ActionType.BUY_X_GET_Y: 0,
    ActionType.PERCENT_OFF: 1,
    ActionType.AMOUNT_OFF: 2,
    ActionType.FREE_SHIPPING: 3,
}


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One cart or order line at the price catalog gives (tax included or not, per the shop)."""

    product_id: UUID
    unit_price: int
    quantity: int
    variant_id: UUID | None = None
    category_id: UUID | None = None
    # the category's ancestors, so a promotion on "Clothing" covers "Clothing > Shirts"
    ancestor_category_ids: frozenset[UUID] = frozenset()

    def __post_init__(self) -> None:
        if self.unit_price < 0:
            raise ValueError("unit_price must not be negative")
        if self.quantity < 1:
            raise ValueError("quantity must be at least 1")

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class ShippingMethod:
    id: UUID
    name: str
    amount: int
    free_over: int | None = None  # free when the subtotal (before discounts) reaches this amount

    def __post_init__(self) -> None:
        if self.amount < 0 or (self.free_over is not None and self.free_over < 0):
            raise ValueError("shipping amounts must not be negative")

    def charge_for(self, subtotal: int) -> int:
        """What this method costs for goods worth `subtotal` (before discounts)."""
        if self.free_over is not None and subtotal >= self.free_over:
            return 0
        return self.amount


@dataclass(frozen=True, slots=True)
class TaxRate:
    name: str
    rate_bp: int
    applies_to_shipping: bool = False

    def __post_init__(self) -> None:
        if self.rate_bp < 0:
            raise ValueError("rate_bp must not be negative")


@dataclass(frozen=True, slots=True)
class Rules:
    min_subtotal: int | None = None
    product_ids: frozenset[UUID] = frozenset()
    category_ids: frozenset[UUID] = frozenset()
    first_order_only: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    usage_limit_per_customer: int | None = None

    def covers(self, line: Line) -> bool:
        """Whether the line is in this promotion's scope (no products or categories: everything)."""
        if not self.product_ids and not self.category_ids:
            return True
        if line.product_id in self.product_ids:
            return True
        cats = set(line.ancestor_category_ids)
        if line.category_id is not None:
            cats.add(line.category_id)
        return not self.category_ids.isdisjoint(cats)


@dataclass(frozen=True, slots=True)
class Action:
    """`value`: basis points for percent_off and for the share off the free units of buy_x_get_y
    (10000, the default there, makes them free); minor units for amount_off."""

    type: ActionType
    value: int = 0
    buy: int = 0
    get: int = 0

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("value must not be negative")
        if self.type in (ActionType.PERCENT_OFF, ActionType.BUY_X_GET_Y) and self.value > BP:
            raise ValueError("a percentage is at most 10000 basis points")
        if self.type is ActionType.BUY_X_GET_Y and (self.buy < 1 or self.get < 1):
            raise ValueError("buy_x_get_y needs buy >= 1 and get >= 1")


@dataclass(frozen=True, slots=True)
class Promotion:
    """A promotion as the engine sees it, with how often it was used so far (in all, and by this
    customer) so the usage rules can be checked without a database."""

    id: UUID
    name: str
    action: Action
    rules: Rules = field(default_factory=Rules)
    code: str | None = None
    stackable: bool = False
    times_used: int = 0
    times_used_by_customer: int = 0

    @property
    def label(self) -> str:
        return self.name


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discount:
    promotion_id: UUID
    code: str | None
    label: str
    amount: int


@dataclass(frozen=True, slots=True)
class ShippingCharge:
    id: UUID
    name: str
    amount: int  # before promotions; a free-shipping promotion shows as a discount
    discount: int
    tax: int


@dataclass(frozen=True, slots=True)
class TaxLine:
    name: str
    rate: int  # basis points
    amount: int


@dataclass(frozen=True, slots=True)
class LineBreakdown:
    """A line's share of everything, so a partial refund can follow the stored breakdown."""

    product_id: UUID
    variant_id: UUID | None
    unit_price: int
    quantity: int
    subtotal: int
    discount: int
    tax: int
    total: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    total: int
    currency: str
    prices_include_tax: bool
    discounts: tuple[Discount, ...]
    shipping_method: ShippingCharge | None
    tax_lines: tuple[TaxLine, ...]
    lines: tuple[LineBreakdown, ...]

    def as_dict(self) -> dict[str, object]:
        """The wire shape of DESIGN.md section 10 (plus `lines` and `prices_include_tax`)."""
        ship = self.shipping_method
        return {
            "subtotal": self.subtotal,
            "discount_total": self.discount_total,
            "shipping_total": self.shipping_total,
            "tax_total": self.tax_total,
            "total": self.total,
            "currency": self.currency,
            "prices_include_tax": self.prices_include_tax,
            "discounts": [
                {"promotion_id": str(d.promotion_id), "code": d.code, "label": d.label, "amount": d.amount}
                for d in self.discounts
            ],
            "shipping_method": None
            if ship is None
            else {
                "id": str(ship.id),
                "name": ship.name,
                "amount": ship.amount,
                "discount": ship.discount,
                "tax": ship.tax,
            },
            "tax_lines": [{"name": t.name, "rate": t.rate, "amount": t.amount} for t in self.tax_lines],
            "lines": [
                {
                    "product_id": str(ln.product_id),
                    "variant_id": None if ln.variant_id is None else str(ln.variant_id),
                    "unit_price": ln.unit_price,
                    "quantity": ln.quantity,
                    "subtotal": ln.subtotal,
                    "discount": ln.discount,
                    "tax": ln.tax,
                    "total": ln.total,
                }
                for ln in self.lines
            ],
        }


@dataclass(frozen=True, slots=True)
class CouponRejection:
    code: str
    reason: RejectionReason
    detail: str
    shortfall: int | None = None  # minor units (minimum_not_met) or units (quantity_not_met)


@dataclass(frozen=True, slots=True)
class Quote:
    breakdown: Breakdown
    coupon_rejection: CouponRejection | None = None


# ---- arithmetic ---------------------------------------------------------------------------------


def div_half_even(numerator: int, denominator: int) -> int:
    """`numerator / denominator` rounded half to even, for a non-negative numerator."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("div_half_even takes a non-negative numerator and a positive denominator")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` in proportion to `weights` exactly (largest remainder; ties to the earlier).

    When `amount <= sum(weights)` no share exceeds its weight, so a discount spread this way
    never takes a line below zero.
    """
    if amount < 0 or any(w < 0 for w in weights):
        raise ValueError("allocate takes non-negative amounts")
    total = sum(weights)
    if total == 0:
        if amount:
            raise ValueError("cannot allocate an amount over zero weights")
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    left = amount - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[i] += 1
    return shares


def money(amount: int, currency: str) -> str:
    """`1234, "EUR"` -> `"12.34 EUR"` for messages (two decimals; the wire keeps minor units)."""
    return f"{amount // 100}.{amount % 100:02d} {currency}"


# ---- address matching ---------------------------------------------------------------------------


def _postal(value: str | None) -> str:
    return "".join((value or "").split()).upper()


def zone_covers(
    *,
    countries: Iterable[str],
    regions: Iterable[str] = (),
    postal_prefixes: Iterable[str] = (),
    country: str,
    region: str | None = None,
    postal_code: str | None = None,
) -> bool:
    """Whether a shipping zone reaches an address. Regions and postal prefixes narrow the zone
    when given; postal codes compare without spaces and case (`"sw1a 1aa"` is in `"SW1A"`)."""
    if country.upper() not in {c.upper() for c in countries}:
        return False
    wanted_regions = {r.casefold() for r in regions}
    if wanted_regions and (region or "").casefold() not in wanted_regions:
        return False
    prefixes = [_postal(p) for p in postal_prefixes]
    return not prefixes or any(_postal(postal_code).startswith(p) for p in prefixes)


def rate_applies(*, rate_country: str, rate_region: str | None, country: str, region: str | None) -> bool:
    """A country-wide rate applies to every address in the country; a region rate only there."""
    if rate_country.upper() != country.upper():
        return False
    return rate_region is None or rate_region.casefold() == (region or "").casefold()


# ---- promotions ---------------------------------------------------------------------------------


def _check_rules(
    promo: Promotion, *, lines: Sequence[Line], currency: str, first_order: bool, now: datetime
) -> CouponRejection | None:
    """The first rule the promotion fails, or None when it applies to these lines."""
    rules, code = promo.rules, promo.code or ""
    if rules.starts_at is not None and now < rules.starts_at:
        return CouponRejection(
            code, RejectionReason.NOT_STARTED, f"This code is valid from {rules.starts_at.isoformat()}."
        )
    if rules.ends_at is not None and now >= rules.ends_at:
        return CouponRejection(
            code, RejectionReason.EXPIRED, f"This code expired at {rules.ends_at.isoformat()}."
        )
    if rules.usage_limit is not None and promo.times_used >= rules.usage_limit:
        return CouponRejection(code, RejectionReason.USED_UP, "This code has been used up.")
    if (
        rules.usage_limit_per_customer is not None
        and promo.times_used_by_customer >= rules.usage_limit_per_customer
    ):
        return CouponRejection(
            code,
            RejectionReason.USED_UP_BY_CUSTOMER,
            "You have already used this code as often as it allows.",
        )
    if rules.first_order_only and not first_order:
        return CouponRejection(code, RejectionReason.FIRST_ORDER_ONLY, "This code is for a first order only.")
    eligible = [ln for ln in lines if rules.covers(ln)]
    if not eligible:
        return CouponRejection(
            code, RejectionReason.NOT_FOR_THESE_ITEMS, "This code does not apply to the items in the cart."
        )
    subtotal = sum(ln.subtotal for ln in lines)
    if rules.min_subtotal is not None and subtotal < rules.min_subtotal:
        short = rules.min_subtotal - subtotal
        return CouponRejection(
            code,
            RejectionReason.MINIMUM_NOT_MET,
            f"Add {money(short, currency)} more to use this code "
            f"(minimum {money(rules.min_subtotal, currency)}).",
            shortfall=short,
        )
    action = promo.action
    if action.type is ActionType.BUY_X_GET_Y:
        units = sum(ln.quantity for ln in eligible)
        group = action.buy + action.get
        if units < group:
            return CouponRejection(
                code,
                RejectionReason.QUANTITY_NOT_MET,
                f"Add {group - units} more eligible item(s): buy {action.buy}, get {action.get}.",
                shortfall=group - units,
            )
    return None


def _buy_x_get_y(
    action: Action, lines: Sequence[Line], eligible: Sequence[int], remaining: list[int]
) -> list[int]:
    """Per-line discount: of every `buy + get` eligible units, the cheapest `get` are (partly) free."""
    free = (sum(lines[i].quantity for i in eligible) // (action.buy + action.get)) * action.get
    out = [0] * len(lines)
    for i in sorted(eligible, key=lambda i: (lines[i].unit_price, i)):
        count = min(free, lines[i].quantity)
        free -= count
        out[i] = min(remaining[i], div_half_even(lines[i].unit_price * count * action.value, BP))
    return out


@dataclass(slots=True)
class _Applied:
    line_discounts: list[int]
    shipping_amount: int
    shipping_discount: int
    discounts: list[Discount]

    @property
    def saving(self) -> int:
        return sum(self.line_discounts) + self.shipping_discount


def _apply(
    promos: Sequence[Promotion],
    *,
    lines: Sequence[Line],
    shipping: ShippingMethod | None,
    keep_zero: UUID | None,
) -> _Applied:
    """Apply one stack of promotions in the engine's fixed order."""
    remaining = [ln.subtotal for ln in lines]
    line_discounts = [0] * len(lines)
    amounts: dict[UUID, int] = {}
    ordered = sorted(promos, key=lambda p: (_ACTION_ORDER[p.action.type], str(p.id)))
    line_level = [p for p in ordered if p.action.type is not ActionType.FREE_SHIPPING]
    for promo in line_level:
        eligible = [i for i, ln in enumerate(lines) if promo.rules.covers(ln)]
        action = promo.action
        cut = [0] * len(lines)
        if action.type is ActionType.PERCENT_OFF:
            for i in eligible:
                cut[i] = div_half_even(remaining[i] * action.value, BP)
        elif action.type is ActionType.AMOUNT_OFF:
            pool = min(action.value, sum(remaining[i] for i in eligible))
            for i, share in zip(eligible, allocate(pool, [remaining[i] for i in eligible]), strict=True):
                cut[i] = share
        elif action.type is ActionType.BUY_X_GET_Y:
            cut = _buy_x_get_y(action, lines, eligible, remaining)
        for i, c in enumerate(cut):
            remaining[i] -= c
            line_discounts[i] += c
        amounts[promo.id] = sum(cut)
    shipping_amount = 0 if shipping is None else shipping.charge_for(sum(ln.subtotal for ln in lines))
    shipping_discount = 0
    for promo in ordered:
        if promo.action.type is ActionType.FREE_SHIPPING:
            cut_ship = shipping_amount - shipping_discount
            shipping_discount += cut_ship
            amounts[promo.id] = cut_ship
    discounts = [
        Discount(p.id, p.code, p.label, amounts[p.id])
        for p in ordered
        if amounts[p.id] > 0 or p.id == keep_zero
    ]
    return _Applied(line_discounts, shipping_amount, shipping_discount, discounts)


def _best_offer(
    candidates: Sequence[Promotion],
    *,
    lines: Sequence[Line],
    shipping: ShippingMethod | None,
    coupon_id: UUID | None,
) -> _Applied:
    stackable = [p for p in candidates if p.stackable]
    # a tie goes to the coupon, then to the stack, then to the lowest id: never to the order of the input
    alone = sorted((p for p in candidates if not p.stackable), key=lambda p: str(p.id))
    offers: list[list[Promotion]] = [stackable] + [[p] for p in alone]
    best: _Applied | None = None
    best_key: tuple[int, int, int] | None = None
    for rank, offer in enumerate(offers):
        applied = _apply(offer, lines=lines, shipping=shipping, keep_zero=coupon_id)
        has_coupon = any(p.id == coupon_id for p in offer)
        key = (applied.saving, int(has_coupon), -rank)
        if best_key is None or key > best_key:
            best, best_key = applied, key
    assert best is not None  # offers always holds the (possibly empty) stackable offer
    return best


# ---- tax ----------------------------------------------------------------------------------------


def _line_tax(amount: int, rates: Sequence[TaxRate], *, inclusive: bool) -> list[int]:
    """Tax on one amount, per rate: rounded once at the combined rate, split by largest remainder."""
    combined = sum(r.rate_bp for r in rates)
    if combined == 0 or amount == 0:
        return [0] * len(rates)
    if inclusive:
        tax = amount - div_half_even(amount * BP, BP + combined)
    else:
        tax = div_half_even(amount * combined, BP)
    return allocate(tax, [r.rate_bp for r in rates])


# ---- the quote ----------------------------------------------------------------------------------


def quote(
    *,
    lines: Sequence[Line],
    currency: str,
    now: datetime,
    shipping: ShippingMethod | None = None,
    tax_rates: Sequence[TaxRate] = (),
    prices_include_tax: bool = False,
    automatic: Sequence[Promotion] = (),
    coupon: Promotion | None = None,
    first_order: bool = False,
) -> Quote:
    """The breakdown for these lines; a coupon that does not apply comes back with its reason."""
    rejection: CouponRejection | None = None
    candidates = [
        p
        for p in automatic
        if p.code is None
        and _check_rules(p, lines=lines, currency=currency, first_order=first_order, now=now) is None
    ]
    coupon_id: UUID | None = None
    if coupon is not None:
        rejection = _check_rules(coupon, lines=lines, currency=currency, first_order=first_order, now=now)
        if rejection is None:
            candidates.append(coupon)
            coupon_id = coupon.id
    applied = _best_offer(candidates, lines=lines, shipping=shipping, coupon_id=coupon_id)
    if (
        coupon is not None
        and coupon_id is not None
        and all(d.promotion_id != coupon_id for d in applied.discounts)
    ):
        rejection = CouponRejection(
            coupon.code or "",
            RejectionReason.NOT_COMBINABLE,
            "A better promotion already applies and this code does not combine with it.",
        )

    ship_rates = [r for r in tax_rates if r.applies_to_shipping]
    line_rows: list[LineBreakdown] = []
    tax_by_rate = [0] * len(tax_rates)
    for ln, disc in zip(lines, applied.line_discounts, strict=True):
        taxable = ln.subtotal - disc
        per_rate = _line_tax(taxable, tax_rates, inclusive=prices_include_tax)
        for k, t in enumerate(per_rate):
            tax_by_rate[k] += t
        tax = sum(per_rate)
        line_rows.append(
            LineBreakdown(
                ln.product_id,
                ln.variant_id,
                ln.unit_price,
                ln.quantity,
                ln.subtotal,
                disc,
                tax,
                taxable + (0 if prices_include_tax else tax),
            )
        )

    charge: ShippingCharge | None = None
    ship_tax = 0
    if shipping is not None:
        ship_taxable = applied.shipping_amount - applied.shipping_discount
        per_rate = _line_tax(ship_taxable, ship_rates, inclusive=prices_include_tax)
        ship_positions = [k for k, r in enumerate(tax_rates) if r.applies_to_shipping]
        for k, t in zip(ship_positions, per_rate, strict=True):
            tax_by_rate[k] += t
        ship_tax = sum(per_rate)
        charge = ShippingCharge(
            shipping.id, shipping.name, applied.shipping_amount, applied.shipping_discount, ship_tax
        )

    subtotal = sum(ln.subtotal for ln in lines)
    discount_total = applied.saving
    shipping_total = applied.shipping_amount
    tax_total = sum(tax_by_rate)
    total = subtotal - discount_total + shipping_total + (0 if prices_include_tax else tax_total)
    breakdown = Breakdown(
        subtotal=subtotal,
        discount_total=discount_total,
        shipping_total=shipping_total,
        tax_total=tax_total,
        total=total,
        currency=currency,
        prices_include_tax=prices_include_tax,
        discounts=tuple(applied.discounts),
        shipping_method=charge,
        tax_lines=tuple(TaxLine(r.name, r.rate_bp, a) for r, a in zip(tax_rates, tax_by_rate, strict=True)),
        lines=tuple(line_rows),
    )
    return Quote(breakdown, rejection)
