from django.core.management.base import BaseCommand

from billing.schedules import sync_beat_schedule


class Command(BaseCommand):
    help = (
        "Creates the default celery-beat schedule rows that are missing and repoints "
        "rows whose task moved."
    )

    def handle(self, *args: object, **options: object) -> None:
        result = sync_beat_schedule()
        self.stdout.write(
            f"{result.created} periodic task(s) created, {result.repointed} repointed"
        )
