"""Wallets and prepaid credits (spec §17).

A wallet holds credits of one customer in one currency; `rate_amount` is the value of one
credit. The ledger is its wallet transactions: inbound ones (purchased or granted credits) fund
the wallet, outbound ones (voided or invoiced credits) draw on it, and each draw is traced to the
inbound transactions it consumed (`WalletTransactionConsumption`).

Integrity: `balance_cents` always equals the sum of the `remaining_amount_cents` of the settled
inbound transactions, which also equals settled inbound minus settled outbound amounts. Every
change happens in `wallets.services.ledger` under a row lock of the wallet, in the transaction
that writes the wallet transaction; the check constraints below make a negative balance or an
over-consumed inbound transaction impossible even for a faulty caller.

Invoices belong to `invoicing`, which sits above this app (import layers): transactions keep
the invoice's id (`invoice_id`, never reused: invoices are not deleted) rather than a foreign
key into an app they may not import.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, TimeStampedModel

CREDITS = {"max_digits": 30, "decimal_places": 5}  # Lago numeric(30,5)
MAX_PRIORITY = 50


class Wallet(TimeStampedModel):
    """Prepaid credits of one customer in one currency (spec §17.1)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        TERMINATED = "terminated", _("Terminated")

    class FeeType(models.TextChoices):  # `applies_to.fee_types` (spec §17.5)
        CHARGE = "charge", _("Charge")
        SUBSCRIPTION = "subscription", _("Subscription")
        COMMITMENT = "commitment", _("Commitment")
        FIXED_CHARGE = "fixed_charge", _("Fixed charge")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", models.PROTECT, related_name="wallets")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    name = models.CharField(max_length=255, blank=True, default="")
    code = models.CharField(max_length=255)
    currency = models.CharField(max_length=3)
    priority = models.PositiveSmallIntegerField(default=MAX_PRIORITY)  # 1 is applied first
    rate_amount = models.DecimalField(**CREDITS)  # value of one credit, in currency units
    credits_balance = models.DecimalField(**CREDITS, default=0)
    balance_cents = models.BigIntegerField(default=0)
    consumed_credits = models.DecimalField(**CREDITS, default=0)
    consumed_amount_cents = models.BigIntegerField(default=0)
    credits_ongoing_balance = models.DecimalField(**CREDITS, default=0)
    ongoing_balance_cents = models.BigIntegerField(default=0)  # may go negative (§17.4)
    credits_ongoing_usage_balance = models.DecimalField(**CREDITS, default=0)
    ongoing_usage_balance_cents = models.BigIntegerField(default=0)
    expiration_at = models.DateTimeField(null=True, blank=True)
    last_balance_sync_at = models.DateTimeField(null=True, blank=True)
    last_consumed_credit_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    # set when usage changed; the ongoing-balance refresh job picks flagged wallets (§17.4)
    ready_to_be_refreshed = models.BooleanField(default=False)
    depleted_ongoing_balance = models.BooleanField(default=False)  # last sync was <= 0
    invoice_requires_successful_payment = models.BooleanField(default=False)
    allowed_fee_types = models.JSONField(default=list, blank=True)  # applies_to.fee_types
    paid_top_up_min_amount_cents = models.BigIntegerField(null=True, blank=True)
    paid_top_up_max_amount_cents = models.BigIntegerField(null=True, blank=True)
    payment_method = models.JSONField(default=dict, blank=True)
    purchase_order_number = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)  # {key: value or null}

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("priority", "created_at", "id")
        indexes = [
            models.Index(fields=["customer", "status"], name="wallets_wallet_customer_status"),
            models.Index(
                fields=["ready_to_be_refreshed"],
                condition=Q(ready_to_be_refreshed=True),
                name="wallets_wallet_to_refresh",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "code"],
                condition=Q(status="active"),
                name="wallets_wallet_code_unique_while_active",
            ),
            models.CheckConstraint(
                condition=Q(balance_cents__gte=0), name="wallets_wallet_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(credits_balance__gte=0), name="wallets_wallet_credits_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(rate_amount__gt=0), name="wallets_wallet_rate_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=1, priority__lte=MAX_PRIORITY),
                name="wallets_wallet_priority_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.code

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class WalletTarget(TimeStampedModel):
    """A billable metric the wallet is limited to (`applies_to.billable_metric_codes`)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="targets")
    billable_metric = models.ForeignKey(
        "plans.BillableMetric", models.CASCADE, related_name="wallet_targets"
    )

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["wallet", "billable_metric"], name="wallets_wallettarget_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.wallet_id} -> {self.billable_metric_id}"


class RecurringTransactionRule(TimeStampedModel):
    """Automatic top-up of a wallet (spec §17.6); at most one active per wallet."""

    class Trigger(models.TextChoices):
        INTERVAL = "interval", _("Interval")
        THRESHOLD = "threshold", _("Threshold")

    class Method(models.TextChoices):
        FIXED = "fixed", _("Fixed")
        TARGET = "target", _("Target")

    class Interval(models.TextChoices):
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")
        QUARTERLY = "quarterly", _("Quarterly")
        SEMIANNUAL = "semiannual", _("Semiannual")
        YEARLY = "yearly", _("Yearly")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        TERMINATED = "terminated", _("Terminated")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="recurring_transaction_rules")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.FIXED)
    interval = models.CharField(max_length=16, choices=Interval.choices, blank=True, default="")
    threshold_credits = models.DecimalField(**CREDITS, null=True, blank=True)
    paid_credits = models.DecimalField(**CREDITS, default=0)
    granted_credits = models.DecimalField(**CREDITS, default=0)
    target_ongoing_balance = models.DecimalField(**CREDITS, null=True, blank=True)
    grants_target_top_up = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    expiration_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    terminated_at = models.DateTimeField(null=True, blank=True)
    invoice_requires_successful_payment = models.BooleanField(default=False)
    transaction_metadata = models.JSONField(default=list, blank=True)
    transaction_name = models.CharField(max_length=255, blank=True, default="")
    ignore_paid_top_up_limits = models.BooleanField(default=False)
    payment_method = models.JSONField(default=dict, blank=True)
    purchase_order_number = models.CharField(max_length=255, blank=True, default="")
    # safeguard of §17.6: a failed automatic paid top-up pauses the threshold rule for an hour
    last_failed_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["wallet"],
                condition=Q(status="active"),
                name="wallets_recurringtransactionrule_one_active_per_wallet",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trigger}/{self.method}"


class WalletTransaction(TimeStampedModel):
    """One line of a wallet's ledger (spec §17.3)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SETTLED = "settled", _("Settled")
        FAILED = "failed", _("Failed")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Manual")
        INTERVAL = "interval", _("Interval")
        THRESHOLD = "threshold", _("Threshold")

    class TransactionStatus(models.TextChoices):
        PURCHASED = "purchased", _("Purchased")
        GRANTED = "granted", _("Granted")
        VOIDED = "voided", _("Voided")
        INVOICED = "invoiced", _("Invoiced")

    class TransactionType(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND = "outbound", _("Outbound")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    wallet = models.ForeignKey(Wallet, models.PROTECT, related_name="transactions")
    status = models.CharField(max_length=16, choices=Status.choices)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    transaction_status = models.CharField(max_length=16, choices=TransactionStatus.choices)
    transaction_type = models.CharField(max_length=16, choices=TransactionType.choices)
    amount = models.DecimalField(**CREDITS)  # in currency units
    amount_cents = models.BigIntegerField()
    credit_amount = models.DecimalField(**CREDITS)
    # inbound only: what is left to consume (traceability, spec §17.3 / §17.5)
    remaining_amount_cents = models.BigIntegerField(null=True, blank=True)
    remaining_credit_amount = models.DecimalField(**CREDITS, null=True, blank=True)
    priority = models.PositiveSmallIntegerField(default=MAX_PRIORITY)
    invoice_requires_successful_payment = models.BooleanField(default=False)
    # the credit invoice of a purchase, or the invoice that consumed the credits
    invoice_id = models.UUIDField(null=True, blank=True, db_index=True)
    credit_note_id = models.UUIDField(null=True, blank=True)
    voided_invoice_id = models.UUIDField(null=True, blank=True)
    recurring_transaction_rule = models.ForeignKey(
        RecurringTransactionRule,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="transactions",
    )
    # one automatic top-up per rule occurrence: "interval:<date>" / "threshold:<crossing>"
    trigger_key = models.CharField(max_length=128, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=list, blank=True)  # [{key, value}]
    payment_method = models.JSONField(default=dict, blank=True)
    purchase_order_number = models.CharField(max_length=255, blank=True, default="")
    settled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["wallet", "priority", "created_at"],
                condition=Q(
                    transaction_type="inbound", status="settled", remaining_amount_cents__gt=0
                ),
                name="wallets_tx_consumable",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0) & Q(credit_amount__gte=0),
                name="wallets_wallettransaction_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(remaining_amount_cents__isnull=True)
                | (
                    Q(remaining_amount_cents__gte=0)
                    & Q(remaining_amount_cents__lte=F("amount_cents"))
                ),
                name="wallets_wallettransaction_remaining_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(transaction_type="inbound") | Q(remaining_amount_cents__isnull=True),
                name="wallets_wallettransaction_remaining_inbound_only",
            ),
            models.UniqueConstraint(
                fields=["wallet", "trigger_key"],
                condition=~Q(trigger_key=""),
                name="wallets_wallettransaction_trigger_once",
            ),
            models.UniqueConstraint(
                fields=["wallet", "invoice_id"],
                condition=Q(transaction_status="invoiced"),
                name="wallets_wallettransaction_invoice_consumed_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transaction_type} {self.transaction_status} {self.credit_amount}"


class WalletTransactionConsumption(TimeStampedModel):
    """How much of one inbound transaction one outbound transaction drew (spec §17.5)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    inbound_wallet_transaction = models.ForeignKey(
        WalletTransaction, models.PROTECT, related_name="fundings_given"
    )
    outbound_wallet_transaction = models.ForeignKey(
        WalletTransaction, models.PROTECT, related_name="consumptions_made"
    )
    consumed_amount_cents = models.BigIntegerField()
    consumed_credit_amount = models.DecimalField(**CREDITS)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["inbound_wallet_transaction", "outbound_wallet_transaction"],
                name="wallets_wallettransactionconsumption_unique",
            ),
            models.CheckConstraint(
                condition=Q(consumed_amount_cents__gt=0),
                name="wallets_wallettransactionconsumption_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumed_amount_cents}"


class WalletAlert(TimeStampedModel):
    """Thresholds watched on a wallet balance (spec §17.8); one per type and wallet."""

    class AlertType(models.TextChoices):
        BALANCE_AMOUNT = "wallet_balance_amount", _("Balance amount")
        CREDITS_BALANCE = "wallet_credits_balance", _("Credits balance")
        ONGOING_BALANCE_AMOUNT = "wallet_ongoing_balance_amount", _("Ongoing balance amount")
        CREDITS_ONGOING_BALANCE = "wallet_credits_ongoing_balance", _("Credits ongoing balance")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="alerts")
    alert_type = models.CharField(max_length=40, choices=AlertType.choices)
    code = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    # [{code, value (decimal string), recurring}], values decreasing, up to 20 (+1 recurring)
    thresholds = models.JSONField(default=list)
    previous_value = models.DecimalField(**CREDITS, null=True, blank=True)
    last_processed_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["wallet", "alert_type"], name="wallets_walletalert_type_once"
            ),
            models.UniqueConstraint(fields=["wallet", "code"], name="wallets_walletalert_code"),
        ]

    def __str__(self) -> str:
        return self.code


class TriggeredAlert(TimeStampedModel):
    """A recorded crossing of alert thresholds; the `alert.triggered` webhook is recorded
    from it (§17.8)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    alert = models.ForeignKey(WalletAlert, models.CASCADE, related_name="triggered")
    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="triggered_alerts")
    current_value = models.DecimalField(**CREDITS)
    previous_value = models.DecimalField(**CREDITS, null=True, blank=True)
    crossed_thresholds = models.JSONField(default=list)  # [{code, value, recurring}]
    triggered_at = models.DateTimeField()

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-triggered_at", "-id")

    def __str__(self) -> str:
        return f"{self.alert_id} @ {self.triggered_at:%Y-%m-%d %H:%M}"
