"""The finance overview page at `/admin/overview/` (URL name `admin:overview`), also the admin's
home page (`/admin/`) for staff who may read invoices.

It is a page of the admin site itself, not of one model: `register_overview(site)` adds its URL
to the site's own URLs, behind the site's login and staff check (`site.admin_view`), and makes
the site's index show it.
"""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from billing.admin_base import staff_organizations
from billing.models import BillingEntity, Organization
from billing.money import CURRENCIES
from invoicing.overview import build_overview


def _organization(request: HttpRequest) -> Organization:
    organizations = staff_organizations(request).order_by("name", "created_at")
    wanted = request.GET.get("organization")
    if wanted:
        try:
            found = organizations.filter(pk=uuid.UUID(wanted)).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    first = organizations.first()
    if first is None:
        raise PermissionDenied("no organization")
    return first


def overview_view(request: HttpRequest, site: admin.AdminSite) -> HttpResponse:
    """KPI cards and charts of one organization, in one currency, optionally one entity."""
    if not request.user.has_perm("invoicing.view_invoice"):
        raise PermissionDenied
    organization = _organization(request)
    currency = (request.GET.get("currency") or "").upper()
    currency = currency if currency in CURRENCIES else None
    entity = None
    if request.GET.get("billing_entity"):
        entity = BillingEntity.objects.filter(
            organization=organization, code=request.GET["billing_entity"]
        ).first()
    overview = build_overview(
        organization=organization,
        today=timezone.now().date(),
        currency=currency,
        billing_entity=entity,
    )
    context = {
        **site.each_context(request),
        "title": "Overview",
        "overview": overview,
        "organizations": list(staff_organizations(request).order_by("name", "created_at")),
    }
    return TemplateResponse(request, "admin/invoicing/overview.html", context)


def register_overview(site: admin.AdminSite) -> None:
    """Adds `overview/` (name `overview`) to the admin site's URLs and shows the overview as the
    site's index to staff who may read invoices of an organization (others, and a fresh install
    with no organization yet, keep the theme's index)."""
    site_urls = site.get_urls
    theme_index = site.index

    def index(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if (
            request.user.has_perm("invoicing.view_invoice")
            and staff_organizations(request).exists()
        ):
            return overview_view(request, site)
        return theme_index(request, extra_context)

    site.index = index

    def get_urls() -> list:
        view = site.admin_view(lambda request: overview_view(request, site))
        return [path("overview/", view, name="overview"), *site_urls()]

    site.get_urls = get_urls
