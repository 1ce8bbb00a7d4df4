"""The catalog's vocabularies, defined once for the models (field `choices`), the pure pricing
layer (`plans.charge_models`) and the apps on the right (event store, invoice math).

No ORM here: Django's `TextChoices` are plain `str` enums with a label, so a member equals its
value (`AggregationType.SUM == "sum_agg"`) wherever a raw string is still compared.
"""

from __future__ import annotations

from django.db.models.enums import TextChoices
from django.utils.translation import gettext_lazy as _


class AggregationType(TextChoices):
    """How a billable metric aggregates its events (spec §4.1)."""

    COUNT = "count_agg", _("Count")
    SUM = "sum_agg", _("Sum")
    MAX = "max_agg", _("Max")
    UNIQUE_COUNT = "unique_count_agg", _("Unique count")
    WEIGHTED_SUM = "weighted_sum_agg", _("Weighted sum")
    LATEST = "latest_agg", _("Latest")


class RoundingFunction(TextChoices):
    """How a billable metric rounds its aggregated units (spec §4.4)."""

    CEIL = "ceil", _("Ceil")
    FLOOR = "floor", _("Floor")
    ROUND = "round", _("Round")


class ChargeModel(TextChoices):
    """How a usage charge prices its units (spec §7)."""

    STANDARD = "standard", _("Standard")
    GRADUATED = "graduated", _("Graduated")
    GRADUATED_PERCENTAGE = "graduated_percentage", _("Graduated percentage")
    PACKAGE = "package", _("Package")
    PERCENTAGE = "percentage", _("Percentage")
    VOLUME = "volume", _("Volume")
    DYNAMIC = "dynamic", _("Dynamic")


class FixedChargeModel(TextChoices):
    """How a fixed charge prices its quantity (spec §8)."""

    STANDARD = "standard", _("Standard")
    GRADUATED = "graduated", _("Graduated")
    VOLUME = "volume", _("Volume")


class CouponType(TextChoices):
    """What a coupon takes off: a fixed amount or a percentage (spec §15.1)."""

    FIXED_AMOUNT = "fixed_amount", _("Fixed amount")
    PERCENTAGE = "percentage", _("Percentage")


class CouponFrequency(TextChoices):
    """How many invoices a coupon applies to (spec §15.1)."""

    ONCE = "once", _("Once")
    RECURRING = "recurring", _("Recurring")
    FOREVER = "forever", _("Forever")
