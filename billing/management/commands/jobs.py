"""manage.py jobs [list] | jobs run SLUG [--dry-run]: every scheduled job, seen and run by hand.

`list` shows each job's slug, crontab, last and next run (UTC) from its celery-beat row. `run`
runs the job now in this process, sub-tasks included (Celery is eager for the duration, broker
or not), prints what the task returned and records the run as the row's `last_run_at`.
Exit codes: 0 done, 1 the job failed, 2 unknown slug.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing import schedules
from billing.errors import NotFound
from billing.jobs import JobStatus, job_get, job_list, job_run
from billing.schedules import Schedule

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Lists the scheduled jobs, or runs one now (jobs run SLUG [--dry-run])."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=False)
        actions.add_parser("list", help="each job: slug, schedule, last and next run (UTC)")
        run = actions.add_parser("run", help="run one job now, in this process")
        run.add_argument("slug", help="the job's slug, as `jobs list` shows it")
        run.add_argument(
            "--dry-run",
            action="store_true",
            help="run inside a transaction rolled back at the end: nothing is written",
        )

    def handle(self, *args: object, **options: object) -> None:
        if options.get("action") == "run":
            self._run(str(options["slug"]), dry_run=bool(options["dry_run"]))
        else:
            self._list(timezone.now())

    def _list(self, now: datetime) -> None:
        statuses = job_list(now=now)
        table = [("JOB", "SCHEDULE (UTC)", "LAST RUN (UTC)", "NEXT RUN (UTC)")]
        table += [
            (status.schedule.slug, status.cron, _when(status.last_run_at, "never"), _next(status))
            for status in statuses
        ]
        widths = [max(len(row[i]) for row in table) for i in range(3)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[3]]).rstrip())

    def _run(self, slug: str, *, dry_run: bool) -> None:
        try:
            schedule = job_get(slug=slug)
        except NotFound:
            slugs = ", ".join(s.slug for s in schedules.SCHEDULES)
            raise CommandError(f"unknown job {slug!r}; jobs: {slugs}", returncode=2) from None
        task_id = str(uuid.uuid4())
        how = "dry run, rolled back at the end" if dry_run else "committed"
        # progress, not an error: without the red of stderr's default style
        self.stderr.write(f"running {slug} ({schedule.task}, task id {task_id}; {how})", str)
        now, started = timezone.now(), time.perf_counter()
        try:
            result = job_run(schedule=schedule, now=now, dry_run=dry_run, task_id=task_id)
        except Exception as exc:
            logger.exception("job %s failed", slug)
            raise CommandError(f"{slug} failed: {type(exc).__name__}: {exc}", returncode=1) from exc
        took = f"{time.perf_counter() - started:.2f}s"
        if dry_run:
            self.stdout.write(
                f"{slug} dry run in {took}: {_outcome(schedule, result)} "
                "(rolled back, nothing written)"
            )
        else:
            self.stdout.write(f"{slug} done in {took}: {_outcome(schedule, result)}")


def _outcome(schedule: Schedule, result: object) -> str:
    if isinstance(result, int) and schedule.reports:
        return f"{result} {schedule.reports}"
    return f"returned {result!r}"


def _when(moment: datetime | None, empty: str) -> str:
    if moment is None:
        return empty
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _next(status: JobStatus) -> str:
    if not status.has_row:
        return "no beat row (run sync_beat_schedule)"
    if not status.enabled:
        return "disabled"
    return _when(status.next_run_at, "-")
