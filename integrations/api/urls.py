"""Payment provider routes of the API; Lago's paths leave no room for a router here."""

from django.urls import path

from integrations.api.views import CustomerCheckoutUrlView, CustomerPaymentMethodViewSet

urlpatterns = [
    path(
        "customers/<str:external_customer_id>/checkout_url",
        CustomerCheckoutUrlView.as_view({"post": "create"}),
        name="customer-checkout-url",
    ),
    path(
        "customers/<str:external_customer_id>/payment_methods",
        CustomerPaymentMethodViewSet.as_view({"get": "list"}),
        name="customer-payment-method-list",
    ),
    path(
        "customers/<str:external_customer_id>/payment_methods/<str:lago_id>",
        CustomerPaymentMethodViewSet.as_view({"delete": "destroy"}),
        name="customer-payment-method-detail",
    ),
    path(
        "customers/<str:external_customer_id>/payment_methods/<str:lago_id>/set_as_default",
        CustomerPaymentMethodViewSet.as_view({"put": "set_as_default"}),
        name="customer-payment-method-set-as-default",
    ),
]
