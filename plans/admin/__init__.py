"""Catalog admin: billable metrics, taxes, add-ons and coupons (catalog), plans (plan editor)."""

from importlib import import_module
from importlib.util import find_spec

for _module in ("plans.admin.catalog", "plans.admin.plans"):
    if find_spec(_module):
        import_module(_module)
