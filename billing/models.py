"""Tenancy and the plumbing rows every app builds on (spec §1.5, §2)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.periods import IssuingDateAdjustment, IssuingDateAnchor


class TimeStampedModel(models.Model):
    """UUID primary key (exposed as `lago_id`) with creation and update instants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def lago_id(self) -> str:
        return str(self.id)

    @classmethod
    def from_db(cls, db, field_names, values):
        # Django's documented hook for "the values as loaded": the activity log diffs a row's
        # fields against them after a service changed it (`billing.activity`).
        instance = super().from_db(db, field_names, values)
        instance._loaded_values = dict(zip(field_names, values, strict=True))
        return instance


class OrganizationQuerySet(models.QuerySet):
    """Scoping of every tenant row: the one place a queryset is filtered by organization."""

    def for_organization(self, organization: Organization) -> Self:
        return self.filter(organization=organization)


class SoftDeleteQuerySet(OrganizationQuerySet):
    """Rows soft-deleted by Lago's rules keep their history but leave every listing."""

    def alive(self) -> Self:
        return self.filter(deleted_at__isnull=True)


class DocumentLocale(models.TextChoices):
    EN = "en", "English"
    FR = "fr", "Français"
    DE = "de", "Deutsch"
    ES = "es", "Español"
    IT = "it", "Italiano"
    NL = "nl", "Nederlands"
    NB = "nb", "Norsk bokmål"
    SV = "sv", "Svenska"
    PT_BR = "pt-BR", "Português (Brasil)"
    ZH_TW = "zh-TW", "中文 (台灣)"


class BillingSettings(models.Model):
    """Identity and invoicing settings shared by an organization and its billing entities."""

    name = models.CharField(max_length=255)
    default_currency = models.CharField(max_length=3, default="USD")
    timezone = models.CharField(max_length=64, default="UTC")
    document_locale = models.CharField(
        max_length=8, choices=DocumentLocale.choices, default=DocumentLocale.EN
    )
    country = models.CharField(max_length=2, blank=True, default="")
    address_line1 = models.CharField(max_length=255, blank=True, default="")
    address_line2 = models.CharField(max_length=255, blank=True, default="")
    city = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=255, blank=True, default="")
    zipcode = models.CharField(max_length=32, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    legal_name = models.CharField(max_length=255, blank=True, default="")
    legal_number = models.CharField(max_length=255, blank=True, default="")
    tax_identification_number = models.CharField(max_length=255, blank=True, default="")
    net_payment_term = models.PositiveIntegerField(default=0)
    invoice_grace_period = models.PositiveIntegerField(default=0)
    invoice_footer = models.TextField(blank=True, default="")
    document_number_prefix = models.CharField(max_length=10, blank=True, default="")
    finalize_zero_amount_invoice = models.BooleanField(default=True)
    email_settings = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Organization(TimeStampedModel, BillingSettings):
    """A tenant: every domain row belongs to exactly one organization."""

    class DocumentNumbering(models.TextChoices):
        PER_CUSTOMER = "per_customer", _("Per customer")
        PER_ORGANIZATION = "per_organization", _("Per organization")

    document_numbering = models.CharField(
        max_length=32, choices=DocumentNumbering.choices, default=DocumentNumbering.PER_CUSTOMER
    )
    webhook_secret = models.CharField(max_length=64, default="", blank=True, editable=False)
    max_wallets = models.PositiveIntegerField(default=6)  # spec §30.5: default 6 per customer
    # days the activity log and the API log keep an entry (the daily purge job)
    audit_logs_retention_days = models.PositiveIntegerField(default=90)
    # a succeeded payment gets a numbered receipt (PDF) while this is on
    issue_receipts = models.BooleanField(default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="organizations", blank=True
    )

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=["name"], name="billing_organization_name_unique"),
            models.CheckConstraint(
                condition=Q(document_numbering__in=["per_customer", "per_organization"]),
                name="billing_organization_document_numbering_valid",
            ),
        ]

    @property
    def organization(self) -> Organization:
        """An organization is its own tenant (lets the tenancy checks treat it like any row)."""
        return self

    def default_billing_entity(self) -> BillingEntity | None:
        return self.billing_entities.filter(is_default=True).first()


