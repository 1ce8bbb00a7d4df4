"""The customer 360 page, composed: every panel of every app, in page order, declared here.

`invoicing` is the rightmost app the page needs, so it is the one that can see every panel: the
customer's own (`customers.presenters`), current usage (`metering.presenters`), wallets
(`wallets.presenters`) and the two below, the customer's invoices and a preview of its upcoming
invoice. `invoicing/apps.py` binds `customer_360_panels` to the customer admin's port
(`customers.ports.customer_360_panels`).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from billing.admin_base import Panel, PanelProvider, describe, staff_may_in, staff_organizations
from billing.errors import DomainError
from billing.money import format_money, format_units
from customers import presenters as customers
from customers.models import Customer, Subscription
from invoicing.customer_360_credit_notes import credit_notes_panel
from invoicing.models import Invoice
from invoicing.overview import customer_revenue
from invoicing.presenters import fee_display_name, payment_state, tag, total_rows
from invoicing.selectors import customer_invoice_list, customer_outstanding_balances
from metering import presenters as metering
from wallets import presenters as wallets

logger = logging.getLogger(__name__)


def invoices_panel(request: HttpRequest, customer: Customer) -> Panel:
    """The customer's last ten invoices with their statuses and totals, and what is outstanding."""
    invoices = list(customer_invoice_list(customer=customer)[:10])
    rows = [
        {
            "invoice": invoice,
            "url": reverse("admin:invoicing_invoice_change", args=[invoice.pk]),
            "status": tag(invoice.get_status_display(), invoice.status),
            "payment": tag("Overdue", "overdue")
            if invoice.payment_overdue
            else tag(*payment_state(invoice)),
            "total": format_money(invoice.total_amount_cents, invoice.currency),
        }
        for invoice in invoices
    ]
    outstanding = [
        {
            "currency": balance.currency,
            "due": format_money(balance.due_cents, balance.currency),
            "overdue": format_money(balance.overdue_cents, balance.currency),
            "invoices": balance.invoices,
        }
        for balance in customer_outstanding_balances(customer=customer)
    ]
    all_url = reverse("admin:invoicing_invoice_changelist") + f"?customer__id__exact={customer.pk}"
    actions = [("All invoices", all_url)] if rows else []
    if customer.deleted_at is None and staff_may_in(
        request, "add", Invoice, customer.organization_id
    ):
        url = reverse("admin:invoicing_invoice_add") + f"?customer={customer.pk}"
        actions.append(("One-off invoice", url))
    return Panel(
        "Invoices",
        "admin/invoicing/invoice/customer_panel.html",
        {"rows": rows, "outstanding": outstanding},
        actions,
    )


def revenue_panel(request: HttpRequest, customer: Customer) -> Panel | None:
    """What the customer was billed (all time, last 12 months) and what is overdue, per
    currency: the figures of the analytics API filtered on this customer."""
    rows = customer_revenue(customer=customer, today=timezone.now().date())
    if not rows:
        return None
    base = reverse("admin:invoicing_invoice_changelist") + f"?customer__id__exact={customer.pk}"
    return Panel(
        "Revenue",
        "admin/invoicing/invoice/revenue_panel.html",
        {"rows": rows},
        [
            ("Finalized invoices", f"{base}&status__exact=finalized"),
            ("Overdue invoices", f"{base}&status__exact=finalized&overdue=yes"),
        ],
    )


def upcoming_invoice_panel(request: HttpRequest, customer: Customer) -> Panel | None:
    """A preview of the next invoice of the active subscriptions (spec §12.11)."""
    subscriptions = list(
        customer.subscriptions.filter(status=Subscription.Status.ACTIVE).select_related("plan")
    )
    if customer.deleted_at is not None or not subscriptions:
        return None
    context: dict = {}
    try:
        from invoicing.services.generation import invoice_preview

        preview = invoice_preview(
            customer=customer, now=timezone.now(), subscriptions=subscriptions
        )
    except Exception as exc:  # a preview must never break the customer page
        logger.warning("upcoming invoice preview failed for %s", customer.pk, exc_info=True)
        context["error"] = describe(exc) if isinstance(exc, DomainError) else type(exc).__name__
        return Panel("Upcoming invoice (preview)", "admin/invoicing/invoice/upcoming.html", context)
    invoice = preview.invoice
    currency = invoice.currency
    context.update(
        issuing_date=invoice.issuing_date,
        lines=[
            {
                "name": fee_display_name(fee),
                "units": format_units(fee.units),
                "amount": format_money(fee.amount_cents, currency),
            }
            for fee in preview.fees
        ],
        totals=total_rows(invoice),
    )
    return Panel("Upcoming invoice (preview)", "admin/invoicing/invoice/upcoming.html", context)


def payments_panel(request: HttpRequest, customer: Customer) -> Panel:
    """The customer's last payments, its overdue balance and where its dunning stands."""
    from invoicing.models import CustomerDunning
    from invoicing.payment_selectors import customer_payment_list
    from invoicing.services.dunning import applicable_campaign, overdue_balances

    payments = list(customer_payment_list(customer=customer)[:10])
    rows = [
        {
            "paid_at": payment.created_at,
            "url": reverse("admin:invoicing_payment_change", args=[payment.pk]),
            "pays": payment.invoice.number if payment.invoice_id else "Payment request",
            "type": payment.get_payment_type_display(),
            "reference": payment.reference or payment.provider_payment_id or "",
            "status": tag(
                payment.get_payable_payment_status_display(), payment.payable_payment_status
            ),
            "amount": format_money(payment.amount_cents, payment.amount_currency),
        }
        for payment in payments
    ]
    state = CustomerDunning.objects.filter(customer=customer).first()
    campaign = applicable_campaign(customer, state)
    overdue = [
        {"currency": currency, "amount": format_money(cents, currency)}
        for currency, cents in sorted(overdue_balances(customer).items())
    ]
    actions = []
    may_set = staff_organizations(request, CustomerDunning, "change")  # the managers' setting
    if may_set.filter(pk=customer.organization_id).exists():
        actions.append(
            (
                "Dunning settings",
                reverse("admin:invoicing_customerdunning_for_customer", args=[customer.pk]),
            )
        )
    if rows:
        all_url = (
            reverse("admin:invoicing_payment_changelist") + f"?customer__id__exact={customer.pk}"
        )
        actions.insert(0, ("All payments", all_url))
    return Panel(
        "Payments and dunning",
        "admin/invoicing/payment/customer_panel.html",
        {
            "rows": rows,
            "overdue": overdue,
            "campaign": campaign,
            "excluded": bool(state and state.exclude_from_dunning_campaign),
            "attempts": sorted((state.currency_attempts if state else {}).items()),
            "last_attempt_at": state.last_attempt_at if state else None,
        },
        actions,
    )


PANELS: tuple[PanelProvider, ...] = (
    customers.summary_panel,
    customers.subscriptions_panel,
    customers.applied_coupons_panel,
    customers.taxes_panel,
    customers.payment_methods_panel,
    metering.current_usage_panel,
    wallets.wallets_panel,
    invoices_panel,
    credit_notes_panel,
    payments_panel,
    revenue_panel,
    upcoming_invoice_panel,
)


def customer_360_panels() -> tuple[PanelProvider, ...]:
    """The panel providers of the customer 360 page, in page order."""
    return PANELS
