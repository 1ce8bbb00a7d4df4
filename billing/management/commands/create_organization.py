"""manage.py create_organization NAME [--currency EUR] [--timezone Europe/Paris]"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.errors import Invalid
from billing.services import organization_create


class Command(BaseCommand):
    help = "Creates an organization with its default billing entity."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--locale", default="en")

    def handle(self, *args: object, **options: object) -> None:
        try:
            organization = organization_create(
                name=options["name"],
                default_currency=options["currency"],
                timezone=options["timezone"],
                document_locale=options["locale"],
            )
        except Invalid as exc:
            raise CommandError(f"invalid organization: {exc.details}") from exc
        self.stdout.write(f"organization {organization.name} {organization.lago_id}")
