"""Routes of `/wallets`, `/wallet_transactions` and `/customers/{id}/wallets` (Appendix A).

The wallet alert routes (`/customers/{id}/wallets/{code}/alerts...`) live in their own module."""

from django.urls import include, path

from wallets.api.views import (
    CustomerWalletMetadataKeyView,
    CustomerWalletViewSet,
    WalletMetadataKeyView,
    WalletMetadataView,
    WalletTransactionConsumptionViewSet,
    WalletTransactionFundingViewSet,
    WalletTransactionPaymentUrlView,
    WalletTransactionViewSet,
    WalletViewSet,
)

_LIST = {"get": "list", "post": "create"}
_DETAIL = {"get": "retrieve", "put": "update", "delete": "destroy"}
_CUSTOMER_WALLET = "customers/<str:external_customer_id>/wallets/<str:code>"

urlpatterns = [
    path("wallets", WalletViewSet.as_view(_LIST), name="wallet-list"),
    path("wallets/<str:lago_id>", WalletViewSet.as_view(_DETAIL), name="wallet-detail"),
    path("wallets/<str:lago_id>/metadata", WalletMetadataView.as_view(), name="wallet-metadata"),
    path(
        "wallets/<str:lago_id>/metadata/<str:key>",
        WalletMetadataKeyView.as_view(),
        name="wallet-metadata-key",
    ),
    path(
        "wallets/<str:lago_id>/wallet_transactions",
        WalletTransactionViewSet.as_view({"get": "list"}),
        name="wallet-transaction-list",
    ),
    path(
        "wallet_transactions",
        WalletTransactionViewSet.as_view({"post": "create"}),
        name="wallet-transaction-create",
    ),
    path(
        "wallet_transactions/<str:lago_id>",
        WalletTransactionViewSet.as_view({"get": "retrieve"}),
        name="wallet-transaction-detail",
    ),
    path(
        "wallet_transactions/<str:lago_id>/payment_url",
        WalletTransactionPaymentUrlView.as_view(),
        name="wallet-transaction-payment-url",
    ),
    path(
        "wallet_transactions/<str:lago_id>/consumptions",
        WalletTransactionConsumptionViewSet.as_view({"get": "list"}),
        name="wallet-transaction-consumptions",
    ),
    path(
        "wallet_transactions/<str:lago_id>/fundings",
        WalletTransactionFundingViewSet.as_view({"get": "list"}),
        name="wallet-transaction-fundings",
    ),
    path(
        "customers/<str:external_customer_id>/wallets",
        CustomerWalletViewSet.as_view(_LIST),
        name="customer-wallet-list",
    ),
    path(_CUSTOMER_WALLET, CustomerWalletViewSet.as_view(_DETAIL), name="customer-wallet-detail"),
    path(
        f"{_CUSTOMER_WALLET}/metadata",
        WalletMetadataView.as_view(),
        name="customer-wallet-metadata",
    ),
    path(
        f"{_CUSTOMER_WALLET}/metadata/<str:key>",
        CustomerWalletMetadataKeyView.as_view(),
        name="customer-wallet-metadata-key",
    ),
    path("", include("wallets.api.alert_urls")),
]
