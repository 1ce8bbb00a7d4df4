from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "plans"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from billing import hooks
        from plans.api.catalog_serializers import TaxSerializer
        from plans.selectors import billing_entity_taxes
        from plans.services.taxes import billing_entity_set_taxes

        hooks.set_billing_entity_taxes.register(billing_entity_set_taxes)
        hooks.render_billing_entity_taxes.register(
            lambda *, billing_entity: (
                TaxSerializer(billing_entity_taxes(billing_entity=billing_entity), many=True).data
            )
        )
