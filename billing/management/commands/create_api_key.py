"""manage.py create_api_key --organization NAME: prints the key alone on its last line."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.actors import Actor
from billing.models import Organization
from billing.services import api_key_create


class Command(BaseCommand):
    help = "Creates an API key for an organization and prints it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="organization name")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args: object, **options: object) -> None:
        organization = Organization.objects.filter(name=options["organization"]).first()
        if organization is None:
            raise CommandError(f"no organization named {options['organization']!r}")
        api_key, raw = api_key_create(
            organization=organization, name=options["name"], actor=Actor.system("create_api_key")
        )
        self.stderr.write(f"API key {api_key.name or api_key.prefix} for {organization.name}:")
        self.stdout.write(raw)
