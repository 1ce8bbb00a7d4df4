"""The finance admin's frame: site title, sidebar sections and global search, per staff member.

Referenced from `settings.UNFOLD` by dotted path; each function takes the request. The sidebar
lists a model only when its admin page is registered and the staff member's role may see it, so a
section appears once its models exist (new admin pages only need a line in `SECTIONS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse

from billing.admin_base import staff_organizations
from billing.models import Role
from billing.money import display_locale
from billing.roles import user_roles

OVERVIEW_PATH = "/admin/overview/"


@dataclass(frozen=True)
class Item:
    """One sidebar link: a model's list (`model` "app_label.modelname") or a named URL."""

    title: str
    icon: str
    model: str = ""
    url_name: str = ""
    fallback_path: str = ""


# (section title, items). Items whose model has no admin page (or no model) yet are skipped, so
# pages arriving from other branches show up once registered.
SECTIONS: tuple[tuple[str, tuple[Item, ...]], ...] = (
    (
        "Billing",
        (
            Item("Overview", "dashboard", url_name="admin:overview", fallback_path=OVERVIEW_PATH),
            Item("Customers", "group", "customers.customer"),
            Item("Subscriptions", "autorenew", "customers.subscription"),
            Item("Usage alerts", "notifications", "metering.usagealert"),
            Item("Invoices", "receipt_long", "invoicing.invoice"),
            Item("Fees", "list_alt", "invoicing.fee"),
            Item("Credit notes", "request_quote", "invoicing.creditnote"),
            Item("Payments", "payments", "invoicing.payment"),
            Item("Payment requests", "outgoing_mail", "invoicing.paymentrequest"),
            Item("Payment receipts", "receipt", "invoicing.paymentreceipt"),
            Item("Dunning campaigns", "campaign", "invoicing.dunningcampaign"),
            Item("Wallets", "account_balance_wallet", "wallets.wallet"),
        ),
    ),
    (
        "Catalog",
        (
            Item("Billable metrics", "speed", "plans.billablemetric"),
            Item("Plans", "inventory_2", "plans.plan"),
            Item("Add-ons", "add_box", "plans.addon"),
            Item("Coupons", "sell", "plans.coupon"),
            Item("Features", "toggle_on", "plans.feature"),
            Item("Taxes", "percent", "plans.tax"),
        ),
    ),
    (
        "Developers",
        (
            Item("API keys", "key", "billing.apikey"),
            Item("Events", "bolt", "metering.event"),
            Item("Event errors", "error", "metering.eventerror"),
            Item("Outbox", "outbox", "billing.outboxevent"),
            Item("Webhook endpoints", "webhook", "integrations.webhookendpoint"),
            Item("Webhook deliveries", "send", "integrations.webhookdelivery"),
            Item("API requests", "history", "billing.apirequestlog"),
            Item("Activity log", "manage_history", "billing.activitylog"),
        ),
    ),
    (
        "Settings",
        (
            Item("Organization", "domain", "billing.organization"),
            Item("Billing entities", "apartment", "billing.billingentity"),
            Item("Users and roles", "manage_accounts", "billing.membership"),
            Item("Payment providers", "power", "integrations.paymentprovider"),
            Item("Staff accounts", "badge", "auth.user"),
            Item("Scheduled jobs", "schedule", "django_celery_beat.periodictask"),
        ),
    ),
)


def _model_admin(label: str):
    app_label, model_name = label.split(".")
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == app_label and model._meta.model_name == model_name:
            return model_admin
    return None


def _link(request: HttpRequest, item: Item) -> str | None:
    if item.url_name:
        try:
            return reverse(item.url_name)
        except NoReverseMatch:
            return item.fallback_path or None
    model_admin = _model_admin(item.model)
    if model_admin is None or not model_admin.has_view_or_change_permission(request):
        return None
    opts = model_admin.opts
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


def _index_path() -> str:
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return "/admin/"


def sidebar(request: HttpRequest) -> list[dict]:
    """The sidebar sections of this staff member: only the pages their role opens."""
    sections = []
    for title, items in SECTIONS:
        links = []
        for item in items:
            link = _link(request, item)
            if link is None:
                continue
            entry = {"title": item.title, "icon": item.icon, "link": link}
            if item.url_name == "admin:overview":
                # the overview is also the admin's home page: highlighted on both
                entry["active"] = request.path in (link, _index_path())
            links.append(entry)
        if links:
            sections.append({"title": title, "separator": bool(sections), "items": links})
    return sections


def dashboard(request: HttpRequest, context: dict) -> dict:
    """The admin's home lists the sidebar's sections (not Django's apps), with add links where
    the role may add."""
    app_list = []
    for title, items in SECTIONS:
        models = []
        for item in items:
            link = _link(request, item)
            if link is None:
                continue
            model_admin = _model_admin(item.model) if item.model else None
            add_url = None
            if model_admin is not None and model_admin.has_add_permission(request):
                opts = model_admin.opts
                add_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
            models.append(
                {
                    "name": item.title,
                    "object_name": (item.model or item.title).rsplit(".", 1)[-1],
                    "admin_url": link,
                    "add_url": add_url,
                    "view_only": model_admin is not None
                    and not model_admin.has_change_permission(request),
                }
            )
        if models:
            app_list.append(
                {"name": title, "app_label": title.lower(), "app_url": "", "models": models}
            )
    return {**context, "app_list": app_list}


def show_all_applications(request: HttpRequest) -> bool:
    """The "all applications" menu (every registered page) is for superusers only."""
    return request.user.is_superuser


def searched_models(request: HttpRequest) -> list[str]:
    """Models the header's search looks into (customers by name or external id, invoices by
    number), each through its admin's search fields and organization scoping."""
    return ["customers.customer", "invoicing.invoice"]


def site_title(request: HttpRequest) -> str:
    """The organization's name for its staff, "Billing" where several are in view."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "Billing"
    names = list(staff_organizations(request).values_list("name", flat=True)[:2])
    return names[0] if len(names) == 1 else "Billing"


def site_subheader(request: HttpRequest) -> str:
    """The role the staff member holds, under the site's name: "Finance", "Manager", "Admin"
    (the roles of several organizations, each once), "Superuser" without a membership."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    roles = set(user_roles(user).values())
    if not roles:
        return "Superuser" if user.is_superuser else ""
    return ", ".join(str(label) for value, label in Role.choices if value in roles)


def stylesheet(request: HttpRequest) -> str:
    """The project's few rules on top of the theme (money columns, panels)."""
    return static("billing/admin.css")


def organization_locale(request: HttpRequest) -> str:
    """The locale the admin formats money and numbers in: the organization's (its document
    locale) for its staff, English where several organizations are in view."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return "en"
    locales = list(staff_organizations(request).values_list("document_locale", flat=True)[:2])
    return locales[0] if len(locales) == 1 and locales[0] else "en"


class DisplayLocaleMiddleware:
    """Admin pages format money and numbers in the organization's locale (`billing.money`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        with display_locale(organization_locale(request)):
            response = self.get_response(request)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()  # template responses render here, inside the locale
            return response
