"""Celery: eager without a broker, real messages through Redis when one is configured."""

import os

import pytest
import redis

from billing.celery import app
from billing.tasks import purge_idempotency_records_task

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.mark.django_db
def test_tasks_run_eagerly_without_a_broker():
    result = purge_idempotency_records_task.delay()
    assert result.successful()
    assert result.result == 0


def test_a_task_sent_with_a_redis_broker_lands_in_the_queue():
    client = redis.Redis.from_url(REDIS_URL)
    client.delete("billing-test-queue")
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = REDIS_URL, False
    try:
        with app.connection_for_write() as connection:
            purge_idempotency_records_task.apply_async(
                queue="billing-test-queue", connection=connection
            )
        assert client.llen("billing-test-queue") == 1
    finally:
        app.conf.broker_url, app.conf.task_always_eager = previous
        client.delete("billing-test-queue")


@pytest.mark.django_db
def test_beat_schedule_is_seeded_in_the_database():
    from django_celery_beat.models import PeriodicTask

    from billing.schedules import SCHEDULES

    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {s.name for s in SCHEDULES} <= names


def _crontab_of(name: str):
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.select_related("crontab").get(name=name).crontab


def _set_minute(name: str, minute: str) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour="*", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )  # fmt: skip
    PeriodicTask.objects.filter(name=name).update(crontab=crontab)


@pytest.mark.django_db
def test_sync_moves_a_schedule_left_on_its_previous_default_to_the_new_one():
    from billing.schedules import sync_beat_schedule

    _set_minute("Refresh wallets ongoing balance", "*/5")  # the default until it ran each minute

    sync_beat_schedule()

    assert _crontab_of("Refresh wallets ongoing balance").minute == "*"


@pytest.mark.django_db
def test_sync_keeps_a_schedule_edited_in_the_admin():
    from billing.schedules import sync_beat_schedule

    _set_minute("Refresh wallets ongoing balance", "*/2")

    sync_beat_schedule()

    assert _crontab_of("Refresh wallets ongoing balance").minute == "*/2"
