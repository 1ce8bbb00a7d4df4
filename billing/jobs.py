"""The scheduled jobs of `billing.schedules`, seen and run by hand (`manage.py jobs`).

A job's task is looked up by its registered Celery name in `billing.celery.app`, never
imported: billing sits left of every app whose tasks it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from celery import Task
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from billing import schedules
from billing.celery import app
from billing.errors import NotFound
from billing.schedules import Schedule


@dataclass(frozen=True)
class JobStatus:
    """One job as `jobs list` shows it: its beat row's schedule, last and next run."""

    schedule: Schedule
    cron: str  # minute hour day-of-month month day-of-week, as cron writes it
    has_row: bool  # False until `sync_beat_schedule` created its PeriodicTask row
    enabled: bool
    last_run_at: datetime | None
    next_run_at: datetime | None  # UTC; None when disabled or without a row


def job_get(*, slug: str) -> Schedule:
    """The job of that slug; `NotFound("job")` if none has it."""
    for schedule in schedules.SCHEDULES:
        if schedule.slug == slug:
            return schedule
    raise NotFound("job")


@functools.cache
def _discover_tasks() -> None:
    # Runs Celery's autodiscovery (every installed app's `tasks` module), as a worker does
    # when it starts: a management command imports none of them by itself.
    app.loader.import_default_modules()


def job_task(schedule: Schedule) -> Task:
    """The registered Celery task of a job; `LookupError` if no installed app registers it."""
    _discover_tasks()
    try:
        return app.tasks[schedule.task]
    except KeyError:
        message = f"task {schedule.task} of job {schedule.slug} is not registered"
        raise LookupError(message) from None


def job_list(*, now: datetime) -> list[JobStatus]:
    """Every job in schedule order, with what its PeriodicTask row says (admin edits included)."""
    rows = {
        row.name: row
        for row in PeriodicTask.objects.filter(
            name__in=[s.name for s in schedules.SCHEDULES]
        ).select_related("crontab", "interval", "solar", "clocked")
    }
    statuses = []
    for schedule in schedules.SCHEDULES:
        row = rows.get(schedule.name)
        if row is None:
            statuses.append(
                JobStatus(
                    schedule=schedule,
                    cron=f"{schedule.minute} {schedule.hour} * * *",
                    has_row=False,
                    enabled=False,
                    last_run_at=None,
                    next_run_at=None,
                )
            )
            continue
        statuses.append(
            JobStatus(
                schedule=schedule,
                cron=_cron(row),
                has_row=True,
                enabled=row.enabled,
                last_run_at=row.last_run_at,
                next_run_at=_next_run(row, now) if row.enabled else None,
            )
        )
    return statuses


def _cron(row: PeriodicTask) -> str:
    crontab = row.crontab
    if crontab is None:  # an admin switched the row to an interval, solar or clocked schedule
        return str(row.scheduler) if row.scheduler else "-"
    cron = " ".join(
        (
            crontab.minute,
            crontab.hour,
            crontab.day_of_month,
            crontab.month_of_year,
            crontab.day_of_week,
        )
    )
    return cron if str(crontab.timezone) == "UTC" else f"{cron} ({crontab.timezone})"


def _next_run(row: PeriodicTask, now: datetime) -> datetime | None:
    """When beat sends the task next: the first due time after the last run, or after now when
    that one has passed (beat keeps `last_run_at` a few minutes behind in the table)."""
    if row.scheduler is None:
        return None
    schedule = row.schedule
    zone = getattr(schedule, "tz", UTC)  # a crontab's fields are read in its own timezone
    schedule.nowfun = lambda: now.astimezone(zone)
    due = now + schedule.remaining_estimate((row.last_run_at or now).astimezone(zone))
    if due <= now:
        due = now + schedule.remaining_estimate(now.astimezone(zone))
    return due.astimezone(UTC)


@contextmanager
def _eager_tasks() -> Iterator[None]:
    # `delay()` runs inline for the duration, also when a broker is configured: what a job fans
    # out (one task per customer...) is done, and fails, inside this run.
    conf = app.conf
    previous = (conf.task_always_eager, conf.task_eager_propagates)
    conf.task_always_eager = conf.task_eager_propagates = True
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_eager_propagates = previous


def job_run(*, schedule: Schedule, now: datetime, dry_run: bool, task_id: str) -> object:
    """Runs the job's task now, in this process, and returns what the task returns.

    `dry_run` runs it inside a transaction rolled back at the end: nothing stays written and
    no on-commit callback fires. A real run that succeeds records `now` as the row's
    `last_run_at`, so beat counts its next run from it.
    """
    task = job_task(schedule)
    with _eager_tasks():
        if dry_run:
            with transaction.atomic():
                result = task.apply(task_id=task_id, throw=True).result
                transaction.set_rollback(True)
            return result
        result = task.apply(task_id=task_id, throw=True).result
    row = PeriodicTask.objects.filter(name=schedule.name).first()
    if row is not None:
        row.last_run_at = now
        row.save(update_fields=["last_run_at"])  # save(): tells beat its table changed
    return result
