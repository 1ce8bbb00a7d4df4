"""Staff roles in the finance admin: what admin, manager and finance may open and do, per
organization, and the create_user command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from billing.admin_site import sidebar
from billing.models import ApiKey, Membership
from billing.roles import area_of, ensure_role_groups, role_allows
from billing.services import api_key_create, membership_set
from integrations.models import PaymentProvider
from invoicing.models import CreditNote, DunningCampaign, Invoice, Payment
from plans.models import Plan
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db

ALLOWED, FORBIDDEN = 200, 403

# (path, admin, manager, finance)
PAGES = [
    ("/admin/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/invoicing/invoice/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/wallets/wallet/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/customers/customer/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/customers/subscription/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/plans/plan/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/plans/plan/add/", ALLOWED, ALLOWED, FORBIDDEN),
    ("/admin/customers/customer/add/", ALLOWED, ALLOWED, FORBIDDEN),
    ("/admin/plans/coupon/add/", ALLOWED, ALLOWED, FORBIDDEN),
    ("/admin/metering/event/", ALLOWED, ALLOWED, FORBIDDEN),
    ("/admin/billing/apikey/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/billing/apirequestlog/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/billing/activitylog/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/billing/organization/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/billing/billingentity/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/billing/membership/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/django_celery_beat/periodictask/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/django_celery_beat/crontabschedule/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/auth/user/", FORBIDDEN, FORBIDDEN, FORBIDDEN),  # superusers only
    # credit notes, payments, requests and receipts: finance changes, managers read
    ("/admin/invoicing/creditnote/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/invoicing/payment/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/invoicing/paymentrequest/", ALLOWED, ALLOWED, ALLOWED),
    ("/admin/invoicing/paymentreceipt/", ALLOWED, ALLOWED, ALLOWED),
    # dunning campaigns: managers and admins
    ("/admin/invoicing/dunningcampaign/", ALLOWED, ALLOWED, FORBIDDEN),
    ("/admin/invoicing/dunningcampaign/add/", ALLOWED, ALLOWED, FORBIDDEN),
    ("/admin/invoicing/customerdunning/", ALLOWED, ALLOWED, FORBIDDEN),
    # payment provider connections and webhooks: admins only
    ("/admin/integrations/paymentprovider/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/integrations/paymentprovider/add/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/integrations/webhookendpoint/", ALLOWED, FORBIDDEN, FORBIDDEN),
    ("/admin/integrations/webhookdelivery/", ALLOWED, FORBIDDEN, FORBIDDEN),
]


@pytest.fixture(autouse=True)
def _role_groups():
    ensure_role_groups()


def staff(organization, username: str, role: str):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    return user


@pytest.fixture
def login(client, organization):
    def as_role(role: str):
        client.force_login(staff(organization, role, role))
        return client

    return as_role


@pytest.mark.parametrize(
    ("path", "role", "expected"),
    [
        pytest.param(path, role, expected, id=f"{role}-{path.strip('/').replace('/', '.')}")
        for path, *by_role in PAGES
        for role, expected in zip(("admin", "manager", "finance"), by_role, strict=True)
    ],
)
def test_each_role_opens_its_pages_and_no_others(login, path, role, expected):
    assert login(role).get(path).status_code == expected


def test_the_superuser_opens_staff_accounts(admin_client):
    assert admin_client.get("/admin/auth/user/").status_code == ALLOWED


def sidebar_titles(client) -> dict[str, list[str]]:
    context = client.get("/admin/").context
    return {
        section["title"]: [item["title"] for item in section["items"]]
        for section in context["sidebar_navigation"]
    }


def test_finance_sidebar_has_no_developers_or_settings(login):
    titles = sidebar_titles(login("finance"))
    assert list(titles) == ["Billing", "Catalog"]
    assert titles["Billing"] == [
        "Overview", "Customers", "Subscriptions", "Invoices", "Fees", "Credit notes", "Payments",
        "Payment requests", "Payment receipts", "Wallets",
    ]  # fmt: skip


def test_manager_sidebar_shows_events_but_no_settings(login):
    titles = sidebar_titles(login("manager"))
    assert list(titles) == ["Billing", "Catalog", "Developers"]
    assert titles["Developers"] == ["Events"]
    assert titles["Billing"] == [
        "Overview", "Customers", "Subscriptions", "Invoices", "Fees", "Credit notes", "Payments",
        "Payment requests", "Payment receipts", "Dunning campaigns", "Wallets",
    ]  # fmt: skip


def test_admin_sidebar_has_every_section_and_hides_schedule_parts(login):
    client = login("admin")
    titles = sidebar_titles(client)
    assert list(titles) == ["Billing", "Catalog", "Developers", "Settings"]
    assert titles["Catalog"] == [
        "Billable metrics", "Plans", "Add-ons", "Coupons", "Features", "Taxes",
    ]  # fmt: skip
    assert titles["Settings"] == [
        "Organization", "Billing entities", "Users and roles", "Payment providers",
        "Scheduled jobs",
    ]  # fmt: skip
    assert titles["Developers"][-4:] == [
        "Webhook endpoints", "Webhook deliveries", "API requests", "Activity log",
    ]  # fmt: skip
    page = client.get("/admin/").content.decode()
    for noise in ("Crontabs", "Intervals", "Solar events", "Clocked"):
        assert noise not in page


def test_overview_link_is_first_for_every_role(rf, organization):
    request = rf.get("/admin/")
    request.user = staff(organization, "fin", "finance")
    assert sidebar(request)[0]["items"][0] == {
        "title": "Overview",
        "icon": "dashboard",
        "link": "/admin/overview/",
        "active": True,  # the request is for the admin home, which is the overview
    }


@pytest.mark.parametrize("role", ["admin", "manager", "finance"])
def test_the_admin_home_is_the_overview_with_its_sidebar_item_highlighted(login, role):
    client = login(role)
    for path in ("/admin/", "/admin/overview/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.templates[0].name == "admin/invoicing/overview.html"
        overview = response.context["sidebar_navigation"][0]["items"][0]
        assert (overview["title"], overview["active"]) == ("Overview", True), path


def test_the_overview_item_is_not_highlighted_elsewhere(login):
    items = login("finance").get("/admin/invoicing/invoice/").context["sidebar_navigation"][0]
    assert items["items"][0]["active"] is False


def test_site_title_is_the_organization_name(login):
    assert login("finance").get("/admin/").context["site_title"] == "Acme"


# --- actions ------------------------------------------------------------------------------


@pytest.fixture
def open_invoice(organization):
    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex")
    return build_invoice(
        organization, customer=customer, number="ACM-0001", fees=[FeeSpec(amount_cents=1000)]
    )


def mark_paid(client, invoice: Invoice):
    return client.post(
        "/admin/invoicing/invoice/",
        {"action": "mark_paid", "_selected_action": [invoice.pk]},
        follow=True,
    )


def test_finance_marks_an_invoice_paid(login, open_invoice):
    mark_paid(login("finance"), open_invoice)
    open_invoice.refresh_from_db()
    assert open_invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED


def test_manager_reads_invoices_but_cannot_mark_them_paid(login, open_invoice):
    client = login("manager")
    assert client.get(f"/admin/invoicing/invoice/{open_invoice.pk}/change/").status_code == 200
    mark_paid(client, open_invoice)
    open_invoice.refresh_from_db()
    assert open_invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED
    operate = f"/admin/invoicing/invoice/{open_invoice.pk}/operate/mark_paid/"
    assert client.post(operate).status_code == FORBIDDEN


def test_finance_cannot_change_a_plan(login, organization):
    plan = PlanFactory(organization=organization, name="Starter")
    client = login("finance")
    page = client.get(f"/admin/plans/plan/{plan.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = client.post(f"/admin/plans/plan/{plan.pk}/change/", {"name": "Hacked"})
    assert response.status_code == FORBIDDEN
    assert Plan.objects.get(pk=plan.pk).name == "Starter"


def test_finance_cannot_rotate_api_keys(login, api_key):
    response = login("finance").post(
        "/admin/billing/apikey/", {"action": "rotate_now", "_selected_action": [api_key[0].pk]}
    )
    assert response.status_code == FORBIDDEN
    assert ApiKey.objects.get(pk=api_key[0].pk).rotated_to is None


# --- one person, two organizations, two roles ---------------------------------------------


@pytest.fixture
def admin_here_finance_there(organization, other_organization):
    user = staff(organization, "dual", "admin")
    membership_set(organization=other_organization, user=user, role="finance")
    return user


def test_the_role_of_the_rows_organization_decides(
    client, admin_here_finance_there, organization, other_organization
):
    mine = PlanFactory(organization=organization, name="Mine")
    theirs = PlanFactory(organization=other_organization, name="Theirs")
    client.force_login(admin_here_finance_there)
    assert b'name="_save"' in client.get(f"/admin/plans/plan/{mine.pk}/change/").content
    assert b'name="_save"' not in client.get(f"/admin/plans/plan/{theirs.pk}/change/").content
    response = client.post(f"/admin/plans/plan/{theirs.pk}/change/", {"name": "Hacked"})
    assert response.status_code == FORBIDDEN
    assert Plan.objects.get(pk=theirs.pk).name == "Theirs"


def test_settings_pages_list_only_organizations_where_the_role_allows(
    client, admin_here_finance_there, organization, other_organization
):
    api_key_create(organization=other_organization, name="their key")
    client.force_login(admin_here_finance_there)
    page = client.get("/admin/billing/apikey/").content.decode()
    assert "their key" not in page
    organizations = client.get("/admin/billing/organization/").content.decode()
    assert "Acme" in organizations
    assert "Globex" not in organizations


def test_an_action_refuses_rows_where_the_role_does_not_allow_it(
    client, admin_here_finance_there, organization, other_organization
):
    theirs = PlanFactory(organization=other_organization, name="Theirs")
    client.force_login(admin_here_finance_there)
    from billing.admin_base import ActionReport
    from plans.admin.plans import PlanAdmin

    request = client.get("/admin/").wsgi_request
    report = ActionReport(PlanAdmin(Plan, None), request, "renamed")
    assert report.attempt(theirs, lambda **kwargs: "done") is None
    assert report.refused
    assert "not allowed" in report.refused[0]


def test_org_admin_gives_roles_through_the_users_and_roles_page(login, organization):
    colleague = staff(organization, "colleague", "finance")
    client = login("admin")
    membership = Membership.objects.get(user=colleague)
    response = client.post(
        f"/admin/billing/membership/{membership.pk}/change/", {"role": "manager"}, follow=True
    )
    assert response.status_code == 200
    colleague.refresh_from_db()
    assert Membership.objects.get(user=colleague).role == "manager"
    assert list(colleague.groups.values_list("name", flat=True)) == ["Organization managers"]


# --- manage.py create_user ----------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_user", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize("role", ["admin", "manager", "finance"])
def test_create_user_gives_the_role_in_the_organization(monkeypatch, organization, role):
    monkeypatch.setenv("BILLING_USER_PASSWORD", "long-enough-pw")
    output = run("--organization", "Acme", "--role", role, "--username", "ana")
    assert output.strip() == f"ana created: {role} in Acme"
    user = get_user_model().objects.get(username="ana")
    assert user.is_staff
    assert not user.is_superuser
    assert user.check_password("long-enough-pw")
    assert Membership.objects.get(user=user, organization=organization).role == role


def test_create_user_dry_run_writes_nothing(monkeypatch, organization):
    monkeypatch.setenv("BILLING_USER_PASSWORD", "long-enough-pw")
    output = run("--organization", "Acme", "--role", "finance", "--username", "ana", "--dry-run")
    assert "dry run: would create ana as finance in Acme" in output
    assert not get_user_model().objects.filter(username="ana").exists()


def test_create_user_refuses_without_a_password(monkeypatch, organization):
    monkeypatch.delenv("BILLING_USER_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="BILLING_USER_PASSWORD"):
        run("--organization", "Acme", "--role", "finance", "--username", "ana")


def test_create_user_refuses_a_short_password(monkeypatch, organization):
    monkeypatch.setenv("BILLING_USER_PASSWORD", "short")
    with pytest.raises(CommandError, match="too short"):
        run("--organization", "Acme", "--role", "finance", "--username", "ana")


def test_create_user_for_an_unknown_organization_fails(monkeypatch):
    monkeypatch.setenv("BILLING_USER_PASSWORD", "long-enough-pw")
    with pytest.raises(CommandError, match="no organization"):
        run("--organization", "Nobody", "--role", "finance", "--username", "ana")


def test_create_user_gives_an_existing_account_a_role_elsewhere(
    monkeypatch, organization, other_organization
):
    staff(organization, "ana", "admin")
    monkeypatch.delenv("BILLING_USER_PASSWORD", raising=False)  # existing: no password needed
    output = run("--organization", "Globex", "--role", "finance", "--username", "ana")
    assert output.strip() == "ana updated: finance in Globex"
    user = get_user_model().objects.get(username="ana")
    assert user.check_password("pw-123456")
    assert Membership.objects.get(user=user, organization=other_organization).role == "finance"


def test_demo_seeds_a_login_per_role():
    out = StringIO()
    call_command("seed_demo", "--quiet", stdout=out, stderr=StringIO())
    assert "manager login: manager / manager" in out.getvalue()
    assert "finance login: finance / finance" in out.getvalue()
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"admin": "admin", "manager": "manager", "finance": "finance"}


def test_home_is_the_overview_with_the_catalog_read_only_to_finance(login):
    response = login("finance").get("/admin/")
    assert "admin/invoicing/overview.html" in [template.name for template in response.templates]
    catalog = next(s for s in response.context["app_list"] if s["name"] == "Catalog")
    plans = {model["name"]: model for model in catalog["models"]}["Plans"]
    assert plans["add_url"] is None
    assert plans["view_only"]


def test_a_sidebar_entry_without_a_model_is_skipped(rf, organization, monkeypatch):
    from billing import admin_site

    request = rf.get("/admin/")
    request.user = staff(organization, "adm", "admin")
    sections = (("Billing", (admin_site.Item("Not merged yet", "help", "invoicing.nosuch"),)),)
    monkeypatch.setattr(admin_site, "SECTIONS", sections)
    assert sidebar(request) == []


@pytest.mark.parametrize(
    ("model", "area"),
    [
        ("invoicing.creditnote", "invoices"),
        ("invoicing.payment", "invoices"),
        ("invoicing.paymentrequest", "invoices"),
        ("invoicing.paymentreceipt", "invoices"),
        ("invoicing.dunningcampaign", "dunning"),
        ("invoicing.dunningcampaignthreshold", "dunning"),
        ("integrations.paymentprovider", "settings"),
        ("integrations.webhookendpoint", "developers"),
        ("integrations.webhookdelivery", "developers"),
        ("plans.feature", "catalog"),
        ("metering.usagealert", "alerts"),
    ],
)
def test_each_new_model_has_an_area(model, area):
    assert area_of(*model.split(".")) == area


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("finance", "view", True),
        ("finance", "change", False),
        ("manager", "change", True),
        ("admin", "change", True),
    ],
)
def test_usage_alerts_are_read_by_finance_and_changed_by_managers(role, action, allowed):
    assert role_allows(role, "metering", "usagealert", action) is allowed


# --- credit notes, payments and payment providers -----------------------------------------


def issue_page(client, invoice: Invoice):
    return client.get(f"/admin/invoicing/creditnote/issue/{invoice.pk}/")


def test_finance_issues_a_credit_note_from_the_invoice_page(login, open_invoice):
    client = login("finance")
    page = client.get(f"/admin/invoicing/invoice/{open_invoice.pk}/change/").content.decode()
    assert "Issue credit note" in page
    assert issue_page(client, open_invoice).status_code == ALLOWED


def test_manager_reads_credit_notes_but_cannot_issue_one(login, open_invoice):
    client = login("manager")
    page = client.get(f"/admin/invoicing/invoice/{open_invoice.pk}/change/").content.decode()
    assert "Issue credit note" not in page
    assert issue_page(client, open_invoice).status_code == FORBIDDEN
    fee = open_invoice.fees.get()
    response = client.post(
        f"/admin/invoicing/creditnote/issue/{open_invoice.pk}/",
        {f"fee_{fee.pk}": "5", "credit_amount": "5", "reason": "other"},
    )
    assert response.status_code == FORBIDDEN
    assert not CreditNote.objects.exists()


def record_payment(client, invoice: Invoice):
    return client.post(
        f"/admin/invoicing/invoice/{invoice.pk}/record_payment/",
        {"amount": "4.00", "paid_on": "2026-03-20", "reference": "wire 1"},
    )


def test_finance_records_a_payment(login, open_invoice):
    assert record_payment(login("finance"), open_invoice).status_code == 302
    assert Payment.objects.get().amount_cents == 400


def test_manager_cannot_record_a_payment(login, open_invoice):
    client = login("manager")
    page = client.get(f"/admin/invoicing/invoice/{open_invoice.pk}/change/").content.decode()
    assert "Record payment" not in page
    assert record_payment(client, open_invoice).status_code == FORBIDDEN
    assert not Payment.objects.exists()


def test_finance_here_manager_there_cannot_pay_or_credit_there(
    client, organization, other_organization
):
    user = staff(organization, "dual2", "finance")
    membership_set(organization=other_organization, user=user, role="manager")
    customer = CustomerFactory(organization=other_organization, external_id="theirs")
    theirs = build_invoice(
        other_organization, customer=customer, number="GLX-0001", fees=[FeeSpec(amount_cents=900)]
    )
    client.force_login(user)
    assert client.get(f"/admin/invoicing/invoice/{theirs.pk}/change/").status_code == ALLOWED
    assert record_payment(client, theirs).status_code == 404
    assert issue_page(client, theirs).status_code == 404
    assert not Payment.objects.exists()


@pytest.mark.parametrize("role", ["manager", "finance"])
def test_only_admins_connect_a_payment_provider(login, role):
    response = login(role).post(
        "/admin/integrations/paymentprovider/add/",
        {"code": "stripe", "secret_key": "sk_test_x", "organization": ""},
    )
    assert response.status_code == FORBIDDEN
    assert not PaymentProvider.objects.exists()


def test_finance_cannot_edit_a_dunning_campaign(login, organization):
    response = login("finance").post(
        "/admin/invoicing/dunningcampaign/add/",
        {"organization": organization.pk, "name": "Firm", "code": "firm", "max_attempts": 3,
         "days_between_attempts": 5, "thresholds-TOTAL_FORMS": 0,
         "thresholds-INITIAL_FORMS": 0},
    )  # fmt: skip
    assert response.status_code == FORBIDDEN
    assert not DunningCampaign.objects.exists()


@pytest.mark.parametrize(("role", "shown"), [("admin", "Admin"), ("manager", "Manager"),
                                              ("finance", "Finance")])  # fmt: skip
def test_the_sidebar_header_shows_the_role_the_staff_member_holds(login, role, shown):
    context = login(role).get("/admin/").context

    assert context["site_subheader"] == shown


def test_the_sidebar_header_names_each_role_once_across_organizations(
    client, organization, other_organization
):
    user = staff(organization, "both", "finance")
    membership_set(organization=other_organization, user=user, role="admin")
    client.force_login(user)

    assert client.get("/admin/").context["site_subheader"] == "Admin, Finance"
