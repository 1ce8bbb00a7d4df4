"""Payments, payment requests and payment receipts: data + invariants.

Imported by `invoicing.models` (Django finds an app's models there); the rows reference the
invoicing models by name, so this module imports none of them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, TimeStampedModel

REFERENCE_MAX = 40  # Lago: a manual payment's reference is at most 40 characters


class PayablePaymentStatus(models.TextChoices):
    """What a payment means for what it pays (Lago's `payable_payment_status`)."""

    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class PaymentRequest(TimeStampedModel):
    """A request to pay several overdue invoices of one customer at once, in one currency."""

    class PaymentStatus(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", models.PROTECT, related_name="payment_requests"
    )
    billing_entity = models.ForeignKey("billing.BillingEntity", models.PROTECT, related_name="+")
    invoices = models.ManyToManyField(
        "invoicing.Invoice", through="PaymentRequestInvoice", related_name="payment_requests"
    )
    # the campaign whose attempt created the request (null: requested by hand)
    dunning_campaign = models.ForeignKey(
        "invoicing.DunningCampaign",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="payment_requests",
    )
    email = models.CharField(max_length=1024, blank=True, default="")
    amount_cents = models.BigIntegerField()
    amount_currency = models.CharField(max_length=3)
    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    payment_attempts = models.PositiveIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0),
                name="invoicing_paymentrequest_amount_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment request {self.lago_id[:8]}"


class PaymentRequestInvoice(models.Model):
    """An invoice a payment request asks to pay."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    payment_request = models.ForeignKey(
        PaymentRequest, models.CASCADE, related_name="applied_invoices"
    )
    invoice = models.ForeignKey("invoicing.Invoice", models.PROTECT, related_name="+")

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["payment_request", "invoice"],
                name="invoicing_paymentrequestinvoice_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.payment_request_id} -> {self.invoice_id}"


class Payment(TimeStampedModel):
    """Money received (or being collected) for an invoice or a payment request.

    `created_at` is when the money was paid (a manual payment's `paid_at`).
    """

    class PaymentType(models.TextChoices):
        MANUAL = "manual", _("Manual")
        PROVIDER = "provider", _("Provider")

    PayableStatus = PayablePaymentStatus

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", models.PROTECT, related_name="payments")
    # the payable: exactly one of the two
    invoice = models.ForeignKey(
        "invoicing.Invoice", models.PROTECT, null=True, blank=True, related_name="payments"
    )
    payment_request = models.ForeignKey(
        PaymentRequest, models.PROTECT, null=True, blank=True, related_name="payments"
    )
    amount_cents = models.BigIntegerField()
    amount_currency = models.CharField(max_length=3)
    payment_type = models.CharField(max_length=16, choices=PaymentType.choices)
    # the provider's raw status ("succeeded", "requires_action"...); a manual one: "succeeded"
    status = models.CharField(max_length=64)
    payable_payment_status = models.CharField(
        max_length=16, choices=PayablePaymentStatus.choices, default=PayablePaymentStatus.PENDING
    )
    reference = models.CharField(max_length=REFERENCE_MAX, blank=True, default="")
    payment_provider_code = models.CharField(max_length=255, blank=True, default="")
    payment_provider_type = models.CharField(max_length=32, blank=True, default="")
    provider_payment_id = models.CharField(max_length=255, null=True, blank=True)
    provider_customer_id = models.CharField(max_length=255, blank=True, default="")
    provider_payment_method_id = models.CharField(max_length=255, blank=True, default="")
    # Lago's `next_action` (a 3-D Secure redirect, for instance)
    provider_payment_data = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=255, blank=True, default="")

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(invoice__isnull=True) ^ Q(payment_request__isnull=True),
                name="invoicing_payment_one_payable",
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gt=0), name="invoicing_payment_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(payment_type="provider") | ~Q(reference=""),
                name="invoicing_payment_manual_has_reference",
            ),
            # a provider's webhook retried, or two workers handling it, find the same row
            models.UniqueConstraint(
                fields=["organization", "provider_payment_id"],
                condition=Q(provider_payment_id__isnull=False),
                name="invoicing_payment_provider_payment_id_unique",
            ),
            # Lago: one collection in flight per payable
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(
                    payment_type="provider", payable_payment_status__in=["pending", "processing"]
                ),
                name="invoicing_payment_one_pending_per_invoice",
            ),
            models.UniqueConstraint(
                fields=["payment_request"],
                condition=Q(
                    payment_type="provider", payable_payment_status__in=["pending", "processing"]
                ),
                name="invoicing_payment_one_pending_per_request",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return self.reference or self.provider_payment_id or f"Payment {self.lago_id[:8]}"

    @property
    def payable_type(self) -> str:
        return "Invoice" if self.invoice_id else "PaymentRequest"

    @property
    def payable_id(self) -> object:
        return self.invoice_id or self.payment_request_id


class PaymentReceipt(TimeStampedModel):
    """The receipt of one succeeded payment, numbered per customer (`<slug>-RCPT-000001`)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey("billing.BillingEntity", models.PROTECT, related_name="+")
    payment = models.OneToOneField(Payment, models.PROTECT, related_name="receipt")
    number = models.CharField(max_length=64)
    file = models.FileField(upload_to="payment_receipts/", blank=True, default="")

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"], name="invoicing_paymentreceipt_number_unique"
            )
        ]

    def __str__(self) -> str:
        return self.number


class PaymentReceiptSequence(models.Model):
    """Locked counter of a customer's receipt numbers (never MAX()+1)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.OneToOneField("customers.Customer", models.CASCADE, related_name="+")
    last_value = models.PositiveIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.last_value}"
