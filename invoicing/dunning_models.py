"""Dunning campaigns and each customer's dunning state: data + invariants.

Imported by `invoicing.models`. The campaign a billing entity applies by default and the
campaign (or opt-out) of a customer live here, beside the campaigns, rather than on the
billing entity and customer rows: those apps sit left of invoicing.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import OrganizationQuerySet, SoftDeleteQuerySet, TimeStampedModel


class DunningCampaign(TimeStampedModel):
    """Automatic reminders: a payment request every `days_between_attempts` days, at most
    `max_attempts` times per currency, once the overdue balance reaches a threshold."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    code = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    days_between_attempts = models.PositiveIntegerField(default=1)
    max_attempts = models.PositiveIntegerField(default=1)
    bcc_emails = models.JSONField(default=list, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="invoicing_dunningcampaign_code_unique",
            ),
            models.CheckConstraint(
                condition=Q(days_between_attempts__gt=0) & Q(max_attempts__gt=0),
                name="invoicing_dunningcampaign_attempts_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DunningCampaignThreshold(TimeStampedModel):
    """The overdue balance, in one currency, from which a campaign duns a customer."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    dunning_campaign = models.ForeignKey(DunningCampaign, models.CASCADE, related_name="thresholds")
    currency = models.CharField(max_length=3)
    amount_cents = models.BigIntegerField()

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("currency",)
        constraints = [
            models.UniqueConstraint(
                fields=["dunning_campaign", "currency"],
                name="invoicing_dunningcampaignthreshold_currency_unique",
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0),
                name="invoicing_dunningcampaignthreshold_amount_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.amount_cents}"


class BillingEntityDunningCampaign(models.Model):
    """The campaign a billing entity applies to its customers without one of their own."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    billing_entity = models.OneToOneField("billing.BillingEntity", models.CASCADE, related_name="+")
    dunning_campaign = models.ForeignKey(
        DunningCampaign, models.CASCADE, related_name="default_for"
    )

    objects = OrganizationQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.billing_entity_id}: {self.dunning_campaign_id}"


class CustomerDunning(TimeStampedModel):
    """A customer's campaign (or opt-out) and how far its dunning went, per currency."""

    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    customer = models.OneToOneField("customers.Customer", models.CASCADE, related_name="+")
    applied_dunning_campaign = models.ForeignKey(
        DunningCampaign, models.SET_NULL, null=True, blank=True, related_name="customers"
    )
    exclude_from_dunning_campaign = models.BooleanField(default=False)
    # {"EUR": 2, "USD": 1}: attempts made in each currency by the current campaign
    currency_attempts = models.JSONField(default=dict, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer dunning")

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.currency_attempts}"
