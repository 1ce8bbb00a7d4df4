"""The catalog (spec §4, §6, §7, §8, §14, §15.1, §16): data and invariants only."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, SoftDeleteQuerySet, TimeStampedModel
from billing.periods import Interval
from plans.choices import (
    AggregationType,
    ChargeModel,
    CouponFrequency,
    CouponType,
    FixedChargeModel,
    RoundingFunction,
)


class BillableMetric(TimeStampedModel):
    """What is measured from events and how it aggregates (spec §4.1)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    code = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    aggregation_type = models.CharField(max_length=32, choices=AggregationType.choices)
    field_name = models.CharField(max_length=255, null=True, blank=True)
    expression = models.TextField(blank=True, default="")
    recurring = models.BooleanField(default=False)
    rounding_function = models.CharField(
        max_length=8, choices=RoundingFunction.choices, null=True, blank=True
    )
    rounding_precision = models.IntegerField(null=True, blank=True)
    weighted_interval = models.CharField(max_length=16, null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="plans_billablemetric_code_unique",
            ),
            models.CheckConstraint(
                condition=~Q(recurring=True, aggregation_type__in=["count_agg", "max_agg",
                                                                   "latest_agg"]),
                name="plans_billablemetric_recurring_compatible",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class BillableMetricFilter(TimeStampedModel):
    """A dimension declared by a metric: a property key and its allowed values (spec §7.12)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billable_metric = models.ForeignKey(BillableMetric, models.CASCADE, related_name="filters")
    key = models.CharField(max_length=255)
    values = models.JSONField(default=list)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("key",)
        constraints = [
            models.UniqueConstraint(
                fields=["billable_metric", "key"],
                condition=Q(deleted_at__isnull=True),
                name="plans_billablemetricfilter_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {', '.join(map(str, self.values))}"


class Tax(TimeStampedModel):
    """A tax rate attachable to billing entities, customers, plans, charges, add-ons (§14)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    code = models.CharField(max_length=255)
    rate = models.DecimalField(max_digits=12, decimal_places=5)  # percent: 20, 5.5
    description = models.TextField(blank=True, default="")
    applied_to_organization = models.BooleanField(default=False)  # deprecated by Lago

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("name", "id")
        verbose_name_plural = "taxes"
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="plans_tax_code_unique"),
            models.CheckConstraint(condition=Q(rate__gte=0), name="plans_tax_rate_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.rate.normalize():f}%)"


class BillingEntityTax(models.Model):
    """Default taxes of a billing entity (lives here: billing cannot import the catalog)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey(
        "billing.BillingEntity", models.CASCADE, related_name="applied_taxes"
    )
    tax = models.ForeignKey(Tax, models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["billing_entity", "tax"], name="plans_billingentitytax_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.billing_entity} — {self.tax}"


class AddOn(TimeStampedModel):
    """A reusable one-off item: billed by one-off invoices or as a fixed charge (§16)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    code = models.CharField(max_length=255)
    amount_cents = models.BigIntegerField()
    amount_currency = models.CharField(max_length=3)
    description = models.TextField(blank=True, default="")
    taxes = models.ManyToManyField(Tax, blank=True, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "add-on"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="plans_addon_code_unique",
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0), name="plans_addon_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Plan(TimeStampedModel):
    """A price list: subscription fee, charges and fixed charges (spec §6).

    A plan with a `parent` is a hidden per-subscription override of that parent (§6.3).
    """

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    code = models.CharField(max_length=255)
    interval = models.CharField(max_length=16, choices=Interval.choices)
    description = models.TextField(blank=True, default="")
    amount_cents = models.BigIntegerField(default=0)
    amount_currency = models.CharField(max_length=3)
    trial_period = models.DecimalField(max_digits=12, decimal_places=5, default=0)  # days
    pay_in_advance = models.BooleanField(default=False)
    bill_charges_monthly = models.BooleanField(null=True, blank=True)
    bill_fixed_charges_monthly = models.BooleanField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", models.CASCADE, null=True, blank=True, related_name="children"
    )
    taxes = models.ManyToManyField(Tax, blank=True, related_name="+")
    metadata = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True, parent__isnull=True),
                name="plans_plan_code_unique",
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0), name="plans_plan_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(trial_period__gte=0), name="plans_plan_trial_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class MinimumCommitment(TimeStampedModel):
    """The least a plan bills per period; a true-up fee covers the gap (spec §22)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    plan = models.OneToOneField(Plan, models.CASCADE, related_name="minimum_commitment")
    amount_cents = models.BigIntegerField()
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    taxes = models.ManyToManyField(Tax, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0), name="plans_minimumcommitment_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Minimum commitment of {self.plan}"


class UsageThreshold(TimeStampedModel):
    """A progressive-billing threshold (stored now, used by the progressive billing work)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    plan = models.ForeignKey(Plan, models.CASCADE, related_name="usage_thresholds")
    threshold_display_name = models.CharField(max_length=255, blank=True, default="")
    amount_cents = models.BigIntegerField()
    recurring = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("amount_cents",)
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "amount_cents", "recurring"],
                condition=Q(deleted_at__isnull=True),
                name="plans_usagethreshold_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount_cents} ({'recurring' if self.recurring else 'once'})"


