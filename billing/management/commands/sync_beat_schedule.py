from django.core.management.base import BaseCommand

from billing.schedules import sync_beat_schedule


class Command(BaseCommand):
    help = "Creates the default celery-beat schedule rows that are missing."

    def handle(self, *args: object, **options: object) -> None:
        created = sync_beat_schedule()
        self.stdout.write(f"{created} periodic task(s) created")
