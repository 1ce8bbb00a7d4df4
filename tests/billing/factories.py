import factory

from billing.models import BillingEntity, Organization


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    default_currency = "EUR"
    webhook_secret = factory.Sequence(lambda n: f"{n:064x}")


class BillingEntityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillingEntity

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"entity-{n}")
    name = factory.Sequence(lambda n: f"Entity {n}")
    document_number_prefix = factory.Sequence(lambda n: f"ENT-{n:04d}")
