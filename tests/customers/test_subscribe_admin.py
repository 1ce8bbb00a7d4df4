"""Admin "New subscription": a customer, a plan, its terms and overrides, saved by the service of
POST /subscriptions; refusals stand next to their field and write nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers.models import Subscription
from plans.models import Charge, Plan
from tests.customers.factories import CustomerFactory
from tests.plans.factories import BillableMetricFactory, ChargeFactory, PlanFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/customers/subscription/add/"


@pytest.fixture(autouse=True)
def role_groups(db):
    ensure_role_groups()


def login(client, organization, role):
    user = get_user_model().objects.create_user(role, f"{role}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    client.force_login(user)
    return client


@pytest.fixture
def manager(client, organization):
    return login(client, organization, "manager")


@pytest.fixture
def catalog(organization):
    customer = CustomerFactory(organization=organization, external_id="wayne", name="Wayne",
                               timezone="UTC")  # fmt: skip
    plan = PlanFactory(organization=organization, code="pro", name="Pro", amount_cents=4900,
                       trial_period=Decimal(0))  # fmt: skip
    api_calls = BillableMetricFactory(organization=organization, code="api_calls", name="API calls")
    storage = BillableMetricFactory(organization=organization, code="storage", name="Storage")
    standard = ChargeFactory(organization=organization, plan=plan, billable_metric=api_calls,
                             properties={"amount": "0.05"})  # fmt: skip
    package = ChargeFactory(
        organization=organization, plan=plan, billable_metric=storage, charge_model="package",
        properties={"amount": "10", "package_size": 100, "free_units": 0},
    )  # fmt: skip
    return {"customer": customer, "plan": plan, "standard": standard, "package": package}


def form_data(catalog, **changes):
    plan = changes.pop("plan", catalog["plan"])
    data = {
        "plan": str(plan.pk),
        "priced_plan": str(plan.pk),
        "external_id": "sub_wayne_pro",
        "name": "Wayne on Pro",
        "subscription_date": timezone.now().date().isoformat(),
        "billing_time": "anniversary",
        "amount": "",
        "trial_period": "",
        "_save": "Subscribe",
    }
    data.update(changes)
    return data


def url(customer):
    return f"{ADD}?customer={customer.pk}"


def test_subscribing_creates_an_active_subscription_on_the_catalog_plan(manager, catalog):
    response = manager.post(url(catalog["customer"]), form_data(catalog))
    subscription = Subscription.objects.get(external_id="sub_wayne_pro")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/customers/subscription/{subscription.pk}/change/"
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.plan == catalog["plan"]  # nothing overridden: no child plan
    assert subscription.customer == catalog["customer"]
    assert subscription.name == "Wayne on Pro"
    assert subscription.billing_time == "anniversary"
    catalog["customer"].refresh_from_db()
    assert catalog["customer"].currency == "EUR"


def test_overrides_make_the_same_child_plan_as_the_api(manager, catalog, api, organization):
    standard, package = catalog["standard"], catalog["package"]
    manager.post(
        url(catalog["customer"]),
        form_data(
            catalog,
            amount="39.50",
            trial_period="14",
            **{f"charge_{standard.pk.hex}_amount": "0.04",
               f"charge_{package.pk.hex}_amount": "8",
               f"charge_{package.pk.hex}_package_size": "50"},
        ),
    )  # fmt: skip
    CustomerFactory(organization=organization, external_id="twin", timezone="UTC")
    answer = api.post(
        "/api/v1/subscriptions",
        {"subscription": {
            "external_customer_id": "twin", "plan_code": "pro", "external_id": "sub_twin",
            "billing_time": "anniversary",
            "plan_overrides": {
                "amount_cents": 3950, "trial_period": 14,
                "charges": [
                    {"id": str(standard.pk), "properties": {"amount": "0.04"}},
                    {"id": str(package.pk),
                     "properties": {"amount": "8", "package_size": 50, "free_units": 0}},
                ],
            },
        }},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 200, answer.json()

    def child_of(external_id):
        plan = Subscription.objects.get(external_id=external_id).plan
        charges = sorted(
            (c.billable_metric.code, c.charge_model, c.properties)
            for c in Charge.objects.filter(plan=plan).select_related("billable_metric")
        )
        return (plan.parent_id, plan.amount_cents, plan.trial_period, charges)

    ours = child_of("sub_wayne_pro")
    assert ours == child_of("sub_twin")
    assert ours[:3] == (catalog["plan"].pk, 3950, Decimal(14))
    assert ("api_calls", "standard", {"amount": "0.04"}) in ours[3]


def test_a_later_start_date_leaves_the_subscription_pending(manager, catalog):
    later = timezone.now().date() + timedelta(days=10)
    manager.post(url(catalog["customer"]), form_data(catalog, subscription_date=later.isoformat()))
    subscription = Subscription.objects.get(external_id="sub_wayne_pro")
    assert subscription.status == Subscription.Status.PENDING
    assert subscription.subscription_at.date() == later


def test_the_form_offers_the_plans_prices_and_a_generated_external_id(manager, catalog):
    page = manager.get(url(catalog["customer"]) + f"&plan={catalog['plan'].pk}").content.decode()
    assert f'name="charge_{catalog["standard"].pk.hex}_amount"' in page
    assert 'value="0.05"' in page
    assert re.search(r'name="external_id"[^>]*value="[0-9a-f-]{36}"', page)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param({"amount": "-1"}, "amount", "greater than or equal to 0", id="negative-fee"),
        pytest.param({"amount": "1.234"}, "amount", "Too many decimals", id="sub-cent-fee"),
        pytest.param({"external_id": ""}, "external_id", "required", id="no-external-id"),
        pytest.param({"billing_time": "weekly"}, "billing_time", "valid choice", id="bad-billing"),
        pytest.param({"subscription_date": "2026-02-30"}, "subscription_date", "valid date",
                     id="bad-date"),
    ],
)  # fmt: skip
def test_invalid_input_is_shown_next_to_its_field_and_writes_nothing(
    manager, catalog, changes, field, message
):
    plans_before = Plan.objects.count()
    response = manager.post(url(catalog["customer"]), form_data(catalog, **changes))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Subscription.objects.exists()
    assert Plan.objects.count() == plans_before


def test_a_negative_charge_price_is_refused_next_to_the_charge(manager, catalog):
    name = f"charge_{catalog['standard'].pk.hex}_amount"
    response = manager.post(url(catalog["customer"]), form_data(catalog, **{name: "-0.01"}))
    assert name in response.context["form"].errors
    assert not Subscription.objects.exists()


# -- an external id already running: the plan change `POST /subscriptions` makes (spec §9.4)


@pytest.fixture
def running(manager, catalog, organization):
    """Wayne's active subscription `sub_wayne_pro` on Pro (49.00 a month), and two other
    catalog plans: Max (99.00, an upgrade) and Lite (9.00, a downgrade)."""
    manager.post(url(catalog["customer"]), form_data(catalog))
    return {
        "subscription": Subscription.objects.get(external_id="sub_wayne_pro"),
        "max": PlanFactory(organization=organization, code="max", name="Max", amount_cents=9900),
        "lite": PlanFactory(organization=organization, code="lite", name="Lite", amount_cents=900),
    }


def confirm(manager, customer, data):
    """Posts the form, then posts it again confirming what the notice said."""
    asked = manager.post(url(customer), data)
    token = asked.context["form"]["confirm_change"].value()
    assert token, "no confirmation asked"
    return asked, manager.post(url(customer), {**data, "confirm_change": token})


def test_a_running_external_id_asks_to_confirm_the_plan_change_and_writes_nothing(
    manager, catalog, running
):
    response = manager.post(url(catalog["customer"]), form_data(catalog, plan=running["max"]))

    assert response.status_code == 200
    notice = response.context["notice"]
    assert "sub_wayne_pro" in notice
    assert "upgrade" in notice
    assert "on Pro" in notice
    assert "upgrade to Max" in notice
    assert str(running["subscription"].pk) in response.context["form"]["confirm_change"].value()
    assert Subscription.objects.count() == 1
    running["subscription"].refresh_from_db()
    assert running["subscription"].status == Subscription.Status.ACTIVE


def test_confirming_an_upgrade_moves_the_subscription_to_the_new_plan_now(
    manager, catalog, running
):
    current = running["subscription"]
    _, response = confirm(manager, catalog["customer"], form_data(catalog, plan=running["max"]))

    new = Subscription.objects.get(external_id="sub_wayne_pro", status="active")
    assert new.pk != current.pk
    assert new.plan == running["max"]
    assert new.previous_subscription_id == current.pk
    current.refresh_from_db()
    assert current.status == Subscription.Status.TERMINATED
    assert response["Location"] == f"/admin/customers/subscription/{new.pk}/change/"


def test_confirming_a_downgrade_schedules_it_for_the_day_the_notice_gave(manager, catalog, running):
    current = running["subscription"]
    asked, _ = confirm(manager, catalog["customer"], form_data(catalog, plan=running["lite"]))
    notice = asked.context["notice"]
    assert "downgrade" in notice

    current.refresh_from_db()
    assert current.status == Subscription.Status.ACTIVE
    assert current.downgrade_plan_date is not None
    assert current.downgrade_plan_date.isoformat() in notice
    successor = Subscription.objects.get(previous_subscription=current)
    assert (successor.status, successor.plan) == (Subscription.Status.PENDING, running["lite"])


def test_a_pending_subscription_takes_the_new_plan_in_place(manager, catalog, running):
    later = (timezone.now().date() + timedelta(days=10)).isoformat()
    manager.post(
        url(catalog["customer"]),
        form_data(catalog, external_id="sub_later", subscription_date=later),
    )
    pending = Subscription.objects.get(external_id="sub_later")
    asked, _ = confirm(
        manager,
        catalog["customer"],
        form_data(catalog, plan=running["max"], external_id="sub_later"),
    )
    assert "not started" in asked.context["notice"]

    pending.refresh_from_db()
    assert (pending.status, pending.plan) == (Subscription.Status.PENDING, running["max"])
    assert Subscription.objects.filter(external_id="sub_later").count() == 1


def test_the_same_plan_again_says_only_the_name_changes_and_keeps_the_prices(
    manager, catalog, running
):
    current = running["subscription"]
    asked, _ = confirm(
        manager, catalog["customer"], form_data(catalog, name="Renamed", amount="10.00")
    )
    assert "already on" in asked.context["notice"]
    assert "not applied" in asked.context["notice"]

    current.refresh_from_db()
    assert (current.name, current.plan) == ("Renamed", catalog["plan"])
    assert Subscription.objects.count() == 1


def test_a_blank_name_keeps_the_name_through_an_upgrade(manager, catalog, running):
    confirm(manager, catalog["customer"], form_data(catalog, plan=running["max"], name=""))
    new = Subscription.objects.get(external_id="sub_wayne_pro", status="active")
    assert new.name == "Wayne on Pro"


def test_a_price_edited_after_the_notice_that_turns_the_change_around_asks_again(
    manager, catalog, running
):
    data = form_data(catalog, plan=running["max"])
    token = manager.post(url(catalog["customer"]), data).context["form"]["confirm_change"].value()

    # Max at 1.00 a month is now cheaper than Pro: a downgrade, not the upgrade confirmed
    response = manager.post(
        url(catalog["customer"]), {**data, "amount": "1.00", "confirm_change": token}
    )

    assert response.status_code == 200
    assert "downgrade" in response.context["notice"]
    assert Subscription.objects.count() == 1


def test_another_customers_running_external_id_is_refused(manager, catalog, running, organization):
    other = CustomerFactory(organization=organization, external_id="bruce", timezone="UTC")
    response = manager.post(url(other), form_data(catalog))
    assert "another customer" in " ".join(response.context["form"].errors["external_id"])
    assert Subscription.objects.count() == 1


def test_a_plan_in_another_currency_is_refused_next_to_the_plan(manager, catalog, organization):
    catalog["customer"].currency = "EUR"
    catalog["customer"].save()
    dollars = PlanFactory(organization=organization, code="usd", amount_currency="USD")
    response = manager.post(url(catalog["customer"]), form_data(catalog, plan=dollars))
    assert "currency differs" in " ".join(response.context["form"].errors["plan"])
    assert not Subscription.objects.exists()


def test_another_organizations_plan_is_neither_offered_nor_accepted(
    manager, catalog, other_organization
):
    theirs = PlanFactory(organization=other_organization, code="theirs", name="Their plan")
    page = manager.get(url(catalog["customer"])).content.decode()
    assert "Their plan" not in page
    response = manager.post(url(catalog["customer"]), form_data(catalog, plan=theirs))
    assert "plan" in response.context["form"].errors
    assert not Subscription.objects.exists()


def test_another_organizations_customer_is_neither_offered_nor_accepted(
    manager, catalog, other_organization
):
    stranger = CustomerFactory(organization=other_organization, name="Stranger Ltd")
    assert "Stranger Ltd" not in manager.get(ADD).content.decode()
    response = manager.post(url(stranger), form_data(catalog))
    assert "pick_form" in response.context  # back to choosing one of the staff's customers
    assert not Subscription.objects.exists()


def test_the_list_asks_for_the_customer_first(manager, catalog):
    page = manager.get(ADD).content.decode()
    assert 'name="customer"' in page
    assert "Wayne" in page


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("admin", True), ("manager", True), ("finance", False)],
)
def test_who_may_subscribe(client, organization, catalog, role, allowed):
    staff = login(client, organization, role)
    response = staff.post(url(catalog["customer"]), form_data(catalog))
    assert (response.status_code == 302) is allowed
    if not allowed:
        assert response.status_code == 403
    assert Subscription.objects.exists() is allowed
    panel = staff.get(f"/admin/customers/customer/{catalog['customer'].pk}/change/")
    assert ("Subscribe to a plan" in panel.content.decode()) is allowed