class Charge(TimeStampedModel):
    """Usage-based pricing of one billable metric inside a plan (spec §7.1)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    plan = models.ForeignKey(Plan, models.CASCADE, related_name="charges")
    billable_metric = models.ForeignKey(BillableMetric, models.PROTECT, related_name="charges")
    code = models.CharField(max_length=255)
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    charge_model = models.CharField(max_length=32, choices=ChargeModel.choices)
    pay_in_advance = models.BooleanField(default=False)
    invoiceable = models.BooleanField(default=True)
    regroup_paid_fees = models.CharField(max_length=16, null=True, blank=True)
    prorated = models.BooleanField(default=False)
    min_amount_cents = models.BigIntegerField(default=0)
    properties = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="children"
    )
    taxes = models.ManyToManyField(Tax, blank=True, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "code"],
                condition=Q(deleted_at__isnull=True),
                name="plans_charge_code_unique_in_plan",
            ),
            models.CheckConstraint(
                condition=Q(min_amount_cents__gte=0), name="plans_charge_min_amount_not_negative"
            ),
            # spec §7.2: invoiceable false only for pay-in-advance charges
            models.CheckConstraint(
                condition=Q(invoiceable=True) | Q(pay_in_advance=True),
                name="plans_charge_invoiceable_unless_in_advance",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.charge_model})"


class ChargeFilter(TimeStampedModel):
    """Dimension pricing: events matching `values` are priced with these `properties` (§7.12).

    `values` maps a metric filter key to its accepted values, or to ["__ALL_FILTER_VALUES__"].
    """

    ALL_VALUES = "__ALL_FILTER_VALUES__"

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    charge = models.ForeignKey(Charge, models.CASCADE, related_name="filters")
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    values = models.JSONField(default=dict)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return self.invoice_display_name or ", ".join(
            f"{k}={'|'.join(map(str, v))}" for k, v in sorted(self.values.items())
        )


class FixedCharge(TimeStampedModel):
    """A recurring charge on an add-on with a quantity, not driven by events (spec §8)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    plan = models.ForeignKey(Plan, models.CASCADE, related_name="fixed_charges")
    add_on = models.ForeignKey(AddOn, models.PROTECT, related_name="fixed_charges")
    code = models.CharField(max_length=255)
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    charge_model = models.CharField(max_length=16, choices=FixedChargeModel.choices)
    pay_in_advance = models.BooleanField(default=False)
    prorated = models.BooleanField(default=False)
    properties = models.JSONField(default=dict, blank=True)
    units = models.DecimalField(max_digits=30, decimal_places=10, default=0)
    parent = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="children"
    )
    taxes = models.ManyToManyField(Tax, blank=True, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "code"],
                condition=Q(deleted_at__isnull=True),
                name="plans_fixedcharge_code_unique_in_plan",
            ),
            models.CheckConstraint(
                condition=Q(units__gte=0), name="plans_fixedcharge_units_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.charge_model})"


class CouponExpiration(models.TextChoices):
    NO_EXPIRATION = "no_expiration", _("No expiration")
    TIME_LIMIT = "time_limit", _("Time limit")


class Coupon(TimeStampedModel):
    """A discount template applied to customers (spec §15.1)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        TERMINATED = "terminated", _("Terminated")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    code = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    coupon_type = models.CharField(max_length=16, choices=CouponType.choices)
    amount_cents = models.BigIntegerField(null=True, blank=True)
    amount_currency = models.CharField(max_length=3, blank=True, default="")
    percentage_rate = models.DecimalField(max_digits=12, decimal_places=5, null=True, blank=True)
    frequency = models.CharField(max_length=16, choices=CouponFrequency.choices)
    frequency_duration = models.PositiveIntegerField(null=True, blank=True)
    reusable = models.BooleanField(default=True)
    limited_plans = models.BooleanField(default=False)
    limited_billable_metrics = models.BooleanField(default=False)
    plans = models.ManyToManyField(Plan, blank=True, related_name="coupons")
    billable_metrics = models.ManyToManyField(BillableMetric, blank=True, related_name="coupons")
    expiration = models.CharField(
        max_length=16, choices=CouponExpiration.choices, default=CouponExpiration.NO_EXPIRATION
    )
    expiration_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    terminated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="plans_coupon_code_unique",
            ),
            models.CheckConstraint(
                condition=~Q(limited_plans=True, limited_billable_metrics=True),
                name="plans_coupon_one_limitation_type",
            ),
            models.CheckConstraint(
                condition=Q(coupon_type="percentage", percentage_rate__isnull=False)
                | Q(coupon_type="fixed_amount", amount_cents__isnull=False),
                name="plans_coupon_amount_matches_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


# --------------------------------------------------------------------------------------------
# Entitlements: features with typed privileges, granted by plans (not billed)


class Feature(TimeStampedModel):
    """Something a plan can grant access to, with its privileges (typed settings)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    code = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=600, blank=True, default="")
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="plans_feature_code_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Privilege(TimeStampedModel):
    """One typed setting of a feature (`integer`, `boolean`, `string`, `select` with options)."""

    class ValueType(models.TextChoices):
        INTEGER = "integer", _("Integer")
        BOOLEAN = "boolean", _("Boolean")
        STRING = "string", _("String")
        SELECT = "select", _("Select")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    feature = models.ForeignKey(Feature, models.CASCADE, related_name="privileges")
    code = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    value_type = models.CharField(max_length=16, choices=ValueType.choices, default="string")
    config = models.JSONField(default=dict, blank=True)  # {"select_options": [...]} for select
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["feature", "code"],
                condition=Q(deleted_at__isnull=True),
                name="plans_privilege_code_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feature_id}:{self.code}"


class PlanEntitlement(TimeStampedModel):
    """A feature granted by a plan; its privileges' values in `PlanEntitlementValue`."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    plan = models.ForeignKey(Plan, models.CASCADE, related_name="entitlements")
    feature = models.ForeignKey(Feature, models.CASCADE, related_name="plan_entitlements")

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "feature"], name="plans_planentitlement_feature_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}:{self.feature_id}"


class PlanEntitlementValue(TimeStampedModel):
    """The value a plan gives one privilege of an entitled feature (text, cast by type)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    entitlement = models.ForeignKey(PlanEntitlement, models.CASCADE, related_name="values")
    privilege = models.ForeignKey(Privilege, models.CASCADE, related_name="plan_values")
    value = models.TextField()

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["entitlement", "privilege"], name="plans_planentitlementvalue_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.privilege_id}={self.value}"
