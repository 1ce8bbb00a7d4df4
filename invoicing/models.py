"""Invoices, fees, applied taxes and credits (spec §12, §13, §14.2, §15.3): data + invariants."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, TimeStampedModel
from invoicing import calculation

MONEY = {"max_digits": 40, "decimal_places": 15}  # spec §28: precise amounts numeric(40,15)
SHARE = {"max_digits": 30, "decimal_places": 5}  # coupon / credit-note shares numeric(30,5)


class Invoice(TimeStampedModel):
    """A bill issued to a customer (spec §12.1)."""

    class InvoiceType(models.TextChoices):
        SUBSCRIPTION = "subscription", _("Subscription")
        ADD_ON = "add_on", _("Add-on")
        ONE_OFF = "one_off", _("One-off")
        CREDIT = "credit", _("Credit")
        PROGRESSIVE_BILLING = "progressive_billing", _("Progressive billing")
        ADVANCE_CHARGES = "advance_charges", _("Advance charges")

    class Status(models.TextChoices):
        GENERATING = "generating", _("Generating")
        DRAFT = "draft", _("Draft")
        FINALIZED = "finalized", _("Finalized")
        VOIDED = "voided", _("Voided")
        FAILED = "failed", _("Failed")
        PENDING = "pending", _("Pending")
        CLOSED = "closed", _("Closed")  # zero-amount invoice skipped by the setting (§12.6)
        # a credit invoice waiting for its payment before it is finalized (§17.3): not visible
        OPEN = "open", _("Open")
        DELETED = "deleted", _("Deleted")  # a deleted draft keeps its row: never re-billed

    PaymentStatus = calculation.PaymentStatus

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey(
        "billing.BillingEntity", models.PROTECT, related_name="invoices"
    )
    customer = models.ForeignKey("customers.Customer", models.PROTECT, related_name="invoices")
    invoice_type = models.CharField(max_length=24, choices=InvoiceType.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    number = models.CharField(max_length=64, blank=True, default="")
    # per customer (and billing entity) sequence, and per billing entity sequence (spec §2.3)
    sequential_id = models.PositiveIntegerField(null=True, blank=True)
    billing_entity_sequential_id = models.PositiveIntegerField(null=True, blank=True)
    issuing_date = models.DateField()
    payment_due_date = models.DateField()
    net_payment_term = models.PositiveIntegerField(default=0)
    expected_finalization_date = models.DateField(null=True, blank=True)
    payment_overdue = models.BooleanField(default=False)
    payment_dispute_lost_at = models.DateTimeField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    fees_amount_cents = models.BigIntegerField(default=0)
    coupons_amount_cents = models.BigIntegerField(default=0)
    credit_notes_amount_cents = models.BigIntegerField(default=0)
    progressive_billing_credit_amount_cents = models.BigIntegerField(default=0)
    sub_total_excluding_taxes_amount_cents = models.BigIntegerField(default=0)
    taxes_amount_cents = models.BigIntegerField(default=0)
    taxes_rate = models.DecimalField(max_digits=12, decimal_places=5, default=0)
    sub_total_including_taxes_amount_cents = models.BigIntegerField(default=0)
    prepaid_credit_amount_cents = models.BigIntegerField(default=0)
    prepaid_granted_credit_amount_cents = models.BigIntegerField(default=0)
    prepaid_purchased_credit_amount_cents = models.BigIntegerField(default=0)
    total_amount_cents = models.BigIntegerField(default=0)
    total_paid_amount_cents = models.BigIntegerField(default=0)
    # what credit notes offset on this invoice: lowers the amount due (spec §18.5)
    total_offsetted_credit_note_amount_cents = models.BigIntegerField(default=0)
    version_number = models.PositiveSmallIntegerField(default=4)
    self_billed = models.BooleanField(default=False)
    ready_to_be_refreshed = models.BooleanField(default=False)
    finalized_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    file = models.FileField(upload_to="invoices/", blank=True, default="")
    error_details = models.JSONField(default=list, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-issuing_date", "-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"],
                condition=Q(status__in=["finalized", "voided"]),
                name="invoicing_invoice_number_unique",
            ),
            models.UniqueConstraint(
                fields=["customer", "billing_entity", "sequential_id"],
                condition=Q(sequential_id__isnull=False),
                name="invoicing_invoice_customer_sequence_unique",
            ),
            models.UniqueConstraint(
                fields=["billing_entity", "billing_entity_sequential_id"],
                condition=Q(billing_entity_sequential_id__isnull=False),
                name="invoicing_invoice_entity_sequence_unique",
            ),
            models.CheckConstraint(
                condition=Q(total_amount_cents__gte=0), name="invoicing_invoice_total_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "issuing_date"]),
            models.Index(fields=["customer", "status"]),
            # the analytics' monthly sums read the counted invoices from this index alone
            models.Index(
                fields=["organization", "issuing_date", "currency", "billing_entity",
                        "payment_status", "customer", "total_amount_cents",
                        "total_paid_amount_cents"],
                condition=Q(status="finalized", self_billed=False,
                            payment_dispute_lost_at__isnull=True),
                name="invoicing_invoice_counted_idx",
            ),
            models.Index(
                fields=["organization", "payment_due_date"],
                condition=Q(payment_overdue=True),
                name="invoicing_invoice_overdue_idx",
            ),
            # what finalized invoices still owe (the overview's receivables)
            models.Index(
                fields=["organization", "currency", "payment_status", "payment_overdue",
                        "total_amount_cents", "total_paid_amount_cents"],
                condition=Q(status="finalized", payment_status__in=["pending", "failed"]),
                name="invoicing_invoice_unpaid_idx",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return self.number or f"Invoice {self.lago_id[:8]}"


class InvoicingReason(models.TextChoices):
    SUBSCRIPTION_STARTING = "subscription_starting", _("Subscription starting")
    SUBSCRIPTION_PERIODIC = "subscription_periodic", _("Subscription periodic")
    SUBSCRIPTION_TERMINATING = "subscription_terminating", _("Subscription terminating")
    SUBSCRIPTION_TRIAL_ENDED = "subscription_trial_ended", _("Trial ended")
    IN_ADVANCE_CHARGE = "in_advance_charge", _("In-advance charge")
    IN_ADVANCE_CHARGE_PERIODIC = "in_advance_charge_periodic", _("In-advance charge periodic")
    PROGRESSIVE_BILLING = "progressive_billing", _("Progressive billing")


class InvoiceSubscription(TimeStampedModel):
    """The boundaries a subscription is billed for on an invoice — the double-billing guard."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, models.CASCADE, related_name="invoice_subscriptions")
    subscription = models.ForeignKey(
        "customers.Subscription", models.PROTECT, related_name="invoice_subscriptions"
    )
    invoicing_reason = models.CharField(max_length=32, choices=InvoicingReason.choices)
    from_datetime = models.DateTimeField()
    to_datetime = models.DateTimeField()
    charges_from_datetime = models.DateTimeField(null=True, blank=True)
    charges_to_datetime = models.DateTimeField(null=True, blank=True)
    timestamp = models.DateTimeField()  # the billing instant
    recurring = models.BooleanField(default=False)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            # spec §29: one invoice per subscription, period and reason; a re-run or a
            # concurrent run hits this and bills nothing twice. The usage window is part of the
            # period: yearly plans billing charges monthly share one fee window (spec §10.3).
            models.UniqueConstraint(
                fields=[
                    "subscription",
                    "invoicing_reason",
                    "from_datetime",
                    "to_datetime",
                    "charges_from_datetime",
                    "charges_to_datetime",
                ],
                condition=~Q(invoicing_reason__in=["in_advance_charge", "progressive_billing"]),
                name="invoicing_invoicesubscription_period_unique",
            ),
            models.UniqueConstraint(
                fields=["subscription", "invoicing_reason"],
                condition=Q(
                    invoicing_reason__in=["subscription_starting", "subscription_terminating"]
                ),
                name="invoicing_invoicesubscription_once_per_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.invoicing_reason} {self.from_datetime:%Y-%m-%d}"


class Fee(TimeStampedModel):
    """One priced line: subscription fee, charge (per filter/group), fixed charge, add-on,
    commitment true-up or credit (spec §13)."""

    FeeType = calculation.FeeType

    class PaymentStatus(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        REFUNDED = "refunded", _("Refunded")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, models.CASCADE, null=True, blank=True, related_name="fees")
    customer = models.ForeignKey("customers.Customer", models.PROTECT, related_name="fees")
    subscription = models.ForeignKey(
        "customers.Subscription", models.PROTECT, null=True, blank=True, related_name="fees"
    )
    charge = models.ForeignKey(
        "plans.Charge", models.PROTECT, null=True, blank=True, related_name="fees"
    )
    charge_filter = models.ForeignKey(
        "plans.ChargeFilter", models.PROTECT, null=True, blank=True, related_name="fees"
    )
    fixed_charge = models.ForeignKey(
        "plans.FixedCharge", models.PROTECT, null=True, blank=True, related_name="fees"
    )
    add_on = models.ForeignKey(
        "plans.AddOn", models.PROTECT, null=True, blank=True, related_name="fees"
    )
    true_up_parent_fee = models.OneToOneField(
        "self", models.CASCADE, null=True, blank=True, related_name="true_up_fee"
    )
    # the purchase a `credit` fee bills (spec §17.3)
    wallet_transaction = models.ForeignKey(
        "wallets.WalletTransaction", models.PROTECT, null=True, blank=True, related_name="+"
    )
    fee_type = models.CharField(max_length=16, choices=FeeType.choices)
    amount_cents = models.BigIntegerField(default=0)
    precise_amount_cents = models.DecimalField(**MONEY, default=0)
    amount_currency = models.CharField(max_length=3)
    unit_amount_cents = models.BigIntegerField(default=0)
    precise_unit_amount = models.DecimalField(max_digits=30, decimal_places=15, default=0)
    units = models.DecimalField(max_digits=40, decimal_places=15, default=0)
    total_aggregated_units = models.DecimalField(
        max_digits=40, decimal_places=15, null=True, blank=True
    )
    events_count = models.PositiveIntegerField(default=0)
    taxes_amount_cents = models.BigIntegerField(default=0)
    taxes_precise_amount_cents = models.DecimalField(**MONEY, default=0)
    taxes_rate = models.DecimalField(max_digits=12, decimal_places=5, default=0)
    precise_coupons_amount_cents = models.DecimalField(**SHARE, default=0)
    precise_credit_notes_amount_cents = models.DecimalField(**SHARE, default=0)
    pay_in_advance = models.BooleanField(default=False)
    invoiceable = models.BooleanField(default=True)
    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    pay_in_advance_event_transaction_id = models.CharField(max_length=255, blank=True, default="")
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    amount_details = models.JSONField(default=dict, blank=True)
    grouped_by = models.JSONField(default=dict, blank=True)
    # units per presentation group values (spec §7.13): [{"presentation_by": {}, "units": "1.5"}]
    presentation_breakdowns = models.JSONField(default=list, blank=True)
    properties = models.JSONField(default=dict, blank=True)  # boundaries used to compute it
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            # spec §5.3: pay-in-advance fees are deduplicated on the event's transaction_id
            models.UniqueConstraint(
                fields=["charge", "charge_filter", "pay_in_advance_event_transaction_id"],
                condition=Q(pay_in_advance=True) & ~Q(pay_in_advance_event_transaction_id=""),
                name="invoicing_fee_in_advance_event_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(invoice__isnull=False) | Q(invoiceable=False) | Q(pay_in_advance=True),
                name="invoicing_fee_invoiced_unless_in_advance",
            ),
        ]
        indexes = [
            models.Index(fields=["subscription", "fee_type"]),
            # pay-in-advance fees waiting for no invoice: gross revenue adds them by month
            models.Index(
                fields=["organization", "created_at", "amount_currency", "amount_cents"],
                condition=Q(invoice__isnull=True, pay_in_advance=True, deleted_at__isnull=True),
                name="invoicing_fee_uninvoiced_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.invoice_display_name or f"{self.fee_type} fee"


class FeeAppliedTax(TimeStampedModel):
    """A tax applied to one fee (spec §14.2: rounded per fee and tax)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    fee = models.ForeignKey(Fee, models.CASCADE, related_name="applied_taxes")
    tax = models.ForeignKey("plans.Tax", models.SET_NULL, null=True, blank=True, related_name="+")
    tax_name = models.CharField(max_length=255)
    tax_code = models.CharField(max_length=255)
    tax_rate = models.DecimalField(max_digits=12, decimal_places=5)
    tax_description = models.TextField(blank=True, default="")
    amount_cents = models.BigIntegerField(default=0)
    precise_amount_cents = models.DecimalField(**MONEY, default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fee", "tax_code"], name="invoicing_feeappliedtax_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tax_code} {self.tax_rate}%"


class InvoiceAppliedTax(TimeStampedModel):
    """A tax summed over an invoice's fees (spec §14.2: rounded once per invoice and tax)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, models.CASCADE, related_name="applied_taxes")
    tax = models.ForeignKey("plans.Tax", models.SET_NULL, null=True, blank=True, related_name="+")
    tax_name = models.CharField(max_length=255)
    tax_code = models.CharField(max_length=255)
    tax_rate = models.DecimalField(max_digits=12, decimal_places=5)
    tax_description = models.TextField(blank=True, default="")
    amount_cents = models.BigIntegerField(default=0)
    fees_amount_cents = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "tax_code"], name="invoicing_invoiceappliedtax_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tax_code} {self.tax_rate}%"


class Credit(TimeStampedModel):
    """A deduction on an invoice: a coupon (before taxes) or a credit note (after taxes)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, models.CASCADE, related_name="credits")
    applied_coupon = models.ForeignKey(
        "customers.AppliedCoupon", models.PROTECT, null=True, blank=True, related_name="credits"
    )
    progressive_billing_invoice = models.ForeignKey(
        Invoice, models.PROTECT, null=True, blank=True, related_name="+"
    )
    amount_cents = models.BigIntegerField()
    amount_currency = models.CharField(max_length=3)
    before_taxes = models.BooleanField(default=True)
    voided_at = models.DateTimeField(null=True, blank=True)  # coupon usage given back (§12.8)
    # a credit note's balance consumed by this invoice (after taxes, spec §12.3 step 11)
    credit_note = models.ForeignKey(
        "invoicing.CreditNote", models.PROTECT, null=True, blank=True, related_name="credits"
    )

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "applied_coupon"],
                condition=Q(applied_coupon__isnull=False),
                name="invoicing_credit_coupon_once_per_invoice",
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0), name="invoicing_credit_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"credit {self.amount_cents} {self.amount_currency}"


class AppliedUsageThreshold(TimeStampedModel):
    """A usage threshold a progressive billing invoice was issued for (spec §21.2).

    `occurrence` tells the crossings of one threshold apart: 0 for a one-time threshold (it is
    crossed once in the subscription's life), the step number for the recurring one. The
    unique constraint is the last guard against two passes billing the same crossing; a
    crossing whose invoice was voided (`voided_at`) no longer counts, so the next check bills
    it again (Lago computes crossings from the non-voided progressive invoices only).
    """

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, models.CASCADE, related_name="applied_usage_thresholds")
    subscription = models.ForeignKey(
        "customers.Subscription", models.PROTECT, related_name="applied_usage_thresholds"
    )
    usage_threshold = models.ForeignKey(
        "plans.UsageThreshold", models.PROTECT, related_name="applied_usage_thresholds"
    )
    occurrence = models.PositiveIntegerField(default=0)
    lifetime_usage_amount_cents = models.BigIntegerField(default=0)
    voided_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "usage_threshold", "occurrence"],
                condition=models.Q(voided_at__isnull=True),
                name="invoicing_appliedusagethreshold_crossed_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.usage_threshold} #{self.occurrence}"


class InvoiceMetadata(TimeStampedModel):
    """Free key/value pairs on an invoice (spec §12.12)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, models.CASCADE, related_name="metadata")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=1024, blank=True, default="")

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        verbose_name_plural = "invoice metadata"

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class InvoiceSequence(models.Model):
    """Locked counter rows for gapless invoice numbers (STYLE §7: never MAX()+1).

    One row per (billing entity) for per-entity numbering, and one per (billing entity,
    customer) for per-customer numbering.
    """

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey("billing.BillingEntity", models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", models.CASCADE, null=True, blank=True, related_name="+"
    )
    last_value = models.PositiveIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["billing_entity", "customer"],
                name="invoicing_invoicesequence_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.billing_entity}/{self.customer or '*'}: {self.last_value}"


