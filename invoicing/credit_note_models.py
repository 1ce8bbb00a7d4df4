"""Credit notes (corrections of a finalized invoice by credit, refund or offset): data and
invariants. Imported by `invoicing.models`, which Django reads."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, TimeStampedModel

MONEY = {"max_digits": 40, "decimal_places": 15}


class CreditNote(TimeStampedModel):
    """A correction of one invoice: an amount credited to the customer's balance, refunded, or
    offset against what the invoice still asks to pay."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        FINALIZED = "finalized", _("Finalized")

    class CreditStatus(models.TextChoices):
        AVAILABLE = "available", _("Available")
        CONSUMED = "consumed", _("Consumed")
        VOIDED = "voided", _("Voided")

    class RefundStatus(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Reason(models.TextChoices):
        DUPLICATED_CHARGE = "duplicated_charge", _("Duplicated charge")
        PRODUCT_UNSATISFACTORY = "product_unsatisfactory", _("Product unsatisfactory")
        ORDER_CHANGE = "order_change", _("Order change")
        ORDER_CANCELLATION = "order_cancellation", _("Order cancellation")
        FRAUDULENT_CHARGE = "fraudulent_charge", _("Fraudulent charge")
        OTHER = "other", _("Other")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey("invoicing.Invoice", models.PROTECT, related_name="credit_notes")
    sequential_id = models.PositiveIntegerField()  # per invoice
    number = models.CharField(max_length=80)
    issuing_date = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.FINALIZED)
    credit_status = models.CharField(
        max_length=16, choices=CreditStatus.choices, null=True, blank=True
    )
    refund_status = models.CharField(
        max_length=16, choices=RefundStatus.choices, null=True, blank=True
    )
    reason = models.CharField(max_length=32, choices=Reason.choices, default=Reason.OTHER)
    description = models.TextField(blank=True, default="")
    currency = models.CharField(max_length=3)
    total_amount_cents = models.BigIntegerField(default=0)
    credit_amount_cents = models.BigIntegerField(default=0)
    refund_amount_cents = models.BigIntegerField(default=0)
    offset_amount_cents = models.BigIntegerField(default=0)
    balance_amount_cents = models.BigIntegerField(default=0)  # credit not consumed yet
    taxes_amount_cents = models.BigIntegerField(default=0)
    precise_taxes_amount_cents = models.DecimalField(**MONEY, default=0)
    taxes_rate = models.DecimalField(max_digits=12, decimal_places=5, default=0)
    coupons_adjustment_amount_cents = models.BigIntegerField(default=0)
    precise_coupons_adjustment_amount_cents = models.DecimalField(**MONEY, default=0)
    sub_total_excluding_taxes_amount_cents = models.BigIntegerField(default=0)
    metadata = models.JSONField(null=True, blank=True)  # Lago: one flat key/value object
    automatic = models.BooleanField(default=False)  # issued on termination, upgrade or void
    file = models.FileField(upload_to="credit_notes/", blank=True, default="")
    voided_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "sequential_id"], name="invoicing_creditnote_sequence_unique"
            ),
            models.CheckConstraint(
                condition=Q(total_amount_cents__gte=0)
                & Q(credit_amount_cents__gte=0)
                & Q(refund_amount_cents__gte=0)
                & Q(offset_amount_cents__gte=0)
                & Q(balance_amount_cents__gte=0),
                name="invoicing_creditnote_amounts_not_negative",
            ),
            # what is left to consume never exceeds what was credited
            models.CheckConstraint(
                condition=Q(balance_amount_cents__lte=F("credit_amount_cents")),
                name="invoicing_creditnote_balance_within_credit",
            ),
        ]
        indexes = [models.Index(fields=["customer", "credit_status", "currency"])]

    def __str__(self) -> str:
        return self.number


class CreditNoteItem(TimeStampedModel):
    """The amount (excluding taxes) a credit note credits on one fee of its invoice."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    credit_note = models.ForeignKey(CreditNote, models.CASCADE, related_name="items")
    fee = models.ForeignKey("invoicing.Fee", models.PROTECT, related_name="credit_note_items")
    amount_cents = models.BigIntegerField()
    precise_amount_cents = models.DecimalField(**MONEY)
    amount_currency = models.CharField(max_length=3)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0), name="invoicing_creditnoteitem_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.amount_cents} {self.amount_currency}"


class CreditNoteAppliedTax(TimeStampedModel):
    """One tax of a credit note: the rate applied to the credited base of the items it taxes."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    credit_note = models.ForeignKey(CreditNote, models.CASCADE, related_name="applied_taxes")
    tax = models.ForeignKey("plans.Tax", models.SET_NULL, null=True, blank=True, related_name="+")
    tax_name = models.CharField(max_length=255)
    tax_code = models.CharField(max_length=255)
    tax_rate = models.DecimalField(max_digits=12, decimal_places=5)
    tax_description = models.TextField(blank=True, default="")
    base_amount_cents = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)
    precise_amount_cents = models.DecimalField(**MONEY, default=0)
    amount_currency = models.CharField(max_length=3)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("tax_code",)
        constraints = [
            models.UniqueConstraint(
                fields=["credit_note", "tax_code"], name="invoicing_creditnoteappliedtax_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tax_code} {self.tax_rate}%"
