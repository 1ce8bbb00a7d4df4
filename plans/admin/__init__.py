"""Catalog admin: billable metrics, taxes, add-ons and coupons (catalog), plans (plan editor)."""

from plans.admin import catalog, plans  # noqa: F401