class MonthlyFeeFigure(models.Model):
    """Fee amounts of counted invoices (finalized, not self-billed, no lost dispute), summed per
    month and kind: what the analytics read instead of every fee. Kept exact by the services
    that finalize, void or lose a dispute on an invoice (`invoicing.services.analytics_figures`),
    rebuilt from the fees by `manage.py analytics_figures_rebuild`.

    Append-only, like the other figure tables: each change inserts its signed amounts as new
    rows (no row is updated, so concurrent finalizations never wait on each other's figures);
    a key's figure is the sum of its rows, and `figure_deltas_compact` folds them."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey("billing.BillingEntity", models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    issuing_month = models.DateField()  # first day of the invoice's issuing month
    created_month = models.DateField()  # first day of the fee's creation month (UTC)
    fee_type = models.CharField(max_length=16)
    metric_code = models.CharField(max_length=255, blank=True, default="")
    plan_interval = models.CharField(max_length=16, blank=True, default="")
    # amount - precise coupons, and the same + taxes (the MRR amount)
    net_amount_cents = models.DecimalField(**MONEY, default=0)
    mrr_amount_cents = models.DecimalField(**MONEY, default=0)
    fees_count = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=[
                    "organization", "billing_entity", "currency", "issuing_month",
                    "created_month", "fee_type", "metric_code", "plan_interval",
                ],
                name="invoicing_feefigure_key_idx",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.issuing_month:%Y-%m} {self.fee_type} {self.metric_code}".strip()


class SpreadFeeFigure(models.Model):
    """Subscription fees of quarterly, semiannual and yearly plans on counted invoices, summed
    per issuing day, billed period length and payment timing: the MRR spreads each group over
    the months it pays for (the spread is linear in the amount)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey("billing.BillingEntity", models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    issuing_date = models.DateField()
    period_minutes = models.BigIntegerField()
    pay_in_advance = models.BooleanField()
    mrr_amount_cents = models.DecimalField(**MONEY, default=0)
    fees_count = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=[
                    "organization", "billing_entity", "currency", "issuing_date",
                    "period_minutes", "pay_in_advance",
                ],
                name="invoicing_sprfigure_key_idx",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.issuing_date} {self.period_minutes} min"


