"""The read-only events browser and the current usage panel of the customer 360 page."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from metering.store import get_event_store
from tests.metering.usage.conftest import at, make_billing

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/metering/event/"


@pytest.fixture(autouse=True)
def _role_groups():
    ensure_role_groups()


@pytest.fixture
def events(billing, other_api, other_organization):
    billing.metric("calls", "count_agg")
    billing.send("calls", "2022-03-10T10:00:00", transaction_id="tx_mine")
    billing.send("storage", "2022-03-11T10:00:00", transaction_id="tx_storage")
    other = make_billing(other_api, other_organization, customer_id="globex", external_id="g1")
    other.send("calls", "2022-03-10T10:00:00", transaction_id="tx_theirs")
    return billing


def test_superuser_browses_and_searches_events(admin_client, events):
    page = admin_client.get(CHANGELIST).content.decode()
    assert "tx_mine" in page
    assert "tx_theirs" in page
    found = admin_client.get(f"{CHANGELIST}?q=tx_storage").content.decode()
    assert "tx_storage" in found
    assert "tx_mine" not in found
    by_code = admin_client.get(f"{CHANGELIST}?code=calls").content.decode()
    assert "tx_mine" in by_code
    assert "tx_storage" not in by_code
    by_subscription = admin_client.get(f"{CHANGELIST}?external_subscription_id=g1").content
    assert b"tx_theirs" in by_subscription
    assert b"tx_mine" not in by_subscription


def test_event_page_is_read_only(admin_client, events):
    event = get_event_store().get_event(events.organization.id, "tx_mine")
    response = admin_client.get(f"{CHANGELIST}{event.pk}/change/")
    assert response.status_code == 200
    assert b"tx_mine" in response.content
    assert b'name="_save"' not in response.content
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_staff_sees_only_their_organizations_events(client, events, organization):
    user = get_user_model().objects.create_user("mgr", "mgr@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="manager")
    client.force_login(user)
    page = client.get(CHANGELIST).content.decode()
    assert "tx_mine" in page
    assert "tx_theirs" not in page


def test_customer_360_shows_the_current_usage(admin_client, billing):
    metric = billing.metric("calls", "count_agg", name="API calls")
    billing.charge(metric, properties={"amount": "12.5"})
    for _ in range(4):
        billing.send("calls", "2022-03-10T10:00:00")
    with time_machine.travel(at("2022-03-20T00:00:00"), tick=False):
        response = admin_client.get(f"/admin/customers/customer/{billing.customer.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Current usage" in page
    assert "API calls" in page
    assert "€50.00" in page


def test_customer_360_usage_shows_local_period_days_and_presentation_breakdowns(
    admin_client, billing
):
    billing.customer.timezone = "Europe/Berlin"
    billing.customer.save(update_fields=["timezone"])
    metric = billing.metric("calls", "count_agg", name="API calls")
    billing.charge(
        metric, properties={"amount": "1", "presentation_group_keys": [{"value": "endpoint"}]}
    )
    billing.send("calls", "2022-03-10T10:00:00", properties={"endpoint": "/v1/payments"})
    billing.send("calls", "2022-03-11T10:00:00", properties={"endpoint": "/v1/payments"})
    billing.send("calls", "2022-03-12T10:00:00", properties={"endpoint": "/v1/refunds"})
    with time_machine.travel(at("2022-03-20T00:00:00"), tick=False):
        page = admin_client.get(f"/admin/customers/customer/{billing.customer.pk}/change/")
    text = page.content.decode()
    assert "2022-03-01 → 2022-03-31" in text
    assert "/v1/payments: 2.0 · /v1/refunds: 1.0" in text


def test_the_list_shows_an_events_value_with_separators_and_no_trailing_zeros(
    admin_client, billing
):
    billing.metric("gb", "sum_agg", field_name="gb")
    billing.send("gb", "2022-03-10T10:00:00", transaction_id="tx_gb", properties={"gb": "1234.5"})

    page = admin_client.get(CHANGELIST).content.decode()

    assert "1,234.5<" in page
    assert "1234.500" not in page
