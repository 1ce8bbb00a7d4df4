"""The site's root sends people to the finance dashboard instead of a 404 page."""

import pytest

pytestmark = pytest.mark.django_db


def test_root_redirects_to_the_admin_dashboard(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_root_leads_a_logged_in_admin_to_the_dashboard(admin_client):
    response = admin_client.get("/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [("/admin/", 302)]
    assert "Finance dashboard" in response.content.decode()
