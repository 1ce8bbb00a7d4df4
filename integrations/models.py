"""Payment provider connections and the provider events already handled (spec §19.2, §19.3)."""

from __future__ import annotations

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