class MonthlyInvoiceFigure(models.Model):
    """Counted invoices (finalized, not self-billed, no lost dispute) summed per issuing month:
    their count, totals and what their credit notes refunded; what gross revenue reads instead
    of every invoice. Kept exact by the same services as `MonthlyFeeFigure` and by the creation
    of a credit note with a refund (`invoicing.services.analytics_figures`)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey("billing.BillingEntity", models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    issuing_month = models.DateField()  # first day of the invoices' issuing month
    invoices_count = models.BigIntegerField(default=0)
    total_amount_cents = models.BigIntegerField(default=0)
    refund_amount_cents = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "billing_entity", "currency", "issuing_month"],
                name="invoicing_invfigure_key_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.issuing_month:%Y-%m} {self.currency}"


class DailyUsageFigure(models.Model):
    """Charge fees of counted invoices (finalized, not self-billed, no lost dispute) summed per
    creation day (UTC), currency, charge and customer type and country: what the usage analytics
    read instead of every fee. The charge gives the billable metric and the plan (read at query
    time); the customer's type and country are those of the customer when the fee entered the
    figures, moved by the database when the customer changes them. Kept exact by the same
    services as `MonthlyFeeFigure`; pay-in-advance fees without invoice are read live."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    day = models.DateField()
    currency = models.CharField(max_length=3)
    charge = models.ForeignKey("plans.Charge", models.CASCADE, related_name="+")
    customer_type = models.CharField(max_length=16, blank=True, default="")
    customer_country = models.CharField(max_length=2, blank=True, default="")
    amount_cents = models.BigIntegerField(default=0)
    units = models.DecimalField(max_digits=40, decimal_places=15, default=0)
    fees_count = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=[
                    "organization", "day", "currency", "charge", "customer_type",
                    "customer_country",
                ],
                name="invoicing_usefigure_key_idx",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.currency}"


