"""Demo customers for `manage.py seed_demo`: created once, through the services."""

from __future__ import annotations

from datetime import datetime, timedelta

from billing.actors import SYSTEM
from billing.models import Organization
from customers.models import Customer
from customers.services.customers import customer_create
from plans.models import Tax

DEMO_TAX = {"code": "demo_vat_de_19", "name": "MwSt. 19 %", "rate": "19.00"}

DEMO_CUSTOMERS: tuple[dict, ...] = (
    {
        "external_id": "demo_acme_us",
        "name": "Acme Corporation",
        "legal_name": "Acme Corporation Inc.",
        "legal_number": "EIN 12-3456789",
        "customer_type": "company",
        "email": "ap@acme.example,cfo@acme.example",
        "phone": "+1 212 555 0142",
        "url": "https://acme.example",
        "address_line1": "350 Fifth Avenue",
        "address_line2": "Suite 4200",
        "city": "New York",
        "state": "NY",
        "zipcode": "10118",
        "country": "US",
        "currency": "USD",
        "timezone": "America/New_York",
        "net_payment_term": 30,
        "billing_configuration": {"document_locale": "en", "invoice_grace_period": 2},
        "metadata": [
            {"key": "crm_id", "value": "SF-000417", "display_in_invoice": False},
            {"key": "po_number", "value": "PO-2026-0098", "display_in_invoice": True},
        ],
    },
    {
        "external_id": "demo_bergmann_de",
        "name": "Bergmann Maschinenbau",
        "legal_name": "Bergmann Maschinenbau GmbH",
        "legal_number": "HRB 123456",
        "customer_type": "company",
        "email": "buchhaltung@bergmann.example",
        "address_line1": "Industriestraße 12",
        "city": "Stuttgart",
        "state": "Baden-Württemberg",
        "zipcode": "70565",
        "country": "DE",
        "shipping_address": {
            "address_line1": "Hafenstraße 3",
            "city": "Hamburg",
            "zipcode": "20457",
            "country": "DE",
        },
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "tax_identification_number": "DE123456789",
        "net_payment_term": 14,
        "billing_configuration": {"document_locale": "de"},
        "metadata": [{"key": "kostenstelle", "value": "KST-4711", "display_in_invoice": True}],
        "tax_codes": [DEMO_TAX["code"]],
    },
    {
        "external_id": "demo_sakura_jp",
        "name": "Sakura Design Studio",
        "legal_name": "株式会社さくらデザイン",
        "customer_type": "company",
        "email": "keiri@sakura.example",
        "address_line1": "1-1-2 Oshiage",
        "city": "Sumida-ku",
        "state": "Tokyo",
        "zipcode": "131-0045",
        "country": "JP",
        "currency": "JPY",
        "timezone": "Asia/Tokyo",
        "finalize_zero_amount_invoice": "skip",
        "metadata": [{"key": "segment", "value": "smb"}],
    },
    {
        "external_id": "demo_marie_dupont",
        "firstname": "Marie",
        "lastname": "Dupont",
        "customer_type": "individual",
        "email": "marie.dupont@example.fr",
        "address_line1": "12 rue des Lilas",
        "city": "Lyon",
        "zipcode": "69003",
        "country": "FR",
        "currency": "EUR",
        "billing_configuration": {"document_locale": "fr"},
    },
)


def seed(*, organization: Organization, now: datetime) -> str:
    """Creates the demo customers that do not exist yet; re-running changes nothing."""
    # The catalog owns taxes; this one demo rate is looked up or added by code so that one
    # customer shows a customer-level tax.
    Tax.objects.get_or_create(
        organization=organization,
        code=DEMO_TAX["code"],
        defaults={"name": DEMO_TAX["name"], "rate": DEMO_TAX["rate"]},
    )
    existing = set(
        Customer.objects.for_organization(organization)
        .alive()
        .filter(external_id__in=[c["external_id"] for c in DEMO_CUSTOMERS])
        .values_list("external_id", flat=True)
    )
    created = 0
    for values in DEMO_CUSTOMERS:
        if values["external_id"] in existing:
            continue
        customer_create(organization=organization, values=values, actor=SYSTEM)
        created += 1
    subscribed = _seed_subscriptions(organization=organization, now=now)
    return (
        f"{created} customers created, {len(existing)} already there, "
        f"{subscribed} subscriptions created"
    )


# (external customer id, subscription external id, plan code, billing time, months ago)
DEMO_SUBSCRIPTIONS = (
    ("demo_bergmann_de", "demo_bergmann_business", "business", "calendar", 3),
    ("demo_marie_dupont", "demo_marie_starter", "starter", "anniversary", 1),
)


def _seed_subscriptions(*, organization: Organization, now: datetime) -> int:
    """Subscriptions on the demo catalog's EUR plans, started in the past (spec §9.3)."""
    from customers.models import Subscription
    from customers.services.subscriptions import subscription_create
    from plans.models import Plan

    created = 0
    for customer_id, external_id, plan_code, billing_time, months_ago in DEMO_SUBSCRIPTIONS:
        if (
            Subscription.objects.for_organization(organization)
            .filter(external_id=external_id)
            .exists()
        ):
            continue
        if not Plan.objects.for_organization(organization).filter(code=plan_code).exists():
            continue  # the catalog demo did not run
        subscription_create(
            organization=organization,
            external_customer_id=customer_id,
            plan_code=plan_code,
            external_id=external_id,
            billing_time=billing_time,
            subscription_at=now - timedelta(days=30 * months_ago),
            actor=SYSTEM,
            now=now,
        )
        created += 1
    return created
