"""manage.py create_user --organization NAME --role admin|manager|finance --username U

A staff account for the finance admin with its role in one organization. The password comes
from BILLING_USER_PASSWORD, else it is asked twice on the terminal. An existing account keeps
its password and gets the role. --dry-run checks everything and rolls back.
"""

from __future__ import annotations

import getpass
import os

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from billing.actors import Actor
from billing.admin_base import describe
from billing.errors import DomainError
from billing.models import Organization, Role
from billing.services import staff_user_create

PASSWORD_ENV = "BILLING_USER_PASSWORD"


class _DryRun(Exception):
    pass


class Command(BaseCommand):
    help = "Creates a staff user with a role (admin, manager, finance) in an organization."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="organization name")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--dry-run", action="store_true", help="check, print, roll back")

    def _password(self, username: str, options: dict) -> str:
        from django.contrib.auth import get_user_model

        if get_user_model().objects.filter(username=username).exists():
            return ""  # an existing account keeps its password
        password = os.environ.get(PASSWORD_ENV, "")
        if password:
            return password
        if not options.get("interactive", True) or not self.stdin_is_tty():
            raise CommandError(f"set {PASSWORD_ENV} or run on a terminal to type the password")
        first = getpass.getpass(f"Password for {username}: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
        return first

    @staticmethod
    def _check_strength(password: str) -> None:
        from django.contrib.auth.password_validation import validate_password
        from django.core.exceptions import ValidationError

        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc

    def stdin_is_tty(self) -> bool:
        return os.isatty(0)

    def handle(self, *args: object, **options: object) -> None:
        organization = Organization.objects.filter(name=options["organization"]).first()
        if organization is None:
            raise CommandError(f"no organization named {options['organization']!r}")
        username, role = options["username"], options["role"]
        password = self._password(username, options)
        if password:
            self._check_strength(password)
        try:
            with transaction.atomic():
                membership, created = staff_user_create(
                    organization=organization,
                    username=username,
                    role=role,
                    password=password,
                    email=options["email"],
                    actor=Actor.system("create_user"),
                )
                if options["dry_run"]:
                    raise _DryRun
        except _DryRun:
            self.stdout.write(
                f"dry run: would {'create' if created else 'update'} {username} "
                f"as {role} in {organization.name} (rolled back)"
            )
            return
        except DomainError as exc:
            raise CommandError(describe(exc)) from exc
        verb = "created" if created else "updated"
        self.stdout.write(f"{membership.user.username} {verb}: {role} in {organization.name}")
