"""manage.py rebuild_event_rollups ORGANIZATION [--external-subscription-id ID]"""

from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import Organization
from metering.services.rollups import rebuild_event_rollups


class Command(BaseCommand):
    help = (
        "Recomputes the event store's pre-aggregated rows of an organization (by name or id) "
        "from its events. Pause the ingestion of those events while it runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization")
        parser.add_argument("--external-subscription-id", default=None)

    def handle(self, *args: object, **options: object) -> None:
        key = str(options["organization"])
        organization = Organization.objects.filter(name=key).first()
        if organization is None:
            try:
                organization = Organization.objects.filter(pk=UUID(key)).first()
            except ValueError:
                organization = None
        if organization is None:
            raise CommandError(f"no organization {key!r}")
        written = rebuild_event_rollups(
            organization, external_subscription_id=options["external_subscription_id"]
        )
        self.stdout.write(f"{written} rollup rows written for {organization.name}")
