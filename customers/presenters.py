"""The customer 360 page's own panels (spec §3, §15.2).

The change page of a customer is its 360° view: a summary (identity, addresses, effective
invoicing settings with their source), then one panel per subject (subscriptions, applied
coupons, taxes), then the editable profile with its metadata inline (`customers.admin`).
Apps to the right have panels of their own (usage, wallets, invoices); the rightmost one
declares the whole page, in order, in one tuple (`invoicing/customer_360.py`) and binds it to
the `customers.ports.customer_360_panels` port from its `AppConfig.ready()`.

A panel provider gets `(request, customer)` and returns a `billing.admin_base.Panel` (or None
to show nothing); the page includes its template with `panel` (title, template, context,
actions) in the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from billing.admin_base import (
    Panel,
    PanelProvider,
    admin_change_url,
    staff_may_in,
    staff_organizations,
)
from billing.models import BillingEntity, DocumentLocale
from billing.money import format_money
from customers.models import AppliedCoupon, Customer, Subscription
from customers.selectors import customer_effective_settings, customer_subscription_list
from plans.models import BillingEntityTax, CouponFrequency, CouponType


def customer_name(customer: Customer) -> str:
    """The customer as staff know it: name, legal name, person, else external id."""
    person = " ".join(p for p in (customer.firstname, customer.lastname) if p)
    return customer.name or customer.legal_name or person or customer.external_id


def customer_label(customer: Customer) -> str:
    """A customer in a choice list: "Name (external id)"."""
    return f"{customer_name(customer)} ({customer.external_id})"


def customers_to_add(request: HttpRequest, model: type[Model]) -> QuerySet[Customer]:
    """Alive customers of the organizations where the staff member's role may add `model` rows
    (subscriptions, wallets, invoices), by name."""
    return (
        Customer.objects.alive()
        .filter(organization__in=staff_organizations(request, model, "add"))
        .order_by("name", "external_id")
    )


def can_change_customer(request: HttpRequest, customer: Customer) -> bool:
    """Whether the staff member may change the customer (profile, coupons)."""
    return request.user.has_perm("customers.change_customer")


_SETTING_LABELS: dict[str, dict[str, str]] = {
    "Document locale": {value: f"{label} ({value})" for value, label in DocumentLocale.choices},
    "Issuing date anchor": dict(BillingEntity.IssuingDateAnchor.choices),
    "Issuing date adjustment": dict(BillingEntity.IssuingDateAdjustment.choices),
    "Zero-amount invoices": {"finalize": "Finalize", "skip": "Skip"},
}


def _settings_for_people(customer: Customer) -> list[tuple[str, object, str]]:
    return [
        (s.label, _SETTING_LABELS.get(s.label, {}).get(str(s.value), s.value), s.source)
        for s in customer_effective_settings(customer=customer)
    ]


def summary_panel(request: HttpRequest, customer: Customer) -> Panel:
    """Addresses and the invoicing settings in effect, with where each comes from."""
    shipping = customer.shipping_address or {}
    return Panel(
        "Summary",
        "admin/customers/customer/panels/summary.html",
        {
            "settings": _settings_for_people(customer),
            "billing_address": [
                customer.address_line1,
                customer.address_line2,
                " ".join(p for p in (customer.zipcode, customer.city) if p),
                customer.state,
                customer.country,
            ],
            "shipping_address": [
                shipping.get("address_line1"),
                shipping.get("address_line2"),
                " ".join(p for p in (shipping.get("zipcode"), shipping.get("city")) if p),
                shipping.get("state"),
                shipping.get("country"),
            ],
            "billing_entity_url": admin_change_url(customer.billing_entity),
        },
    )


@dataclass(frozen=True)
class SubscriptionRow:
    subscription: Subscription
    url: str | None
    plan_price: str
    ended_at: datetime | None


def subscriptions_panel(request: HttpRequest, customer: Customer) -> Panel:
    """The customer's subscriptions with their plan price and dates."""
    rows = [
        SubscriptionRow(
            subscription=s,
            url=admin_change_url(s),
            plan_price=f"{format_money(s.plan.amount_cents, s.plan.amount_currency)} / "
            f"{s.plan.get_interval_display().lower()}",
            ended_at=s.terminated_at or s.canceled_at,
        )
        for s in customer_subscription_list(customer=customer)
    ]
    actions = []
    if customer.deleted_at is None and staff_may_in(
        request, "add", Subscription, customer.organization_id
    ):
        url = reverse("admin:customers_subscription_add") + f"?customer={customer.pk}"
        actions.append(("Subscribe to a plan", url))
    return Panel(
        "Subscriptions",
        "admin/customers/customer/panels/subscriptions.html",
        {"rows": rows},
        actions,
    )


