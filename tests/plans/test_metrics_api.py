"""`/billable_metrics` (spec §4.1): CRUD, every validation rule, the filter edit rule."""

from datetime import UTC

import pytest

from plans.models import BillableMetric, BillableMetricFilter, Charge, ChargeFilter
from tests.plans.factories import BillableMetricFactory, ChargeFactory, PlanFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/billable_metrics"


def iso(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(api, **fields):
    payload = {"name": "Storage", "code": "storage", "aggregation_type": "sum_agg",
               "field_name": "gb", **fields}  # fmt: skip
    return api.post(URL, {"billable_metric": payload}, format="json")


def errors_of(response):
    assert response.status_code == 422, response.json()
    body = response.json()
    assert (body["status"], body["error"], body["code"]) == (
        422,
        "Unprocessable Entity",
        "validation_errors",
    )
    return body["error_details"]


def test_create_renders_the_whole_lago_object(api, organization):
    response = create(
        api,
        description="GB stored",
        expression="round(event.properties.bytes / 1000000000, 2)",
        rounding_function="ceil",
        rounding_precision=2,
        filters=[{"key": "region", "values": ["eu", "us"]}],
    )
    assert response.status_code == 200
    metric = BillableMetric.objects.get(organization=organization, code="storage")
    region = metric.filters.get()
    assert response.json() == {
        "billable_metric": {
            "lago_id": str(metric.id),
            "name": "Storage",
            "code": "storage",
            "description": "GB stored",
            "aggregation_type": "sum_agg",
            "weighted_interval": None,
            "recurring": False,
            "rounding_function": "ceil",
            "rounding_precision": 2,
            "created_at": iso(metric.created_at),
            "field_name": "gb",
            "expression": "round(event.properties.bytes / 1000000000, 2)",
            "active_subscriptions_count": 0,
            "draft_invoices_count": 0,
            "plans_count": 0,
            "filters": [{"lago_id": str(region.id), "key": "region", "values": ["eu", "us"]}],
        }
    }


def test_create_count_metric_drops_field_name(api):
    body = create(api, aggregation_type="count_agg", field_name="ignored").json()
    assert body["billable_metric"]["field_name"] is None
    assert body["billable_metric"]["expression"] is None


def test_get_finds_a_metric_by_code(api, organization):
    metric = BillableMetricFactory(organization=organization, code="calls")
    body = api.get(f"{URL}/calls").json()["billable_metric"]
    assert (body["lago_id"], body["code"]) == (str(metric.id), "calls")


def test_get_unknown_code_is_404(api):
    response = api.get(f"{URL}/nope")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "error": "Not Found",
        "code": "billable_metric_not_found",
    }


def test_list_is_paginated_newest_first(api, organization):
    for n in range(3):
        BillableMetricFactory(organization=organization, code=f"m{n}")
    body = api.get(URL, {"per_page": 2, "page": 1}).json()
    assert [m["code"] for m in body["billable_metrics"]] == ["m2", "m1"]
    assert body["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 2,
        "total_count": 3,
    }


def test_list_query_count_does_not_grow_with_rows(api, organization, django_assert_max_num_queries):
    for n in range(5):
        metric = BillableMetricFactory(organization=organization, code=f"m{n}")
        BillableMetricFilter.objects.create(
            organization=organization, billable_metric=metric, key="k", values=["a"]
        )
        ChargeFactory(organization=organization, billable_metric=metric)
    with django_assert_max_num_queries(8):
        body = api.get(URL).json()
    assert {m["plans_count"] for m in body["billable_metrics"]} == {1}


def test_plans_count_counts_live_plans_with_live_charges(api, organization):
    metric = BillableMetricFactory(organization=organization, code="calls")
    plan = PlanFactory(organization=organization)
    ChargeFactory(organization=organization, billable_metric=metric, plan=plan)
    ChargeFactory(organization=organization, billable_metric=metric, plan=plan)
    ChargeFactory(organization=organization, billable_metric=metric)
    deleted = ChargeFactory(organization=organization, billable_metric=metric)
    Charge.objects.filter(pk=deleted.pk).update(deleted_at=deleted.created_at)
    assert api.get(f"{URL}/calls").json()["billable_metric"]["plans_count"] == 2


