"""manage.py connect_stripe: connects an organization to a Stripe account."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.actors import Actor
from billing.errors import DomainError
from billing.models import Organization
from integrations.models import PaymentProvider
from integrations.services.connections import (
    stripe_connection_create,
    stripe_connection_validate,
    webhook_url,
)


class Command(BaseCommand):
    help = (
        "Connects an organization to a Stripe account: registers the incoming-webhook endpoint "
        "at Stripe and stores the secret key and the signing secret encrypted. The key is "
        "never printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="organization name")
        parser.add_argument(
            "--code", required=True, help="connection code, unique per organization"
        )
        parser.add_argument(
            "--secret-key",
            required=True,
            help="Stripe secret key (sk_...); '-' reads it from standard input",
        )
        parser.add_argument("--name", default="", help="display name (default: the code)")
        parser.add_argument(
            "--success-redirect-url",
            default="",
            help="page Stripe Checkout returns to after a payment method is saved",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check the values and print the webhook URL; call Stripe and store nothing",
        )

    def handle(self, *args: object, **options: object) -> None:
        organization = Organization.objects.filter(name=options["organization"]).first()
        if organization is None:
            raise CommandError(f"no organization named {options['organization']!r}")
        secret_key = str(options["secret_key"])
        if secret_key == "-":
            secret_key = sys.stdin.readline().strip()
        code, name = str(options["code"]), str(options["name"] or options["code"])
        if options["dry_run"]:
            errors = stripe_connection_validate(
                organization=organization, code=code, name=name, secret_key=secret_key
            )
            if errors:
                raise CommandError(f"refused: {errors}")
            preview = PaymentProvider(organization=organization, code=code)
            self.stderr.write("dry run: nothing registered at Stripe, nothing stored")
            self.stdout.write(f"would register {webhook_url(preview)}")
            return
        try:
            provider = stripe_connection_create(
                organization=organization,
                code=code,
                name=name,
                secret_key=secret_key,
                success_redirect_url=str(options["success_redirect_url"]),
                actor=Actor.system("connect_stripe"),
            )
        except DomainError as exc:
            raise CommandError(f"refused: {getattr(exc, 'details', exc)}") from exc
        self.stdout.write(
            f"connected {provider.code} for {organization.name}; webhook {webhook_url(provider)}"
        )
