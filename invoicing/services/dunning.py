"""Dunning campaigns: their definition, where they apply, and the hourly evaluation that sends
payment requests to customers whose overdue balance reached a threshold.

A customer is dunned by its own campaign, else by its billing entity's default one, unless it
opted out. Attempts are counted per currency; every attempt is a payment request per billing
entity of that currency's overdue invoices. The counters restart when a currency's overdue
balance is paid and when the campaign that applies to the customer changes.

Lock order: a customer's dunning state is locked before anything else of its dunning, and no
invoice row is locked while it is held (payments lock invoices first, then the dunning state).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid
from billing.models import BillingEntity, Organization
from billing.money import CURRENCIES
from customers.models import Customer
from invoicing.locks import lock_customer_dunning, lock_dunning_campaign
from invoicing.models import (
    BillingEntityDunningCampaign,
    CustomerDunning,
    DunningCampaign,
    DunningCampaignThreshold,
    Invoice,
)
from invoicing.services.payment_events import record_dunning_campaign_finished
from invoicing.services.payment_requests import payment_request_create

logger = logging.getLogger(__name__)


# --- reads -----------------------------------------------------------------------------------


def overdue_invoices(customer: Customer) -> Iterable[Invoice]:
    """The customer's overdue invoices that dunning may ask for (not self-billed)."""
    return Invoice.objects.filter(
        customer=customer,
        status=Invoice.Status.FINALIZED,
        payment_overdue=True,
        self_billed=False,
    ).exclude(payment_status=Invoice.PaymentStatus.SUCCEEDED)


def overdue_balances(customer: Customer) -> dict[str, int]:
    """What the customer owes on overdue invoices, per currency (total less payments and
    credit note offsets, as an invoice's `total_due_amount_cents`)."""
    rows = (
        overdue_invoices(customer)
        .values("currency")
        .annotate(
            due=Sum(
                F("total_amount_cents")
                - F("total_paid_amount_cents")
                - F("total_offsetted_credit_note_amount_cents")
            )
        )
    )
    return {row["currency"]: row["due"] for row in rows if row["due"] > 0}


def applicable_campaign(
    customer: Customer, state: CustomerDunning | None
) -> DunningCampaign | None:
    """The customer's own campaign, else its billing entity's default; None when excluded."""
    if state is not None and state.exclude_from_dunning_campaign:
        return None
    if state is not None and state.applied_dunning_campaign_id:
        campaign = DunningCampaign.objects.alive().filter(pk=state.applied_dunning_campaign_id)
        if found := campaign.first():
            return found
    default = (
        BillingEntityDunningCampaign.objects.filter(
            billing_entity_id=customer.billing_entity_id, dunning_campaign__deleted_at__isnull=True
        )
        .select_related("dunning_campaign")
        .first()
    )
    return default.dunning_campaign if default else None


# --- campaigns -------------------------------------------------------------------------------


