"""Lago wire shapes of wallets, wallet transactions and their traceability (spec §17).

Inputs only convert types (datetimes, booleans, integers); credit amounts pass through as given
so the services answer Lago's own codes (`invalid_paid_credits`, ...). Outputs follow
lago-python-client's `WalletResponse`, `WalletTransactionResponse` and
`WalletTransactionConsumptionResponse` / `...FundingResponse`.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import (
    MAX_CENTS,
    LagoDateTimeField,
    LagoDateTimeInput,
    PaymentMethodOutput,
    TextOrNull,
    decimal_string,
    nullable_list,
)
from wallets.models import RecurringTransactionRule, Wallet, WalletTransaction


@extend_schema_field({"type": "string", "example": "10.5", "nullable": True})
class RawDecimal(serializers.Field):
    """A decimal as sent (string or number); the service validates it with Lago's codes."""

    def to_internal_value(self, data: object) -> object:
        return data

    def to_representation(self, value: object) -> str | None:
        return decimal_string(value)


def _bool() -> serializers.BooleanField:
    return serializers.BooleanField(required=False, allow_null=True)


def _text() -> serializers.CharField:
    return serializers.CharField(required=False, allow_null=True, allow_blank=True)


def _datetime() -> serializers.DateTimeField:
    return LagoDateTimeInput(required=False, allow_null=True)


def _cents() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, allow_null=True, max_value=MAX_CENTS)


class PaymentMethodField(serializers.DictField):
    """`{payment_method_type, payment_method_id}`."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(required=False, allow_null=True, **kwargs)


class TransactionMetadataField(serializers.JSONField):
    """`[{key, value}]` as sent; validated by the services."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(required=False, allow_null=True, **kwargs)


class AppliesToInput(serializers.Serializer):
    fee_types = serializers.JSONField(required=False, allow_null=True)
    billable_metric_codes = serializers.JSONField(required=False, allow_null=True)


class RecurringTransactionRuleInput(serializers.Serializer):
    lago_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    trigger = _text()
    method = _text()
    interval = _text()
    threshold_credits = RawDecimal(required=False, allow_null=True)
    paid_credits = RawDecimal(required=False, allow_null=True)
    granted_credits = RawDecimal(required=False, allow_null=True)
    target_ongoing_balance = RawDecimal(required=False, allow_null=True)
    grants_target_top_up = _bool()
    started_at = _datetime()
    expiration_at = _datetime()
    invoice_requires_successful_payment = _bool()
    transaction_metadata = TransactionMetadataField()
    transaction_name = _text()
    ignore_paid_top_up_limits = _bool()
    payment_method = PaymentMethodField()
    purchase_order_number = _text()


class WalletUpdateInput(serializers.Serializer):
    name = _text()
    code = _text()
    priority = serializers.IntegerField(required=False, allow_null=True)
    expiration_at = _datetime()
    invoice_requires_successful_payment = _bool()
    applies_to = AppliesToInput(required=False, allow_null=True)
    recurring_transaction_rules = nullable_list(RecurringTransactionRuleInput())
    paid_top_up_min_amount_cents = _cents()
    paid_top_up_max_amount_cents = _cents()
    metadata = serializers.JSONField(required=False, allow_null=True)
    payment_method = PaymentMethodField()
    purchase_order_number = _text()
    invoice_custom_section = serializers.JSONField(required=False, allow_null=True)


class WalletInput(WalletUpdateInput):
    external_customer_id = _text()
    currency = _text()
    rate_amount = RawDecimal(required=False, allow_null=True)
    paid_credits = RawDecimal(required=False, allow_null=True)
    granted_credits = RawDecimal(required=False, allow_null=True)
    transaction_name = _text()
    transaction_metadata = TransactionMetadataField()
    ignore_paid_top_up_limits_on_creation = _bool()
    billing_entity_code = _text()


class WalletTransactionInput(serializers.Serializer):
    wallet_id = _text()
    paid_credits = RawDecimal(required=False, allow_null=True)
    granted_credits = RawDecimal(required=False, allow_null=True)
    voided_credits = RawDecimal(required=False, allow_null=True)
    invoice_requires_successful_payment = _bool()
    metadata = TransactionMetadataField()
    name = serializers.JSONField(required=False, allow_null=True)
    ignore_paid_top_up_limits = _bool()
    priority = serializers.IntegerField(required=False, allow_null=True)
    payment_method = PaymentMethodField()
    purchase_order_number = _text()
    invoice_custom_section = serializers.JSONField(required=False, allow_null=True)


