"""Lago wire shapes of plans, charges, charge filters, fixed charges, usage thresholds and
minimum commitments (spec §6, §7, §8, §21, §22).

Input serializers check shapes only (types, lists, objects); the services hold every rule and
its code. Output serializers render Lago's objects field for field; they read the soft-deleted
rows out themselves so a prefetched or a plain object renders the same.
"""

from __future__ import annotations

import copy

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import (
    MAX_CENTS,
    LagoDateTimeField,
    TextOrNull,
    decimal_string,
    nullable_list,
)
from plans.models import (
    Charge,
    ChargeFilter,
    FixedCharge,
    MinimumCommitment,
    Plan,
    Tax,
)
from plans.services.entitlements import plan_entitlement_list, plan_entitlement_payload


def _text(**kwargs: object) -> serializers.CharField:
    """An optional text input; null is accepted and means blank."""
    return serializers.CharField(required=False, allow_blank=True, allow_null=True, **kwargs)


def _codes() -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)


def _properties() -> serializers.DictField:
    return serializers.DictField(required=False, allow_null=True)


# --- inputs ------------------------------------------------------------------------------------


class PlanChargeFilterInput(serializers.Serializer):
    invoice_display_name = _text(max_length=255)
    properties = _properties()
    values = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    cascade_updates = serializers.BooleanField(required=False)


class PlanAppliedPricingUnitInput(serializers.Serializer):
    code = serializers.CharField(required=False)
    conversion_rate = serializers.DecimalField(max_digits=30, decimal_places=15, required=False)


class PlanChargeInput(serializers.Serializer):
    id = serializers.CharField(required=False, allow_null=True)
    billable_metric_id = serializers.CharField(required=False, allow_null=True)
    billable_metric_code = serializers.CharField(required=False, allow_null=True)
    code = _text(max_length=255)
    invoice_display_name = _text(max_length=255)
    charge_model = _text()
    pay_in_advance = serializers.BooleanField(required=False, allow_null=True)
    prorated = serializers.BooleanField(required=False, allow_null=True)
    invoiceable = serializers.BooleanField(required=False, allow_null=True)
    regroup_paid_fees = serializers.CharField(required=False, allow_null=True)
    min_amount_cents = serializers.IntegerField(
        required=False, allow_null=True, max_value=MAX_CENTS
    )
    properties = _properties()
    filters = nullable_list(PlanChargeFilterInput())
    tax_codes = _codes()
    applied_pricing_unit = PlanAppliedPricingUnitInput(required=False, allow_null=True)
    accepts_target_wallet = serializers.BooleanField(required=False, allow_null=True)
    cascade_updates = serializers.BooleanField(required=False)


class PlanFixedChargeInput(serializers.Serializer):
    id = serializers.CharField(required=False, allow_null=True)
    add_on_id = serializers.CharField(required=False, allow_null=True)
    add_on_code = serializers.CharField(required=False, allow_null=True)
    code = _text(max_length=255)
    invoice_display_name = _text(max_length=255)
    charge_model = _text()
    pay_in_advance = serializers.BooleanField(required=False, allow_null=True)
    prorated = serializers.BooleanField(required=False, allow_null=True)
    units = serializers.DecimalField(
        max_digits=30, decimal_places=10, required=False, allow_null=True
    )
    properties = _properties()
    tax_codes = _codes()
    apply_units_immediately = serializers.BooleanField(required=False, allow_null=True)
    cascade_updates = serializers.BooleanField(required=False)


class PlanUsageThresholdInput(serializers.Serializer):
    id = serializers.CharField(required=False, allow_null=True)
    threshold_display_name = _text(max_length=255)
    amount_cents = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_CENTS)
    recurring = serializers.BooleanField(required=False, allow_null=True)


class PlanMinimumCommitmentInput(serializers.Serializer):
    id = serializers.CharField(required=False, allow_null=True)
    amount_cents = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_CENTS)
    invoice_display_name = _text(max_length=255)
    tax_codes = _codes()


class PlanInput(serializers.Serializer):
    name = _text(max_length=255)
    invoice_display_name = _text(max_length=255)
    code = _text(max_length=255)
    interval = _text()
    description = _text()
    amount_cents = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_CENTS)
    amount_currency = _text()
    trial_period = serializers.DecimalField(
        max_digits=12, decimal_places=5, required=False, allow_null=True
    )
    pay_in_advance = serializers.BooleanField(required=False, allow_null=True)
    bill_charges_monthly = serializers.BooleanField(required=False, allow_null=True)
    bill_fixed_charges_monthly = serializers.BooleanField(required=False, allow_null=True)
    tax_codes = _codes()
    charges = nullable_list(PlanChargeInput())
    fixed_charges = nullable_list(PlanFixedChargeInput())
    usage_thresholds = nullable_list(PlanUsageThresholdInput())
    minimum_commitment = PlanMinimumCommitmentInput(required=False, allow_null=True)
    metadata = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True),
        required=False,
        allow_null=True,
    )
    cascade_updates = serializers.BooleanField(required=False)


