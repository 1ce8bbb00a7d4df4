"""manage.py webhook_hmac_key --organization NAME [--rotate]: prints the organization's webhook
HMAC key alone on the last line."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from billing.actors import Actor
from billing.models import Organization
from integrations.services.webhook_signing import (
    organization_hmac_key,
    organization_hmac_key_rotate,
)


class Command(BaseCommand):
    help = "Prints the key that signs an organization's HMAC webhooks (--rotate: a new one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="organization name")
        parser.add_argument(
            "--rotate", action="store_true", help="replace the key first (receivers must follow)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="with --rotate: print a new key, keep the old"
        )

    def handle(self, *args: object, **options: object) -> None:
        organization = Organization.objects.filter(name=options["organization"]).first()
        if organization is None:
            raise CommandError(f"no organization named {options['organization']!r}")
        if options["rotate"]:
            with transaction.atomic():
                key = organization_hmac_key_rotate(
                    organization=organization, actor=Actor.system("webhook_hmac_key")
                )
                if options["dry_run"]:
                    transaction.set_rollback(True)
            verb = "would be" if options["dry_run"] else "is now"
            self.stderr.write(f"The webhook HMAC key of {organization.name} {verb}:")
        else:
            key = organization_hmac_key(organization)
            self.stderr.write(f"Webhook HMAC key of {organization.name}:")
        self.stdout.write(key)
