"""Customers, their subscriptions and applied coupons (spec §3, §9, §15.2)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, SoftDeleteQuerySet, TimeStampedModel
from billing.periods import BillingTime
from customers.choices import ZeroAmountInvoice


class Customer(TimeStampedModel):
    """Someone the organization bills, addressed by `external_id` (spec §3.1)."""

    class AccountType(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        PARTNER = "partner", _("Partner")

    class CustomerType(models.TextChoices):
        COMPANY = "company", _("Company")
        INDIVIDUAL = "individual", _("Individual")

    ZeroAmountInvoice = ZeroAmountInvoice

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.ForeignKey(
        "billing.BillingEntity", models.PROTECT, related_name="customers"
    )
    external_id = models.CharField(max_length=255)
    sequential_id = models.PositiveIntegerField()
    # spec §2.3: "<org prefix>-<sequential_id:03d>", fixed at creation (a later prefix change
    # does not rename existing customers, as in Lago)
    slug = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    firstname = models.CharField(max_length=255, blank=True, default="")
    lastname = models.CharField(max_length=255, blank=True, default="")
    legal_name = models.CharField(max_length=255, blank=True, default="")
    legal_number = models.CharField(max_length=255, blank=True, default="")
    account_type = models.CharField(
        max_length=16, choices=AccountType.choices, default=AccountType.CUSTOMER
    )
    customer_type = models.CharField(
        max_length=16, choices=CustomerType.choices, null=True, blank=True
    )
    email = models.CharField(max_length=1024, blank=True, default="")  # comma-separated list
    phone = models.CharField(max_length=64, blank=True, default="")
    url = models.CharField(max_length=1024, blank=True, default="")
    logo_url = models.CharField(max_length=1024, blank=True, default="")
    address_line1 = models.CharField(max_length=255, blank=True, default="")
    address_line2 = models.CharField(max_length=255, blank=True, default="")
    city = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=255, blank=True, default="")
    zipcode = models.CharField(max_length=32, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    shipping_address = models.JSONField(default=dict, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    timezone = models.CharField(max_length=64, blank=True, default="")
    tax_identification_number = models.CharField(max_length=255, blank=True, default="")
    net_payment_term = models.PositiveIntegerField(null=True, blank=True)
    invoice_grace_period = models.PositiveIntegerField(null=True, blank=True)
    document_locale = models.CharField(max_length=8, blank=True, default="")
    finalize_zero_amount_invoice = models.CharField(
        max_length=16, choices=ZeroAmountInvoice.choices, default=ZeroAmountInvoice.INHERIT
    )
    skip_invoice_custom_sections = models.BooleanField(default=False)
    # billing_configuration keys not modelled as columns (payment provider, issuing date prefs)
    billing_configuration = models.JSONField(default=dict, blank=True)
    taxes = models.ManyToManyField("plans.Tax", blank=True, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=Q(deleted_at__isnull=True),
                name="customers_customer_external_id_unique",
            ),
            models.UniqueConstraint(
                fields=["organization", "sequential_id"],
                name="customers_customer_sequential_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    @property
    def applicable_timezone(self) -> str:
        """Customer > billing entity > organization > UTC (spec §3.1)."""
        return self.timezone or self.billing_entity.timezone or self.organization.timezone or "UTC"


class CustomerMetadata(TimeStampedModel):
    """A key/value pair on a customer, optionally printed on invoices (spec §3.1: max 5)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, models.CASCADE, related_name="metadata")
    key = models.CharField(max_length=20)
    value = models.CharField(max_length=100)
    display_in_invoice = models.BooleanField(default=False)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        verbose_name_plural = "customer metadata"
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "key"], name="customers_customermetadata_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Subscription(TimeStampedModel):
    """A customer on a plan, identified by `external_id` (spec §9)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACTIVE = "active", _("Active")
        INCOMPLETE = "incomplete", _("Incomplete")
        TERMINATED = "terminated", _("Terminated")
        CANCELED = "canceled", _("Canceled")

    BillingTime = BillingTime

    class OnTerminationCreditNote(models.TextChoices):
        CREDIT = "credit", _("Credit")
        REFUND = "refund", _("Refund")
        OFFSET = "offset", _("Offset")
        SKIP = "skip", _("Skip")

    class OnTerminationInvoice(models.TextChoices):
        GENERATE = "generate", _("Generate")
        SKIP = "skip", _("Skip")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey("plans.Plan", models.PROTECT, related_name="subscriptions")
    previous_subscription = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="next_subscriptions"
    )
    external_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    billing_time = models.CharField(
        max_length=16, choices=BillingTime.choices, default=BillingTime.CALENDAR
    )
    subscription_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    ending_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    trial_ended_at = models.DateTimeField(null=True, blank=True)
    downgrade_plan_date = models.DateField(null=True, blank=True)
    on_termination_credit_note = models.CharField(
        max_length=16, choices=OnTerminationCreditNote.choices, null=True, blank=True
    )
    on_termination_invoice = models.CharField(
        max_length=16, choices=OnTerminationInvoice.choices, default=OnTerminationInvoice.GENERATE
    )
    consolidate_invoice = models.BooleanField(default=True)
    purchase_order_number = models.CharField(max_length=255, blank=True, default="")
    cancellation_reason = models.CharField(max_length=32, blank=True, default="")
    # spec §21.1: no progressive billing for this subscription, whatever its plan's thresholds
    progressive_billing_disabled = models.BooleanField(default=False)
    # Termination alerts already recorded (45 and 15 days before ending_at): a rerun records none.
    termination_alerts_sent = models.JSONField(default=list, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # spec §9.2: only one active subscription per external_id in an organization
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=Q(status="active"),
                name="customers_subscription_one_active_per_external_id",
            ),
            # a single pending successor (downgrade) per subscription
            models.UniqueConstraint(
                fields=["previous_subscription"],
                condition=Q(status="pending"),
                name="customers_subscription_one_pending_successor",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "external_id"]),
            models.Index(fields=["status", "subscription_at"]),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class AppliedCoupon(TimeStampedModel):
    """A coupon given to a customer, with per-customer overrides (spec §15.2)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        TERMINATED = "terminated", _("Terminated")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    coupon = models.ForeignKey("plans.Coupon", models.PROTECT, related_name="applied_coupons")
    customer = models.ForeignKey(Customer, models.PROTECT, related_name="applied_coupons")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    amount_cents = models.BigIntegerField(null=True, blank=True)
    amount_currency = models.CharField(max_length=3, blank=True, default="")
    percentage_rate = models.DecimalField(max_digits=12, decimal_places=5, null=True, blank=True)
    frequency = models.CharField(max_length=16)
    frequency_duration = models.PositiveIntegerField(null=True, blank=True)
    frequency_duration_remaining = models.PositiveIntegerField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return f"{self.coupon} → {self.customer}"


