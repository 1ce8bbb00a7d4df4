"""The credit notes panel of the customer 360 page: the credit available to the next invoices
and the last credit notes."""

from __future__ import annotations

from django.db.models import Sum
from django.http import HttpRequest
from django.urls import reverse

from billing.admin_base import Panel
from billing.money import format_money
from customers.models import Customer
from invoicing.models import CreditNote
from invoicing.presenters import tag


def credit_notes_panel(request: HttpRequest, customer: Customer) -> Panel | None:
    """Available credit per currency and the customer's last ten credit notes (none: no panel)."""
    notes = CreditNote.objects.filter(customer=customer, status=CreditNote.Status.FINALIZED)
    recent = list(notes.select_related("invoice").order_by("-created_at", "-id")[:10])
    if not recent:
        return None
    available = (
        notes.filter(credit_status=CreditNote.CreditStatus.AVAILABLE)
        .values("currency")
        .annotate(total=Sum("balance_amount_cents"))
        .order_by("currency")
    )
    rows = [
        {
            "note": note,
            "url": reverse("admin:invoicing_creditnote_change", args=[note.pk]),
            "invoice_url": reverse("admin:invoicing_invoice_change", args=[note.invoice_id]),
            "credit": tag(note.get_credit_status_display(), note.credit_status)
            if note.credit_status
            else "—",
            "refund": tag(note.get_refund_status_display(), note.refund_status)
            if note.refund_status
            else "—",
            "total": format_money(note.total_amount_cents, note.currency),
            "left": format_money(note.balance_amount_cents, note.currency),
        }
        for note in recent
    ]
    all_url = (
        reverse("admin:invoicing_creditnote_changelist") + f"?customer__id__exact={customer.pk}"
    )
    return Panel(
        "Credit notes",
        "admin/invoicing/creditnote/customer_panel.html",
        {
            "rows": rows,
            "available": [
                {"currency": row["currency"], "amount": format_money(row["total"], row["currency"])}
                for row in available
            ],
        },
        [("All credit notes", all_url)],
    )
