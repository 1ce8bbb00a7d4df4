"""Metering became its own app: `Event` (was `billing`) and `CachedAggregation` (was `customers`)
moved in Django's state only. A database that already holds events, fees and cached
aggregations keeps every row, whichever way the move is migrated."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from invoicing.models import Fee
from metering.models import CachedAggregation, Event
from tests.metering.usage.conftest import make_billing
from tests.metering.usage.test_cached_aggregations import send

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_THE_MOVE = [("metering", None)]  # unapplies metering 0001 and the two state deletions


def _migrate(targets: list[tuple[str, str | None]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    applied = MigrationExecutor(connection)  # a fresh loader reads what is applied now
    return applied._create_project_state(with_applied_migrations=True).apps


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return list(executor.loader.graph.leaf_nodes())


@pytest.fixture
def billed(api, organization):
    """Three pay-in-advance events billed: events, fees and cached aggregations on disk."""
    billing = make_billing(api, organization, started_at="2023-01-24")
    metric = billing.metric("storage", "sum_agg", "amount")
    billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    for day, tx, amount in ((10, "tx_1", 10), (11, "tx_2", -4), (12, "tx_3", 8)):
        send(billing, "storage", f"2023-02-{day}T10:00:00", tx, amount=amount)
    ContentType.objects.get_for_model(Event)  # as the admin log and permissions would
    ContentType.objects.get_for_model(CachedAggregation)
    return {
        "events": sorted(Event.objects.values_list("transaction_id", "value")),
        "states": sorted(
            CachedAggregation.objects.values_list("event_transaction_id", "max_aggregation")
        ),
        "fees": sorted(
            Fee.objects.values_list("pay_in_advance_event_transaction_id", "amount_cents")
        ),
    }


def test_rows_survive_the_move_back_and_forth(billed):
    assert len(billed["events"]) == len(billed["states"]) == len(billed["fees"]) == 3
    latest = _latest()
    try:
        old = _migrate(BEFORE_THE_MOVE)
        old_event = old.get_model("billing", "Event")
        old_state = old.get_model("customers", "CachedAggregation")
        assert sorted(old_event.objects.values_list("transaction_id", "value")) == billed["events"]
        assert (
            sorted(old_state.objects.values_list("event_transaction_id", "max_aggregation"))
            == billed["states"]
        )
        assert ContentType.objects.filter(app_label="billing", model="event").exists()
    finally:
        _migrate(latest)
    assert sorted(Event.objects.values_list("transaction_id", "value")) == billed["events"]
    assert (
        sorted(CachedAggregation.objects.values_list("event_transaction_id", "max_aggregation"))
        == billed["states"]
    )
    fees = sorted(Fee.objects.values_list("pay_in_advance_event_transaction_id", "amount_cents"))
    assert fees == billed["fees"]


def test_content_types_follow_the_models(billed):
    latest = _latest()
    try:
        _migrate(BEFORE_THE_MOVE)
    finally:
        _migrate(latest)
    ContentType.objects.clear_cache()
    labels = set(
        ContentType.objects.filter(model__in=("event", "cachedaggregation")).values_list(
            "app_label", "model"
        )
    )
    assert labels == {("metering", "event"), ("metering", "cachedaggregation")}