class WalletMetadataInput(serializers.Serializer):
    metadata = serializers.JSONField(required=False, allow_null=True)


# --- outputs ---------------------------------------------------------------------------------


def _payment_method(stored: dict | None) -> dict:
    stored = stored or {}
    return {
        "payment_method_type": stored.get("payment_method_type") or "provider",
        "payment_method_id": stored.get("payment_method_id"),
    }


class AppliesToOutput(serializers.Serializer):
    fee_types = serializers.ListField(child=serializers.CharField())
    billable_metric_codes = serializers.ListField(child=serializers.CharField())


class RecurringTransactionRuleSerializer(serializers.ModelSerializer):
    lago_id = serializers.UUIDField(source="pk")
    status = serializers.CharField()
    interval = TextOrNull()
    threshold_credits = RawDecimal()
    paid_credits = RawDecimal()
    granted_credits = RawDecimal()
    target_ongoing_balance = RawDecimal()
    started_at = LagoDateTimeField()
    expiration_at = LagoDateTimeField()
    created_at = LagoDateTimeField()
    transaction_name = TextOrNull()
    purchase_order_number = TextOrNull()
    payment_method = serializers.SerializerMethodField()
    applied_invoice_custom_sections = serializers.SerializerMethodField()

    class Meta:
        model = RecurringTransactionRule
        fields = (
            "lago_id", "trigger", "method", "interval", "threshold_credits", "paid_credits",
            "granted_credits", "target_ongoing_balance", "grants_target_top_up", "started_at",
            "expiration_at", "status", "created_at", "invoice_requires_successful_payment",
            "transaction_metadata", "transaction_name", "ignore_paid_top_up_limits",
            "payment_method", "purchase_order_number", "applied_invoice_custom_sections",
        )  # fmt: skip

    @extend_schema_field(PaymentMethodOutput)
    def get_payment_method(self, rule: RecurringTransactionRule) -> dict:
        return _payment_method(rule.payment_method)

    def get_applied_invoice_custom_sections(self, rule: RecurringTransactionRule) -> list:
        return []


class WalletSerializer(serializers.ModelSerializer):
    lago_id = serializers.UUIDField(source="pk")
    lago_customer_id = serializers.UUIDField(source="customer_id")
    external_customer_id = serializers.CharField(source="customer.external_id")
    status = serializers.CharField()
    billing_entity_code = serializers.SerializerMethodField()
    name = TextOrNull()
    rate_amount = RawDecimal()
    credits_balance = RawDecimal()
    consumed_credits = RawDecimal()
    credits_ongoing_balance = RawDecimal()
    credits_ongoing_usage_balance = RawDecimal()
    created_at = LagoDateTimeField()
    expiration_at = LagoDateTimeField()
    last_balance_sync_at = LagoDateTimeField()
    last_consumed_credit_at = LagoDateTimeField()
    terminated_at = LagoDateTimeField()
    applies_to = serializers.SerializerMethodField()
    recurring_transaction_rules = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()
    payment_method = serializers.SerializerMethodField()
    purchase_order_number = TextOrNull()
    applied_invoice_custom_sections = serializers.SerializerMethodField()

    class Meta:
        model = Wallet
        fields = (
            "lago_id", "lago_customer_id", "external_customer_id", "billing_entity_code",
            "status", "currency", "name", "code", "priority", "rate_amount", "credits_balance",
            "balance_cents", "consumed_credits",
            "credits_ongoing_balance", "ongoing_balance_cents", "credits_ongoing_usage_balance",
            "ongoing_usage_balance_cents", "created_at", "expiration_at", "last_balance_sync_at",
            "last_consumed_credit_at", "terminated_at", "invoice_requires_successful_payment",
            "applies_to", "recurring_transaction_rules", "paid_top_up_min_amount_cents",
            "paid_top_up_max_amount_cents", "payment_method", "purchase_order_number",
            "metadata", "applied_invoice_custom_sections",
        )  # fmt: skip

    def get_billing_entity_code(self, wallet: Wallet) -> str | None:
        entity = wallet.customer.billing_entity
        return entity.code if entity is not None else None

    @extend_schema_field(AppliesToOutput)
    def get_applies_to(self, wallet: Wallet) -> dict:
        return {
            "fee_types": list(wallet.allowed_fee_types or []),
            "billable_metric_codes": sorted(
                target.billable_metric.code for target in wallet.targets.all()
            ),
        }

    @extend_schema_field(RecurringTransactionRuleSerializer(many=True))
    def get_recurring_transaction_rules(self, wallet: Wallet) -> list[dict]:
        rules = getattr(wallet, "active_rules", None)
        if rules is None:
            rules = wallet.recurring_transaction_rules.filter(
                status=RecurringTransactionRule.Status.ACTIVE
            )
        return RecurringTransactionRuleSerializer(rules, many=True).data

    @extend_schema_field(
        serializers.DictField(child=serializers.CharField(allow_null=True), allow_null=True)
    )
    def get_metadata(self, wallet: Wallet) -> dict | None:
        return wallet.metadata or None

    @extend_schema_field(PaymentMethodOutput)
    def get_payment_method(self, wallet: Wallet) -> dict:
        return _payment_method(wallet.payment_method)

    def get_applied_invoice_custom_sections(self, wallet: Wallet) -> list:
        return []


