"""The official lago-python-client drives the catalog endpoints unchanged."""

from datetime import UTC, datetime, timedelta

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.add_on import AddOn
from lago_python_client.models.billable_metric import (
    BillableMetric,
    BillableMetricEvaluateExpression,
    BillableMetricEvaluateExpressionEvent,
    BillableMetricFilter,
    BillableMetricFilters,
)
from lago_python_client.models.coupon import Coupon, LimitationConfiguration
from lago_python_client.models.tax import Tax

from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_manages_billable_metrics(lago):
    created = lago.billable_metrics.create(
        BillableMetric(
            name="Storage",
            code="storage",
            aggregation_type="sum_agg",
            field_name="gb",
            recurring=True,
            filters=BillableMetricFilters(
                __root__=[BillableMetricFilter(key="region", values=["eu", "us"])]
            ),
        )
    )
    assert (created.code, created.recurring) == ("storage", True)
    assert created.filters.__root__[0].values == ["eu", "us"]

    found = lago.billable_metrics.find("storage")
    assert found.lago_id == created.lago_id

    updated = lago.billable_metrics.update(BillableMetric(name="Disk"), "storage")
    assert (updated.name, updated.field_name) == ("Disk", "gb")

    listing = lago.billable_metrics.find_all({"per_page": 10})
    assert [m.code for m in listing["billable_metrics"]] == ["storage"]
    assert listing["meta"]["total_count"] == 1

    destroyed = lago.billable_metrics.destroy("storage")
    assert destroyed.lago_id == created.lago_id
    with pytest.raises(LagoApiError) as missing:
        lago.billable_metrics.find("storage")
    assert missing.value.status_code == 404


def test_client_sees_validation_errors(lago):
    with pytest.raises(LagoApiError) as refused:
        lago.billable_metrics.create(
            BillableMetric(name="Calls", code="calls", aggregation_type="max_agg",
                           field_name="n", recurring=True)
        )  # fmt: skip
    assert refused.value.status_code == 422
    assert refused.value.response["error_details"] == {
        "recurring": ["not_compatible_with_aggregation_type"]
    }


def test_client_evaluate_expression_is_refused_as_missing_its_expression(lago):
    # lago-python-client 1.x posts evaluate_expression without its payload: Lago (and this
    # back office) answer 422 `expression: value_is_mandatory`
    with pytest.raises(LagoApiError) as refused:
        lago.billable_metrics.evaluate_expression(
            BillableMetricEvaluateExpression(
                expression="round(event.properties.value)",
                event=BillableMetricEvaluateExpressionEvent(code="c", properties={"value": 1}),
            )
        )
    assert refused.value.response["error_details"] == {"expression": ["value_is_mandatory"]}


def test_client_manages_taxes(lago):
    created = lago.taxes.create(Tax(name="TVA", code="fr_vat", rate=20.0, description="VAT"))
    assert (created.code, created.rate, created.description) == ("fr_vat", 20.0, "VAT")
    assert lago.taxes.find("fr_vat").lago_id == created.lago_id
    updated = lago.taxes.update(Tax(rate=5.5), "fr_vat")
    assert updated.rate == 5.5
    assert [t.code for t in lago.taxes.find_all()["taxes"]] == ["fr_vat"]
    assert lago.taxes.destroy("fr_vat").lago_id == created.lago_id
    assert lago.taxes.find_all()["taxes"] == []


def test_client_manages_add_ons(lago):
    lago.taxes.create(Tax(name="TVA", code="fr_vat", rate=20.0))
    created = lago.add_ons.create(
        AddOn(name="Setup", code="setup", amount_cents=50000, amount_currency="EUR",
              tax_codes=["fr_vat"])
    )  # fmt: skip
    assert (created.amount_cents, created.amount_currency) == (50000, "EUR")
    assert [t.code for t in created.taxes.__root__] == ["fr_vat"]
    assert lago.add_ons.find("setup").lago_id == created.lago_id
    updated = lago.add_ons.update(AddOn(amount_cents=100, tax_codes=[]), "setup")
    assert (updated.amount_cents, updated.taxes.__root__) == (100, [])
    assert [a.code for a in lago.add_ons.find_all()["add_ons"]] == ["setup"]
    assert lago.add_ons.destroy("setup").code == "setup"
    assert lago.add_ons.find_all()["add_ons"] == []


def test_client_manages_coupons(lago, organization):
    PlanFactory(organization=organization, code="startup_plan")
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = lago.coupons.create(
        Coupon(
            name="Startup",
            code="startup",
            coupon_type="percentage",
            percentage_rate=12.5,
            frequency="recurring",
            frequency_duration=3,
            expiration="time_limit",
            expiration_at=expires.isoformat(),
            reusable=False,
            applies_to=LimitationConfiguration(plan_codes=["startup_plan"]),
        )
    )
    assert (created.percentage_rate, created.frequency_duration) == (12.5, 3)
    assert (created.limited_plans, created.plan_codes) == (True, ["startup_plan"])
    assert created.expiration_at == expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lago.coupons.find("startup").lago_id == created.lago_id
    updated = lago.coupons.update(Coupon(name="Startup 2", frequency="forever"), "startup")
    assert (updated.name, updated.frequency, updated.frequency_duration) == (
        "Startup 2",
        "forever",
        None,
    )
    assert [c.code for c in lago.coupons.find_all()["coupons"]] == ["startup"]
    assert lago.coupons.destroy("startup").code == "startup"
    assert lago.coupons.find_all()["coupons"] == []


def test_client_sees_the_limitation_conflict(lago, organization):
    PlanFactory(organization=organization, code="p")
    lago.billable_metrics.create(BillableMetric(name="M", code="m", aggregation_type="count_agg"))
    with pytest.raises(LagoApiError) as refused:
        lago.coupons.create(
            Coupon(name="C", code="c", coupon_type="fixed_amount", amount_cents=100,
                   amount_currency="EUR", frequency="once", expiration="no_expiration",
                   applies_to=LimitationConfiguration(plan_codes=["p"],
                                                      billable_metric_codes=["m"]))
        )  # fmt: skip
    assert refused.value.status_code == 405
    assert refused.value.response["code"] == "only_one_limitation_type_per_coupon_allowed"
