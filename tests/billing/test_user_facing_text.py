"""What a user reads never cites the internal spec: rendered admin pages, the OpenAPI document,
command help, the beat schedule descriptions, templates and the README."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from pprint import pformat

import pytest
from django.contrib import admin
from django.core.management import call_command, get_commands, load_command_class
from django.urls import reverse

from billing.schedules import SCHEDULES, sync_beat_schedule

ROOT = Path(__file__).resolve().parents[2]
PROJECT_APPS = ("billing", "plans", "customers", "metering", "wallets", "invoicing", "integrations")
CITATION = re.compile(r"§|\bspec\b", re.IGNORECASE)


def citations(text: str) -> list[str]:
    """Each citation with a little context, to find it in the source."""
    return [text[max(0, m.start() - 60) : m.end() + 20] for m in CITATION.finditer(text)]


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())


def admin_pages() -> list[str]:
    """The dashboard, then every registered model's list, add page and first object's page."""
    pages = [reverse("admin:index")]
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label not in PROJECT_APPS:
            continue
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append(reverse(f"{prefix}_changelist"))
        pages.append(reverse(f"{prefix}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages.append(reverse(f"{prefix}_change", args=[first.pk]))
    return pages


@pytest.mark.django_db
def test_admin_pages_cite_no_spec(demo, admin_client):
    found = {}
    for url in admin_pages():
        response = admin_client.get(url)
        assert response.status_code in (200, 302, 403), url
        if response.status_code == 200 and citations(response.content.decode()):
            found[url] = citations(response.content.decode())
    assert found == {}, pformat(found)


def action_pages() -> list[tuple[str, str, dict]]:
    """(method, url, data) of the admin's own forms: wallet operations, coupon application and
    the subscription actions' intermediate pages."""
    from customers.models import Customer, Subscription
    from wallets.admin import OPERATIONS
    from wallets.models import Wallet

    wallet = Wallet.objects.order_by("pk").first()
    customer = Customer.objects.order_by("pk").first()
    subscription = Subscription.objects.order_by("pk").first()
    pages = [
        ("get", reverse("admin:wallets_wallet_credits", args=[wallet.pk, op]), {})
        for op in OPERATIONS
    ]
    pages.append(("get", reverse("admin:wallets_wallet_terminate", args=[wallet.pk]), {}))
    pages.append(("get", reverse("admin:customers_customer_apply_coupon", args=[customer.pk]), {}))
    for action in ("change_plan", "terminate"):
        data = {"action": action, "_selected_action": [subscription.pk]}
        pages.append(("post", reverse("admin:customers_subscription_changelist"), data))
    # the pages that create a subscription, a one-off invoice and a wallet
    plan = subscription.plan.parent or subscription.plan
    for name, extra in (("customers_subscription_add", f"&plan={plan.pk}"),
                        ("invoicing_invoice_add", ""), ("wallets_wallet_add", "")):  # fmt: skip
        pages.append(("get", f"{reverse(f'admin:{name}')}?customer={customer.pk}{extra}", {}))
    return pages


@pytest.mark.django_db
def test_admin_forms_cite_no_spec(demo, admin_client):
    found = {}
    for method, url, data in action_pages():
        response = getattr(admin_client, method)(url, data)
        assert response.status_code == 200, url
        if citations(response.content.decode()):
            found[f"{url} {data.get('action', '')}"] = citations(response.content.decode())
    assert found == {}, pformat(found)


@pytest.mark.django_db
def test_openapi_document_cites_no_spec(client):
    found = sorted(set(strings_citing(client.get("/api/v1/openapi.json").json())))
    assert found == [], pformat(found)


def strings_citing(node: object):
    """Every string of a JSON document (keys and values) that cites the spec."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings_citing(key)
            yield from strings_citing(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_citing(item)
    elif isinstance(node, str) and citations(node):
        yield node


def test_management_command_help_cites_no_spec():
    found = {}
    for name, app in get_commands().items():
        if app.split(".")[0] not in PROJECT_APPS:
            continue
        parser = load_command_class(app, name).create_parser("manage.py", name)
        if citations(parser.format_help()):
            found[name] = citations(parser.format_help())
    assert found == {}, pformat(found)


def test_beat_schedule_descriptions_cite_no_spec():
    assert [s.name for s in SCHEDULES if citations(s.description)] == []


@pytest.mark.django_db
def test_sync_rewords_schedule_descriptions_that_still_cite_the_spec():
    from django_celery_beat.models import PeriodicTask

    schedule = SCHEDULES[-1]
    sync_beat_schedule()
    PeriodicTask.objects.filter(name=schedule.name).update(description="spec §27: old wording")
    sync_beat_schedule()
    assert PeriodicTask.objects.get(name=schedule.name).description == schedule.description


@pytest.mark.django_db
def test_sync_keeps_a_description_edited_in_the_admin():
    from django_celery_beat.models import PeriodicTask

    schedule = SCHEDULES[-1]
    sync_beat_schedule()
    PeriodicTask.objects.filter(name=schedule.name).update(description="ours, not yours")
    sync_beat_schedule()
    assert PeriodicTask.objects.get(name=schedule.name).description == "ours, not yours"


def test_templates_cite_no_spec():
    found = {
        str(path.relative_to(ROOT)): citations(path.read_text())
        for path in sorted((ROOT / "templates").rglob("*.html"))
        if citations(path.read_text())
    }
    assert found == {}, pformat(found)


def test_readme_points_at_no_file_outside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "../" not in readme
    assert "shared/" not in readme


def test_readme_cites_no_spec_section():
    readme = (ROOT / "README.md").read_text()
    assert "§" not in readme
