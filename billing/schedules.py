"""The beat schedule of spec §27, kept in django-celery-beat's tables.

Each app appends its jobs here as they are built; `sync_beat_schedule` (run after every
`migrate`) creates or updates the matching PeriodicTask rows, so the schedule stays editable in
the admin while a fresh database gets the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    minute: str = "*"
    hour: str = "*"
    description: str = ""
    # minutes this job defaulted to before: a row still on one of them (not edited in the
    # admin) moves to the current default at the next sync
    previous_minutes: tuple[str, ...] = ()


SCHEDULES: list[Schedule] = [
    Schedule(
        name="Purge idempotency records",
        task="billing.tasks.purge_idempotency_records_task",
        minute="40",
        description="Idempotency-Key answers are replayed for 24 h.",
    ),
    Schedule(
        name="Purge API request logs",
        task="billing.tasks.purge_api_request_logs_task",
        minute="0",
        hour="1",
        description="spec §27: daily 01:00 log cleanup.",
    ),
    Schedule(
        name="Activate pending subscriptions",
        task="customers.tasks.subscription_activate_pending_task",
        minute="*/5",
        description="spec §27: every 5 min, start due subscriptions and apply due downgrades.",
    ),
    Schedule(
        name="Terminate ended subscriptions",
        task="customers.tasks.subscription_terminate_ended_task",
        minute="5",
        description="spec §27: hourly :05, terminate subscriptions whose ending_at passed.",
    ),
    Schedule(
        name="Subscription trial ends",
        task="customers.tasks.subscription_end_trials_task",
        minute="35",
        description="spec §27: hourly :35, mark ended free trials.",
    ),
    Schedule(
        name="Subscription termination alerts",
        task="customers.tasks.subscription_termination_alerts_task",
        minute="50",
        description="spec §27: hourly :50, alerts 45 and 15 days before ending_at.",
    ),
    Schedule(
        name="Prune cached aggregations",
        task="metering.tasks.cached_aggregations_prune_task",
        minute="30",
        hour="2",
        description="Daily 02:30: pay-in-advance states superseded for 35 days (a derived cache).",
    ),
    Schedule(
        name="Bill customers",
        task="invoicing.tasks.bill_customers_task",
        minute="10",
        description="spec §27: hourly :10, bill customers whose billing day is today (their tz).",
    ),
    Schedule(
        name="Finalize due draft invoices",
        task="invoicing.tasks.finalize_due_drafts_task",
        minute="20",
        description="spec §27: hourly :20, finalize drafts past their grace period.",
    ),
    Schedule(
        name="Refresh flagged draft invoices",
        task="invoicing.tasks.refresh_flagged_drafts_task",
        minute="*/5",
        description="spec §27: every 5 min, refresh drafts flagged ready_to_be_refreshed.",
    ),
    Schedule(
        name="Retry failed invoices",
        task="invoicing.tasks.retry_failed_invoices_task",
        minute="*/15",
        description="spec §12.9, §27: every 15 min, retry the finalization of failed invoices.",
    ),
    Schedule(
        name="Mark invoices payment overdue",
        task="invoicing.tasks.invoice_mark_overdue_task",
        minute="25",
        description="spec §27: hourly :25, unpaid invoices past their due date.",
    ),
    Schedule(
        name="Post-validate events",
        task="metering.tasks.events_errors_report_task",
        minute="5",
        description="spec §5.2/§27: hourly :05, events.errors of the last whole hour.",
    ),
    Schedule(
        name="Terminate expired coupons",
        task="plans.tasks.terminate_expired_coupons_task",
        minute="30",
        description="spec §27: hourly :30, coupons whose expiration_at passed.",
    ),
    Schedule(
        name="Terminate expired wallets",
        task="wallets.tasks.terminate_expired_wallets_task",
        minute="45",
        description="spec §17.7, §27: hourly :45, wallets whose expiration_at passed.",
    ),
    Schedule(
        name="Terminate expired wallet top-up rules",
        task="wallets.tasks.expire_recurring_rules_task",
        minute="50",
        description="spec §17.6, §27: hourly :50, recurring rules whose expiration_at passed.",
    ),
    Schedule(
        name="Interval wallet top-ups",
        task="wallets.tasks.interval_top_ups_task",
        minute="55",
        description="spec §17.6, §27: hourly :55, interval top-ups due today (customer tz).",
    ),
    Schedule(
        name="Refresh wallets ongoing balance",
        task="wallets.tasks.refresh_ongoing_balances_task",
        minute="*",
        description=(
            "spec §17.4, §27: every minute (Lago: 5), wallets still flagged after events, "
            "threshold top-ups, alerts."
        ),
        previous_minutes=("*/5",),
    ),
]


def sync_beat_schedule() -> int:
    """Creates the missing PeriodicTask rows; existing ones keep their admin edits, except a
    row still on a previous default of its job, which moves to the current one."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    created = 0
    for schedule in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=schedule.minute,
            hour=schedule.hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        task, was_created = PeriodicTask.objects.select_related("crontab").get_or_create(
            name=schedule.name,
            defaults={
                "task": schedule.task,
                "crontab": crontab,
                "description": schedule.description,
            },
        )
        created += was_created
        if not was_created and _on_previous_default(task, schedule):
            task.crontab, task.description = crontab, schedule.description
            task.save(update_fields=["crontab", "description"])
    return created


def _on_previous_default(task: object, schedule: Schedule) -> bool:
    old = task.crontab  # type: ignore[attr-defined]
    return (
        old is not None
        and old.minute in schedule.previous_minutes
        and (old.hour, old.day_of_week, old.day_of_month, old.month_of_year)
        == (schedule.hour, "*", "*", "*")
    )
