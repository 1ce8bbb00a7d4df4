"""Lago wire shapes of organizations and billing entities (spec §2).

They live in the catalog app because both answers carry the default taxes of a billing entity,
which belong to the catalog (`billing` may not import `plans`).
"""

from __future__ import annotations

from rest_framework import serializers

from billing.models import BillingEntity, DocumentLocale, Organization
from plans.api.catalog_serializers import TaxSerializer
from plans.selectors import billing_entity_taxes


class BillingConfigurationInput(serializers.Serializer):
    invoice_footer = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    invoice_grace_period = serializers.IntegerField(required=False, min_value=0)
    document_locale = serializers.ChoiceField(choices=DocumentLocale.values, required=False)
    subscription_invoice_issuing_date_anchor = serializers.CharField(required=False)
    subscription_invoice_issuing_date_adjustment = serializers.CharField(required=False)


class SettingsInput(serializers.Serializer):
    """Fields shared by the organization and billing entity inputs."""

    name = serializers.CharField(required=False, max_length=255)
    default_currency = serializers.CharField(required=False, max_length=3)
    timezone = serializers.CharField(required=False, max_length=64)
    country = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=2)
    address_line1 = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    address_line2 = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    city = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    state = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    zipcode = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    email = serializers.EmailField(required=False, allow_blank=True, allow_null=True)
    legal_name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    legal_number = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    tax_identification_number = serializers.CharField(
        required=False, allow_blank=True, allow_null=True
    )
    net_payment_term = serializers.IntegerField(required=False, min_value=0)
    document_number_prefix = serializers.CharField(required=False, max_length=10, min_length=1)
    document_numbering = serializers.CharField(required=False)
    finalize_zero_amount_invoice = serializers.BooleanField(required=False)
    email_settings = serializers.ListField(child=serializers.CharField(), required=False)
    billing_configuration = BillingConfigurationInput(required=False)

    def validate(self, attrs: dict) -> dict:
        # Lago nests a few settings under billing_configuration; the models keep them flat.
        config = attrs.pop("billing_configuration", None) or {}
        for key, value in config.items():
            attrs.setdefault(key, value)
        return {k: ("" if v is None else v) for k, v in attrs.items()}


class OrganizationInput(SettingsInput):
    issue_receipts = serializers.BooleanField(required=False)
    webhook_url = serializers.URLField(required=False, allow_null=True, allow_blank=True)
    webhook_urls = serializers.ListField(child=serializers.URLField(), required=False)


class BillingEntityInput(SettingsInput):
    code = serializers.CharField(required=False, max_length=255)
    phone = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    eu_tax_management = serializers.BooleanField(required=False)
    tax_codes = serializers.ListField(child=serializers.CharField(), required=False)


def _blank_to_none(value: str) -> str | None:
    return value or None


def _render_taxes(entity: BillingEntity) -> list[dict]:
    return TaxSerializer(billing_entity_taxes(billing_entity=entity), many=True).data


class _SettingsOutput(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    default_currency = serializers.CharField()
    timezone = serializers.CharField()
    net_payment_term = serializers.IntegerField()
    document_numbering = serializers.CharField()
    document_number_prefix = serializers.CharField()
    finalize_zero_amount_invoice = serializers.BooleanField()
    email_settings = serializers.ListField(child=serializers.CharField())
    billing_configuration = serializers.SerializerMethodField()

    def to_representation(self, instance: object) -> dict:
        data = super().to_representation(instance)
        for field in (
            "country", "address_line1", "address_line2", "city", "state", "zipcode", "email",
            "legal_name", "legal_number", "tax_identification_number",
        ):  # fmt: skip
            data[field] = _blank_to_none(getattr(instance, field))
        return data

    def get_billing_configuration(self, instance: Organization | BillingEntity) -> dict:
        return {
            "invoice_footer": instance.invoice_footer or None,
            "invoice_grace_period": instance.invoice_grace_period,
            "document_locale": instance.document_locale,
        }


class OrganizationSerializer(_SettingsOutput):
    issue_receipts = serializers.BooleanField()
    webhook_url = serializers.SerializerMethodField()
    webhook_urls = serializers.SerializerMethodField()
    taxes = serializers.SerializerMethodField()

    def get_webhook_url(self, organization: Organization) -> str | None:
        return None  # webhook endpoints arrive with the integrations app

    def get_webhook_urls(self, organization: Organization) -> list[str]:
        return []

    def get_taxes(self, organization: Organization) -> list[dict]:
        entity = organization.default_billing_entity()
        return _render_taxes(entity) if entity else []


class BillingEntitySerializer(_SettingsOutput):
    code = serializers.CharField()
    is_default = serializers.BooleanField()
    document_locale = serializers.CharField()
    invoice_footer = serializers.SerializerMethodField()
    invoice_grace_period = serializers.IntegerField()
    subscription_invoice_issuing_date_anchor = serializers.CharField()
    subscription_invoice_issuing_date_adjustment = serializers.CharField()
    phone = serializers.SerializerMethodField()
    eu_tax_management = serializers.BooleanField()
    logo_url = serializers.SerializerMethodField()
    taxes = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField()

    def get_taxes(self, entity: BillingEntity) -> list[dict]:
        return _render_taxes(entity)

    def get_invoice_footer(self, entity: BillingEntity) -> str | None:
        return entity.invoice_footer or None

    def get_phone(self, entity: BillingEntity) -> str | None:
        return entity.phone or None

    def get_logo_url(self, entity: BillingEntity) -> str | None:
        return entity.logo.url if entity.logo else None

    def get_billing_configuration(self, entity: BillingEntity) -> dict:
        data = super().get_billing_configuration(entity)
        data["subscription_invoice_issuing_date_anchor"] = (
            entity.subscription_invoice_issuing_date_anchor
        )
        data["subscription_invoice_issuing_date_adjustment"] = (
            entity.subscription_invoice_issuing_date_adjustment
        )
        return data
