"""Entitlements: `/features` (typed privileges), `/plans/{code}/entitlements` (replace, merge,
remove), value-type validation, removal cascades and the `feature.*` outbox events."""

from __future__ import annotations

import pytest

from billing.models import OutboxEvent
from plans.models import Feature, PlanEntitlement, PlanEntitlementValue, Privilege
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db

SEATS = {"code": "max_seats", "name": "Seats", "value_type": "integer"}
SSO = {"code": "sso", "value_type": "boolean"}
TIER = {"code": "tier", "value_type": "select", "config": {"select_options": ["basic", "pro"]}}
NOTE = {"code": "note"}  # string by default


def create_feature(api, code="seats", privileges=(SEATS, SSO, TIER, NOTE), **fields):
    body = {
        "code": code,
        "name": "Seats",
        "description": "Team seats",
        "privileges": list(privileges),
        **fields,
    }
    return api.post("/api/v1/features", {"feature": body}, format="json")


@pytest.fixture
def plan(organization):
    return PlanFactory(organization=organization, code="pro")


def entitle(api, body, method="post"):
    call = getattr(api, method)
    return call("/api/v1/plans/pro/entitlements", {"entitlements": body}, format="json")


# --------------------------------------------------------------------------------------------
# Features


def test_create_answers_the_feature_as_lago_renders_it(api):
    response = create_feature(api)

    assert response.status_code == 200, response.json()
    body = response.json()["feature"]
    assert body == {
        "code": "seats",
        "name": "Seats",
        "description": "Team seats",
        "privileges": [
            {"code": "max_seats", "name": "Seats", "value_type": "integer", "config": {}},
            {"code": "sso", "name": None, "value_type": "boolean", "config": {}},
            {
                "code": "tier",
                "name": None,
                "value_type": "select",
                "config": {"select_options": ["basic", "pro"]},
            },
            {"code": "note", "name": None, "value_type": "string", "config": {}},
        ],
        "created_at": body["created_at"],
    }
    [event] = OutboxEvent.objects.filter(event_type="feature.created")
    assert (event.object_type, event.payload) == ("feature", body)


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        pytest.param({"code": ""}, {"code": ["value_is_mandatory"]}, id="no-code"),
        pytest.param({"code": "x" * 256}, {"code": ["value_is_too_long"]}, id="long-code"),
        pytest.param(
            {"description": "x" * 601},
            {"description": ["value_is_too_long"]},
            id="long-description",
        ),
        pytest.param(
            {"privileges": [SSO, SSO]},
            {"privilege.code": ["value_is_duplicated"]},
            id="duplicate-privilege",
        ),
        pytest.param(
            {"privileges": [{"code": "a", "value_type": "float"}]},
            {"privilege.value_type": ["value_is_invalid"]},
            id="unknown-type",
        ),
        pytest.param(
            {"privileges": [{"code": "a", "value_type": "select"}]},
            {"privilege.config": ["invalid_format"]},
            id="select-without-options",
        ),
        pytest.param(
            {
                "privileges": [
                    {"code": "a", "value_type": "select", "config": {"select_options": []}}
                ]
            },
            {"privilege.config": ["invalid_format"]},
            id="select-empty-options",
        ),
        pytest.param(
            {"privileges": [{"code": "a", "config": {"select_options": ["x"]}}]},
            {"privilege.config": ["invalid_format"]},
            id="options-on-a-string",
        ),
    ],
)
def test_create_refuses_bad_input(api, fields, details):
    response = create_feature(api, **fields)

    assert response.status_code == 422, response.json()
    assert response.json()["error_details"] == details
    assert not Feature.objects.exists()


def test_codes_are_unique_per_organization(api, other_api):
    create_feature(api)

    assert create_feature(api).json()["error_details"] == {"code": ["value_already_exist"]}
    assert create_feature(other_api).status_code == 200


