"""Catalog reads: scoped querysets, counters, and the tax hierarchy of spec §14.1."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from billing.errors import NotFound
from billing.models import BillingEntity, Organization
from plans.models import (
    AddOn,
    BillableMetric,
    BillableMetricFilter,
    BillingEntityTax,
    Charge,
    Coupon,
    FixedCharge,
    MinimumCommitment,
    Plan,
    Tax,
)
from plans.services.common import taxes_from_codes

# --- billable metrics --------------------------------------------------------------------------


def billable_metric_list(*, organization: Organization) -> QuerySet[BillableMetric]:
    """Live metrics, newest first, with their live filters and `plans_count` (spec §4.1)."""
    return (
        BillableMetric.objects.for_organization(organization)
        .alive()
        .annotate(
            live_plans_count=Count(
                "charges__plan",
                filter=Q(charges__deleted_at__isnull=True, charges__plan__deleted_at__isnull=True),
                distinct=True,
            )
        )
        .prefetch_related(
            Prefetch(
                "filters", queryset=BillableMetricFilter.objects.alive(), to_attr="live_filters"
            )
        )
        .order_by("-created_at", "-id")
    )


def billable_metric_get(*, organization: Organization, code: str) -> BillableMetric:
    """The live metric with this code, else 404 `billable_metric_not_found`."""
    metric = billable_metric_list(organization=organization).filter(code=code).first()
    if metric is None:
        raise NotFound("billable_metric")
    return metric


def billable_metric_filters(billable_metric: BillableMetric) -> list[BillableMetricFilter]:
    """The metric's live filters, ordered by key (prefetched by `billable_metric_list`)."""
    prefetched = getattr(billable_metric, "live_filters", None)
    if prefetched is not None:
        return prefetched
    return list(billable_metric.filters.alive().order_by("key"))


def billable_metric_plans_count(billable_metric: BillableMetric) -> int:
    """Number of live plans with a live charge on the metric."""
    annotated = getattr(billable_metric, "live_plans_count", None)
    if annotated is not None:
        return annotated
    return (
        Plan.objects.alive()
        .filter(charges__billable_metric=billable_metric, charges__deleted_at__isnull=True)
        .distinct()
        .count()
    )


def billable_metric_is_used(billable_metric: BillableMetric) -> bool:
    """A metric priced by a live charge: only its name, description and filters may change."""
    return Charge.objects.alive().filter(billable_metric=billable_metric).exists()


# --- taxes -------------------------------------------------------------------------------------

TAX_COUNTERS = ("add_ons_count", "plans_count", "charges_count", "commitments_count")


def _attachments(through: type, owner: str, soft_deleted: bool) -> Coalesce:
    rows = through.objects.filter(tax=OuterRef("pk"))
    if soft_deleted:
        rows = rows.filter(**{f"{owner}__deleted_at__isnull": True})
    counted = rows.order_by().values("tax").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def annotate_tax_counters(queryset: QuerySet[Tax]) -> QuerySet[Tax]:
    """Adds Lago's TaxObject counters (live add-ons, plans, charges, commitments)."""
    return queryset.annotate(
        add_ons_count=_attachments(AddOn.taxes.through, "addon", soft_deleted=True),
        plans_count=_attachments(Plan.taxes.through, "plan", soft_deleted=True),
        charges_count=_attachments(Charge.taxes.through, "charge", soft_deleted=True),
        commitments_count=_attachments(
            MinimumCommitment.taxes.through, "minimumcommitment", soft_deleted=False
        ),
    )


def tax_list(*, organization: Organization) -> QuerySet[Tax]:
    """The organization's taxes with their counters, newest first."""
    return annotate_tax_counters(Tax.objects.for_organization(organization)).order_by(
        "-created_at", "-id"
    )


