"""manage.py seed_demo: a demo organization, admin, manager and finance users, API key and sample
data. Idempotent.

It lives in the rightmost app so that it can name every app's demo module.
"""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from billing.models import ApiKey, Organization, hash_api_key
from billing.services import membership_set, organization_create, staff_user_create
from customers import demo as customers_demo
from invoicing import demo as invoicing_demo
from metering import demo as metering_demo
from plans import demo as plans_demo
from wallets import demo as wallets_demo

DEMO_ORGANIZATION = "Demo Company"
DEMO_ADMIN = ("admin", "admin")
# (username, password, role): one demo login per staff role besides the superuser admin
DEMO_STAFF = (("manager", "manager", "manager"), ("finance", "finance", "finance"))
# A fixed, documented key so that the demo prints the same credentials on every run.
# Local demo only: production keys come from `create_api_key` and are stored hashed.
DEMO_API_KEY = os.environ.get("DEMO_API_KEY", "lago_demo_0123456789abcdef0123456789abcdef")
# Each app's sample data, in dependency order: `seed(organization=..., now=...)` -> summary.
DEMO_MODULES = {
    "plans": plans_demo,
    "customers": customers_demo,
    "metering": metering_demo,
    "wallets": wallets_demo,
    "invoicing": invoicing_demo,
}


class Command(BaseCommand):
    help = "Seeds a demo organization, an admin user, an API key and sample data (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="print only the credentials")

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        organization = Organization.objects.filter(name=DEMO_ORGANIZATION).first()
        if organization is None:
            organization = organization_create(
                name=DEMO_ORGANIZATION,
                default_currency="EUR",
                timezone="Europe/Paris",
                legal_name="Demo Company SAS",
                email="billing@demo.example",
                address_line1="5 rue de la Paix",
                zipcode="75002",
                city="Paris",
                country="FR",
                net_payment_term=30,
                document_number_prefix="DEMO",
            )
        user_model = get_user_model()
        admin = user_model.objects.filter(username=DEMO_ADMIN[0]).first()
        if admin is None:
            admin = user_model.objects.create_superuser(
                DEMO_ADMIN[0], "admin@demo.example", DEMO_ADMIN[1]
            )
        membership_set(organization=organization, user=admin, role="admin")
        for username, password, role in DEMO_STAFF:
            staff_user_create(
                organization=organization, username=username, role=role, password=password
            )
        key_hash = hash_api_key(DEMO_API_KEY)
        if not ApiKey.objects.filter(key_hash=key_hash).exists():
            ApiKey.objects.create(
                organization=organization,
                name="Demo key",
                key_hash=key_hash,
                prefix=DEMO_API_KEY[:9],
            )
        for app, module in DEMO_MODULES.items():
            summary = module.seed(organization=organization, now=now)
            if summary and not options["quiet"]:
                self.stderr.write(f"  {app}: {summary}")
        self.stdout.write(f"organization: {organization.name}")
        self.stdout.write(f"admin login: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}")
        for username, password, role in DEMO_STAFF:
            self.stdout.write(f"{role} login: {username} / {password}")
        self.stdout.write(f"api key: {DEMO_API_KEY}")
