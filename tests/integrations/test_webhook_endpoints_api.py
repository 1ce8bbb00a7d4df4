"""`/webhook_endpoints` and the JWT public key, through DRF's client and lago-python-client."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhook_endpoints"


def _create(api, **fields):
    return api.post(URL, {"webhook_endpoint": fields}, format="json")


def test_create_answers_lago_webhook_endpoint_object_with_jwt_by_default(api, organization):
    response = _create(api, webhook_url="https://hooks.example.com/lago", name="Main")

    assert response.status_code == 200
    body = response.json()["webhook_endpoint"]
    assert set(body) == {"lago_id", "lago_organization_id", "webhook_url", "signature_algo",
                         "name", "event_types", "created_at"}  # fmt: skip
    assert body["lago_organization_id"] == str(organization.pk)
    assert body["webhook_url"] == "https://hooks.example.com/lago"
    assert body["signature_algo"] == "jwt"
    assert body["name"] == "Main"
    assert body["event_types"] is None
    assert body["created_at"].endswith("Z")


def test_event_types_are_normalized_and_star_means_every_type(api):
    one = _create(api, webhook_url="https://a.example.com/", event_types=[" Invoice.Created ",
                  "invoice.created", "customer.updated"]).json()["webhook_endpoint"]  # fmt: skip
    star = _create(api, webhook_url="https://b.example.com/", event_types=["*"]).json()

    assert one["event_types"] == ["invoice.created", "customer.updated"]
    assert star["webhook_endpoint"]["event_types"] is None


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        pytest.param({"webhook_url": "ftp://x.example.com"}, {"webhook_url": ["url_invalid"]},
                     id="scheme"),
        pytest.param({"webhook_url": "not a url"}, {"webhook_url": ["url_invalid"]}, id="shape"),
        pytest.param({}, {"webhook_url": ["value_is_mandatory"]}, id="missing-url"),
        pytest.param({"webhook_url": "https://x.example.com", "signature_algo": "md5"},
                     {"signature_algo": ["value_is_invalid"]}, id="algo"),
        pytest.param({"webhook_url": "https://x.example.com", "event_types": ["invoice.nope"]},
                     {"event_types": ["invalid_types"]}, id="unknown-type"),
        pytest.param({"webhook_url": "https://x.example.com", "event_types": "invoice.created"},
                     {"event_types": ["must_be_array"]}, id="not-a-list"),
    ],
)  # fmt: skip
def test_invalid_input_is_a_422_with_lago_codes(api, fields, errors):
    response = _create(api, **fields)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_errors"
    assert response.json()["error_details"] == errors


def test_the_same_url_twice_in_one_organization_is_refused(api, other_api):
    _create(api, webhook_url="https://x.example.com/hook")

    again = _create(api, webhook_url="https://x.example.com/hook")
    elsewhere = _create(other_api, webhook_url="https://x.example.com/hook")

    assert again.json()["error_details"] == {"webhook_url": ["value_already_exist"]}
    assert elsewhere.status_code == 200


def test_an_organization_has_at_most_ten_endpoints(api):
    for n in range(10):
        assert _create(api, webhook_url=f"https://x.example.com/{n}").status_code == 200

    response = _create(api, webhook_url="https://x.example.com/11")

    assert response.status_code == 422
    assert response.json()["error_details"] == {"base": ["exceeded_limit"]}


def test_missing_root_is_a_400(api):
    assert api.post(URL, {"webhook_url": "https://x"}, format="json").status_code == 400


def test_update_changes_only_the_given_fields(api):
    created = _create(api, webhook_url="https://x.example.com/", name="A").json()
    lago_id = created["webhook_endpoint"]["lago_id"]

    response = api.put(
        f"{URL}/{lago_id}",
        {"webhook_endpoint": {"signature_algo": "hmac", "event_types": ["invoice.created"]}},
        format="json",
    )

    body = response.json()["webhook_endpoint"]
    assert (body["webhook_url"], body["name"], body["signature_algo"], body["event_types"]) == (
        "https://x.example.com/", "A", "hmac", ["invoice.created"]
    )  # fmt: skip


def test_list_get_and_delete(api):
    lago_id = _create(api, webhook_url="https://x.example.com/").json()["webhook_endpoint"][
        "lago_id"
    ]

    listed = api.get(URL).json()
    got = api.get(f"{URL}/{lago_id}")
    deleted = api.delete(f"{URL}/{lago_id}")

    assert [e["lago_id"] for e in listed["webhook_endpoints"]] == [lago_id]
    assert listed["meta"]["total_count"] == 1
    assert got.json()["webhook_endpoint"]["lago_id"] == lago_id
    assert deleted.json()["webhook_endpoint"]["lago_id"] == lago_id
    assert api.get(f"{URL}/{lago_id}").status_code == 404


def test_another_organizations_endpoint_is_a_404(api, other_api):
    lago_id = _create(other_api, webhook_url="https://x.example.com/").json()["webhook_endpoint"][
        "lago_id"
    ]

    assert api.get(f"{URL}/{lago_id}").json()["code"] == "webhook_endpoint_not_found"
    assert api.put(f"{URL}/{lago_id}", {"webhook_endpoint": {"name": "x"}}, format="json")\
        .status_code == 404  # fmt: skip
    assert api.delete(f"{URL}/{lago_id}").status_code == 404
    assert api.get(URL).json()["webhook_endpoints"] == []
    assert other_api.get(f"{URL}/{lago_id}").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8000/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_non_public_targets_are_refused_unless_allowed(api, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False

    response = _create(api, webhook_url=url)

    assert response.status_code == 422
    assert response.json()["error_details"] == {"webhook_url": ["url_not_public"]}


def test_loopback_targets_are_accepted_when_allowed(api):
    assert _create(api, webhook_url="http://127.0.0.1:9000/hook").status_code == 200


def test_public_key_is_the_base64_pem_of_an_rsa_key(api):
    text = api.get("/api/v1/webhooks/public_key")
    json_body = api.get("/api/v1/webhooks/json_public_key").json()

    pem = base64.b64decode(text.content)
    key = serialization.load_pem_public_key(pem)
    assert text["Content-Type"].startswith("text/plain")
    assert key.key_size == 2048
    assert base64.b64decode(json_body["webhook"]["public_key"]) == pem


def test_a_key_without_the_permission_cannot_read_the_public_key(organization):
    from billing.services import api_key_create
    from tests.conftest import client_for

    _, raw = api_key_create(organization=organization, name="limited", permissions={})
    response = client_for(raw).get("/api/v1/webhooks/public_key")

    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_lago_client_manages_endpoints_and_reads_the_public_key(lago):
    from lago_python_client.models.webhook_endpoint import WebhookEndpoint

    created = lago.webhook_endpoints.create(
        WebhookEndpoint(
            webhook_url="https://hooks.example.com/a",
            signature_algo="hmac",
            name="A",
            event_types=["invoice.created"],
        )
    )
    updated = lago.webhook_endpoints.update(
        WebhookEndpoint(webhook_url="https://hooks.example.com/b", signature_algo=None, name="B",
                        event_types=None),
        created.lago_id,
    )  # fmt: skip
    listed = lago.webhook_endpoints.find_all()
    found = lago.webhook_endpoints.find(created.lago_id)
    public_key = lago.webhooks.public_key()
    deleted = lago.webhook_endpoints.destroy(created.lago_id)

    assert created.signature_algo == "hmac"
    assert (updated.webhook_url, updated.name) == ("https://hooks.example.com/b", "B")
    assert [e.lago_id for e in listed["webhook_endpoints"]] == [created.lago_id]
    assert (found.signature_algo, found.event_types) == ("hmac", ["invoice.created"])  # kept
    assert serialization.load_pem_public_key(public_key).key_size == 2048
    assert deleted.lago_id == created.lago_id
