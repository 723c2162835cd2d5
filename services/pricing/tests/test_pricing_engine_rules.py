"""Every promotion rule and action of the engine, alone and stacked, on carts a shopper would build."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.pricing.engine import (
    Action,
    ActionType,
    Line,
    Promotion,
    RejectionReason,
    Rules,
    ShippingMethod,
    TaxRate,
    quote,
    rate_applies,
    zone_covers,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SHIRT, MUG, HAT = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
CLOTHING, SHIRTS, KITCHEN = uuid.UUID(int=101), uuid.UUID(int=102), uuid.UUID(int=103)
STANDARD = ShippingMethod(id=uuid.UUID(int=900), name="Standard", amount=490, free_over=10_000)


def cart() -> list[Line]:
    return [
        Line(
            product_id=SHIRT,
            unit_price=2_999,
            quantity=2,
            category_id=SHIRTS,
            ancestor_category_ids=frozenset({CLOTHING}),
        ),
        Line(product_id=MUG, unit_price=1_250, quantity=1, category_id=KITCHEN),
    ]  # subtotal 7248


def promo(
    action: Action, *, code: str | None = None, stackable: bool = False, name: str = "Promo", **rules: object
) -> Promotion:
    return Promotion(
        id=uuid.uuid4(),
        name=name,
        action=action,
        rules=Rules(**rules),  # type: ignore[arg-type]
        code=code,
        stackable=stackable,
    )


def percent(bp: int, **kw: object) -> Promotion:
    return promo(Action(ActionType.PERCENT_OFF, value=bp), **kw)  # type: ignore[arg-type]


def test_a_plain_cart_is_its_subtotal_plus_shipping_and_tax() -> None:
    b = quote(
        lines=cart(),
        currency="EUR",
        now=NOW,
        shipping=STANDARD,
        tax_rates=[TaxRate("VAT", 1900, applies_to_shipping=True)],
    ).breakdown
    assert (b.subtotal, b.discount_total, b.shipping_total) == (7_248, 0, 490)
    # 5998 * 19% = 1139.62 -> 1140; 1250 * 19% = 237.5 -> 238 (half-even); 490 * 19% = 93.1 -> 93
    assert [ln.tax for ln in b.lines] == [1_140, 238]
    assert b.shipping_method is not None and b.shipping_method.tax == 93
    assert b.tax_total == 1_471 and b.total == 7_248 + 490 + 1_471
    assert b.as_dict()["tax_lines"] == [{"name": "VAT", "rate": 1900, "amount": 1_471}]


def test_tax_on_shipping_only_where_the_rate_says_so() -> None:
    b = quote(
        lines=cart(),
        currency="EUR",
        now=NOW,
        shipping=STANDARD,
        tax_rates=[TaxRate("VAT", 1900), TaxRate("Shipping levy", 1000, applies_to_shipping=True)],
    ).breakdown
    assert b.shipping_method is not None and b.shipping_method.tax == 49
    # each line's tax is rounded once at the combined 29% and split 19:10 by largest remainder:
    # 5998 -> 1739 = 1139 + 600, 1250 -> 362 (362.5, half-even) = 237 + 125; shipping 490 -> 49
    assert [t.amount for t in b.tax_lines] == [1_139 + 237, 600 + 125 + 49]


def test_tax_inclusive_prices_hold_the_tax_inside_the_total() -> None:
    lines = [Line(product_id=SHIRT, unit_price=11_900, quantity=1)]
    b = quote(
        lines=lines, currency="EUR", now=NOW, tax_rates=[TaxRate("VAT", 1900)], prices_include_tax=True
    ).breakdown
    assert (b.total, b.tax_total) == (11_900, 1_900)


def test_percent_off_covers_only_the_products_in_scope() -> None:
    b = quote(
        lines=cart(), currency="EUR", now=NOW, automatic=[percent(1000, product_ids=frozenset({MUG}))]
    ).breakdown
    assert [ln.discount for ln in b.lines] == [0, 125]


def test_a_category_in_scope_covers_its_sub_categories() -> None:
    b = quote(
        lines=cart(), currency="EUR", now=NOW, automatic=[percent(2500, category_ids=frozenset({CLOTHING}))]
    ).breakdown
    assert [ln.discount for ln in b.lines] == [1_500, 0]  # 5998 * 25% = 1499.5 -> 1500 (half-even)


def test_amount_off_is_spread_over_the_lines_by_largest_remainder() -> None:
    b = quote(
        lines=cart(), currency="EUR", now=NOW, automatic=[promo(Action(ActionType.AMOUNT_OFF, value=1_000))]
    ).breakdown
    # 1000 * 5998/7248 = 827.5 -> 828 (largest remainder), 1000 * 1250/7248 = 172.5 -> 172
    assert [ln.discount for ln in b.lines] == [828, 172]
    assert b.discount_total == 1_000


def test_amount_off_never_exceeds_what_the_eligible_lines_cost() -> None:
    b = quote(
        lines=cart(),
        currency="EUR",
        now=NOW,
        shipping=STANDARD,
        automatic=[promo(Action(ActionType.AMOUNT_OFF, value=5_000), product_ids=frozenset({MUG}))],
    ).breakdown
    assert [ln.discount for ln in b.lines] == [0, 1_250]
    assert b.total == 5_998 + 490


def test_free_shipping_discounts_the_shipping_charge() -> None:
    b = quote(
        lines=cart(),
        currency="EUR",
        now=NOW,
        shipping=STANDARD,
        automatic=[promo(Action(ActionType.FREE_SHIPPING), name="Free shipping")],
    ).breakdown
    assert b.shipping_total == 490 and b.discount_total == 490 and b.total == 7_248
    assert [d.label for d in b.discounts] == ["Free shipping"]


def test_a_method_is_free_at_or_above_its_threshold() -> None:
    at = [Line(product_id=SHIRT, unit_price=10_000, quantity=1)]
    below = [Line(product_id=SHIRT, unit_price=9_999, quantity=1)]
    assert quote(lines=at, currency="EUR", now=NOW, shipping=STANDARD).breakdown.shipping_total == 0
    assert quote(lines=below, currency="EUR", now=NOW, shipping=STANDARD).breakdown.shipping_total == 490


def test_buy_two_get_one_makes_the_cheapest_unit_free() -> None:
    lines = [
        Line(product_id=SHIRT, unit_price=3_000, quantity=2),
        Line(product_id=HAT, unit_price=1_000, quantity=1),
    ]
    b = quote(
        lines=lines,
        currency="EUR",
        now=NOW,
        automatic=[promo(Action(ActionType.BUY_X_GET_Y, value=10_000, buy=2, get=1))],
    ).breakdown
    assert [ln.discount for ln in b.lines] == [0, 1_000]


def test_buy_x_get_y_can_give_a_share_off_instead_of_free() -> None:
    lines = [Line(product_id=SHIRT, unit_price=3_000, quantity=4)]
    b = quote(
        lines=lines,
        currency="EUR",
        now=NOW,
        automatic=[promo(Action(ActionType.BUY_X_GET_Y, value=5_000, buy=1, get=1))],
    ).breakdown
    assert b.discount_total == 3_000  # two of four units at half price


def test_a_coupon_below_its_minimum_says_by_how_much() -> None:
    coupon = percent(1000, code="TEN", min_subtotal=10_000)
    q = quote(lines=cart(), currency="EUR", now=NOW, coupon=coupon)
    assert q.coupon_rejection is not None
    assert q.coupon_rejection.reason is RejectionReason.MINIMUM_NOT_MET
    assert q.coupon_rejection.shortfall == 2_752
    assert "27.52 EUR" in q.coupon_rejection.detail
    assert q.breakdown.discount_total == 0


@pytest.mark.parametrize(
    ("rules", "reason", "used", "first_order"),
    [
        ({"starts_at": NOW + timedelta(hours=1)}, RejectionReason.NOT_STARTED, (0, 0), True),
        ({"ends_at": NOW}, RejectionReason.EXPIRED, (0, 0), True),
        ({"usage_limit": 50}, RejectionReason.USED_UP, (50, 0), True),
        ({"usage_limit_per_customer": 1}, RejectionReason.USED_UP_BY_CUSTOMER, (3, 1), True),
        ({"first_order_only": True}, RejectionReason.FIRST_ORDER_ONLY, (0, 0), False),
        ({"product_ids": frozenset({HAT})}, RejectionReason.NOT_FOR_THESE_ITEMS, (0, 0), True),
    ],
)
def test_a_coupon_that_does_not_apply_says_why(
    rules: dict[str, object], reason: RejectionReason, used: tuple[int, int], first_order: bool
) -> None:
    coupon = Promotion(
        id=uuid.uuid4(),
        name="Ten",
        code="TEN",
        action=Action(ActionType.PERCENT_OFF, value=1000),
        rules=Rules(**rules),  # type: ignore[arg-type]
        times_used=used[0],
        times_used_by_customer=used[1],
    )
    q = quote(lines=cart(), currency="EUR", now=NOW, coupon=coupon, first_order=first_order)
    assert q.coupon_rejection is not None and q.coupon_rejection.reason is reason
    assert q.breakdown.discount_total == 0


def test_a_coupon_within_every_rule_applies() -> None:
    coupon = Promotion(
        id=uuid.uuid4(),
        name="Welcome",
        code="WELCOME",
        action=Action(ActionType.PERCENT_OFF, value=1000),
        rules=Rules(
            starts_at=NOW - timedelta(days=1),
            ends_at=NOW + timedelta(days=1),
            usage_limit=50,
            usage_limit_per_customer=1,
            first_order_only=True,
            min_subtotal=7_248,
        ),
        times_used=49,
    )
    q = quote(lines=cart(), currency="EUR", now=NOW, coupon=coupon, first_order=True)
    assert q.coupon_rejection is None
    assert [(d.code, d.amount) for d in q.breakdown.discounts] == [("WELCOME", 725)]


def test_buy_x_get_y_short_of_units_says_how_many_more() -> None:
    coupon = promo(Action(ActionType.BUY_X_GET_Y, value=10_000, buy=3, get=1), code="B3G1")
    q = quote(lines=cart(), currency="EUR", now=NOW, coupon=coupon)
    assert q.coupon_rejection is not None and q.coupon_rejection.reason is RejectionReason.QUANTITY_NOT_MET
    assert q.coupon_rejection.shortfall == 1


def test_stackable_promotions_and_coupon_all_apply_in_a_fixed_order() -> None:
    sale = percent(1000, stackable=True, name="Summer sale")
    ship = promo(Action(ActionType.FREE_SHIPPING), stackable=True, name="Free shipping")
    coupon = promo(Action(ActionType.AMOUNT_OFF, value=500), code="FIVE", stackable=True, name="Five off")
    q = quote(lines=cart(), currency="EUR", now=NOW, shipping=STANDARD, automatic=[ship, sale], coupon=coupon)
    b = q.breakdown
    assert q.coupon_rejection is None
    # 10% first (600 + 125), then 5.00 off what is left (6523), then the shipping
    assert [(d.label, d.amount) for d in b.discounts] == [
        ("Summer sale", 725),
        ("Five off", 500),
        ("Free shipping", 490),
    ]
    assert b.total == 7_248 + 490 - 725 - 500 - 490


def test_among_promotions_that_do_not_stack_the_customer_gets_the_best() -> None:
    small = percent(500, name="5%")
    big = percent(2000, name="20%")
    stack = [
        percent(500, stackable=True, name="5% stackable"),
        percent(500, stackable=True, name="another 5%"),
    ]
    b = quote(lines=cart(), currency="EUR", now=NOW, automatic=[small, big, *stack]).breakdown
    assert [d.label for d in b.discounts] == ["20%"]


def test_a_coupon_beaten_by_a_better_promotion_says_it_does_not_combine() -> None:
    big = percent(2000, name="20% automatic")
    coupon = percent(1000, code="TEN", name="Ten")
    q = quote(lines=cart(), currency="EUR", now=NOW, automatic=[big], coupon=coupon)
    assert q.coupon_rejection is not None and q.coupon_rejection.reason is RejectionReason.NOT_COMBINABLE
    assert [d.label for d in q.breakdown.discounts] == ["20% automatic"]


def test_on_a_tie_the_coupon_the_customer_typed_wins() -> None:
    auto = percent(1000, name="automatic")
    coupon = percent(1000, code="TEN", name="Ten")
    q = quote(lines=cart(), currency="EUR", now=NOW, automatic=[auto], coupon=coupon)
    assert q.coupon_rejection is None and [d.code for d in q.breakdown.discounts] == ["TEN"]


def test_a_coupon_code_is_never_applied_automatically() -> None:
    coupon_like = percent(1000, code="TEN")
    assert quote(lines=cart(), currency="EUR", now=NOW, automatic=[coupon_like]).breakdown.discount_total == 0


def test_discounts_are_taxed_on_what_is_left() -> None:
    b = quote(
        lines=cart(), currency="EUR", now=NOW, tax_rates=[TaxRate("VAT", 2000)], automatic=[percent(5000)]
    ).breakdown
    assert [ln.tax for ln in b.lines] == [600, 125]


def test_zones_match_country_then_region_then_postal_prefix() -> None:
    assert zone_covers(countries=["DE", "AT"], country="at")
    assert not zone_covers(countries=["DE"], country="FR")
    assert zone_covers(countries=["US"], regions=["CA", "OR"], country="US", region="ca")
    assert not zone_covers(countries=["US"], regions=["CA"], country="US", region="NY")
    assert zone_covers(countries=["GB"], postal_prefixes=["SW1A"], country="GB", postal_code="sw1a 1aa")
    assert not zone_covers(countries=["GB"], postal_prefixes=["SW1A"], country="GB", postal_code=None)


def test_a_country_rate_applies_across_the_country_and_a_region_rate_only_there() -> None:
    assert rate_applies(rate_country="CA", rate_region=None, country="ca", region="QC")
    assert rate_applies(rate_country="CA", rate_region="ON", country="CA", region="on")
    assert not rate_applies(rate_country="CA", rate_region="ON", country="CA", region="QC")
    assert not rate_applies(rate_country="CA", rate_region="ON", country="CA", region=None)
    assert not rate_applies(rate_country="CA", rate_region=None, country="US", region=None)
