"""A finance admin logs in, creates an API key (shown once) and browses the request log."""

import re

import pytest
from django.contrib.auth import get_user_model

from billing.services import membership_set
from tests.conftest import client_for
from tests.e2e.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def org_admin(organization):
    user = get_user_model().objects.create_user("boss", "boss@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="admin")
    return user


def test_admin_creates_an_api_key_that_works(live_server, page, screenshot, org_admin):
    admin_login(page, live_server.url, "boss", "s3cret-pass")
    screenshot("admin-index")
    page.goto(f"{live_server.url}/admin/billing/apikey/add/")
    page.fill("#id_name", "browser key")
    page.click("[name=_save]")
    # the list the save leads to, loaded whole: the click returns once the new page starts, and
    # a message read while the page still streams in can lack its end (the key)
    page.wait_for_url(re.compile(r"/admin/billing/apikey/$"))
    message = page.locator(".messagelist .warning", has_text="not shown again").inner_text()
    screenshot("admin-api-key-created")
    raw = re.search(r"lago_[A-Za-z0-9_-]+", message).group(0)
    assert client_for(raw).get("/api/v1/organizations").status_code == 200


def test_request_log_lists_api_calls(live_server, page, screenshot, org_admin, api):
    api.get("/api/v1/billing_entities")
    admin_login(page, live_server.url, "boss", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/billing/apirequestlog/")
    assert "/api/v1/billing_entities" in page.content()
    screenshot("admin-request-log")