class BillingEntity(TimeStampedModel, BillingSettings):
    """The legal issuer of invoices; an organization has at least its default one (spec §2.2)."""

    class DocumentNumbering(models.TextChoices):
        PER_CUSTOMER = "per_customer", _("Per customer")
        PER_BILLING_ENTITY = "per_billing_entity", _("Per billing entity")

    IssuingDateAnchor = IssuingDateAnchor
    IssuingDateAdjustment = IssuingDateAdjustment

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="billing_entities")
    code = models.CharField(max_length=255)
    is_default = models.BooleanField(default=False)
    document_numbering = models.CharField(
        max_length=32, choices=DocumentNumbering.choices, default=DocumentNumbering.PER_CUSTOMER
    )
    subscription_invoice_issuing_date_anchor = models.CharField(
        max_length=32,
        choices=IssuingDateAnchor.choices,
        default=IssuingDateAnchor.NEXT_PERIOD_START,
    )
    subscription_invoice_issuing_date_adjustment = models.CharField(
        max_length=32,
        choices=IssuingDateAdjustment.choices,
        default=IssuingDateAdjustment.ALIGN_WITH_FINALIZATION_DATE,
    )
    phone = models.CharField(max_length=64, blank=True, default="")
    eu_tax_management = models.BooleanField(default=False)
    logo = models.FileField(upload_to="logos/", blank=True, default="")
    # Counter of finalized invoices numbered per billing entity (spec §2.3), changed under lock.
    invoices_sequence = models.PositiveBigIntegerField(default=0)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-is_default", "created_at")
        verbose_name_plural = "billing entities"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"], name="billing_billingentity_code_unique"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(is_default=True),
                name="billing_billingentity_one_default",
            ),
        ]


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    MANAGER = "manager", _("Manager")
    FINANCE = "finance", _("Finance")


class Membership(TimeStampedModel):
    """A staff user's role in one organization; the role maps to a Django group."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.FINANCE)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="billing_membership_user_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.organization} ({self.role})"


class ApiKeyQuerySet(OrganizationQuerySet):
    def usable(self, now) -> Self:
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


API_KEY_RESOURCES = (
    "activity_log", "add_on", "alert", "analytic", "api_log", "billable_metric", "billing_entity",
    "coupon",
    "applied_coupon", "credit_note", "customer", "customer_usage", "event", "feature", "fee",
    "invoice", "lifetime_usage", "organization", "payment", "payment_receipt", "payment_request",
    "plan", "subscription", "tax", "wallet", "wallet_transaction", "webhook_endpoint",
    "webhook_jwt_public_key",
)  # fmt: skip


def hash_api_key(raw: str) -> str:
    """SHA-256 of a key: keys are 256-bit random tokens, so a plain digest is enough."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(TimeStampedModel):
    """A named secret that authenticates API calls for one organization (spec §1.5)."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=255, blank=True, default="")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)  # shown to people: "lago_ab12…"
    # None: every resource read + write. Else {"customer": ["read", "write"], "invoice": []...};
    # a resource missing from the dict has no permission.
    permissions = models.JSONField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    rotated_to = models.OneToOneField(
        "self", models.SET_NULL, null=True, blank=True, related_name="rotated_from"
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ("created_at",)
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name or 'API key'} ({self.prefix}…)"

    @staticmethod
    def generate() -> str:
        return f"lago_{secrets.token_urlsafe(32)}"

    def allows(self, resource: str, mode: str) -> bool:
        if self.permissions is None:
            return True
        return mode in (self.permissions.get(resource) or [])


class ApiRequestLog(models.Model):
    """One API call: who, what, how it ended and how long it took (browsable in the admin)."""

    # Written on every API call: neither key is checked by the database (each check would lock
    # the organization's and the key's row at every commit); deletes go through Django, which
    # cascades and nulls them. The organization's rows are found by the (organization,
    # created_at) index, so the key needs no index of its own.
    organization = models.ForeignKey(
        Organization,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    api_key = models.ForeignKey(
        ApiKey, models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False
    )
    key_name = models.CharField(max_length=255, blank=True, default="")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    status = models.PositiveSmallIntegerField()
    duration_ms = models.DecimalField(max_digits=10, decimal_places=2)
    request_id = models.CharField(max_length=36)
    # Lago's api_log: bodies of write calls, secrets redacted (`billing.activity.redact`)
    api_version = models.CharField(max_length=8, blank=True, default="v1")
    client = models.CharField(max_length=255, blank=True, default="")  # User-Agent
    request_origin = models.CharField(max_length=512, blank=True, default="")
    request_body = models.JSONField(null=True, blank=True)
    request_response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "API request"
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"


class IdempotencyRecord(models.Model):
    """A POST answered under an `Idempotency-Key`, replayed for 24 h to the same request."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)  # sha256 of method, path and body
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"], name="billing_idempotencyrecord_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.key