class PlanMetadataInput(serializers.Serializer):
    metadata = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True), required=False
    )


# --- outputs -----------------------------------------------------------------------------------


def wire_properties(properties: dict) -> dict:
    """Properties as Lago renders them: `grouped_by` and `pricing_group_keys` mirror each other
    (the deprecated alias stays on the wire, spec §7.13)."""
    data = copy.deepcopy(properties)
    if data.get("grouped_by") and not data.get("pricing_group_keys"):
        data["pricing_group_keys"] = data["grouped_by"]
    if data.get("pricing_group_keys") and not data.get("grouped_by"):
        data["grouped_by"] = data["pricing_group_keys"]
    return data


def _alive(rows: object) -> list:
    return [row for row in rows.all() if row.deleted_at is None]


class PlanTaxSerializer(serializers.Serializer):
    """A tax as nested in plans, charges, fixed charges and commitments."""

    lago_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    code = serializers.CharField()
    rate = serializers.DecimalField(max_digits=12, decimal_places=5, coerce_to_string=False)
    description = TextOrNull()
    applied_to_organization = serializers.BooleanField()
    created_at = LagoDateTimeField()


def _taxes(taxes: list[Tax]) -> list[dict]:
    return PlanTaxSerializer(taxes, many=True).data


class PlanChargeFilterSerializer(serializers.Serializer):
    """A charge filter nested in its charge."""

    invoice_display_name = TextOrNull()
    properties = serializers.SerializerMethodField()
    values = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_properties(self, charge_filter: ChargeFilter) -> dict:
        return wire_properties(charge_filter.properties)


class ChargeFilterSerializer(PlanChargeFilterSerializer):
    """`/plans/{code}/charges/{charge_code}/filters` objects."""

    lago_id = serializers.UUIDField(source="id")
    charge_code = serializers.CharField(source="charge.code")
    created_at = LagoDateTimeField()


class PlanChargeSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    lago_billable_metric_id = serializers.UUIDField(source="billable_metric_id")
    billable_metric_code = serializers.CharField(source="billable_metric.code")
    code = serializers.CharField()
    invoice_display_name = TextOrNull()
    lago_parent_id = serializers.UUIDField(source="parent_id", allow_null=True)
    created_at = LagoDateTimeField()
    charge_model = serializers.CharField()
    invoiceable = serializers.BooleanField()
    regroup_paid_fees = serializers.CharField(allow_null=True)
    pay_in_advance = serializers.BooleanField()
    prorated = serializers.BooleanField()
    min_amount_cents = serializers.IntegerField(max_value=MAX_CENTS)
    properties = serializers.SerializerMethodField()
    applied_pricing_unit = serializers.SerializerMethodField()
    accepts_target_wallet = serializers.SerializerMethodField()
    filters = serializers.SerializerMethodField()
    taxes = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_properties(self, charge: Charge) -> dict:
        return wire_properties(charge.properties)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_applied_pricing_unit(self, charge: Charge) -> dict | None:
        return None  # custom pricing units are not part of this back office

    def get_accepts_target_wallet(self, charge: Charge) -> bool:
        return False

    @extend_schema_field(PlanChargeFilterSerializer(many=True))
    def get_filters(self, charge: Charge) -> list[dict]:
        return PlanChargeFilterSerializer(_alive(charge.filters), many=True).data

    @extend_schema_field(PlanTaxSerializer(many=True))
    def get_taxes(self, charge: Charge) -> list[dict]:
        return _taxes(charge.taxes.all())


class PlanFixedChargeSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    lago_add_on_id = serializers.UUIDField(source="add_on_id")
    add_on_code = serializers.CharField(source="add_on.code")
    code = serializers.CharField()
    # a string even when unset: lago-python-client's FixedChargeResponse refuses null here
    invoice_display_name = serializers.CharField()
    lago_parent_id = serializers.UUIDField(source="parent_id", allow_null=True)
    created_at = LagoDateTimeField()
    charge_model = serializers.CharField()
    pay_in_advance = serializers.BooleanField()
    prorated = serializers.BooleanField()
    properties = serializers.DictField()
    units = serializers.SerializerMethodField()
    taxes = serializers.SerializerMethodField()

    def get_units(self, fixed_charge: FixedCharge) -> str:
        return decimal_string(fixed_charge.units)  # Lago renders the decimal as "10.0"

    @extend_schema_field(PlanTaxSerializer(many=True))
    def get_taxes(self, fixed_charge: FixedCharge) -> list[dict]:
        return _taxes(fixed_charge.taxes.all())


class PlanUsageThresholdSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    threshold_display_name = TextOrNull()
    amount_cents = serializers.IntegerField(max_value=MAX_CENTS)
    recurring = serializers.BooleanField()
    created_at = LagoDateTimeField()
    updated_at = LagoDateTimeField()


class PlanMinimumCommitmentSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    plan_code = serializers.CharField(source="plan.code")
    amount_cents = serializers.IntegerField(max_value=MAX_CENTS)
    invoice_display_name = TextOrNull()
    interval = serializers.CharField(source="plan.interval")
    created_at = LagoDateTimeField()
    updated_at = LagoDateTimeField()
    taxes = serializers.SerializerMethodField()

    @extend_schema_field(PlanTaxSerializer(many=True))
    def get_taxes(self, commitment: MinimumCommitment) -> list[dict]:
        return _taxes(commitment.taxes.all())


class PlanSerializer(serializers.Serializer):
    """Lago's PlanObject."""

    lago_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    invoice_display_name = TextOrNull()
    created_at = LagoDateTimeField()
    code = serializers.CharField()
    interval = serializers.CharField()
    description = TextOrNull()
    amount_cents = serializers.IntegerField(max_value=MAX_CENTS)
    amount_currency = serializers.CharField()
    trial_period = serializers.FloatField()  # days (Lago stores a float), not money
    pay_in_advance = serializers.BooleanField()
    bill_charges_monthly = serializers.BooleanField(allow_null=True)
    bill_fixed_charges_monthly = serializers.BooleanField(allow_null=True)
    customers_count = serializers.SerializerMethodField()
    active_subscriptions_count = serializers.SerializerMethodField()
    draft_invoices_count = serializers.SerializerMethodField()
    parent_id = serializers.UUIDField(allow_null=True)
    pending_deletion = serializers.SerializerMethodField()
    charges = serializers.SerializerMethodField()
    fixed_charges = serializers.SerializerMethodField()
    usage_thresholds = serializers.SerializerMethodField()
    taxes = serializers.SerializerMethodField()
    minimum_commitment = serializers.SerializerMethodField()
    entitlements = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()

    # Subscription counters come from the customers app, which the catalog cannot read.
    def get_customers_count(self, plan: Plan) -> int:
        return 0

    def get_active_subscriptions_count(self, plan: Plan) -> int:
        return 0

    def get_draft_invoices_count(self, plan: Plan) -> int:
        return 0

    def get_pending_deletion(self, plan: Plan) -> bool:
        return False  # deletion is synchronous here

    @extend_schema_field(PlanChargeSerializer(many=True))
    def get_charges(self, plan: Plan) -> list[dict]:
        return PlanChargeSerializer(_alive(plan.charges), many=True).data

    @extend_schema_field(PlanFixedChargeSerializer(many=True))
    def get_fixed_charges(self, plan: Plan) -> list[dict]:
        return PlanFixedChargeSerializer(_alive(plan.fixed_charges), many=True).data

    @extend_schema_field(PlanUsageThresholdSerializer(many=True))
    def get_usage_thresholds(self, plan: Plan) -> list[dict]:
        return PlanUsageThresholdSerializer(_alive(plan.usage_thresholds), many=True).data

    @extend_schema_field(PlanTaxSerializer(many=True))
    def get_taxes(self, plan: Plan) -> list[dict]:
        return _taxes(plan.taxes.all())

    @extend_schema_field(PlanMinimumCommitmentSerializer(allow_null=True))
    def get_minimum_commitment(self, plan: Plan) -> dict | None:
        try:
            commitment = plan.minimum_commitment
        except MinimumCommitment.DoesNotExist:
            return None
        return PlanMinimumCommitmentSerializer(commitment).data

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_entitlements(self, plan: Plan) -> list[dict]:
        entitlements = getattr(plan, "live_entitlements", None)  # prefetched by plans_rendered
        if entitlements is None:
            entitlements = plan_entitlement_list(plan=plan)
        return [plan_entitlement_payload(e) for e in entitlements]

    @extend_schema_field(serializers.DictField(child=serializers.CharField(allow_null=True)))
    def get_metadata(self, plan: Plan) -> dict | None:
        return plan.metadata or None
