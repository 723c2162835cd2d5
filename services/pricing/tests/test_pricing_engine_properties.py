"""Property tests of the money engine: for random carts, rates and promotions the breakdown holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from services.pricing.engine import (
    BP,
    Action,
    ActionType,
    Breakdown,
    Line,
    Promotion,
    Rules,
    ShippingMethod,
    TaxRate,
    allocate,
    div_half_even,
    quote,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
PRODUCTS = [uuid.UUID(int=i) for i in range(1, 6)]
CATEGORIES = [uuid.UUID(int=100 + i) for i in range(1, 4)]

settings.register_profile("pricing", max_examples=300, deadline=None)
settings.load_profile("pricing")


def half_even(value: Fraction) -> int:
    """An independent rounding (decimal's) to check the engine's integer one against."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


lines_st = st.lists(
    st.builds(
        Line,
        product_id=st.sampled_from(PRODUCTS),
        unit_price=st.integers(0, 200_000),
        quantity=st.integers(1, 12),
        category_id=st.one_of(st.none(), st.sampled_from(CATEGORIES)),
    ),
    min_size=1,
    max_size=6,
)
rates_st = st.lists(
    st.builds(
        TaxRate,
        name=st.sampled_from(["VAT", "State", "City"]),
        rate_bp=st.integers(0, 3000),
        applies_to_shipping=st.booleans(),
    ),
    max_size=3,
)
shipping_st = st.one_of(
    st.none(),
    st.builds(
        ShippingMethod,
        id=st.just(uuid.UUID(int=900)),
        name=st.just("Standard"),
        amount=st.integers(0, 3000),
        free_over=st.one_of(st.none(), st.integers(0, 500_000)),
    ),
)


@st.composite
def actions(draw: st.DrawFn) -> Action:
    kind = draw(st.sampled_from(list(ActionType)))
    if kind is ActionType.PERCENT_OFF:
        return Action(kind, value=draw(st.integers(0, BP)))
    if kind is ActionType.AMOUNT_OFF:
        return Action(kind, value=draw(st.integers(0, 500_000)))
    if kind is ActionType.BUY_X_GET_Y:
        return Action(
            kind,
            value=draw(st.sampled_from([BP, 5000, draw(st.integers(0, BP))])),
            buy=draw(st.integers(1, 3)),
            get=draw(st.integers(1, 2)),
        )
    return Action(kind)


@st.composite
def promotions(draw: st.DrawFn, code: str | None = None) -> Promotion:
    scope = draw(st.sampled_from(["all", "products", "categories"]))
    rules = Rules(
        min_subtotal=draw(st.one_of(st.none(), st.integers(0, 300_000))),
        product_ids=frozenset(draw(st.sets(st.sampled_from(PRODUCTS), min_size=1)))
        if scope == "products"
        else frozenset(),
        category_ids=frozenset(draw(st.sets(st.sampled_from(CATEGORIES), min_size=1)))
        if scope == "categories"
        else frozenset(),
        first_order_only=draw(st.booleans()),
        starts_at=draw(st.sampled_from([None, NOW - timedelta(days=1), NOW + timedelta(days=1)])),
        ends_at=draw(st.sampled_from([None, NOW + timedelta(days=1), NOW])),
        usage_limit=draw(st.one_of(st.none(), st.integers(0, 3))),
    )
    return Promotion(
        id=uuid.uuid4(),
        name=f"promo {draw(st.integers(0, 999))}",
        action=draw(actions()),
        rules=rules,
        code=code,
        stackable=draw(st.booleans()),
        times_used=draw(st.integers(0, 2)),
    )


def assert_adds_up(b: Breakdown) -> None:
    assert b.subtotal == sum(ln.subtotal for ln in b.lines)
    assert b.discount_total == sum(d.amount for d in b.discounts)
    ship_discount = b.shipping_method.discount if b.shipping_method else 0
    ship_tax = b.shipping_method.tax if b.shipping_method else 0
    assert b.discount_total == sum(ln.discount for ln in b.lines) + ship_discount
    assert b.tax_total == sum(t.amount for t in b.tax_lines) == sum(ln.tax for ln in b.lines) + ship_tax
    assert b.shipping_total == (b.shipping_method.amount if b.shipping_method else 0)
    taxed_on_top = 0 if b.prices_include_tax else b.tax_total
    assert b.total == b.subtotal - b.discount_total + b.shipping_total + taxed_on_top
    shipping_part = b.shipping_total - ship_discount + (0 if b.prices_include_tax else ship_tax)
    assert b.total == sum(ln.total for ln in b.lines) + shipping_part
    for ln in b.lines:
        assert ln.subtotal == ln.unit_price * ln.quantity
        assert ln.total == ln.subtotal - ln.discount + (0 if b.prices_include_tax else ln.tax)


def assert_nothing_negative(b: Breakdown) -> None:
    amounts = [b.subtotal, b.discount_total, b.shipping_total, b.tax_total, b.total]
    amounts += [d.amount for d in b.discounts] + [t.amount for t in b.tax_lines]
    for ln in b.lines:
        amounts += [ln.discount, ln.tax, ln.total, ln.subtotal - ln.discount]
    if b.shipping_method:
        s = b.shipping_method
        amounts += [s.amount, s.discount, s.tax, s.amount - s.discount]
    assert min(amounts) >= 0, amounts


@given(
    lines=lines_st,
    rates=rates_st,
    shipping=shipping_st,
    inclusive=st.booleans(),
    automatic=st.lists(promotions(), max_size=4),
    coupon=st.one_of(st.none(), promotions(code="SAVE")),
    first_order=st.booleans(),
)
def test_parts_add_up_to_the_total_and_nothing_is_negative(
    lines: list[Line],
    rates: list[TaxRate],
    shipping: ShippingMethod | None,
    inclusive: bool,
    automatic: list[Promotion],
    coupon: Promotion | None,
    first_order: bool,
) -> None:
    q = quote(
        lines=lines,
        currency="EUR",
        now=NOW,
        shipping=shipping,
        tax_rates=rates,
        prices_include_tax=inclusive,
        automatic=automatic,
        coupon=coupon,
        first_order=first_order,
    )
    assert_adds_up(q.breakdown)
    assert_nothing_negative(q.breakdown)
    if coupon is not None:
        applied = any(d.promotion_id == coupon.id for d in q.breakdown.discounts)
        assert applied != (q.coupon_rejection is not None), "a coupon either applies or says why not"


@given(
    lines=lines_st,
    rates=rates_st,
    shipping=shipping_st,
    inclusive=st.booleans(),
    automatic=st.lists(promotions(), max_size=4),
    first_order=st.booleans(),
)
def test_tax_is_rounded_half_even_once_per_line(
    lines: list[Line],
    rates: list[TaxRate],
    shipping: ShippingMethod | None,
    inclusive: bool,
    automatic: list[Promotion],
    first_order: bool,
) -> None:
    b = quote(
        lines=lines,
        currency="EUR",
        now=NOW,
        shipping=shipping,
        tax_rates=rates,
        prices_include_tax=inclusive,
        automatic=automatic,
        first_order=first_order,
    ).breakdown
    combined = sum(r.rate_bp for r in rates)
    for ln in b.lines:
        taxable = ln.subtotal - ln.discount
        if inclusive:
            expected = taxable - half_even(Fraction(taxable * BP, BP + combined))
        else:
            expected = half_even(Fraction(taxable * combined, BP))
        assert ln.tax == expected


@given(lines=lines_st, rate_bp=st.integers(0, BP), inclusive=st.booleans())
def test_percent_off_is_rounded_half_even_per_line(lines: list[Line], rate_bp: int, inclusive: bool) -> None:
    promo = Promotion(id=uuid.uuid4(), name="Sale", action=Action(ActionType.PERCENT_OFF, value=rate_bp))
    b = quote(lines=lines, currency="EUR", now=NOW, automatic=[promo], prices_include_tax=inclusive).breakdown
    for ln in b.lines:
        assert ln.discount == half_even(Fraction(ln.subtotal * rate_bp, BP))


@given(lines=lines_st, rates=rates_st, shipping=shipping_st)
def test_tax_inclusive_and_exclusive_agree_on_the_same_gross(
    lines: list[Line], rates: list[TaxRate], shipping: ShippingMethod | None
) -> None:
    net = quote(lines=lines, currency="EUR", now=NOW, shipping=shipping, tax_rates=rates).breakdown
    # the same goods priced gross: each line (and the shipping) at what the customer pays for it
    gross_lines = [Line(product_id=ln.product_id, unit_price=ln.total, quantity=1) for ln in net.lines]
    gross_shipping = None
    if shipping is not None and net.shipping_method is not None:
        s = net.shipping_method
        gross_shipping = ShippingMethod(id=s.id, name=s.name, amount=s.amount + s.tax)
    gross = quote(
        lines=gross_lines,
        currency="EUR",
        now=NOW,
        shipping=gross_shipping,
        tax_rates=rates,
        prices_include_tax=True,
    ).breakdown
    assert gross.total == net.total
    assert gross.tax_total == net.tax_total
    assert gross.tax_lines == net.tax_lines
    assert [ln.tax for ln in gross.lines] == [ln.tax for ln in net.lines]


@given(
    lines=lines_st,
    shipping=shipping_st,
    automatic=st.lists(promotions(), min_size=1, max_size=4),
    first_order=st.booleans(),
)
def test_the_customer_gets_at_least_the_best_single_promotion(
    lines: list[Line], shipping: ShippingMethod | None, automatic: list[Promotion], first_order: bool
) -> None:
    best = quote(
        lines=lines, currency="EUR", now=NOW, shipping=shipping, automatic=automatic, first_order=first_order
    ).breakdown
    for promo in automatic:
        alone = quote(
            lines=lines,
            currency="EUR",
            now=NOW,
            shipping=shipping,
            automatic=[promo],
            first_order=first_order,
        ).breakdown
        assert best.discount_total >= alone.discount_total


@given(
    lines=lines_st,
    rates=rates_st,
    shipping=shipping_st,
    automatic=st.lists(promotions(), max_size=4),
    inclusive=st.booleans(),
    data=st.data(),
)
def test_the_order_promotions_are_listed_in_changes_nothing(
    lines: list[Line],
    rates: list[TaxRate],
    shipping: ShippingMethod | None,
    automatic: list[Promotion],
    inclusive: bool,
    data: st.DataObject,
) -> None:
    shuffled = data.draw(st.permutations(automatic))
    first = quote(
        lines=lines,
        currency="EUR",
        now=NOW,
        shipping=shipping,
        tax_rates=rates,
        prices_include_tax=inclusive,
        automatic=automatic,
        first_order=True,
    )
    second = quote(
        lines=lines,
        currency="EUR",
        now=NOW,
        shipping=shipping,
        tax_rates=rates,
        prices_include_tax=inclusive,
        automatic=shuffled,
        first_order=True,
    )
    assert first == second


@given(amount=st.integers(0, 10**9), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_allocation_is_exact_and_no_share_exceeds_its_weight(amount: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        amount = 0
    amount = min(amount, sum(weights))
    shares = allocate(amount, weights)
    assert sum(shares) == amount
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))
    # largest remainder: every share is within one unit of its exact proportion
    total = sum(weights) or 1
    assert all(abs(Fraction(amount * w, total) - s) < 1 for s, w in zip(shares, weights, strict=True))


@given(numerator=st.integers(0, 10**12), denominator=st.integers(1, 10**6))
def test_div_half_even_matches_decimal(numerator: int, denominator: int) -> None:
    assert div_half_even(numerator, denominator) == half_even(Fraction(numerator, denominator))
