"""Demo catalog for `manage.py seed_demo`: created once, through the same services as the API."""

from __future__ import annotations

from datetime import datetime

from billing.actors import SYSTEM
from billing.models import Organization
from plans.models import AddOn, BillableMetric, Coupon, Plan, Tax
from plans.services.add_ons import add_on_create
from plans.services.coupons import coupon_create
from plans.services.metrics import billable_metric_create
from plans.services.plans import plan_create
from plans.services.taxes import tax_create

TAXES = (
    {"code": "vat_fr_20", "name": "TVA 20 %", "rate": "20"},
    {"code": "vat_reduced_5_5", "name": "TVA 5,5 %", "rate": "5.5"},
)
METRICS = (
    {"code": "api_calls", "name": "API calls", "aggregation_type": "count_agg",
     "description": "Requests served by the public API.",
     "filters": [{"key": "region", "values": ["eu", "us"]}]},
    {"code": "storage_gb", "name": "Storage", "aggregation_type": "max_agg",
     "field_name": "gb", "description": "Peak stored gigabytes in the period."},
    {"code": "seats", "name": "Seats", "aggregation_type": "unique_count_agg",
     "field_name": "user_id", "recurring": True, "description": "Distinct active users."},
    {"code": "payments_volume", "name": "Payments volume", "aggregation_type": "sum_agg",
     "field_name": "amount", "description": "Card payments processed, in euros."},
    {"code": "compute_seconds", "name": "Compute", "aggregation_type": "weighted_sum_agg",
     "field_name": "cpus", "weighted_interval": "seconds", "recurring": True,
     "description": "vCPUs running, time-weighted over the period."},
)  # fmt: skip
ADD_ONS = (
    {"code": "onboarding", "name": "Onboarding workshop", "amount_cents": 150000,
     "amount_currency": "EUR", "invoice_display_name": "Onboarding (one day)",
     "tax_codes": ["vat_fr_20"]},
    {"code": "premium_support", "name": "Premium support", "amount_cents": 19900,
     "amount_currency": "EUR", "tax_codes": ["vat_fr_20"]},
)  # fmt: skip


def _plans(metrics: dict[str, BillableMetric]) -> tuple[dict, ...]:
    def metric(code: str) -> str:
        return str(metrics[code].id)

    return (
        {
            "code": "starter", "name": "Starter", "interval": "monthly",
            "amount_cents": 4900, "amount_currency": "EUR", "pay_in_advance": True,
            "trial_period": 14, "description": "For small teams getting started.",
            "tax_codes": ["vat_fr_20"],
            "charges": [
                {"billable_metric_id": metric("api_calls"), "charge_model": "graduated",
                 "invoice_display_name": "API calls",
                 "properties": {"graduated_ranges": [
                     {"from_value": 0, "to_value": 10000, "per_unit_amount": "0",
                      "flat_amount": "0"},
                     {"from_value": 10001, "to_value": 100000, "per_unit_amount": "0.002",
                      "flat_amount": "0"},
                     {"from_value": 100001, "to_value": None, "per_unit_amount": "0.001",
                      "flat_amount": "0"},
                 ]}},
                {"billable_metric_id": metric("storage_gb"), "charge_model": "package",
                 "properties": {"amount": "5", "package_size": 100, "free_units": 10}},
            ],
        },
        {
            "code": "business", "name": "Business", "interval": "monthly",
            "amount_cents": 29900, "amount_currency": "EUR",
            "description": "Usage-based pricing with regional API prices and card fees.",
            "tax_codes": ["vat_fr_20"],
            "minimum_commitment": {"amount_cents": 50000, "invoice_display_name": "Minimum"},
            "charges": [
                {"billable_metric_id": metric("api_calls"), "charge_model": "standard",
                 "properties": {"amount": "0.001",
                                "presentation_group_keys": [{"value": "endpoint"}]},
                 "filters": [
                     {"invoice_display_name": "API calls (EU)", "values": {"region": ["eu"]},
                      "properties": {"amount": "0.0008"}},
                     {"invoice_display_name": "API calls (US)", "values": {"region": ["us"]},
                      "properties": {"amount": "0.0012"}},
                 ]},
                {"billable_metric_id": metric("payments_volume"), "charge_model": "percentage",
                 "properties": {"rate": "1.4", "fixed_amount": "0.25",
                                "free_units_per_events": 10}},
                {"billable_metric_id": metric("seats"), "charge_model": "volume",
                 "properties": {"volume_ranges": [
                     {"from_value": 0, "to_value": 10, "per_unit_amount": "12",
                      "flat_amount": "0"},
                     {"from_value": 11, "to_value": None, "per_unit_amount": "9",
                      "flat_amount": "0"},
                 ]}},
            ],
            "fixed_charges": [
                {"add_on_code": "premium_support", "charge_model": "standard",
                 "properties": {"amount": "199"}, "units": "1",
                 "invoice_display_name": "Premium support"},
            ],
        },
        {
            "code": "enterprise_yearly", "name": "Enterprise (yearly)", "interval": "yearly",
            "amount_cents": 1200000, "amount_currency": "EUR", "pay_in_advance": True,
            "bill_charges_monthly": True,
            "description": "Yearly commitment, usage billed monthly.",
            "tax_codes": ["vat_fr_20"],
            "charges": [
                {"billable_metric_id": metric("compute_seconds"), "charge_model": "standard",
                 "properties": {"amount": "0.02"}},
                {"billable_metric_id": metric("api_calls"), "charge_model": "standard",
                 "properties": {"amount": "0.0005"}},
            ],
        },
    )  # fmt: skip


def seed(*, organization: Organization, now: datetime) -> str:
    """Creates the demo catalog once; existing codes are left untouched."""
    created = 0
    for tax in TAXES:
        if not Tax.objects.for_organization(organization).filter(code=tax["code"]).exists():
            tax_create(organization=organization, **tax, actor=SYSTEM)
            created += 1
    for values in METRICS:
        if (
            not BillableMetric.objects.for_organization(organization)
            .alive()
            .filter(code=values["code"])
            .exists()
        ):
            billable_metric_create(organization=organization, **values, actor=SYSTEM)
            created += 1
    for values in ADD_ONS:
        if (
            not AddOn.objects.for_organization(organization)
            .alive()
            .filter(code=values["code"])
            .exists()
        ):
            add_on_create(organization=organization, **values, actor=SYSTEM)
            created += 1
    metrics = {m.code: m for m in BillableMetric.objects.for_organization(organization).alive()}
    for values in _plans(metrics):
        exists = Plan.objects.for_organization(organization).alive()
        if not exists.filter(code=values["code"], parent__isnull=True).exists():
            plan_create(organization=organization, values=values, actor=SYSTEM, now=now)
            created += 1
    if not Coupon.objects.for_organization(organization).alive().filter(code="welcome").exists():
        coupon_create(
            organization=organization,
            actor=SYSTEM,
            now=now,
            name="Welcome -10 %",
            code="welcome",
            coupon_type="percentage",
            percentage_rate="10",
            frequency="recurring",
            frequency_duration=3,
        )
        created += 1
    return f"{created} catalog objects created"