class ActorType(models.TextChoices):
    """Who caused a change (`billing.actors.Actor`)."""

    API_KEY = "api_key", _("API key")
    USER = "user", _("Staff user")
    SYSTEM = "system", _("System")


class OutboxEvent(models.Model):
    """A side effect for apps to the right (webhook, e-mail, payment), written in the same
    transaction as the change and drained after commit (DESIGN: outbox). Written only by
    `billing.outbox.emit`."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=64)  # Lago webhook_type, e.g. "invoice.created"
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    # The object as its wire object rendered it when the event was recorded for the activity
    # log (JSON text: the serializer's key order kept), reused by the webhook rather than
    # rendered again; NULL when the event is no activity or its type renders no wire object.
    rendered = models.TextField(null=True, blank=True)
    # Who caused the change; NULL on rows recorded before actors were kept, which is not the
    # same as an empty name.
    actor_type = models.CharField(max_length=16, choices=ActorType.choices, null=True)
    actor_id = models.CharField(max_length=64, null=True)
    actor_name = models.CharField(max_length=255, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(processed_at__isnull=True),
                name="billing_outbox_pending_idx",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_type__isnull=True, actor_id__isnull=True)
                | Q(actor_type__isnull=False, actor_id__isnull=False),
                name="billing_outboxevent_actor_type_with_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.object_id}"


class ActivitySource(models.TextChoices):
    """Where a change came from, by its actor (Lago's `activity_source`)."""

    API = "api", _("API")
    FRONT = "front", _("Dashboard")
    SYSTEM = "system", _("System")


class ActivityLog(models.Model):
    """One create, update or delete of a business object, with who did it, the object after
    the change and the fields it changed. Written only by `billing.activity.record_activity`."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    activity_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    activity_type = models.CharField(max_length=64)  # "customer.created", "invoice.voided"
    activity_source = models.CharField(max_length=8, choices=ActivitySource.choices)
    activity_object = models.JSONField(default=dict)
    activity_object_changes = models.JSONField(default=dict)  # {field: [before, after]}
    resource_type = models.CharField(max_length=64)  # Lago's object name: "wallet_transaction"
    resource_id = models.CharField(max_length=64)
    external_customer_id = models.CharField(max_length=255, null=True, blank=True)
    external_subscription_id = models.CharField(max_length=255, null=True, blank=True)
    # the actor: one of a staff user, an API key, a job (its name)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user_email = models.CharField(max_length=254, null=True, blank=True)
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")
    actor_name = models.CharField(max_length=255, blank=True, default="")
    # the API call or admin request that made the change (joins the API log); null for jobs
    request_id = models.CharField(max_length=36, null=True, blank=True)
    logged_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-logged_at", "-id")
        verbose_name = "activity log entry"
        verbose_name_plural = "activity log entries"
        indexes = [
            models.Index(fields=["organization", "-logged_at"], name="billing_activity_org_idx"),
            models.Index(
                fields=["organization", "resource_id"],
                name="billing_activity_resource_idx",
            ),
            models.Index(fields=["request_id"], name="billing_activity_request_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(activity_source__in=["api", "front", "system"]),
                name="billing_activitylog_source_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.activity_type} {self.resource_id}"