def tax_counters(tax: Tax) -> dict[str, int]:
    """The counters of one tax: annotated ones when present, else one query (0 once deleted)."""
    if all(hasattr(tax, name) for name in TAX_COUNTERS):
        return {name: getattr(tax, name) for name in TAX_COUNTERS}
    row = annotate_tax_counters(Tax.objects.filter(pk=tax.pk)).values(*TAX_COUNTERS).first()
    return row or dict.fromkeys(TAX_COUNTERS, 0)


def billing_entity_taxes(*, billing_entity: BillingEntity) -> list[Tax]:
    """Default taxes of a billing entity (level 8 of spec §14.1)."""
    rows = BillingEntityTax.objects.filter(billing_entity=billing_entity).select_related("tax")
    return sorted((row.tax for row in rows), key=lambda tax: (tax.name, str(tax.id)))


# --- add-ons -----------------------------------------------------------------------------------


def add_on_list(*, organization: Organization) -> QuerySet[AddOn]:
    """Live add-ons, newest first, with their taxes (and the taxes' counters)."""
    return (
        AddOn.objects.for_organization(organization)
        .alive()
        .prefetch_related(Prefetch("taxes", queryset=annotate_tax_counters(Tax.objects.all())))
        .order_by("-created_at", "-id")
    )


# --- coupons -----------------------------------------------------------------------------------


def coupon_list(*, organization: Organization) -> QuerySet[Coupon]:
    """Live coupons, newest first, with the live plans and metrics they are limited to."""
    return (
        Coupon.objects.for_organization(organization)
        .alive()
        .prefetch_related(
            Prefetch("plans", queryset=Plan.objects.alive().order_by("code")),
            Prefetch("billable_metrics", queryset=BillableMetric.objects.alive().order_by("code")),
        )
        .order_by("-created_at", "-id")
    )


def coupon_is_applied(coupon: Coupon) -> bool:
    """Whether the coupon was ever applied to a customer (spec §15.1: then only its name,
    description and expiration stay editable).

    Hook for the customers app: its AppliedCoupon rows are read through their reverse relation
    `coupon.applied_coupons` (plans cannot import customers). Until that relation exists, no
    coupon is applied.
    """
    applied = getattr(coupon, "applied_coupons", None)
    return applied is not None and applied.exists()


# --- which taxes apply to a fee (spec §14.1) ---------------------------------------------------


def applicable_taxes(
    *,
    organization: Organization,
    tax_codes: Sequence[str] | None = None,
    add_on: AddOn | None = None,
    charge: Charge | None = None,
    fixed_charge: FixedCharge | None = None,
    commitment: MinimumCommitment | None = None,
    plan: Plan | None = None,
    customer_taxes: Sequence[Tax] | None = None,
    billing_entity: BillingEntity | None = None,
) -> list[Tax]:
    """The taxes of one fee: the first non-empty level wins (spec §14.1), stacked additively.

    Levels, in order: explicit `tax_codes` (one-off invoice fee), add-on, charge (also for its
    true-up fee), fixed charge, minimum commitment, plan, the customer's taxes, the billing
    entity's default taxes. The caller passes only the levels that concern the fee (an add-on
    fee has no plan); `customer_taxes` is a list so that the catalog needs no customers import.
    Unknown explicit codes are a 422 (`tax_codes: tax_not_found`).
    """
    levels = (
        lambda: taxes_from_codes(organization=organization, codes=tax_codes),
        lambda: list(add_on.taxes.all()) if add_on is not None else [],
        lambda: list(charge.taxes.all()) if charge is not None else [],
        lambda: list(fixed_charge.taxes.all()) if fixed_charge is not None else [],
        lambda: list(commitment.taxes.all()) if commitment is not None else [],
        lambda: list(plan.taxes.all()) if plan is not None else [],
        lambda: list(customer_taxes or []),
        lambda: billing_entity_taxes(billing_entity=billing_entity) if billing_entity else [],
    )
    for level in levels:  # lazily: a level is read only when every level above it is empty
        taxes = level()
        if taxes:
            return taxes
    return []
