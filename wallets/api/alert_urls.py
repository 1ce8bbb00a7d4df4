"""Wallet alert routes (spec §17.8), included by `wallets/api/urls.py`."""

from django.urls import path

from wallets.api.alert_views import WalletAlertViewSet

_ALERTS = "customers/<str:external_customer_id>/wallets/<str:wallet_code>/alerts"

urlpatterns = [
    path(
        _ALERTS,
        WalletAlertViewSet.as_view({"get": "list", "post": "create", "delete": "destroy_all"}),
        name="wallet-alert-list",
    ),
    path(
        f"{_ALERTS}/<str:code>",
        WalletAlertViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="wallet-alert-detail",
    ),
]
