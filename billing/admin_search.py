"""The admin header's search: one query across customers, invoices, credit notes and payments,
answered by a page of results grouped by kind, each a link to its page.

Each kind is searched through its own admin list (`get_queryset` scopes it to the staff member's
organizations, `get_search_results` reads its search fields), so the page finds what the lists
find and nothing another organization owns. Lists of money rows also match an amount typed as a
number ("1234.56" finds an invoice of 1,234.56 in any currency with two decimals).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from billing.admin_base import admin_change_url
from billing.money import CURRENCIES, exponent

# (title, "app_label.modelname"): the kinds the page searches, in the page's order; a kind whose
# admin is not registered or not open to the staff member is left out
SEARCHED_KINDS: tuple[tuple[str, str], ...] = (
    ("Customers", "customers.customer"),
    ("Invoices", "invoicing.invoice"),
    ("Credit notes", "invoicing.creditnote"),
    ("Payments", "invoicing.payment"),
)
RESULTS_PER_KIND = 10

_CURRENCIES_BY_EXPONENT: dict[int, tuple[str, ...]] = defaultdict(tuple)
for _code in sorted(CURRENCIES):
    _CURRENCIES_BY_EXPONENT[exponent(_code)] += (_code,)


def parse_amount(term: str) -> Decimal | None:
    """A typed amount: "1234.56", "1,234.56", "1 234,56" -> Decimal("1234.56"); else None."""
    text = term.strip().replace(" ", "").replace("\u00a0", "")
    if "," in text and "." not in text and text.count(",") == 1 and len(text.split(",")[1]) != 3:
        text = text.replace(",", ".")  # a decimal comma (1234,56), not a thousands one
    text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def amount_q(amount: Decimal, cents_field: str, currency_field: str) -> Q:
    """Rows whose `cents_field` is `amount` in the unit of their own currency."""
    condition = Q(pk__in=[])
    for digits, currencies in _CURRENCIES_BY_EXPONENT.items():
        cents = amount.scaleb(digits)
        if cents == cents.to_integral_value():
            condition |= Q(**{cents_field: int(cents), f"{currency_field}__in": currencies})
    return condition


class AmountSearchMixin:
    """An admin list whose search also matches an amount typed as a number."""

    search_amount_fields: tuple[str, ...] = ()  # cents fields
    search_amount_currency = "currency"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        amount = parse_amount(search_term) if search_term else None
        if amount is None or not self.search_amount_fields:
            return results, may_have_duplicates
        matches = Q(pk__in=[])
        for field in self.search_amount_fields:
            matches |= amount_q(amount, field, self.search_amount_currency)
        return results | queryset.filter(matches), may_have_duplicates


def _model_admin(label: str) -> admin.ModelAdmin | None:
    app_label, model_name = label.split(".")
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == app_label and model._meta.model_name == model_name:
            return model_admin
    return None


def search_groups(request: HttpRequest, term: str) -> list[dict]:
    """[{title, results: [{label, detail, url}], more, list_url}] for each kind with a match."""
    groups = []
    for title, label in SEARCHED_KINDS:
        model_admin = _model_admin(label)
        if model_admin is None or not model_admin.has_view_or_change_permission(request):
            continue
        queryset, duplicates = model_admin.get_search_results(
            request, model_admin.get_queryset(request), term
        )
        if duplicates:
            queryset = queryset.distinct()
        rows: list[Model] = list(
            queryset.order_by(*(model_admin.get_ordering(request) or ("-pk",)))[
                : RESULTS_PER_KIND + 1
            ]
        )
        if not rows:
            continue
        describe = getattr(model_admin, "search_result_detail", None)
        opts = model_admin.opts
        list_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        groups.append(
            {
                "title": title,
                "results": [
                    {
                        "label": str(obj),
                        "detail": describe(obj) if describe else "",
                        "url": admin_change_url(obj),
                    }
                    for obj in rows[:RESULTS_PER_KIND]
                ],
                "more": len(rows) > RESULTS_PER_KIND,
                "list_url": f"{list_url}?{urlencode({'q': term})}",
            }
        )
    return groups


def global_search_view(request: HttpRequest) -> HttpResponse:
    """The results page of the header's search."""
    term = request.GET.get("q", "").strip()[:200]
    context = {
        **admin.site.each_context(request),
        "title": f"Search: {term}" if term else "Search",
        "term": term,
        "groups": search_groups(request, term) if term else [],
    }
    return TemplateResponse(request, "admin/billing/search.html", context)
