"""Payment provider connections and the provider events already handled (spec §19.2, §19.3).

Outbound webhooks: the endpoints an organization registers, one body per recorded event and one
delivery row per endpoint and event, and the installation's JWT signing key.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, SoftDeleteQuerySet, TimeStampedModel
from integrations.crypto import decrypt_secret, encrypt_secret


class PaymentProvider(TimeStampedModel):
    """A connection to one payment provider account (a Stripe secret key), named by a `code`
    unique in its organization; an organization may have several."""

    class ProviderType(models.TextChoices):
        STRIPE = "stripe", _("Stripe")

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    provider_type = models.CharField(
        max_length=32, choices=ProviderType.choices, default=ProviderType.STRIPE
    )
    code = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    # Encrypted (integrations.crypto); read through `secret_key()`, never displayed.
    encrypted_secret_key = models.TextField(editable=False)
    webhook_id = models.CharField(max_length=255, blank=True, default="")
    encrypted_webhook_secret = models.TextField(blank=True, default="", editable=False)
    success_redirect_url = models.CharField(max_length=1024, blank=True, default="")
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("code", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="integrations_paymentprovider_code_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def set_secret_key(self, value: str) -> None:
        self.encrypted_secret_key = encrypt_secret(value)

    def secret_key(self) -> str:
        return decrypt_secret(self.encrypted_secret_key)

    def set_webhook_secret(self, value: str) -> None:
        self.encrypted_webhook_secret = encrypt_secret(value) if value else ""

    def webhook_secret(self) -> str:
        return (
            decrypt_secret(self.encrypted_webhook_secret) if self.encrypted_webhook_secret else ""
        )

    @property
    def secret_key_hint(self) -> str:
        """What people may see of the key: its kind (test or live), never its value."""
        key = self.secret_key()
        mode = "live" if "_live_" in key else "test"
        return f"{key.split('_', 1)[0]}_{mode}_••••"


class ProviderEvent(TimeStampedModel):
    """An event a provider sent to our webhook, recorded once: a replay of the same event id
    changes nothing (the unique constraint decides)."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    payment_provider = models.ForeignKey(PaymentProvider, models.CASCADE, related_name="events")
    provider_event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=255)
    # what the handler did: "handled" or "ignored: <reason>" (shown to staff, never secret)
    outcome = models.CharField(max_length=255, blank=True, default="")

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["payment_provider", "provider_event_id"],
                name="integrations_providerevent_once_per_provider",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.provider_event_id}"


MAX_ENDPOINTS_PER_ORGANIZATION = 10  # Lago's WebhookEndpoint::LIMIT
RESPONSE_EXCERPT_MAX = 2_000  # characters of a receiver's answer kept in the delivery log


class SignatureAlgo(models.TextChoices):
    JWT = "jwt", "JWT (RS256)"
    HMAC = "hmac", "HMAC-SHA256"


class WebhookEndpoint(TimeStampedModel):
    """A URL that receives the organization's events, signed with `signature_algo`."""

    organization = models.ForeignKey(
        "billing.Organization", models.CASCADE, related_name="webhook_endpoints"
    )
    webhook_url = models.CharField(max_length=1024)  # checked by webhook_targets.url_errors
    name = models.CharField(max_length=255, null=True, blank=True)
    signature_algo = models.CharField(
        max_length=8, choices=SignatureAlgo.choices, default=SignatureAlgo.JWT
    )
    # None: every event type; else only these (Lago's `event_types`).
    event_types = models.JSONField(null=True, blank=True)  # list of webhook types

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "webhook_url"],
                name="integrations_webhookendpoint_url_unique",
            ),
            models.CheckConstraint(
                condition=Q(signature_algo__in=["jwt", "hmac"]),
                name="integrations_webhookendpoint_signature_algo_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.webhook_url

    def subscribes_to(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


class DeliveryQuerySet(OrganizationQuerySet):
    def due(self, now) -> DeliveryQuerySet:
        """Waiting for an attempt whose time has come."""
        return self.filter(
            status__in=(WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING),
            next_attempt_at__lte=now,
        )


class WebhookBody(models.Model):
    """The JSON body of one recorded event's webhook, byte for byte what every attempt to
    every endpoint sends: its deliveries (one per endpoint) share it."""

    # the outbox row's id (one body per recorded event; no foreign key: outbox rows may be
    # pruned before the log)
    id = models.BigIntegerField(primary_key=True)
    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    text = models.TextField()
    # the RS256 signature of the JWT carrying `text` (base64url), made once for every JWT
    # endpoint and attempt; valid while `jwt_signer` names the current key and issuer
    jwt_signature = models.TextField(blank=True, default="")
    jwt_signer = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        verbose_name = "webhook body"

    def __str__(self) -> str:
        return f"webhook body {self.pk}"


class WebhookDelivery(models.Model):
    """One recorded event for one endpoint: the body sent on every attempt (shared with the
    event's other endpoints), and how the last attempt ended. Its id is the
    `X-Lago-Unique-Key` the receiver deduplicates on."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RETRYING = "retrying", _("Retrying")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        # the endpoint's address was not public when the attempt was due (and private targets
        # are not allowed): nothing was sent
        SKIPPED = "skipped", _("Skipped")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, models.CASCADE, related_name="deliveries")
    # the outbox row delivered (no foreign key: outbox rows may be pruned before the log)
    outbox_event_id = models.BigIntegerField()
    webhook_type = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    body = models.ForeignKey(WebhookBody, models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True, default="")  # excerpt of the answer, or the error
    webhook_url = models.CharField(max_length=1024, blank=True, default="")  # at the last attempt
    recorded_at = models.DateTimeField()  # when the event was recorded (outbox row)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # one delivery per endpoint and event: a drain run twice creates nothing twice
            models.UniqueConstraint(
                fields=["endpoint", "outbox_event_id"],
                name="integrations_webhookdelivery_one_per_endpoint_event",
            ),
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                condition=Q(status__in=["pending", "retrying"]),
                name="integrations_delivery_due_idx",
            ),
            models.Index(fields=["organization", "-created_at"], name="integrations_delivery_org"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_type} → {self.webhook_url or self.endpoint_id}"

    @property
    def lago_id(self) -> str:
        return str(self.id)

    @property
    def payload(self) -> str:
        """The JSON body every attempt sends."""
        return self.body.text


class WebhookSigningKey(models.Model):
    """The installation's RSA key pair signing JWT webhooks, generated once when the
    environment provides none. Not tenant data: one key for every organization, as Lago."""

    name = models.CharField(max_length=32, unique=True, default="default")
    private_key_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "webhook signing key"

    def __str__(self) -> str:
        return self.name