def _untied(model: str) -> models.ForeignKey:
    """A key to `model` with no database constraint: an insert checks no referenced row, so it
    takes no lock on it (Django still cascades deletes)."""
    return models.ForeignKey(model, models.CASCADE, related_name="+", db_constraint=False)


class CollectionFigureDelta(models.Model):
    """Counted invoices (finalized, not self-billed, no lost dispute) per issuing month and
    payment status, as signed changes: what invoice collection sums instead of every invoice.

    Append-only: a statement-level trigger on the invoices table (PostgreSQL) inserts one row
    per key a statement changed (+1 and the total when an invoice enters the key, -1 and minus
    the total when it leaves it); no row is ever updated, so concurrent writers never wait on
    each other here. The sum of a key's rows is the figure at every moment;
    `figure_deltas_compact` folds a key's rows into one (one statement, exact)."""

    organization = _untied("billing.Organization")
    billing_entity = _untied("billing.BillingEntity")
    currency = models.CharField(max_length=3)
    issuing_month = models.DateField()  # first day of the invoices' issuing month
    payment_status = models.CharField(max_length=16)
    invoices_count = models.BigIntegerField(default=0)
    total_amount_cents = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["organization", "issuing_month"])]

    def __str__(self) -> str:
        return f"{self.issuing_month:%Y-%m} {self.currency} {self.payment_status}"


