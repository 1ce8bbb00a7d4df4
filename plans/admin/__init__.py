"""Catalog admin: billable metrics, taxes, add-ons and coupons (catalog), plans (plan editor),
features and entitlements."""

from plans.admin import catalog, entitlements, plans  # noqa: F401
