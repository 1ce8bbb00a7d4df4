"""sync_beat_schedule: the default celery-beat rows, keyed by name, kept in step with the code."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from billing.schedules import SCHEDULES, sync_beat_schedule

pytestmark = pytest.mark.django_db


def test_missing_rows_are_created_with_the_default_crontab_in_utc():
    PeriodicTask.objects.filter(name="Bill customers").delete()

    result = sync_beat_schedule()

    row = PeriodicTask.objects.select_related("crontab").get(name="Bill customers")
    assert (result.created, result.repointed) == (1, 0)
    assert row.task == "invoicing.tasks.bill_customers_task"
    assert (row.crontab.minute, row.crontab.hour, str(row.crontab.timezone)) == ("10", "*", "UTC")
    assert row.enabled


@pytest.mark.parametrize(
    ("name", "old_task", "new_task"),
    [
        pytest.param(
            "Prune cached aggregations",
            "customers.tasks.cached_aggregations_prune_task",
            "metering.tasks.cached_aggregations_prune_task",
            id="cached-aggregations-prune",
        ),
        pytest.param(
            "Post-validate events",
            "customers.tasks_events.events_errors_report_task",
            "metering.tasks.events_errors_report_task",
            id="events-errors-report",
        ),
    ],
)
def test_a_row_whose_task_moved_is_repointed_and_keeps_its_admin_edits(name, old_task, new_task):
    edited, _ = CrontabSchedule.objects.get_or_create(
        minute="7", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.filter(name=name).update(
        task=old_task, crontab=edited, enabled=False, description="edited by finance"
    )

    result = sync_beat_schedule()

    row = PeriodicTask.objects.get(name=name)
    assert (result.created, result.repointed) == (0, 1)
    assert row.task == new_task
    assert (row.crontab_id, row.enabled, row.description) == (edited.pk, False, "edited by finance")


def test_a_second_sync_changes_nothing():
    sync_beat_schedule()
    before = list(PeriodicTask.objects.order_by("pk").values())

    result = sync_beat_schedule()

    assert (result.created, result.repointed) == (0, 0)
    assert list(PeriodicTask.objects.order_by("pk").values()) == before
    assert PeriodicTask.objects.filter(name__in=[s.name for s in SCHEDULES]).count() == len(
        SCHEDULES
    )


def test_the_command_says_what_it_changed():
    PeriodicTask.objects.filter(name="Bill customers").delete()
    PeriodicTask.objects.filter(name="Prune cached aggregations").update(
        task="customers.tasks.cached_aggregations_prune_task"
    )
    out = StringIO()

    call_command("sync_beat_schedule", stdout=out)

    assert out.getvalue() == "1 periodic task(s) created, 1 repointed\n"