def test_other_tenant_metric_is_404(other_api, api, organization):
    BillableMetricFactory(organization=organization, code="calls")
    assert other_api.get(f"{URL}/calls").status_code == 404
    renamed = other_api.put(f"{URL}/calls", {"billable_metric": {"name": "x"}}, format="json")
    assert renamed.status_code == 404
    assert other_api.delete(f"{URL}/calls").status_code == 404
    assert other_api.get(URL).json()["billable_metrics"] == []


def test_same_code_in_two_tenants_is_allowed(api, other_api):
    assert create(api).status_code == 200
    assert create(other_api).status_code == 200


# --- validation (spec §4.1) --------------------------------------------------------------------


def test_code_must_be_unique_among_live_metrics(api):
    create(api)
    assert errors_of(create(api)) == {"code": ["value_already_exist"]}


def test_code_of_a_deleted_metric_can_be_reused(api):
    create(api)
    api.delete(f"{URL}/storage")
    assert create(api).status_code == 200


@pytest.mark.parametrize("field", ["name", "code"])
def test_name_and_code_are_mandatory(api, field):
    assert errors_of(create(api, **{field: ""})) == {field: ["value_is_mandatory"]}


def test_missing_root_key_is_a_bad_request(api):
    response = api.post(URL, {"name": "Storage"}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("aggregation_type", ["avg_agg", "custom_agg", None])
def test_unknown_aggregation_type_is_invalid(api, aggregation_type):
    details = errors_of(create(api, aggregation_type=aggregation_type))
    assert details == {"aggregation_type": ["value_is_invalid"]}


@pytest.mark.parametrize(
    "aggregation_type", ["sum_agg", "max_agg", "unique_count_agg", "latest_agg"]
)
def test_field_name_is_mandatory_except_for_count(api, aggregation_type):
    details = errors_of(create(api, aggregation_type=aggregation_type, field_name=None))
    assert details == {"field_name": ["value_is_mandatory"]}


@pytest.mark.parametrize("aggregation_type", ["count_agg", "max_agg", "latest_agg"])
def test_recurring_is_refused_for_count_max_and_latest(api, aggregation_type):
    details = errors_of(create(api, aggregation_type=aggregation_type, recurring=True))
    assert details == {"recurring": ["not_compatible_with_aggregation_type"]}


@pytest.mark.parametrize("aggregation_type", ["sum_agg", "unique_count_agg"])
def test_recurring_is_accepted_for_sum_and_unique_count(api, aggregation_type):
    response = create(api, aggregation_type=aggregation_type, recurring=True)
    assert response.json()["billable_metric"]["recurring"] is True


def test_recurring_weighted_sum_is_accepted(api):
    response = create(
        api, aggregation_type="weighted_sum_agg", recurring=True, weighted_interval="seconds"
    )
    body = response.json()["billable_metric"]
    assert (body["recurring"], body["weighted_interval"]) == (True, "seconds")


@pytest.mark.parametrize("interval", [None, "minutes"])
def test_weighted_sum_needs_the_seconds_interval(api, interval):
    details = errors_of(
        create(api, aggregation_type="weighted_sum_agg", weighted_interval=interval)
    )
    assert details == {"weighted_interval": ["value_is_invalid"]}


def test_invalid_expression_is_refused(api):
    details = errors_of(create(api, expression="__import__('os')"))
    assert details == {"expression": ["invalid_expression"]}


def test_unknown_rounding_function_is_invalid(api):
    assert errors_of(create(api, rounding_function="truncate")) == {
        "rounding_function": ["value_is_invalid"]
    }


def test_filter_without_values_is_refused(api):
    details = errors_of(create(api, filters=[{"key": "region", "values": []}]))
    assert details == {"filters.0.values": ["value_is_mandatory"]}


def test_filter_without_key_is_refused(api):
    details = errors_of(create(api, filters=[{"values": ["eu"]}]))
    assert details == {"filters.0.key": ["value_is_mandatory"]}


def test_several_errors_are_reported_together(api):
    details = errors_of(create(api, name="", aggregation_type="max_agg", recurring=True))
    assert details == {
        "name": ["value_is_mandatory"],
        "recurring": ["not_compatible_with_aggregation_type"],
    }


def test_refused_create_writes_nothing(api, organization):
    create(api, filters=[{"key": "region", "values": []}])
    assert not BillableMetric.objects.filter(organization=organization).exists()


# --- update ------------------------------------------------------------------------------------


def test_update_changes_only_given_fields(api):
    create(api, description="before")
    response = api.put(
        f"{URL}/storage",
        {"billable_metric": {"name": "Disk", "aggregation_type": "max_agg"}},
        format="json",
    )
    body = response.json()["billable_metric"]
    assert (body["name"], body["aggregation_type"], body["description"], body["field_name"]) == (
        "Disk",
        "max_agg",
        "before",
        "gb",
    )


def test_update_validates_the_result(api):
    create(api, recurring=True)
    response = api.put(
        f"{URL}/storage", {"billable_metric": {"aggregation_type": "latest_agg"}}, format="json"
    )
    assert errors_of(response) == {"recurring": ["not_compatible_with_aggregation_type"]}


def test_update_refuses_the_code_of_another_metric(api, organization):
    BillableMetricFactory(organization=organization, code="calls")
    create(api)
    response = api.put(f"{URL}/storage", {"billable_metric": {"code": "calls"}}, format="json")
    assert errors_of(response) == {"code": ["value_already_exist"]}


def test_metric_priced_by_a_plan_keeps_its_aggregation(api, organization):
    metric = BillableMetricFactory(organization=organization, code="calls", field_name="n")
    ChargeFactory(organization=organization, billable_metric=metric)
    response = api.put(
        f"{URL}/calls",
        {"billable_metric": {"name": "Calls", "aggregation_type": "max_agg", "code": "x"}},
        format="json",
    )
    body = response.json()["billable_metric"]
    assert (body["name"], body["aggregation_type"], body["code"]) == ("Calls", "sum_agg", "calls")


def test_filter_values_kept_in_both_payloads_keep_their_filter(api, organization):
    create(api, filters=[{"key": "region", "values": ["eu", "us"]}])
    before = BillableMetricFilter.objects.get(key="region")
    api.put(
        f"{URL}/storage",
        {"billable_metric": {"filters": [{"key": "region", "values": ["eu", "us", "asia"]}]}},
        format="json",
    )
    after = BillableMetricFilter.objects.alive().get(key="region")
    assert (after.pk, after.values) == (before.pk, ["eu", "us", "asia"])


def _charge_filter(organization, metric, values):
    charge = ChargeFactory(organization=organization, billable_metric=metric)
    return ChargeFilter.objects.create(
        organization=organization, charge=charge, values=values, properties={"amount": "1"}
    )


def test_removed_filter_values_leave_charge_filters(api, organization):
    create(api, filters=[{"key": "region", "values": ["eu", "us", "asia"]},
                         {"key": "tier", "values": ["gold"]}])  # fmt: skip
    metric = BillableMetric.objects.get(code="storage")
    both = _charge_filter(organization, metric, {"region": ["eu", "us"], "tier": ["gold"]})
    api.put(
        f"{URL}/storage",
        {"billable_metric": {"filters": [{"key": "region", "values": ["eu", "asia"]},
                                         {"key": "tier", "values": ["gold"]}]}},
        format="json",
    )  # fmt: skip
    both.refresh_from_db()
    assert both.values == {"region": ["eu"], "tier": ["gold"]}
    assert both.deleted_at is None


def test_charge_filter_left_without_values_is_deleted(api, organization):
    create(api, filters=[{"key": "region", "values": ["eu", "us"]}])
    metric = BillableMetric.objects.get(code="storage")
    only_us = _charge_filter(organization, metric, {"region": ["us"]})
    api.put(
        f"{URL}/storage",
        {"billable_metric": {"filters": [{"key": "region", "values": ["eu"]}]}},
        format="json",
    )
    only_us.refresh_from_db()
    assert only_us.deleted_at is not None


def test_removed_filter_key_leaves_charge_filters(api, organization):
    create(api, filters=[{"key": "region", "values": ["eu"]}, {"key": "tier", "values": ["a"]}])
    metric = BillableMetric.objects.get(code="storage")
    charge_filter = _charge_filter(organization, metric, {"region": ["eu"], "tier": ["a"]})
    api.put(
        f"{URL}/storage",
        {"billable_metric": {"filters": [{"key": "region", "values": ["eu"]}]}},
        format="json",
    )
    charge_filter.refresh_from_db()
    assert charge_filter.values == {"region": ["eu"]}
    assert not BillableMetricFilter.objects.alive().filter(key="tier").exists()


def test_new_filter_values_are_not_added_to_charge_filters(api, organization):
    create(api, filters=[{"key": "region", "values": ["eu"]}])
    metric = BillableMetric.objects.get(code="storage")
    charge_filter = _charge_filter(organization, metric, {"region": ["eu"]})
    api.put(
        f"{URL}/storage",
        {"billable_metric": {"filters": [{"key": "region", "values": ["eu", "us"]}]}},
        format="json",
    )
    charge_filter.refresh_from_db()
    assert charge_filter.values == {"region": ["eu"]}


def test_update_without_filters_keeps_them(api):
    create(api, filters=[{"key": "region", "values": ["eu"]}])
    body = api.put(f"{URL}/storage", {"billable_metric": {"name": "x"}}, format="json").json()
    assert [f["key"] for f in body["billable_metric"]["filters"]] == ["region"]


def test_empty_filters_remove_them_all(api):
    create(api, filters=[{"key": "region", "values": ["eu"]}])
    body = api.put(f"{URL}/storage", {"billable_metric": {"filters": []}}, format="json").json()
    assert body["billable_metric"]["filters"] == []


# --- delete ------------------------------------------------------------------------------------


def test_delete_is_a_soft_delete_answering_the_metric(api, organization):
    create(api)
    response = api.delete(f"{URL}/storage")
    assert response.status_code == 200
    assert response.json()["billable_metric"]["code"] == "storage"
    metric = BillableMetric.objects.get(organization=organization, code="storage")
    assert metric.deleted_at is not None
    assert api.get(f"{URL}/storage").status_code == 404


def test_delete_removes_the_metric_from_plans(api, organization):
    metric = BillableMetricFactory(organization=organization, code="calls")
    charge = ChargeFactory(organization=organization, billable_metric=metric)
    charge_filter = ChargeFilter.objects.create(
        organization=organization, charge=charge, values={"k": ["v"]}
    )
    api.delete(f"{URL}/calls")
    charge.refresh_from_db()
    charge_filter.refresh_from_db()
    assert charge.deleted_at is not None
    assert charge_filter.deleted_at is not None


# --- evaluate_expression -----------------------------------------------------------------------


def evaluate(api, expression, properties=None, **event):
    body = {"expression": expression,
            "event": {"code": "storage", "properties": properties or {}, **event}}  # fmt: skip
    return api.post(f"{URL}/evaluate_expression", body, format="json")


def test_evaluate_expression_answers_the_value(api):
    response = evaluate(api, "round(event.properties.value * 2)", {"value": "2.5"})
    assert response.status_code == 200
    assert response.json() == {"expression_result": {"value": "5.0"}}


def test_evaluate_expression_answers_text_results(api):
    response = evaluate(api, "concat(event.code, '_', event.properties.region)", {"region": "eu"})
    assert response.json() == {"expression_result": {"value": "storage_eu"}}


def test_evaluate_expression_reads_the_event_timestamp(api):
    response = evaluate(api, "event.timestamp", timestamp=1651240791)
    assert response.json() == {"expression_result": {"value": "1651240791.0"}}


def test_evaluate_expression_requires_an_expression(api):
    response = api.post(f"{URL}/evaluate_expression", {}, format="json")
    assert errors_of(response) == {"expression": ["value_is_mandatory"]}


def test_evaluate_expression_refuses_an_invalid_expression(api):
    assert errors_of(evaluate(api, "round(")) == {"expression": ["invalid_expression"]}


def test_evaluate_expression_reports_an_event_it_cannot_use(api):
    assert errors_of(evaluate(api, "event.properties.value * 2")) == {"event": ["invalid_event"]}


def test_evaluate_expression_route_answers_post_only(api, organization):
    BillableMetricFactory(organization=organization, code="calls")
    assert api.get(f"{URL}/evaluate_expression").status_code == 405
