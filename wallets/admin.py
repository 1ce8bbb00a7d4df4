"""Wallet admin for finance staff (spec §17): the list, the wallet page (balances, ongoing
balance, scope, recurring top-up rule and the ledger with what each consumption drew from) and
its buttons — top up, grant, void, terminate — each calling the same service as the API.

Invoices belong to `invoicing`, above this app: the ledger links them by URL name only, and
names them through the `wallets.ports.invoice_labels` port that invoicing binds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.actors import Actor
from billing.admin_audit import ActivityTimelineMixin
from billing.admin_base import (
    ActionReport,
    OrganizationAdmin,
    ThemedFormMixin,
    describe,
    money_html,
)
from billing.errors import DomainError
from billing.money import format_money
from wallets import ports
from wallets.admin_create import wallet_create_view
from wallets.models import (
    CREDITS,
    RecurringTransactionRule,
    Wallet,
    WalletTransaction,
    WalletTransactionConsumption,
)
from wallets.presenters import (
    credits_text,
    customer_name,
    rate_text,
    tag,
    wallet_url,
)

Tx = WalletTransaction
LEDGER_PAGE_SIZE = 50
MINUS = "\u2212"  # typographic minus of outbound amounts


def _when(instant: datetime | None) -> str:
    return f"{instant:%Y-%m-%d %H:%M}" if instant else "—"


def _invoice_url(invoice_id: UUID) -> str | None:
    try:
        return reverse("admin:invoicing_invoice_change", args=[invoice_id])
    except NoReverseMatch:
        return None  # invoicing not installed


# --- the ledger -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """One consumption seen from one side: what was drawn from / what consumed it."""

    target: str
    anchor: str
    amount: str
    credits: str


@dataclass(frozen=True)
class LedgerRow:
    tx: WalletTransaction
    inbound: bool
    kind: str
    status: str
    credits: str
    amount: str
    remaining: str
    invoice_url: str | None
    invoice_label: str
    traces: list[Trace] = field(default_factory=list)


def _tx_label(tx: WalletTransaction) -> str:
    return f"{tx.get_transaction_status_display()} {tx.created_at:%Y-%m-%d} · {str(tx.pk)[:8]}"


def _ledger_queryset(wallet: Wallet) -> QuerySet[WalletTransaction]:
    return (
        Tx.objects.filter(wallet=wallet)
        .order_by("-created_at", "-id")
        .prefetch_related(
            Prefetch(
                "consumptions_made",
                queryset=WalletTransactionConsumption.objects.select_related(
                    "inbound_wallet_transaction"
                ).order_by("created_at", "id"),
            ),
            Prefetch(
                "fundings_given",
                queryset=WalletTransactionConsumption.objects.select_related(
                    "outbound_wallet_transaction"
                ).order_by("created_at", "id"),
            ),
        )
    )


def ledger_rows(wallet: Wallet, transactions: list[WalletTransaction]) -> list[LedgerRow]:
    currency = wallet.currency
    invoice_ids = {tx.invoice_id for tx in transactions if tx.invoice_id}
    labels = ports.invoice_labels(invoice_ids=invoice_ids) if invoice_ids else {}
    rows = []
    for tx in transactions:
        inbound = tx.transaction_type == Tx.TransactionType.INBOUND
        sign = "+" if inbound else MINUS
        if inbound:
            traces = [
                Trace(
                    target=_tx_label(c.outbound_wallet_transaction),
                    anchor=f"tx-{c.outbound_wallet_transaction_id}",
                    amount=format_money(c.consumed_amount_cents, currency),
                    credits=credits_text(c.consumed_credit_amount),
                )
                for c in tx.fundings_given.all()
            ]
        else:
            traces = [
                Trace(
                    target=_tx_label(c.inbound_wallet_transaction),
                    anchor=f"tx-{c.inbound_wallet_transaction_id}",
                    amount=format_money(c.consumed_amount_cents, currency),
                    credits=credits_text(c.consumed_credit_amount),
                )
                for c in tx.consumptions_made.all()
            ]
        remaining = "—"
        if inbound and tx.status == Tx.Status.SETTLED:
            remaining = format_money(tx.remaining_amount_cents, currency)
        rows.append(
            LedgerRow(
                tx=tx,
                inbound=inbound,
                kind=tag(tx.get_transaction_status_display(), f"kind-{tx.transaction_status}"),
                status=tag(tx.get_status_display(), tx.status),
                credits=f"{sign}{credits_text(tx.credit_amount)}",
                amount=f"{sign}{format_money(tx.amount_cents, currency)}",
                remaining=remaining,
                invoice_url=_invoice_url(tx.invoice_id) if tx.invoice_id else None,
                invoice_label=labels.get(tx.invoice_id) or f"Invoice {str(tx.invoice_id)[:8]}",
                traces=traces,
            )
        )
    return rows


# --- the wallet page --------------------------------------------------------------------------


def _applies_to(wallet: Wallet) -> dict:
    labels = dict(Wallet.FeeType.choices)
    fee_types = [labels.get(t, t) for t in wallet.allowed_fee_types or []]
    metrics = [
        (target.billable_metric.name, target.billable_metric.code)
        for target in wallet.targets.select_related("billable_metric").order_by(
            "billable_metric__code"
        )
    ]
    return {"fee_types": fee_types, "metrics": metrics, "everything": not fee_types and not metrics}


def _rule_facts(rule: RecurringTransactionRule) -> list[tuple[str, str]]:
    facts = [("Trigger", rule.get_trigger_display()), ("Method", rule.get_method_display())]
    if rule.trigger == RecurringTransactionRule.Trigger.INTERVAL:
        facts.append(("Interval", rule.get_interval_display() or "—"))
    else:
        facts.append(("Threshold (ongoing credits)", credits_text(rule.threshold_credits)))
    if rule.method == RecurringTransactionRule.Method.TARGET:
        facts.append(("Target ongoing balance", credits_text(rule.target_ongoing_balance)))
        if rule.grants_target_top_up:
            facts.append(("Target gap", "granted for free"))
    else:
        facts.append(("Paid credits", credits_text(rule.paid_credits)))
        facts.append(("Granted credits", credits_text(rule.granted_credits)))
    facts.append(("Started", _when(rule.started_at)))
    facts.append(("Expires", _when(rule.expiration_at)))
    if rule.invoice_requires_successful_payment:
        facts.append(("Credits after payment", "yes"))
    return facts


def wallet_page_context(request: HttpRequest, wallet: Wallet) -> dict:
    currency = wallet.currency
    transactions = _ledger_queryset(wallet)
    page = Paginator(transactions, LEDGER_PAGE_SIZE).get_page(request.GET.get("ledger"))
    rule = (
        wallet.recurring_transaction_rules.filter(status=RecurringTransactionRule.Status.ACTIVE)
        .order_by("-created_at")
        .first()
    )
    pending = Tx.objects.filter(
        wallet=wallet, transaction_type=Tx.TransactionType.INBOUND, status=Tx.Status.PENDING
    ).aggregate(credits=Sum("credit_amount"), cents=Sum("amount_cents"), count=Count("id"))
    return {
        "wallet": wallet,
        "customer_url": reverse("admin:customers_customer_change", args=[wallet.customer_id]),
        "customer_name": customer_name(wallet.customer),
        "status_tag": tag(wallet.get_status_display(), wallet.status),
        "balance": format_money(wallet.balance_cents, currency),
        "credits_balance": credits_text(wallet.credits_balance),
        "ongoing_balance": format_money(wallet.ongoing_balance_cents, currency),
        "credits_ongoing_balance": credits_text(wallet.credits_ongoing_balance),
        "ongoing_negative": wallet.ongoing_balance_cents < 0,
        "ongoing_usage": format_money(wallet.ongoing_usage_balance_cents, currency),
        "consumed": format_money(wallet.consumed_amount_cents, currency),
        "consumed_credits": credits_text(wallet.consumed_credits),
        "pending": (
            {
                "count": pending["count"],
                "amount": format_money(pending["cents"] or 0, currency),
                "credits": credits_text(pending["credits"] or Decimal(0)),
            }
            if pending["count"]
            else None
        ),
        "rate": rate_text(wallet),
        "applies_to": _applies_to(wallet),
        "rule": rule,
        "rule_facts": _rule_facts(rule) if rule else [],
        "top_up_limits": (
            format_money(wallet.paid_top_up_min_amount_cents, currency)
            if wallet.paid_top_up_min_amount_cents is not None
            else "none",
            format_money(wallet.paid_top_up_max_amount_cents, currency)
            if wallet.paid_top_up_max_amount_cents is not None
            else "none",
        ),
        "metadata": sorted((wallet.metadata or {}).items()),
        "ledger": ledger_rows(wallet, list(page.object_list)),
        "ledger_page": page,
    }


# --- forms ------------------------------------------------------------------------------------


class CreditsForm(ThemedFormMixin, forms.Form):
    """Credits for one kind of wallet transaction (paid, granted or voided)."""

    credits = forms.DecimalField(
        max_digits=CREDITS["max_digits"],
        decimal_places=CREDITS["decimal_places"],
        min_value=Decimal("0.00001"),
        label="Credits",
    )
    name = forms.CharField(
        max_length=255, required=False, label="Transaction name", help_text="Optional."
    )


class TopUpForm(CreditsForm):
    invoice_requires_successful_payment = forms.TypedChoiceField(
        label="Credits available",
        choices=[
            ("", "— the wallet's setting —"),
            ("false", "when the invoice is issued (payment requested)"),
            ("true", "only once the invoice is paid"),
        ],
        coerce=lambda value: value == "true",
        empty_value=None,
        required=False,
    )
    ignore_paid_top_up_limits = forms.BooleanField(
        required=False, label="Ignore the wallet's paid top-up limits"
    )


@dataclass(frozen=True)
class Operation:
    label: str
    title: str
    verb: str
    form_class: type[CreditsForm]
    credits_argument: str
    explanation: str


OPERATIONS: dict[str, Operation] = {
    "top-up": Operation(
        "Top up",
        "Top up paid credits",
        "topped up",
        TopUpForm,
        "paid_credits",
        "Purchased credits: a credit invoice is issued; the credits join the balance when "
        "the invoice is paid.",
    ),
    "grant": Operation(
        "Grant credits",
        "Grant free credits",
        "granted",
        CreditsForm,
        "granted_credits",
        "Granted credits are free: no invoice, they join the balance at once.",
    ),
    "void": Operation(
        "Void credits",
        "Void credits",
        "voided",
        CreditsForm,
        "voided_credits",
        "Voided credits leave the balance at once, without a credit note. This cannot be undone.",
    ),
}


# --- the admin --------------------------------------------------------------------------------


@admin.register(Wallet)
class WalletAdmin(ActivityTimelineMixin, OrganizationAdmin):
    list_display = ("wallet_display", "customer_link", "status_tag", "balance", "ongoing_balance",
                    "priority")  # fmt: skip
    list_display_links = ("wallet_display",)
    list_filter = ("status", "currency")
    search_fields = ("customer__external_id", "customer__name", "code", "name")
    list_select_related = ("customer",)
    list_per_page = 50
    ordering = ("-created_at",)
    actions = ("terminate_wallets",)
    change_form_template = "admin/wallets/wallet/change_form.html"
    change_list_template = "admin/wallets/wallet/change_list.html"
    fieldsets = (
        ("Record", {"fields": ("lago_id", "code", "name", "created_at", "updated_at",
                               "terminated_at", "purchase_order_number"),
                    "classes": ("collapse",)}),
    )  # fmt: skip
    readonly_fields = ("lago_id", "code", "name", "created_at", "updated_at", "terminated_at",
                       "purchase_order_number")  # fmt: skip

    # --- permissions: wallets change through services only ----------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """A new wallet through the service of POST /wallets (spec §17.1)."""
        return wallet_create_view(self, request)

    def has_delete_permission(self, request: HttpRequest, obj: Wallet | None = None) -> bool:
        return False  # terminated, never deleted: the ledger is history

    def has_change_permission(self, request: HttpRequest, obj: Wallet | None = None) -> bool:
        return False  # read only page; the buttons below are the writes

    def can_operate(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.change_wallet")

    def has_terminate_permission(self, request: HttpRequest) -> bool:
        return self.can_operate(request)

    # --- columns ------------------------------------------------------------------------------

    @admin.display(description="Wallet", ordering="code")
    def wallet_display(self, wallet: Wallet) -> str:
        return format_html(
            '{}<br><span class="wal-quiet">{} · {}</span>',
            wallet.name or wallet.code,
            wallet.code,
            wallet.currency,
        )

    @admin.display(description="Customer", ordering="customer__name")
    def customer_link(self, wallet: Wallet) -> str:
        url = reverse("admin:customers_customer_change", args=[wallet.customer_id])
        return format_html(
            '<a href="{}">{}</a><br><span class="wal-quiet">{}</span>',
            url,
            customer_name(wallet.customer),
            wallet.customer.external_id,
        )

    @admin.display(description="Status", ordering="status")
    def status_tag(self, wallet: Wallet) -> str:
        if wallet.terminated_at:
            when = f"ended {wallet.terminated_at:%Y-%m-%d}"
        elif wallet.expiration_at:
            when = f"expires {wallet.expiration_at:%Y-%m-%d}"
        else:
            return tag(wallet.get_status_display(), wallet.status)
        return format_html(
            '{}<br><span class="wal-quiet">{}</span>',
            tag(wallet.get_status_display(), wallet.status),
            when,
        )

    @admin.display(description="Balance", ordering="balance_cents")
    def balance(self, wallet: Wallet) -> str:
        return format_html(
            '{}<br><span class="wal-quiet">{} credits</span>',
            money_html(wallet.balance_cents, wallet.currency),
            credits_text(wallet.credits_balance),
        )

    @admin.display(description="Ongoing balance", ordering="ongoing_balance_cents")
    def ongoing_balance(self, wallet: Wallet) -> str:
        return format_html(
            '<span class="{}">{}</span><br><span class="wal-quiet">{} credits</span>',
            "wal-negative" if wallet.ongoing_balance_cents < 0 else "",
            money_html(wallet.ongoing_balance_cents, wallet.currency),
            credits_text(wallet.credits_ongoing_balance),
        )

    @admin.display(description="Lago ID")
    def lago_id(self, wallet: Wallet) -> str:
        return wallet.lago_id

    # --- pages --------------------------------------------------------------------------------

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<uuid:object_id>/credits/<str:operation>/", view(self.credits_view),
                 name="wallets_wallet_credits"),
            path("<uuid:object_id>/terminate/", view(self.terminate_view),
                 name="wallets_wallet_terminate"),
            *super().get_urls(),
        ]  # fmt: skip

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Wallet | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(wallet_page_context(request, obj))
            context["title"] = "Wallet"
            context["operations"] = (
                [
                    (op.label, reverse("admin:wallets_wallet_credits", args=[obj.pk, name]))
                    for name, op in OPERATIONS.items()
                    if name != "void" or obj.balance_cents > 0
                ]
                if obj.is_active and self.can_operate(request)
                else []
            )
            context["terminate_url"] = (
                reverse("admin:wallets_wallet_terminate", args=[obj.pk])
                if obj.is_active and self.can_operate(request)
                else None
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _operable_wallet(self, request: HttpRequest, object_id: UUID) -> Wallet:
        if not self.can_operate(request):
            raise PermissionDenied
        return get_object_or_404(
            self.get_queryset(request).select_related("customer"), pk=object_id
        )

    def _page_context(self, request: HttpRequest, wallet: Wallet, **extra: object) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "wallet": wallet,
            "customer_name": customer_name(wallet.customer),
            "balance": format_money(wallet.balance_cents, wallet.currency),
            "credits_balance": credits_text(wallet.credits_balance),
            "rate": rate_text(wallet),
            **extra,
        }

    def credits_view(self, request: HttpRequest, object_id: UUID, operation: str) -> HttpResponse:
        """Top up, grant or void credits through `wallet_top_up`, as POST /wallet_transactions."""
        if operation not in OPERATIONS:
            raise PermissionDenied
        wallet = self._operable_wallet(request, object_id)
        op = OPERATIONS[operation]
        form = op.form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            from wallets.services.transactions import wallet_top_up

            data = form.cleaned_data
            options = {}
            if isinstance(form, TopUpForm):
                options = {
                    "invoice_requires_successful_payment": data.get(
                        "invoice_requires_successful_payment"
                    ),
                    "ignore_paid_top_up_limits": bool(data.get("ignore_paid_top_up_limits")),
                }
            try:
                transactions = wallet_top_up(
                    wallet=wallet,
                    actor=Actor.from_request(request),
                    now=timezone.now(),
                    name=data.get("name") or "",
                    **{op.credits_argument: data["credits"]},
                    **options,
                )
            except DomainError as exc:
                self.message_user(request, f"Not {op.verb}: {describe(exc)}", messages.ERROR)
            else:
                credits = credits_text(data["credits"])
                self.log_change(request, wallet, f"{op.title}: {credits} credits via admin")
                self.message_user(
                    request,
                    f"{credits} credits {op.verb} ({_summary(transactions)}).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(wallet_url(wallet))
        context = self._page_context(
            request, wallet, form=form, operation=op, title=f"{op.title} — {wallet}"
        )
        return TemplateResponse(request, "admin/wallets/wallet/credits_form.html", context)

    def terminate_view(self, request: HttpRequest, object_id: UUID) -> HttpResponse:
        """Confirmation page, then `wallet_terminate` (as DELETE /wallets/{id})."""
        wallet = self._operable_wallet(request, object_id)
        if not wallet.is_active:
            self.message_user(request, f"{wallet} is already terminated.", messages.INFO)
            return HttpResponseRedirect(wallet_url(wallet))
        if request.method == "POST":
            from wallets.services.wallets import wallet_terminate

            report = ActionReport(self, request, "terminated")
            report.attempt(
                wallet, wallet_terminate, wallet=wallet, actor=report.actor, now=timezone.now()
            )
            report.send()
            return HttpResponseRedirect(wallet_url(wallet))
        context = self._page_context(request, wallet, title=f"Terminate wallet {wallet}")
        return TemplateResponse(request, "admin/wallets/wallet/terminate.html", context)

    # --- actions ------------------------------------------------------------------------------

    @admin.action(
        description="Terminate selected wallets (voids their remaining credits)",
        permissions=["terminate"],
    )
    def terminate_wallets(self, request: HttpRequest, queryset: QuerySet) -> None:
        from wallets.services.wallets import wallet_terminate

        report, now = ActionReport(self, request, "terminated"), timezone.now()
        for wallet in queryset.filter(status=Wallet.Status.ACTIVE):
            report.attempt(wallet, wallet_terminate, wallet=wallet, actor=report.actor, now=now)
        report.send()


def _summary(transactions: list[WalletTransaction]) -> str:
    return ", ".join(
        f"{tx.get_transaction_status_display().lower()} {tx.get_status_display().lower()}"
        for tx in transactions
    )
