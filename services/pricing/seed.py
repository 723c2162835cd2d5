"""``python -m services.pricing seed``: a sensible default for a fresh shop, so a first checkout has
shipping, tax and a coupon to try: one zone for the shop's country with a flat and a free-over
method, one tax rate, one demo coupon. A pricing that holds any zone, rate or promotion is left alone.

Written through the same service functions as the admin API, so the events go out as for any change.
"""

from __future__ import annotations

import argparse

import pycountry
import sqlalchemy as sa

from libs.common.db import Database, migrate
from services.pricing import service
from services.pricing.models import Promotion, ShippingZone, TaxRate
from services.pricing.schemas import PromotionCreate, ShippingZoneCreate, TaxRateCreate
from services.pricing.settings import PricingSettings

DEMO_COUPON = "WELCOME10"


async def seed(
    settings: PricingSettings, *, country: str = "US", tax_name: str = "Sales tax", tax_bp: int = 800
) -> str | None:
    """Seed the defaults into an empty pricing; the demo coupon's code while it is live (seeded now
    or before), None when the shop's own configuration has no such coupon."""
    from services.pricing.app import MIGRATIONS

    await migrate(settings.db_url, MIGRATIONS)
    db = Database(settings.db_url, pool_size=1)
    currency = settings.default_currency
    try:
        async with db.session() as session:
            configured = [
                sa.exists().select_from(ShippingZone),
                sa.exists().select_from(TaxRate),
                sa.exists().where(Promotion.deleted_at.is_(None)),
            ]
            for held in configured:
                if (await session.execute(sa.select(held))).scalar_one():
                    demo = (
                        await session.execute(
                            sa.select(Promotion.id).where(
                                Promotion.code == DEMO_COUPON,
                                Promotion.deleted_at.is_(None),
                                Promotion.is_active,
                            )
                        )
                    ).first()
                    return DEMO_COUPON if demo is not None else None
            await session.commit()
            place = pycountry.countries.get(alpha_2=country.upper())
            name = place.name if place is not None else country.upper()
            await service.create_zone(
                session=session,
                data=ShippingZoneCreate.model_validate(
                    {
                        "name": name,
                        "countries": [country],
                        "methods": [
                            {
                                "name": "Standard",
                                "amount": 499,
                                "currency": currency,
                                "free_over": 5_000,
                                "estimate": {"min_days": 3, "max_days": 5},
                            },
                            {
                                "name": "Express",
                                "amount": 1_499,
                                "currency": currency,
                                "estimate": {"min_days": 1, "max_days": 2},
                            },
                        ],
                    }
                ),
            )
            await service.create_rate(
                session=session,
                data=TaxRateCreate.model_validate(
                    {"name": tax_name, "country": country, "rate_bp": tax_bp, "applies_to_shipping": False}
                ),
            )
            await service.create_promotion(
                session=session,
                default_currency=currency,
                data=PromotionCreate.model_validate(
                    {
                        "name": "Welcome: 10% off a first order",
                        "code": DEMO_COUPON,
                        "rules": {"first_order_only": True, "usage_limit_per_customer": 1},
                        "action": {"type": "percent_off", "value": 1_000},
                    }
                ),
            )
    finally:
        await db.dispose()
    return DEMO_COUPON


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--country", default="US", help="the shop's country, ISO 3166-1 alpha-2 (default US)")
    parser.add_argument("--tax-name", default="Sales tax")
    parser.add_argument("--tax-bp", type=int, default=800, help="the tax rate in basis points (800 = 8%%)")


async def run(settings: PricingSettings, args: argparse.Namespace) -> None:
    code = await seed(settings, country=args.country, tax_name=args.tax_name, tax_bp=args.tax_bp)
    print(
        f"pricing: demo coupon {code}" if code else "pricing already configured (no demo coupon); left alone"
    )
