"""Customer writes: create, update, upsert by `external_id`, soft delete (spec §3).

Services take Lago-shaped values (`billing_configuration`, `shipping_address`, `metadata`,
`tax_codes`, `billing_entity_code` nested as on the wire); only the keys present are changed,
as in Lago's `UpsertFromApiService`.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max

from billing.actors import Actor
from billing.errors import Invalid, NotFound
from billing.models import BillingEntity, DocumentLocale, Organization
from billing.money import CURRENCIES
from billing.outbox import emit
from customers import hooks
from customers.locks import lock_alive_customer, lock_customer, lock_customer_creations
from customers.models import AppliedCoupon, Customer, CustomerMetadata, Subscription
from customers.selectors import customer_is_editable
from customers.services.applied_coupons import applied_coupon_terminate
from customers.services.payment_methods import provider_payment_methods_errors
from customers.services.subscriptions import subscription_terminate
from plans.services.common import taxes_for

# ISO 3166-1 alpha-2 codes: CLDR's two-letter territories minus its non-country entries
# (exceptional reservations, EU/EZ/UN groupings, private-use and unknown regions).
_NOT_COUNTRIES = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB",
                  "XK", "ZZ"}  # fmt: skip
COUNTRY_CODES: frozenset[str] = frozenset(
    code
    for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)
Status = Subscription.Status
PAYMENT_PROVIDERS = ("stripe", "gocardless", "cashfree", "adyen", "flutterwave", "moneyhash")
METADATA_MAX_COUNT = 5  # spec §3.1
METADATA_KEY_MAX_LENGTH = 20  # Lago validates length maximum 20 / 100 (inclusive)
METADATA_VALUE_MAX_LENGTH = 100
SHIPPING_ADDRESS_KEYS = ("address_line1", "address_line2", "city", "zipcode", "state", "country")
# billing_configuration keys kept in the JSON column (the others are columns).
CONFIGURATION_KEYS = (
    "payment_provider", "payment_provider_code", "provider_customer_id", "sync",
    "sync_with_provider", "provider_payment_methods", "subscription_invoice_issuing_date_anchor",
    "subscription_invoice_issuing_date_adjustment",
)  # fmt: skip
# Plain text columns assigned as given (None -> ""), with their maximum length.
TEXT_FIELDS = {
    "name": 255, "firstname": 255, "lastname": 255, "legal_name": 255, "legal_number": 255,
    "email": 1024, "phone": 64, "url": 1024, "logo_url": 1024, "address_line1": 255,
    "address_line2": 255, "city": 255, "state": 255, "zipcode": 32,
    "tax_identification_number": 255, "timezone": 64,
}  # fmt: skip


def _blank(value: object) -> bool:
    return value is None or value == ""


def _validate_metadata(items: list[dict], errors: dict[str, list[str]]) -> None:
    if len(items) > METADATA_MAX_COUNT:
        errors["metadata"] = ["invalid_count"]
        return
    keys: list[str] = []
    for item in items:
        key, value = item.get("key"), item.get("value")
        # Lago reports the metadata record's own errors, so the fields are `key` and `value`.
        if _blank(key):
            errors.setdefault("key", []).append("value_is_mandatory")
        elif len(str(key)) > METADATA_KEY_MAX_LENGTH:
            errors.setdefault("key", []).append("value_is_too_long")
        if _blank(value):
            errors.setdefault("value", []).append("value_is_mandatory")
        elif len(str(value)) > METADATA_VALUE_MAX_LENGTH:
            errors.setdefault("value", []).append("value_is_too_long")
        keys.append(str(key))
    if len(keys) != len(set(keys)):
        errors.setdefault("key", []).append("value_already_exist")
    for field in ("key", "value"):
        if field in errors:
            errors[field] = sorted(set(errors[field]))


def customer_validate(
    *, organization: Organization, values: dict, customer: Customer | None = None
) -> dict[str, list[str]]:
    """Lago's validation codes for customer values; empty when they are valid."""
    errors: dict[str, list[str]] = {}
    if customer is None and _blank(values.get("external_id")):
        errors["external_id"] = ["value_is_mandatory"]
    elif len(str(values.get("external_id") or "")) > 255:
        errors["external_id"] = ["value_is_too_long"]
    for field, max_length in TEXT_FIELDS.items():
        if len(str(values.get(field) or "")) > max_length:
            errors[field] = ["value_is_too_long"]
    country = values.get("country")
    if not _blank(country) and str(country).upper() not in COUNTRY_CODES:
        errors["country"] = ["not_a_valid_country_code"]
    shipping = values.get("shipping_address") or {}
    if not _blank(shipping.get("country")) and str(shipping["country"]).upper() not in (
        COUNTRY_CODES
    ):
        errors["shipping_country"] = ["not_a_valid_country_code"]
    for field in SHIPPING_ADDRESS_KEYS:
        if len(str(shipping.get(field) or "")) > 255:
            errors[f"shipping_{field}"] = ["value_is_too_long"]
    if not _blank(values.get("email")):
        for address in str(values["email"]).split(","):
            try:
                validate_email(address.strip())
            except ValidationError:
                errors["email"] = ["invalid_email_format"]
                break
    if not _blank(values.get("timezone")):
        try:
            ZoneInfo(str(values["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = ["invalid_timezone"]
    if "currency" in values:
        currency = values["currency"] or ""
        if currency and currency not in CURRENCIES:
            errors["currency"] = ["value_is_invalid"]
        elif (
            customer is not None
            and currency != customer.currency
            and not customer_is_editable(customer=customer)
        ):
            errors["currency"] = ["currencies_does_not_match"]  # spec §3.1: currency frozen
    choices = {
        "account_type": Customer.AccountType.values,
        "customer_type": [*Customer.CustomerType.values, None],
    }
    for field, allowed in choices.items():
        if field in values and values[field] not in allowed:
            errors[field] = ["value_is_invalid"]
    zero = values.get("finalize_zero_amount_invoice")
    if zero is not None and zero not in Customer.ZeroAmountInvoice.values:
        errors["finalize_zero_amount_invoice"] = ["invalid_value"]
    config = values.get("billing_configuration") or {}
    for field, value in (
        ("net_payment_term", values.get("net_payment_term")),
        ("invoice_grace_period", config.get("invoice_grace_period")),
    ):
        if value is not None and (isinstance(value, bool) or int(value) < 0):
            errors[field] = ["value_is_out_of_range"]
    locale = config.get("document_locale")
    if not _blank(locale) and locale not in DocumentLocale.values:
        errors["document_locale"] = ["not_a_valid_language_code"]
    for field, allowed in (
        ("subscription_invoice_issuing_date_anchor", BillingEntity.IssuingDateAnchor.values),
        (
            "subscription_invoice_issuing_date_adjustment",
            BillingEntity.IssuingDateAdjustment.values,
        ),
        ("payment_provider", PAYMENT_PROVIDERS),
    ):
        if not _blank(config.get(field)) and config[field] not in allowed:
            errors[field] = ["value_is_invalid"]
    provider = config.get("payment_provider")
    if provider is None and customer is not None and "payment_provider" not in config:
        provider = (customer.billing_configuration or {}).get("payment_provider")
    methods = config.get("provider_payment_methods")
    if provider == "stripe" and methods is not None:
        currency = values.get("currency") if "currency" in values else None
        if currency is None and customer is not None:
            currency = customer.currency
        codes = provider_payment_methods_errors(list(methods), currency or "")
        if codes:
            errors["provider_payment_methods"] = codes
    if values.get("metadata") is not None:
        _validate_metadata(values["metadata"], errors)
    return errors


def _billing_entity(organization: Organization, code: str | None) -> BillingEntity:
    """The entity named by `billing_entity_code`, else the default one (spec §2.2)."""
    entities = BillingEntity.objects.for_organization(organization)
    entity = (
        entities.filter(code=code).first()
        if not _blank(code)
        else entities.filter(is_default=True).first()
    )
    if entity is None:
        raise NotFound("billing_entity")
    return entity


def _assign(customer: Customer, values: dict) -> None:
    for field in TEXT_FIELDS:
        if field in values:
            setattr(customer, field, "" if values[field] is None else str(values[field]).strip())
    if "country" in values:
        customer.country = str(values["country"] or "").strip().upper()
    for field in ("account_type", "customer_type", "net_payment_term"):
        if field in values:
            setattr(customer, field, values[field])
    if "account_type" in values and values["account_type"] is None:
        customer.account_type = Customer.AccountType.CUSTOMER
    if "finalize_zero_amount_invoice" in values:
        customer.finalize_zero_amount_invoice = (
            values["finalize_zero_amount_invoice"] or Customer.ZeroAmountInvoice.INHERIT
        )
    if "skip_invoice_custom_sections" in values:
        customer.skip_invoice_custom_sections = bool(values["skip_invoice_custom_sections"])
    if "currency" in values:
        customer.currency = values["currency"] or ""
    if values.get("shipping_address") is not None:
        shipping = dict(customer.shipping_address or {})
        for key in SHIPPING_ADDRESS_KEYS:
            if key in values["shipping_address"]:
                value = values["shipping_address"][key]
                shipping[key] = None if _blank(value) else str(value)
        if shipping.get("country"):
            shipping["country"] = shipping["country"].upper()
        customer.shipping_address = shipping
    config = values.get("billing_configuration")
    if config is not None:
        if "invoice_grace_period" in config:
            customer.invoice_grace_period = config["invoice_grace_period"]
        if "document_locale" in config:
            customer.document_locale = config["document_locale"] or ""
        # Provider customers (Stripe sync) are the integrations app's work (spec §19.2); the
        # settings are kept so that it can act on them.
        stored = dict(customer.billing_configuration or {})
        for key in CONFIGURATION_KEYS:
            if key in config:
                stored[key] = None if _blank(config[key]) else config[key]
        customer.billing_configuration = stored


def _replace_metadata(customer: Customer, items: list[dict]) -> None:
    """Spec §3.1: the list replaces the whole set; items carrying an existing `id` are updated."""
    existing = {str(m.pk): m for m in customer.metadata.all()}
    kept = {str(item["id"]) for item in items if str(item.get("id") or "") in existing}
    # Obsolete pairs go first so that a key can move to a new item in the same request.
    customer.metadata.exclude(pk__in=kept).delete()
    for item in items:
        fields = {
            "key": str(item["key"]),
            "value": str(item["value"]),
            "display_in_invoice": bool(item.get("display_in_invoice") or False),
        }
        current = existing.get(str(item.get("id") or ""))
        if current is not None:
            for name, value in fields.items():
                setattr(current, name, value)
            current.save(update_fields=[*fields, "updated_at"])
        else:
            CustomerMetadata.objects.create(
                organization_id=customer.organization_id, customer=customer, **fields
            )


def _save_relations(customer: Customer, values: dict) -> None:
    if "tax_codes" in values:
        customer.taxes.set(
            taxes_for(organization=customer.organization, codes=values["tax_codes"] or [])
        )
    if values.get("metadata") is not None:
        try:
            with transaction.atomic():
                _replace_metadata(customer, values["metadata"])
        except IntegrityError as exc:  # two items swapping keys in one request
            raise Invalid({"key": ["value_already_exist"]}) from exc


PROVIDER_KEYS = (
    "payment_provider", "payment_provider_code", "provider_customer_id", "sync_with_provider",
    "provider_payment_methods",
)  # fmt: skip


def _announce_payment_provider(customer: Customer, values: dict, previous_id: object) -> None:
    """Spec §19.2: provider settings given -> the provider's app syncs the customer after
    commit."""
    config = values.get("billing_configuration") or {}
    stored = customer.billing_configuration or {}
    if not stored.get("payment_provider") or not any(key in config for key in PROVIDER_KEYS):
        return
    current_id = stored.get("provider_customer_id")
    hooks.on_customer_payment_provider_set.fire_after_commit(
        customer_id=customer.pk,
        provider_customer_id_changed=bool(current_id) and current_id != previous_id,
        sync=bool(config.get("sync")),
    )


def _emit(customer: Customer, event_type: str, *, actor: Actor, before: dict | None = None) -> None:
    """Webhook `customer.created` / `customer.updated` (spec §26.3), in the same transaction;
    the activity also names the metadata and taxes that changed (rows of their own)."""
    after = _relations_of(customer)
    before = before or dict.fromkeys(after)
    emit(
        event_type=event_type,
        actor=actor,
        obj=customer,
        payload={"lago_id": str(customer.pk), "external_id": customer.external_id},
        changes={name: [before[name], value] for name, value in after.items()},
    )


def _relations_of(customer: Customer) -> dict:
    """The customer's metadata and tax codes, as its activity compares them."""
    return {
        "metadata": [
            {"key": key, "value": value, "display_in_invoice": shown}
            for key, value, shown in customer.metadata.order_by("key").values_list(
                "key", "value", "display_in_invoice"
            )
        ]
        or None,
        "tax_codes": sorted(customer.taxes.values_list("code", flat=True)) or None,
    }


def _create(organization: Organization, values: dict, *, actor: Actor) -> Customer:
    """Creation proper; the caller holds the organization row lock."""
    entity = _billing_entity(organization, values.get("billing_entity_code"))
    errors = customer_validate(organization=organization, values=values)
    if errors:
        raise Invalid(errors)
    # Lago numbers customers under an organization-wide lock, deleted ones included, so a
    # number is never handed out twice; the unique constraint backs it.
    last = Customer.objects.filter(organization=organization).aggregate(m=Max("sequential_id"))
    sequential_id = (last["m"] or 0) + 1
    customer = Customer(
        organization=organization,
        billing_entity=entity,
        external_id=str(values["external_id"]).strip(),
        sequential_id=sequential_id,
        slug=f"{organization.document_number_prefix}-{sequential_id:03d}",  # spec §2.3
    )
    _assign(customer, values)
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        raise Invalid({"external_id": ["value_already_exist"]}) from exc
    _save_relations(customer, values)
    _emit(customer, "customer.created", actor=actor)
    _announce_payment_provider(customer, values, previous_id=None)
    return customer


def _update(customer: Customer, values: dict, *, actor: Actor) -> Customer:
    """Update proper; the caller holds the customer row lock."""
    organization = customer.organization
    entity = None
    if "billing_entity_code" in values:
        entity = _billing_entity(organization, values["billing_entity_code"])
    errors = customer_validate(organization=organization, values=values, customer=customer)
    if errors:
        raise Invalid(errors)
    # As in Lago, the billing entity only moves while nothing is attached to the customer.
    if (
        entity is not None
        and entity.pk != customer.billing_entity_id
        and customer_is_editable(customer=customer)
    ):
        customer.billing_entity = entity
    previous_id = (customer.billing_configuration or {}).get("provider_customer_id")
    before = _relations_of(customer)
    _assign(customer, values)
    customer.save()
    _save_relations(customer, values)
    _emit(customer, "customer.updated", actor=actor, before=before)
    _announce_payment_provider(customer, values, previous_id=previous_id)
    return customer


@transaction.atomic
def customer_create(*, organization: Organization, values: dict, actor: Actor) -> Customer:
    """A new customer; an alive one with the same `external_id` is a 422."""
    lock_customer_creations(organization)
    external_id = str(values.get("external_id") or "").strip()
    if (
        external_id
        and Customer.objects.for_organization(organization)
        .alive()
        .filter(external_id=external_id)
        .exists()
    ):
        raise Invalid({"external_id": ["value_already_exist"]})
    return _create(organization, values, actor=actor)


@transaction.atomic
def customer_update(*, customer: Customer, values: dict, actor: Actor) -> Customer:
    """Changes the given fields of an alive customer (its `external_id` never changes)."""
    customer = lock_customer(customer.pk)
    if customer.deleted_at is not None:
        raise NotFound("customer")
    values = {key: value for key, value in values.items() if key != "external_id"}
    return _update(customer, values, actor=actor)


@transaction.atomic
def customer_upsert(*, organization: Organization, values: dict, actor: Actor) -> Customer:
    """POST /customers: updates the alive customer with this `external_id`, else creates it."""
    external_id = str(values.get("external_id") or "").strip()
    if not external_id:
        raise Invalid({"external_id": ["value_is_mandatory"]})
    customer = lock_alive_customer(organization, external_id)
    if customer is None:
        # Creations are serialized per organization (sequential ids); a concurrent twin that
        # created the same external_id meanwhile is found again once the lock is held.
        lock_customer_creations(organization)
        customer = lock_alive_customer(organization, external_id)
        if customer is None:
            return _create(organization, values, actor=actor)
    return _update(customer, values, actor=actor)


@transaction.atomic
def customer_destroy(*, customer: Customer, actor: Actor, now: datetime) -> Customer:
    """Soft delete: the `external_id` becomes free again; subscriptions and coupons end (§3)."""
    customer = lock_customer(customer.pk)
    if customer.deleted_at is not None:
        raise NotFound("customer")
    customer.deleted_at = now
    customer.save(update_fields=["deleted_at", "updated_at"])
    # Lago `TerminateRelationsService`: active subscriptions are terminated (billed as any
    # termination), pending ones canceled. Terminating one may cancel its pending downgrade,
    # so each is re-read before it is ended.
    ending = customer.subscriptions.filter(status__in=[Status.ACTIVE, Status.PENDING])
    for pk in ending.order_by("pk").values_list("pk", flat=True):
        subscription = Subscription.objects.get(pk=pk)
        if subscription.status in (Status.ACTIVE, Status.PENDING):
            subscription_terminate(subscription=subscription, actor=actor, now=now)
    for applied_coupon in customer.applied_coupons.filter(status=AppliedCoupon.Status.ACTIVE):
        applied_coupon_terminate(applied_coupon=applied_coupon, actor=actor, now=now)
    # spec §3 also terminates the customer's wallets (voiding remaining credits) and finalizes
    # its draft invoices: the wallets and invoicing apps, to the right of this one, own those.
    return customer