class PaymentMethod(TimeStampedModel):
    """A customer's payment method saved at a payment provider (a Stripe card, a SEPA mandate),
    known by the provider's id; at most one alive default per customer (spec §19.1, §19.2)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, models.PROTECT, related_name="payment_methods")
    # The provider connection is named by code and type: the connections live in the
    # integrations app, to the right of this one.
    payment_provider_type = models.CharField(max_length=32)
    payment_provider_code = models.CharField(max_length=255)
    provider_customer_id = models.CharField(max_length=255)
    provider_method_id = models.CharField(max_length=255)
    provider_method_type = models.CharField(max_length=64, blank=True, default="")
    is_default = models.BooleanField(default=False)
    # Shown to people only: card brand, last four digits, expiry (never a full number).
    details = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_default=True, deleted_at__isnull=True),
                name="customers_paymentmethod_one_default_per_customer",
            ),
            models.UniqueConstraint(
                fields=["customer", "provider_customer_id", "provider_method_id"],
                condition=Q(deleted_at__isnull=True),
                name="customers_paymentmethod_provider_method_unique",
            ),
        ]

    def __str__(self) -> str:
        brand, last4 = self.details.get("brand"), self.details.get("last4")
        if brand and last4:
            return f"{brand} •••• {last4}"
        return self.provider_method_id


class SubscriptionEntitlement(TimeStampedModel):
    """A subscription's change to its plan's entitlements for one feature: values overriding
    the plan's (`SubscriptionEntitlementValue`), a feature the plan lacks, or the plan's
    feature removed (`removed`)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    subscription = models.ForeignKey(
        Subscription, models.CASCADE, related_name="entitlement_overrides"
    )
    feature = models.ForeignKey("plans.Feature", models.CASCADE, related_name="+")
    removed = models.BooleanField(default=False)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "feature"], name="customers_subentitlement_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id}:{self.feature_id}"


class SubscriptionEntitlementValue(TimeStampedModel):
    """A subscription's value for one privilege, overriding its plan's."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    entitlement = models.ForeignKey(SubscriptionEntitlement, models.CASCADE, related_name="values")
    privilege = models.ForeignKey("plans.Privilege", models.CASCADE, related_name="+")
    value = models.TextField()

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["entitlement", "privilege"], name="customers_subentitlementvalue_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.privilege_id}={self.value}"