def test_update_renames_adds_options_and_removes_unlisted_privileges(api):
    create_feature(api)

    response = api.put(
        "/api/v1/features/seats",
        {
            "feature": {
                "name": "Team",
                "privileges": [
                    {"code": "tier", "config": {"select_options": ["enterprise"]}},
                    {"code": "api", "value_type": "boolean"},
                ],
            }
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()["feature"]
    assert body["name"] == "Team"
    assert [(p["code"], p["config"]) for p in body["privileges"]] == [
        ("tier", {"select_options": ["basic", "pro", "enterprise"]}),
        ("api", {}),
    ]
    assert OutboxEvent.objects.filter(event_type="feature.updated").count() == 1


def test_list_get_and_tenancy(api, other_api):
    create_feature(api)
    create_feature(api, code="storage", privileges=[])

    listed = api.get("/api/v1/features").json()
    assert [f["code"] for f in listed["features"]] == ["storage", "seats"]
    assert listed["meta"]["total_count"] == 2
    assert api.get("/api/v1/features/seats").json()["feature"]["code"] == "seats"
    assert other_api.get("/api/v1/features/seats").status_code == 404
    assert other_api.delete("/api/v1/features/seats").status_code == 404
    assert api.get("/api/v1/features/nope").json()["code"] == "feature_not_found"


# --------------------------------------------------------------------------------------------
# Plan entitlements


def test_replace_sets_typed_values_and_answers_the_plans_entitlements(api, plan):
    create_feature(api)

    response = entitle(api, {"seats": {"max_seats": 10, "sso": True, "tier": "pro", "note": "hi"}})

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "entitlements": [
            {
                "code": "seats",
                "name": "Seats",
                "description": "Team seats",
                "privileges": [
                    {
                        "code": "max_seats",
                        "name": "Seats",
                        "value_type": "integer",
                        "value": 10,
                        "config": {},
                    },
                    {
                        "code": "sso",
                        "name": None,
                        "value_type": "boolean",
                        "value": True,
                        "config": {},
                    },
                    {
                        "code": "tier",
                        "name": None,
                        "value_type": "select",
                        "value": "pro",
                        "config": {"select_options": ["basic", "pro"]},
                    },
                    {
                        "code": "note",
                        "name": None,
                        "value_type": "string",
                        "value": "hi",
                        "config": {},
                    },
                ],
            }
        ]
    }
    plan_body = api.get("/api/v1/plans/pro").json()["plan"]
    assert plan_body["entitlements"] == response.json()["entitlements"]


@pytest.mark.parametrize(
    ("privilege", "value", "error"),
    [
        pytest.param("max_seats", "ten", "value_is_invalid", id="integer-from-text"),
        pytest.param("max_seats", 1.5, "value_is_invalid", id="integer-from-decimal"),
        pytest.param("max_seats", True, "value_is_invalid", id="integer-from-boolean"),
        pytest.param("sso", "yes", "value_is_invalid", id="boolean-from-text"),
        pytest.param("tier", "gold", "value_not_in_select_options", id="select-outside-options"),
        pytest.param("note", 5, "value_is_invalid", id="string-from-number"),
    ],
)
def test_values_must_match_their_privilege_type(api, plan, privilege, value, error):
    create_feature(api)

    response = entitle(api, {"seats": {privilege: value}})

    assert response.status_code == 422, response.json()
    assert response.json()["error_details"] == {f"{privilege}_privilege_value": [error]}
    assert not PlanEntitlement.objects.exists()


def test_integer_and_boolean_values_are_accepted_as_text_too(api, plan):
    create_feature(api)

    response = entitle(api, {"seats": {"max_seats": "12", "sso": "false"}})

    values = {p["code"]: p["value"] for p in response.json()["entitlements"][0]["privileges"]}
    assert values == {"max_seats": 12, "sso": False}


def test_unknown_features_and_privileges_are_404(api, plan):
    create_feature(api)

    assert entitle(api, {"nope": {}}).json()["code"] == "feature_not_found"
    assert entitle(api, {"seats": {"nope": 1}}).json()["code"] == "privilege_not_found"
    assert api.get("/api/v1/plans/nope/entitlements").json()["code"] == "plan_not_found"


def test_replace_removes_what_is_left_out_and_merge_keeps_it(api, plan):
    create_feature(api)
    create_feature(api, code="storage", privileges=[{"code": "gb", "value_type": "integer"}])
    entitle(api, {"seats": {"max_seats": 10, "sso": True}, "storage": {"gb": 5}})

    merged = entitle(api, {"seats": {"max_seats": 20}}, method="patch").json()["entitlements"]
    assert [(e["code"], len(e["privileges"])) for e in merged] == [("seats", 2), ("storage", 1)]

    replaced = entitle(api, {"seats": {"max_seats": 30}}).json()["entitlements"]
    assert [(e["code"], [p["value"] for p in e["privileges"]]) for e in replaced] == [
        ("seats", [30])
    ]


def test_get_and_remove_one_feature_of_a_plan(api, plan):
    create_feature(api)
    entitle(api, {"seats": {"max_seats": 10}})

    assert api.get("/api/v1/plans/pro/entitlements/seats").json()["entitlement"]["code"] == "seats"
    removed = api.delete("/api/v1/plans/pro/entitlements/seats")
    assert removed.json()["entitlement"]["privileges"][0]["value"] == 10
    assert api.get("/api/v1/plans/pro/entitlements").json() == {"entitlements": []}
    assert api.get("/api/v1/plans/pro/entitlements/seats").json()["code"] == "entitlement_not_found"


def test_deleting_a_feature_removes_it_from_every_plan(api, organization, plan):
    PlanFactory(organization=organization, code="basic")
    create_feature(api)
    entitle(api, {"seats": {"max_seats": 10}})
    api.post(
        "/api/v1/plans/basic/entitlements",
        {"entitlements": {"seats": {"sso": True}}},
        format="json",
    )

    response = api.delete("/api/v1/features/seats")

    assert response.status_code == 200
    assert not PlanEntitlement.objects.exists()
    assert not PlanEntitlementValue.objects.exists()
    assert api.get("/api/v1/features/seats").status_code == 404
    assert OutboxEvent.objects.filter(event_type="feature.deleted").count() == 1
    assert create_feature(api).status_code == 200  # the code is free again


def test_deleting_a_privilege_removes_its_values_from_every_plan(api, plan):
    create_feature(api)
    entitle(api, {"seats": {"max_seats": 10, "sso": True}})

    response = api.delete("/api/v1/features/seats/privileges/sso")

    assert response.status_code == 200, response.json()
    assert [p["code"] for p in response.json()["feature"]["privileges"]] == [
        "max_seats",
        "tier",
        "note",
    ]
    [entitlement] = api.get("/api/v1/plans/pro/entitlements").json()["entitlements"]
    assert [p["code"] for p in entitlement["privileges"]] == ["max_seats"]
    assert Privilege.objects.filter(code="sso", deleted_at__isnull=False).exists()
    assert api.delete("/api/v1/features/seats/privileges/sso").status_code == 404


def test_another_organization_cannot_entitle_its_plans_with_our_features(
    api, other_api, other_organization
):
    PlanFactory(organization=other_organization, code="pro")
    create_feature(api)

    response = entitle(other_api, {"seats": {"max_seats": 1}})

    assert response.json()["code"] == "feature_not_found"
