"""The beat schedule of spec §27, kept in django-celery-beat's tables.

Each app appends its jobs here as they are built: one `Schedule` entry is a job, run by beat
and by hand (`manage.py jobs run SLUG`). `sync_beat_schedule` (run after every `migrate`)
creates or updates the matching PeriodicTask rows, so the schedule stays editable in the admin
while a fresh database gets the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """One periodic job: its beat row (keyed by `name`), its Celery task and default crontab."""

    slug: str  # snake_case handle of `manage.py jobs run`
    name: str  # the PeriodicTask row's name: renaming it makes a new row
    task: str  # registered Celery task name
    minute: str = "*"
    hour: str = "*"
    description: str = ""
    reports: str = ""  # what the task's returned count counts, e.g. "invoice(s) marked overdue"
    # minutes this job defaulted to before: a row still on one of them (not edited in the
    # admin) moves to the current default at the next sync
    previous_minutes: tuple[str, ...] = ()


SCHEDULES: list[Schedule] = [
    Schedule(
        slug="purge_idempotency_records",
        name="Purge idempotency records",
        task="billing.tasks.purge_idempotency_records_task",
        minute="40",
        description="Idempotency-Key answers are replayed for 24 h.",
        reports="idempotency record(s) deleted",
    ),
    Schedule(
        # the beat row keeps its former name (rows are keyed by it); it purges both logs now
        slug="purge_audit_logs",
        name="Purge API request logs",
        task="billing.tasks.purge_audit_logs_task",
        minute="0",
        hour="1",
        description="Daily 01:00 cleanup of the activity and API logs past each "
        "organization's retention.",
        reports="activity and API log entr(y/ies) deleted",
    ),
    Schedule(
        slug="activate_pending_subscriptions",
        name="Activate pending subscriptions",
        task="customers.tasks.subscription_activate_pending_task",
        minute="*/5",
        description="Every 5 min, start due subscriptions and apply due downgrades.",
        reports="subscription(s) started or downgraded",
    ),
    Schedule(
        slug="terminate_ended_subscriptions",
        name="Terminate ended subscriptions",
        task="customers.tasks.subscription_terminate_ended_task",
        minute="5",
        description="Hourly :05, terminate subscriptions whose ending_at passed.",
        reports="subscription(s) terminated",
    ),
    Schedule(
        slug="end_trials",
        name="Subscription trial ends",
        task="customers.tasks.subscription_end_trials_task",
        minute="35",
        description="Hourly :35, mark ended free trials.",
        reports="trial(s) ended",
    ),
    Schedule(
        slug="subscription_termination_alerts",
        name="Subscription termination alerts",
        task="customers.tasks.subscription_termination_alerts_task",
        minute="50",
        description="Hourly :50, termination alerts 45 and 15 days before ending_at.",
        reports="subscription(s) alerted",
    ),
    Schedule(
        slug="prune_cached_aggregations",
        name="Prune cached aggregations",
        task="metering.tasks.cached_aggregations_prune_task",
        minute="30",
        hour="2",
        description="Daily 02:30: pay-in-advance states superseded for 35 days (a derived cache).",
        reports="cached aggregation(s) deleted",
    ),
    Schedule(
        slug="bill_customers",
        name="Bill customers",
        task="invoicing.tasks.bill_customers_task",
        minute="10",
        description="Hourly :10, bill customers whose billing day is today (their tz).",
        reports="customer(s) billed",
    ),
    Schedule(
        slug="finalize_drafts",
        name="Finalize due draft invoices",
        task="invoicing.tasks.finalize_due_drafts_task",
        minute="20",
        description="Hourly :20, finalize drafts past their grace period.",
        reports="draft(s) finalized",
    ),
    Schedule(
        slug="refresh_flagged_drafts",
        name="Refresh flagged draft invoices",
        task="invoicing.tasks.refresh_flagged_drafts_task",
        minute="*/5",
        description="Every 5 min, refresh drafts flagged ready_to_be_refreshed.",
        reports="draft(s) refreshed",
    ),
    Schedule(
        slug="retry_failed_invoices",
        name="Retry failed invoices",
        task="invoicing.tasks.retry_failed_invoices_task",
        minute="*/15",
        description="Every 15 min, retry the finalization of failed invoices.",
        reports="failed invoice(s) retried",
    ),
    Schedule(
        slug="mark_invoices_overdue",
        name="Mark invoices payment overdue",
        task="invoicing.tasks.invoice_mark_overdue_task",
        minute="25",
        description="Hourly :25, unpaid invoices past their due date.",
        reports="invoice(s) marked overdue",
    ),
    Schedule(
        slug="compact_figure_deltas",
        name="Compact analytics figure deltas",
        task="invoicing.tasks.figure_deltas_compact_task",
        minute="*/5",
        description="Every 5 min, fold the analytics figures' appended rows into one per key.",
        reports="figure delta row(s) folded away",
    ),
    Schedule(
        slug="report_event_errors",
        name="Post-validate events",
        task="metering.tasks.events_errors_report_task",
        minute="5",
        description="Hourly :05, events.errors of the last whole hour.",
        reports="organization(s) with event errors reported",
    ),
    Schedule(
        slug="process_dunning_campaigns",
        name="Process dunning campaigns",
        task="invoicing.tasks.process_dunning_campaigns_task",
        minute="45",
        description="Hourly :45, payment requests of dunning campaigns whose threshold is reached.",
        reports="payment request(s) created",
    ),
    Schedule(
        slug="terminate_expired_coupons",
        name="Terminate expired coupons",
        task="plans.tasks.terminate_expired_coupons_task",
        minute="30",
        description="Hourly :30, coupons whose expiration_at passed.",
        reports="coupon(s) terminated",
    ),
    Schedule(
        slug="terminate_expired_wallets",
        name="Terminate expired wallets",
        task="wallets.tasks.terminate_expired_wallets_task",
        minute="45",
        description="Hourly :45, wallets whose expiration_at passed.",
        reports="wallet(s) terminated",
    ),
    Schedule(
        slug="expire_recurring_top_up_rules",
        name="Terminate expired wallet top-up rules",
        task="wallets.tasks.expire_recurring_rules_task",
        minute="50",
        description="Hourly :50, recurring rules whose expiration_at passed.",
        reports="top-up rule(s) terminated",
    ),
    Schedule(
        slug="interval_top_ups",
        name="Interval wallet top-ups",
        task="wallets.tasks.interval_top_ups_task",
        minute="55",
        description="Hourly :55, interval top-ups due today (customer tz).",
        reports="wallet transaction(s) created",
    ),
    Schedule(
        slug="refresh_usage",
        name="Refresh usage",
        task="metering.tasks.refresh_usage_task",
        minute="*",
        description=(
            "Every minute, subscriptions that received events: lifetime usage, usage alerts, "
            "then their customers' flagged wallets (a pass queued by ingestion normally runs "
            "10 s after the events)."
        ),
        reports="subscription(s) refreshed",
    ),
    Schedule(
        slug="refresh_wallets_ongoing_balance",
        name="Refresh wallets ongoing balance",
        task="wallets.tasks.refresh_ongoing_balances_task",
        minute="*",
        description=(
            "Every minute, wallets still flagged after events (a queued refresh normally runs "
            "10 s after them), threshold top-ups, alerts."
        ),
        reports="wallet(s) refreshed",
        previous_minutes=("*/5",),
    ),
    Schedule(
        slug="deliver_webhooks",
        name="Deliver webhooks",
        task="integrations.tasks.deliver_webhooks_task",
        minute="*",
        description=(
            "Every minute, events no notification delivered yet, due retries, and attempts of "
            "a worker that died."
        ),
        reports="endpoint(s) with deliveries to send",
    ),
    Schedule(
        slug="purge_webhook_deliveries",
        name="Clean old webhook deliveries",
        task="integrations.tasks.purge_webhook_deliveries_task",
        minute="0",
        hour="1",
        description="Daily 01:00, deliveries older than the retention (90 days by default).",
        reports="webhook delivery(ies) deleted",
    ),
]


@dataclass(frozen=True)
class ScheduleSync:
    """What `sync_beat_schedule` changed."""

    created: int
    repointed: int


def sync_beat_schedule() -> ScheduleSync:
    """Creates the missing PeriodicTask rows and repoints rows whose task moved to another
    module; the crontab, enabled flag and description stay as edited in the admin, except a row
    still on a previous default of its job, which moves to the current one (and our former
    descriptions citing the spec, which are reworded)."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    created = repointed = 0
    for schedule in SCHEDULES:
        row = PeriodicTask.objects.select_related("crontab").filter(name=schedule.name).first()
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=schedule.minute,
            hour=schedule.hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        if row is None:
            PeriodicTask.objects.create(
                name=schedule.name,
                task=schedule.task,
                crontab=crontab,
                description=schedule.description,
            )
            created += 1
            continue
        if row.task != schedule.task:
            # The task path belongs to the code (a task renamed or moved to another app); beat
            # would otherwise send a name no worker knows.
            row.task = schedule.task
            row.save(update_fields=["task"])
            repointed += 1
        if _on_previous_default(row, schedule):
            row.crontab, row.description = crontab, schedule.description
            row.save(update_fields=["crontab", "description"])
        elif "§" in row.description:  # our earlier wording cited the spec: not an admin edit
            row.description = schedule.description
            row.save(update_fields=["description"])
    return ScheduleSync(created=created, repointed=repointed)


def _on_previous_default(task: object, schedule: Schedule) -> bool:
    old = task.crontab  # type: ignore[attr-defined]
    return (
        old is not None
        and old.minute in schedule.previous_minutes
        and (old.hour, old.day_of_week, old.day_of_month, old.month_of_year)
        == (schedule.hour, "*", "*", "*")
    )