def _validate_campaign(values: dict, thresholds: Sequence[dict] | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if "name" in values and not (values["name"] or "").strip():
        errors["name"] = ["value_is_mandatory"]
    if "code" in values and not (values["code"] or "").strip():
        errors["code"] = ["value_is_mandatory"]
    for field in ("days_between_attempts", "max_attempts"):
        value = values.get(field)
        if field in values and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            errors[field] = ["value_is_out_of_range"]
    emails = values.get("bcc_emails")
    if emails is not None and (
        not isinstance(emails, list)
        or any(not isinstance(e, str) or "@" not in e or " " in e.strip() for e in emails)
    ):
        errors["bcc_emails"] = ["invalid_email_format"]
    if thresholds is not None:
        currencies = [t.get("currency") for t in thresholds]
        if not thresholds:
            errors["thresholds"] = ["value_is_mandatory"]
        elif any(c not in CURRENCIES for c in currencies) or len(set(currencies)) != len(
            currencies
        ):
            errors["thresholds"] = ["invalid_currency"]
        elif any(
            not isinstance(t.get("amount_cents"), int) or t["amount_cents"] < 0 for t in thresholds
        ):
            errors["thresholds"] = ["invalid_amount"]
    return errors


def _thresholds_of(campaign: DunningCampaign) -> list[dict]:
    return [
        {"currency": currency, "amount_cents": amount_cents}
        for currency, amount_cents in campaign.thresholds.order_by("currency").values_list(
            "currency", "amount_cents"
        )
    ]


def _set_thresholds(campaign: DunningCampaign, thresholds: Sequence[dict]) -> None:
    campaign.thresholds.all().delete()
    DunningCampaignThreshold.objects.bulk_create(
        DunningCampaignThreshold(
            organization_id=campaign.organization_id,
            dunning_campaign=campaign,
            currency=t["currency"],
            amount_cents=t["amount_cents"],
        )
        for t in thresholds
    )


@transaction.atomic
def dunning_campaign_create(
    *,
    organization: Organization,
    name: str,
    code: str,
    thresholds: Sequence[dict],
    description: str = "",
    days_between_attempts: int = 1,
    max_attempts: int = 1,
    bcc_emails: Sequence[str] = (),
    actor: Actor,
    now: datetime,
) -> DunningCampaign:
    """A campaign with one threshold per currency (`[{"currency", "amount_cents"}]`)."""
    values = {
        "name": name,
        "code": code,
        "days_between_attempts": days_between_attempts,
        "max_attempts": max_attempts,
        "bcc_emails": list(bcc_emails),
    }
    errors = _validate_campaign(values, thresholds)
    if errors:
        raise Invalid(errors)
    try:
        with transaction.atomic():
            campaign = DunningCampaign.objects.create(
                organization=organization, description=description or "", **values
            )
    except IntegrityError:
        raise Invalid({"code": ["value_already_exist"]}) from None
    _set_thresholds(campaign, thresholds)
    record_activity(
        activity_type="dunning_campaign.created",
        actor=actor,
        obj=campaign,
        extra_changes={"thresholds": [None, _thresholds_of(campaign)]},
    )
    return campaign


@transaction.atomic
def dunning_campaign_update(
    *,
    campaign: DunningCampaign,
    values: dict,
    thresholds: Sequence[dict] | None = None,
    actor: Actor,
    now: datetime,
) -> DunningCampaign:
    """Changes a campaign's name, description, attempts, bcc e-mails or thresholds (not its
    code)."""
    allowed = {"name", "description", "days_between_attempts", "max_attempts", "bcc_emails"}
    values = {k: v for k, v in values.items() if k in allowed}
    errors = _validate_campaign(values, thresholds)
    if errors:
        raise Invalid(errors)
    campaign = lock_dunning_campaign(campaign.pk)
    for field, value in values.items():
        setattr(campaign, field, value)
    campaign.save()
    extra_changes = {}
    if thresholds is not None:
        before = _thresholds_of(campaign)
        _set_thresholds(campaign, thresholds)
        extra_changes["thresholds"] = [before, _thresholds_of(campaign)]
    record_activity(
        activity_type="dunning_campaign.updated",
        actor=actor,
        obj=campaign,
        extra_changes=extra_changes,
    )
    return campaign


def _customers_dunned_by(campaign: DunningCampaign) -> list[UUID]:
    own = CustomerDunning.objects.filter(applied_dunning_campaign=campaign).values_list(
        "customer_id", flat=True
    )
    entities = BillingEntityDunningCampaign.objects.filter(dunning_campaign=campaign).values(
        "billing_entity_id"
    )
    by_default = (
        Customer.objects.filter(billing_entity_id__in=entities)
        .exclude(
            pk__in=CustomerDunning.objects.filter(applied_dunning_campaign__isnull=False).values(
                "customer_id"
            )
        )
        .values_list("pk", flat=True)
    )
    return sorted({*own, *by_default})


def _reset(customer_ids: Iterable[UUID]) -> None:
    CustomerDunning.objects.filter(customer_id__in=list(customer_ids)).update(
        currency_attempts={}, last_attempt_at=None
    )


@transaction.atomic
def dunning_campaign_delete(
    *, campaign: DunningCampaign, actor: Actor, now: datetime
) -> DunningCampaign:
    """Stops a campaign: its customers fall back to their billing entity's default (from
    attempt 1); it stops being any entity's default. Its payment requests stay."""
    campaign = lock_dunning_campaign(campaign.pk)
    if campaign.deleted_at is not None:
        return campaign
    _reset(_customers_dunned_by(campaign))
    CustomerDunning.objects.filter(applied_dunning_campaign=campaign).update(
        applied_dunning_campaign=None
    )
    BillingEntityDunningCampaign.objects.filter(dunning_campaign=campaign).delete()
    campaign.deleted_at = now
    campaign.save(update_fields=["deleted_at", "updated_at"])
    record_activity(activity_type="dunning_campaign.deleted", actor=actor, obj=campaign)
    return campaign


@transaction.atomic
def billing_entity_dunning_campaign_set(
    *, billing_entity: BillingEntity, campaign: DunningCampaign | None, actor: Actor, now: datetime
) -> BillingEntity:
    """Makes `campaign` the default of the billing entity (None: no default); customers that
    follow the default start again from attempt 1."""
    current = BillingEntityDunningCampaign.objects.filter(billing_entity=billing_entity).first()
    before_id = current.dunning_campaign_id if current else None
    if before_id == (campaign.pk if campaign else None):
        return billing_entity
    followers = Customer.objects.filter(billing_entity=billing_entity).exclude(
        pk__in=CustomerDunning.objects.filter(applied_dunning_campaign__isnull=False).values(
            "customer_id"
        )
    )
    _reset(followers.values_list("pk", flat=True))
    if campaign is None:
        BillingEntityDunningCampaign.objects.filter(billing_entity=billing_entity).delete()
    else:
        BillingEntityDunningCampaign.objects.update_or_create(
            billing_entity=billing_entity,
            defaults={
                "dunning_campaign": campaign,
                "organization_id": billing_entity.organization_id,
            },
        )
    record_activity(
        activity_type="billing_entity.updated",
        actor=actor,
        obj=billing_entity,
        extra_changes={
            "applied_dunning_campaign_id": [before_id, campaign.pk if campaign else None]
        },
    )
    return billing_entity


@transaction.atomic
def customer_dunning_update(
    *,
    customer: Customer,
    applied_dunning_campaign: DunningCampaign | type[Ellipsis] | None = ...,
    exclude_from_dunning_campaign: bool | None = None,
    actor: Actor,
    now: datetime,
) -> CustomerDunning:
    """Assigns a campaign to a customer (None: back to its billing entity's default) or opts it
    out; a change of the campaign that applies restarts the counters."""
    state = lock_customer_dunning(organization_id=customer.organization_id, customer_id=customer.pk)
    before = applicable_campaign(customer, state)
    before_fields = {
        "applied_dunning_campaign_id": state.applied_dunning_campaign_id,
        "exclude_from_dunning_campaign": state.exclude_from_dunning_campaign,
    }
    if applied_dunning_campaign is not ...:
        state.applied_dunning_campaign = applied_dunning_campaign
    if exclude_from_dunning_campaign is not None:
        state.exclude_from_dunning_campaign = exclude_from_dunning_campaign
    if applicable_campaign(customer, state) != before:
        state.currency_attempts, state.last_attempt_at = {}, None
    state.save()
    # the customer's dunning settings are Lago customer fields: a change of the customer
    record_activity(
        activity_type="customer.updated",
        actor=actor,
        obj=customer,
        extra_changes={
            name: [value, getattr(state, name)] for name, value in before_fields.items()
        },
    )
    return state


def dunning_reset_when_paid_up(*, customer: Customer, currency: str) -> None:
    """After a payment: once nothing is overdue in `currency`, that currency's attempts restart
    (and the wait between attempts too, when no currency has attempts left)."""
    if currency in overdue_balances(customer):
        return
    state = CustomerDunning.objects.filter(customer=customer).first()
    if state is None or not state.currency_attempts.get(currency):
        return
    state = lock_customer_dunning(organization_id=customer.organization_id, customer_id=customer.pk)
    attempts = {**state.currency_attempts, currency: 0}
    state.currency_attempts = attempts
    if not any(attempts.values()):
        state.last_attempt_at = None
    state.save(update_fields=["currency_attempts", "last_attempt_at", "updated_at"])


def dunning_reset_currency(*, customer: Customer, currency: str) -> None:
    """A campaign's payment request was paid: that currency's attempts restart at once, whatever
    else is still overdue in it (Lago's `reset_dunning_campaign_for_currency!`), and the wait
    between attempts too when no currency has attempts left."""
    state = CustomerDunning.objects.filter(customer=customer).first()
    if state is None or not state.currency_attempts.get(currency):
        return
    state = lock_customer_dunning(organization_id=customer.organization_id, customer_id=customer.pk)
    attempts = {**state.currency_attempts, currency: 0}
    state.currency_attempts = attempts
    if not any(attempts.values()):
        state.last_attempt_at = None
    state.save(update_fields=["currency_attempts", "last_attempt_at", "updated_at"])


# --- the hourly evaluation -------------------------------------------------------------------


def dunning_candidates(*, now: datetime) -> list[UUID]:
    """Customers (not partners) with overdue invoices who did not opt out, in primary-key
    order."""
    overdue = Invoice.objects.filter(
        payment_overdue=True, self_billed=False, status=Invoice.Status.FINALIZED
    ).values("customer_id")
    excluded = CustomerDunning.objects.filter(exclude_from_dunning_campaign=True).values(
        "customer_id"
    )
    return list(
        Customer.objects.filter(pk__in=overdue, deleted_at__isnull=True)
        .exclude(pk__in=excluded)
        .exclude(account_type=Customer.AccountType.PARTNER)  # Lago never duns partners
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def customer_dunning_evaluate(*, customer: Customer, actor: Actor, now: datetime) -> int:
    """One customer's dunning at `now`; returns how many payment requests it created."""
    state = lock_customer_dunning(organization_id=customer.organization_id, customer_id=customer.pk)
    campaign = applicable_campaign(customer, state)
    if campaign is None:
        return 0
    if state.last_attempt_at and now <= state.last_attempt_at + timedelta(
        days=campaign.days_between_attempts
    ):
        return 0
    balances = overdue_balances(customer)
    attempts = dict(state.currency_attempts)
    thresholds = {t.currency: t.amount_cents for t in campaign.thresholds.all()}
    dunned = [
        currency
        for currency, balance in sorted(balances.items())
        if attempts.get(currency, 0) < campaign.max_attempts
        and currency in thresholds
        and thresholds[currency] <= balance
    ]
    if not dunned:
        return 0
    for currency in dunned:
        attempts[currency] = attempts.get(currency, 0) + 1
    state.currency_attempts, state.last_attempt_at = attempts, now
    state.save(update_fields=["currency_attempts", "last_attempt_at", "updated_at"])
    created = 0
    for currency in dunned:
        invoices = overdue_invoices(customer).filter(currency=currency)
        by_entity: dict[UUID, list[str]] = {}
        for invoice_id, entity_id in invoices.order_by("pk").values_list("pk", "billing_entity_id"):
            by_entity.setdefault(entity_id, []).append(str(invoice_id))
        for invoice_ids in by_entity.values():
            payment_request_create(
                organization=customer.organization,
                external_customer_id=customer.external_id,
                lago_invoice_ids=invoice_ids,
                dunning_campaign=campaign,
                actor=actor,
                now=now,
            )
            created += 1
    if all(count >= campaign.max_attempts for count in attempts.values()):
        record_dunning_campaign_finished(
            customer, campaign_code=campaign.code, overdue_balances=balances, actor=actor
        )
    return created


def process_dunning_campaigns(*, actor: Actor, now: datetime) -> int:
    """The hourly job: evaluates every candidate customer in its own transaction; returns how
    many payment requests were created. One customer's failure does not stop the others."""
    created = 0
    for customer_id in dunning_candidates(now=now):
        customer = Customer.objects.select_related("organization").get(pk=customer_id)
        try:
            created += customer_dunning_evaluate(customer=customer, actor=actor, now=now)
        except Exception:
            logger.exception("dunning of customer %s failed", customer_id)
    return created