@dataclass(frozen=True)
class AppliedCouponRow:
    applied_coupon: AppliedCoupon
    value: str
    remaining: str
    duration: str
    terminate_url: str | None


def coupon_value(applied: AppliedCoupon) -> str:
    """What an applied coupon takes off: "10 %" or an amount."""
    if applied.coupon.coupon_type == CouponType.PERCENTAGE:
        rate = applied.percentage_rate or Decimal(0)
        return f"{rate.normalize():f} %"
    return format_money(applied.amount_cents, applied.amount_currency or "USD")


def applied_coupons_panel(request: HttpRequest, customer: Customer) -> Panel:
    """Applied coupons with what is left of them; apply and terminate buttons for editors."""
    can_change = customer.deleted_at is None and can_change_customer(request, customer)
    rows = []
    for applied in customer.applied_coupons.select_related("coupon").order_by("-created_at"):
        once_fixed = (
            applied.frequency == CouponFrequency.ONCE
            and applied.coupon.coupon_type == CouponType.FIXED_AMOUNT
        )
        rows.append(
            AppliedCouponRow(
                applied_coupon=applied,
                value=coupon_value(applied),
                # spec §15.3: what is left once invoices have consumed credits (invoicing)
                remaining=coupon_value(applied) if once_fixed else "—",
                duration=(
                    f"{applied.frequency_duration_remaining} of {applied.frequency_duration} "
                    "periods left"
                    if applied.frequency == CouponFrequency.RECURRING
                    else CouponFrequency(applied.frequency).label
                ),
                terminate_url=(
                    reverse(
                        "admin:customers_customer_terminate_coupon",
                        args=[customer.pk, applied.pk],
                    )
                    if can_change and applied.status == AppliedCoupon.Status.ACTIVE
                    else None
                ),
            )
        )
    actions = (
        [("Apply a coupon", reverse("admin:customers_customer_apply_coupon", args=[customer.pk]))]
        if can_change
        else []
    )
    return Panel(
        "Applied coupons",
        "admin/customers/customer/panels/applied_coupons.html",
        {"rows": rows},
        actions,
    )


def taxes_panel(request: HttpRequest, customer: Customer) -> Panel:
    """The customer's own taxes and those inherited from its billing entity."""
    own = list(customer.taxes.all())
    inherited = [
        link.tax
        for link in BillingEntityTax.objects.filter(billing_entity=customer.billing_entity)
        .select_related("tax")
        .order_by("tax__name")
    ]
    return Panel(
        "Taxes",
        "admin/customers/customer/panels/taxes.html",
        {"own": own, "inherited": inherited},
    )


def _checkout_link_url(request: HttpRequest, customer: Customer) -> str | None:
    """Where the button asking the provider for a checkout link posts (the payment provider
    admin, in an app to the right: reached by URL name only)."""
    config = customer.billing_configuration or {}
    if not config.get("provider_customer_id") or not can_change_customer(request, customer):
        return None
    try:
        return reverse("admin:integrations_paymentprovider_checkout_link", args=[customer.pk])
    except NoReverseMatch:
        return None


def payment_methods_panel(request: HttpRequest, customer: Customer) -> Panel | None:
    """The customer's payment provider (connection code, id at the provider) and the payment
    methods saved there; nothing for a customer without either."""
    config = customer.billing_configuration or {}
    methods = list(customer.payment_methods.alive().order_by("-is_default", "-created_at"))
    if not config.get("payment_provider") and not methods:
        return None
    rows = [
        {
            "label": str(method),
            "type": method.provider_method_type or method.details.get("type") or "",
            "expires": (
                f"{method.details['expiration_month']:02d}/{method.details['expiration_year']}"
                if method.details.get("expiration_month") and method.details.get("expiration_year")
                else ""
            ),
            "is_default": method.is_default,
            "provider_method_id": method.provider_method_id,
            "connection": method.payment_provider_code,
            "created_at": method.created_at,
        }
        for method in methods
    ]
    return Panel(
        "Payment provider",
        "admin/customers/customer/panels/payment_methods.html",
        {
            "provider": config.get("payment_provider"),
            "code": config.get("payment_provider_code"),
            "provider_customer_id": config.get("provider_customer_id"),
            "sync_with_provider": config.get("sync_with_provider"),
            "methods_offered": config.get("provider_payment_methods") or [],
            "rows": rows,
            "checkout_link_url": _checkout_link_url(request, customer),
        },
    )


# The customer's own panels, in page order.
CUSTOMER_PANELS: tuple[PanelProvider, ...] = (
    summary_panel,
    subscriptions_panel,
    applied_coupons_panel,
    taxes_panel,
    payment_methods_panel,
)
