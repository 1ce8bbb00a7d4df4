"""`/api/docs/`: Swagger UI served from the project's own static files, so it renders offline."""

import re

import pytest
import requests
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def docs_assets() -> list[str]:
    page = Client().get("/api/docs/").content.decode()
    return ASSET.findall(page)


def test_docs_page_references_no_other_host():
    page = Client().get("/api/docs/").content.decode()
    assert "cdn" not in page
    assert re.findall(r"https?://", page) == []


def test_docs_page_loads_swagger_ui_from_static_files():
    assets = docs_assets()
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets)
    assert any(url.endswith("swagger-ui.css") for url in assets)
    assert all(url.startswith("/static/") for url in assets), assets


def test_every_docs_asset_is_a_static_file_of_the_project():
    missing = [url for url in docs_assets() if finders.find(url.removeprefix("/static/")) is None]
    assert missing == []


def test_the_server_serves_every_docs_asset(live_server):
    statuses = {
        url: requests.get(f"{live_server.url}{url}", timeout=10).status_code
        for url in docs_assets()
    }
    assert set(statuses.values()) == {200}, statuses
