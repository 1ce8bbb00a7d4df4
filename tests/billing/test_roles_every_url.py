"""Every registered admin URL, for each role: a page or action the role does not allow answers
no content and changes nothing; a page the role allows opens.

What each URL needs is read from the role table (`billing.roles`): a model's standard pages need
view (list, change page, history), add or delete; the custom pages and actions are classified in
`CUSTOM` below, and an admin URL missing from it fails the test, so a new page is classified when
it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import URLPattern, reverse
from django.utils import timezone

from billing.actors import SYSTEM
from billing.models import ActivityLog
from billing.roles import ensure_role_groups, role_allows
from billing.services import membership_set
from customers.models import Customer
from invoicing.models import Invoice
from invoicing.services.dunning import dunning_campaign_create
from tests.api.seeded_api import CUSTOMER as SEEDED_CUSTOMER
from tests.api.seeded_api import seed
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db

ROLES = ("admin", "manager", "finance")


@dataclass(frozen=True)
class Need:
    """What a custom URL needs: a right on a model, and whether it is an action (POST only)."""

    model: str  # "app_label.model_name"
    action: str  # view, add, change, delete
    post_only: bool = False
    kwargs: tuple[tuple[str, str], ...] = ()  # URL arguments other than ids


CUSTOM: dict[str, Need] = {
    "auth_user_password_change": Need("auth.user", "change"),
    "plans_plan_entitlements": Need("plans.plan", "view"),
    "customers_customer_apply_coupon": Need("customers.customer", "change"),
    "customers_customer_terminate_coupon": Need("customers.customer", "change", post_only=True),
    "customers_customer_export": Need("customers.customer", "view"),
    "customers_customer_export_csv": Need("customers.customer", "view"),
    "customers_customer_export_xlsx": Need("customers.customer", "view"),
    "customers_subscription_entitlements": Need("customers.subscription", "view"),
    "customers_subscription_export": Need("customers.subscription", "view"),
    "customers_subscription_export_csv": Need("customers.subscription", "view"),
    "customers_subscription_export_xlsx": Need("customers.subscription", "view"),
    "wallets_wallet_credits": Need("wallets.wallet", "change", kwargs=(("operation", "top-up"),)),
    "wallets_wallet_terminate": Need("wallets.wallet", "change"),
    "invoicing_payment_export": Need("invoicing.payment", "view"),
    "invoicing_payment_export_csv": Need("invoicing.payment", "view"),
    "invoicing_payment_export_xlsx": Need("invoicing.payment", "view"),
    "invoicing_paymentreceipt_pdf": Need("invoicing.paymentreceipt", "view"),
    "invoicing_paymentrequest_record_payment": Need("invoicing.invoice", "change"),
    "invoicing_customerdunning_for_customer": Need("invoicing.customerdunning", "change"),
    "invoicing_invoice_pdf": Need("invoicing.invoice", "view"),
    "invoicing_invoice_record_payment": Need("invoicing.invoice", "change"),
    "invoicing_invoice_void": Need("invoicing.invoice", "change"),
    "invoicing_invoice_operate": Need(
        "invoicing.invoice", "change", post_only=True, kwargs=(("operation", "mark_paid"),)
    ),
    "invoicing_invoice_export": Need("invoicing.invoice", "view"),
    "invoicing_invoice_export_csv": Need("invoicing.invoice", "view"),
    "invoicing_invoice_export_xlsx": Need("invoicing.invoice", "view"),
    "invoicing_creditnote_issue": Need("invoicing.invoice", "change"),
    "invoicing_creditnote_estimate": Need("invoicing.invoice", "change"),
    "invoicing_creditnote_pdf": Need("invoicing.creditnote", "view"),
    "invoicing_creditnote_operate": Need(
        "invoicing.invoice", "change", post_only=True, kwargs=(("operation", "void"),)
    ),
    "invoicing_creditnote_export": Need("invoicing.creditnote", "view"),
    "invoicing_creditnote_export_csv": Need("invoicing.creditnote", "view"),
    "invoicing_creditnote_export_xlsx": Need("invoicing.creditnote", "view"),
    "invoicing_fee_export": Need("invoicing.fee", "view"),
    "invoicing_fee_export_csv": Need("invoicing.fee", "view"),
    "invoicing_fee_export_xlsx": Need("invoicing.fee", "view"),
    "integrations_paymentprovider_checkout_link": Need(
        "customers.customer", "change", post_only=True
    ),
    "integrations_webhookdelivery_resend": Need(
        "integrations.webhookdelivery", "change", post_only=True
    ),
}
# the site's own pages: every staff member (the overview asks the invoices' view right)
SITE_PAGES = {"overview": Need("invoicing.invoice", "view")}
_STANDARD = {"changelist": "view", "change": "view", "history": "view", "add": "add",
             "delete": "delete"}  # fmt: skip
# arguments that name another row than the page's own: (URL argument, model label)
_ARGUMENT_MODELS = {
    "applied_coupon_id": "customers.appliedcoupon",
    "customer_id": "customers.customer",
    "invoice_id": "invoicing.invoice",
}


def _may(role: str, label: str, action: str, *, object_page: bool) -> bool:
    app_label, model_name = label.split(".")
    if object_page and action != "view" and _global(label):
        return False  # rows of no organization (the beat schedule): changed by superusers only
    if label == "billing.organization" and action == "add":
        return False  # a new tenant: superusers only
    return role_allows(role, app_label, model_name, action) or (
        action == "view" and role_allows(role, app_label, model_name, "change")
    )


def _global(label: str) -> bool:
    from django.apps import apps

    model = apps.get_model(label)
    return label != "billing.organization" and not any(
        field.name == "organization" for field in model._meta.fields
    )


def _any_pk(label: str) -> str | None:
    from django.apps import apps

    row = apps.get_model(label).objects.order_by("pk").first()
    return None if row is None else str(row.pk)


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    need: Need
    object_page: bool  # the page of one row (its change, history or delete page)


def admin_targets() -> tuple[list[Target], list[str]]:
    """Every admin URL with real rows for its arguments; the names of URLs left unclassified."""
    targets, unclassified = [], []
    for model, model_admin in admin.site._registry.items():
        label, prefix = model._meta.label_lower, f"{model._meta.app_label}_{model._meta.model_name}"
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name:
                continue  # the bare "<object_id>/" redirect to the change page
            suffix = pattern.name.removeprefix(f"{prefix}_")
            if pattern.name in CUSTOM:
                need = CUSTOM[pattern.name]
            elif suffix in _STANDARD:
                need = Need(label, _STANDARD[suffix])
            elif suffix == "autocomplete":
                continue
            else:
                unclassified.append(pattern.name)
                continue
            kwargs = dict(need.kwargs)
            for argument in pattern.pattern.converters:
                if argument in kwargs:
                    continue
                pk = _any_pk(_ARGUMENT_MODELS.get(argument, label))
                if pk is None:
                    break
                kwargs[argument] = pk
            else:
                path = reverse(f"admin:{pattern.name}", kwargs=kwargs)
                object_page = "object_id" in pattern.pattern.converters
                targets.append(Target(pattern.name, path, need, object_page))
    for name, need in SITE_PAGES.items():
        targets.append(Target(name, reverse(f"admin:{name}"), need, object_page=False))
    return targets, unclassified


@pytest.fixture
def seeded(api, organization):
    """One organization with a row of nearly every model a page opens."""
    seed(api)
    customer = Customer.objects.get(external_id=SEEDED_CUSTOMER)
    invoice = build_invoice(organization, customer=customer, fees=[FeeSpec(amount_cents=1000)])
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)  # a payment request's
    fee = invoice.fees.first()
    payment = {"invoice_id": str(invoice.pk), "amount_cents": 100, "reference": "wire"}
    items = [{"fee_id": str(fee.pk), "amount_cents": 100}]
    note = {"invoice_id": str(invoice.pk), "credit_amount_cents": 100, "items": items}
    request = {"external_customer_id": customer.external_id, "lago_invoice_ids": [str(invoice.pk)]}
    for path, body in (
        ("payments", {"payment": payment}),
        ("credit_notes", {"credit_note": note}),
        ("payment_requests", {"payment_request": request}),
        ("webhook_endpoints", {"webhook_endpoint": {"webhook_url": "https://example.com/h"}}),
    ):
        response = api.post(f"/api/v1/{path}", body, format="json")
        assert response.status_code == 200, (path, response.json())
    dunning_campaign_create(
        organization=organization,
        name="Gentle",
        code="gentle",
        thresholds=[{"currency": "EUR", "amount_cents": 100}],
        actor=SYSTEM,
        now=timezone.now(),
    )
    ensure_role_groups()


def _staff(organization, role: str):
    user = get_user_model().objects.create_user(role, f"{role}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    return user


def _denied(response) -> bool:
    # a refusal (403), an object out of reach (404) or Django's "no such object" redirect to the
    # admin's home: no page of the object either way
    return response.status_code in (403, 404) or (
        response.status_code == 302 and response["Location"] in ("/admin/", reverse("admin:index"))
    )


def test_every_admin_url_is_classified():
    assert admin_targets()[1] == []


@pytest.mark.parametrize("role", ROLES)
def test_a_role_opens_exactly_the_admin_urls_its_rights_allow(client, organization, seeded, role):
    targets, _ = admin_targets()
    assert len(targets) > 100  # the seeded rows reach most object pages
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "pw-1")
    client.force_login(superuser)
    # pages no one opens (adds and deletes the services do instead): refused to the superuser too
    closed = {t.name for t in targets if not t.need.post_only and _denied(client.get(t.path))}
    client.force_login(_staff(organization, role))

    wrong = []
    for target in targets:
        allowed = _may(
            role, target.need.model, target.need.action, object_page=target.object_page
        ) and (target.name not in closed)
        if target.need.post_only:
            if allowed:
                continue  # the action itself would run; its refusals are tested above
            logged = ActivityLog.objects.count()
            response = client.post(target.path, {})
            if not _denied(response) or ActivityLog.objects.count() != logged:
                wrong.append((target.name, "POST", response.status_code))
            continue
        response = client.get(target.path)
        if allowed and response.status_code not in (200, 302):
            wrong.append((target.name, "GET allowed", response.status_code))
        if not allowed and not _denied(response):
            wrong.append((target.name, "GET refused", response.status_code))
        if not allowed and target.need.action != "view":
            logged = ActivityLog.objects.count()
            response = client.post(target.path, {})
            if not _denied(response) or ActivityLog.objects.count() != logged:
                wrong.append((target.name, "POST refused", response.status_code))

    assert not wrong, "\n".join(map(str, wrong))
