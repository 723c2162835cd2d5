"""Pricing: promotions and coupon codes, shipping zones and methods, tax rates, and the quote."""
