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
        description="Daily 01:00 log cleanup.",
    ),
    Schedule(
        name="Activate pending subscriptions",
        task="customers.tasks.subscription_activate_pending_task",
        minute="*/5",
        description="Every 5 min, start due subscriptions and apply due downgrades.",
    ),
    Schedule(
        name="Terminate ended subscriptions",
        task="customers.tasks.subscription_terminate_ended_task",
        minute="5",
        description="Hourly :05, terminate subscriptions whose ending_at passed.",
    ),
    Schedule(
        name="Subscription trial ends",
        task="customers.tasks.subscription_end_trials_task",
        minute="35",
        description="Hourly :35, mark ended free trials.",
    ),
    Schedule(
        name="Subscription termination alerts",
        task="customers.tasks.subscription_termination_alerts_task",
        minute="50",
        description="Hourly :50, termination alerts 45 and 15 days before ending_at.",
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
        description="Hourly :10, bill customers whose billing day is today (their tz).",
    ),
    Schedule(
        name="Finalize due draft invoices",
        task="invoicing.tasks.finalize_due_drafts_task",
        minute="20",
        description="Hourly :20, finalize drafts past their grace period.",
    ),
    Schedule(
        name="Refresh flagged draft invoices",
        task="invoicing.tasks.refresh_flagged_drafts_task",
        minute="*/5",
        description="Every 5 min, refresh drafts flagged ready_to_be_refreshed.",
    ),
    Schedule(
        name="Retry failed invoices",
        task="invoicing.tasks.retry_failed_invoices_task",
        minute="*/15",
        description="Every 15 min, retry the finalization of failed invoices.",
    ),
    Schedule(
        name="Mark invoices payment overdue",
        task="invoicing.tasks.invoice_mark_overdue_task",
        minute="25",
        description="Hourly :25, unpaid invoices past their due date.",
    ),
    Schedule(
        name="Post-validate events",
        task="metering.tasks.events_errors_report_task",
        minute="5",
        description="Hourly :05, events.errors of the last whole hour.",
    ),
    Schedule(
        name="Terminate expired coupons",
        task="plans.tasks.terminate_expired_coupons_task",
        minute="30",
        description="Hourly :30, coupons whose expiration_at passed.",
    ),
    Schedule(
        name="Terminate expired wallets",
        task="wallets.tasks.terminate_expired_wallets_task",
        minute="45",
        description="Hourly :45, wallets whose expiration_at passed.",
    ),
    Schedule(
        name="Terminate expired wallet top-up rules",
        task="wallets.tasks.expire_recurring_rules_task",
        minute="50",
        description="Hourly :50, recurring rules whose expiration_at passed.",
    ),
    Schedule(
        name="Interval wallet top-ups",
        task="wallets.tasks.interval_top_ups_task",
        minute="55",
        description="Hourly :55, interval top-ups due today (customer tz).",
    ),
    Schedule(
        name="Refresh wallets ongoing balance",
        task="wallets.tasks.refresh_ongoing_balances_task",
        minute="*/5",
        description="Every 5 min, flagged wallets, threshold top-ups, alerts.",
    ),
]


def sync_beat_schedule() -> int:
    """Creates the missing PeriodicTask rows; existing ones keep their admin edits (only our
    former descriptions citing the spec are reworded)."""
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
        task, was_created = PeriodicTask.objects.get_or_create(
            name=schedule.name,
            defaults={
                "task": schedule.task,
                "crontab": crontab,
                "description": schedule.description,
            },
        )
        created += was_created
        if "§" in task.description:  # our earlier wording cited the spec: not an admin edit
            task.description = schedule.description
            task.save(update_fields=["description"])
    return created