class CustomerFigureDelta(models.Model):
    """Counted invoices per customer and issuing month, as signed changes kept like
    `CollectionFigureDelta`: what the overview's top customers sum instead of every invoice."""

    organization = _untied("billing.Organization")
    billing_entity = _untied("billing.BillingEntity")
    customer = _untied("customers.Customer")
    currency = models.CharField(max_length=3)
    issuing_month = models.DateField()
    invoices_count = models.BigIntegerField(default=0)
    total_amount_cents = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["organization", "issuing_month"])]

    def __str__(self) -> str:
        return f"{self.issuing_month:%Y-%m} {self.currency} {self.customer_id}"


class ReceivableFigureDelta(models.Model):
    """Counted invoices whose payment is pending or failed and that still owe something (total -
    paid - what credit notes offset > 0), per payment status and overdue flag: how many and what
    they owe, as signed changes kept like `CollectionFigureDelta` (a payment, an offset or the
    overdue flag moves an invoice between keys or out of them): the overview's receivables."""

    organization = _untied("billing.Organization")
    billing_entity = _untied("billing.BillingEntity")
    currency = models.CharField(max_length=3)
    payment_status = models.CharField(max_length=16)
    payment_overdue = models.BooleanField()
    invoices_count = models.BigIntegerField(default=0)
    due_amount_cents = models.BigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["organization", "currency"])]

    def __str__(self) -> str:
        return f"{self.currency} {self.payment_status} overdue={self.payment_overdue}"