class WalletTransactionSerializer(serializers.ModelSerializer):
    lago_id = serializers.UUIDField(source="pk")
    lago_wallet_id = serializers.UUIDField(source="wallet_id")
    lago_invoice_id = serializers.UUIDField(source="invoice_id")
    lago_credit_note_id = serializers.UUIDField(source="credit_note_id")
    lago_voided_invoice_id = serializers.UUIDField(source="voided_invoice_id")
    status = serializers.CharField()
    amount = RawDecimal()
    credit_amount = RawDecimal()
    remaining_amount_cents = serializers.SerializerMethodField()
    remaining_credit_amount = serializers.SerializerMethodField()
    settled_at = LagoDateTimeField()
    failed_at = LagoDateTimeField()
    created_at = LagoDateTimeField()
    name = TextOrNull()
    purchase_order_number = TextOrNull()
    payment_method = serializers.SerializerMethodField()
    applied_invoice_custom_sections = serializers.SerializerMethodField()

    class Meta:
        model = WalletTransaction
        fields = (
            "lago_id", "lago_wallet_id", "lago_invoice_id", "lago_credit_note_id",
            "lago_voided_invoice_id", "status", "source", "transaction_status",
            "transaction_type", "amount", "credit_amount", "remaining_amount_cents",
            "remaining_credit_amount", "priority", "settled_at", "failed_at", "created_at",
            "invoice_requires_successful_payment", "metadata", "name", "payment_method",
            "purchase_order_number", "applied_invoice_custom_sections",
        )  # fmt: skip

    def _inbound(self, tx: WalletTransaction) -> bool:
        return tx.transaction_type == WalletTransaction.TransactionType.INBOUND

    def get_remaining_amount_cents(self, tx: WalletTransaction) -> int | None:
        return tx.remaining_amount_cents if self._inbound(tx) else None

    @extend_schema_field({"type": "string", "nullable": True})
    def get_remaining_credit_amount(self, tx: WalletTransaction) -> str | None:
        return decimal_string(tx.remaining_credit_amount) if self._inbound(tx) else None

    @extend_schema_field(PaymentMethodOutput)
    def get_payment_method(self, tx: WalletTransaction) -> dict:
        return _payment_method(tx.payment_method)

    def get_applied_invoice_custom_sections(self, tx: WalletTransaction) -> list:
        return []


class _TraceSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="pk")
    amount_cents = serializers.IntegerField(source="consumed_amount_cents")
    credit_amount = RawDecimal(source="consumed_credit_amount")
    created_at = LagoDateTimeField()
    wallet_transaction = serializers.SerializerMethodField()
    side = ""  # the transaction on the other end of the consumption

    @extend_schema_field(WalletTransactionSerializer)
    def get_wallet_transaction(self, consumption: object) -> dict:
        return WalletTransactionSerializer(getattr(consumption, self.side)).data


class WalletTransactionConsumptionSerializer(_TraceSerializer):
    """One draw on an inbound transaction, with the outbound transaction that made it."""

    side = "outbound_wallet_transaction"


class WalletTransactionFundingSerializer(_TraceSerializer):
    """One inbound transaction that funded an outbound one, with what it gave."""

    side = "inbound_wallet_transaction"