# Credit notes, payments and dunning live in their own modules; Django registers the models
# they define here.
from invoicing.credit_note_models import (  # noqa: E402
    CreditNote,
    CreditNoteAppliedTax,
    CreditNoteItem,
)
from invoicing.dunning_models import (  # noqa: E402
    BillingEntityDunningCampaign,
    CustomerDunning,
    DunningCampaign,
    DunningCampaignThreshold,
)
from invoicing.payment_models import (  # noqa: E402
    Payment,
    PaymentReceipt,
    PaymentReceiptSequence,
    PaymentRequest,
    PaymentRequestInvoice,
)

__all__ = [
    "BillingEntityDunningCampaign",
    "CollectionFigureDelta",
    "Credit",
    "CreditNote",
    "CreditNoteAppliedTax",
    "CreditNoteItem",
    "CustomerDunning",
    "CustomerFigureDelta",
    "DunningCampaign",
    "DunningCampaignThreshold",
    "Fee",
    "FeeAppliedTax",
    "Invoice",
    "InvoiceAppliedTax",
    "InvoiceMetadata",
    "InvoiceSequence",
    "InvoiceSubscription",
    "InvoicingReason",
    "MonthlyFeeFigure",
    "Payment",
    "PaymentReceipt",
    "PaymentReceiptSequence",
    "PaymentRequest",
    "PaymentRequestInvoice",
    "ReceivableFigureDelta",
]
