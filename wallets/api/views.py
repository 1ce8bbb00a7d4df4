"""`/wallets`, `/wallet_transactions` and `/customers/{id}/wallets` (spec §17, Appendix A)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import LagoAPIView, OrganizationViewSet, parse, wrapped_schema
from billing.errors import Invalid, NotFound
from customers.selectors import customer_get
from wallets.api.serializers import (
    WalletInput,
    WalletMetadataInput,
    WalletSerializer,
    WalletTransactionConsumptionSerializer,
    WalletTransactionFundingSerializer,
    WalletTransactionInput,
    WalletTransactionSerializer,
    WalletUpdateInput,
)
from wallets.models import Wallet, WalletTransaction, WalletTransactionConsumption
from wallets.selectors import (
    wallet_get,
    wallet_get_by_code,
    wallet_list,
    wallet_transaction_consumptions,
    wallet_transaction_fundings,
    wallet_transaction_get,
    wallet_transaction_list,
)
from wallets.services.transactions import wallet_top_up
from wallets.services.wallets import (
    wallet_create,
    wallet_metadata_clear,
    wallet_metadata_key_delete,
    wallet_metadata_merge,
    wallet_metadata_replace,
    wallet_terminate,
    wallet_update,
)

Tx = WalletTransaction
WALLET_RESPONSE = wrapped_schema("WalletResponse", WalletSerializer, "wallet")
TRANSACTIONS_RESPONSE = inline_serializer(
    "WalletTransactionsResponse",
    fields={"wallet_transactions": WalletTransactionSerializer(many=True)},
)
METADATA_RESPONSE = inline_serializer(
    name="WalletMetadataResponse",
    fields={
        "metadata": serializers.DictField(
            child=serializers.CharField(allow_null=True), allow_null=True
        )
    },
)


def _path(name: str, description: str, kind: object = OpenApiTypes.STR) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.PATH, description=description)


def _query(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=description)


LAGO_ID = _path("lago_id", "Lago id of the wallet", OpenApiTypes.UUID)
EXTERNAL_CUSTOMER_ID = _path("external_customer_id", "External id of the customer")
CODE = _path("code", "Code of the wallet")
TRANSACTION_ID = _path("lago_id", "Lago id of the wallet transaction", OpenApiTypes.UUID)
WALLET_FILTERS = [_query("external_customer_id", "Wallets of this customer only")]
TRANSACTION_FILTERS = [
    _query("status", "pending | settled | failed"),
    _query("transaction_type", "inbound | outbound"),
    _query("transaction_status", "purchased | granted | voided | invoiced"),
]


def _wallet_values(data: dict) -> dict:
    values = dict(data)
    if values.get("applies_to") is not None:
        values["applies_to"] = dict(values["applies_to"])
    if values.get("recurring_transaction_rules") is not None:
        values["recurring_transaction_rules"] = [
            dict(rule) for rule in values["recurring_transaction_rules"]
        ]
    values.pop("invoice_custom_section", None)
    values.pop("billing_entity_code", None)
    return values


# --------------------------------------------------------------------------------------------
# Wallets


class _WalletViewSet(OrganizationViewSet):
    serializer_class = WalletSerializer
    root_key, root_key_plural = "wallet", "wallets"
    permission_resource = "wallet"

    def get_queryset(self) -> QuerySet[Wallet]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Wallet.objects.none()
        return wallet_list(organization=self.organization)

    def wallet(self) -> Wallet:
        raise NotImplementedError

    def retrieve(self, request: Request, **kwargs: object) -> Response:
        return self.respond(self.wallet())

    def update(self, request: Request, **kwargs: object) -> Response:
        values = _wallet_values(parse(WalletUpdateInput, request.data, root="wallet"))
        wallet = wallet_update(
            wallet=self.wallet(), values=values, actor=self.actor, now=timezone.now()
        )
        return self.respond(wallet_get(organization=self.organization, lago_id=wallet.pk))

    def destroy(self, request: Request, **kwargs: object) -> Response:
        wallet = wallet_terminate(wallet=self.wallet(), actor=self.actor, now=timezone.now())
        return self.respond(wallet_get(organization=self.organization, lago_id=wallet.pk))

    def _create(self, request: Request, external_customer_id: str | None) -> Response:
        values = _wallet_values(parse(WalletInput, request.data, root="wallet"))
        external_id = external_customer_id or values.pop("external_customer_id", None)
        values.pop("external_customer_id", None)
        if not external_id:
            raise NotFound("customer")
        customer = customer_get(organization=self.organization, external_id=external_id)
        wallet = wallet_create(
            customer=customer, values=values, actor=self.actor, now=timezone.now()
        )
        return self.respond(wallet_get(organization=self.organization, lago_id=wallet.pk))


class WalletViewSet(_WalletViewSet):
    """`/wallets` by Lago id; DELETE terminates the wallet (remaining credits voided)."""

    def wallet(self) -> Wallet:
        return wallet_get(organization=self.organization, lago_id=self.kwargs["lago_id"])

    def get_queryset(self) -> QuerySet[Wallet]:
        if getattr(self, "swagger_fake_view", False):
            return Wallet.objects.none()
        external_id = self.request.query_params.get("external_customer_id")
        return wallet_list(organization=self.organization, external_customer_id=external_id or None)

    @extend_schema(parameters=WALLET_FILTERS)
    def list(self, request: Request, **kwargs: object) -> Response:
        return super().list(request)

    @extend_schema(
        request=wrapped_schema("WalletCreate", WalletInput, "wallet"), responses=WALLET_RESPONSE
    )
    def create(self, request: Request) -> Response:
        return self._create(request, None)

    @extend_schema(parameters=[LAGO_ID], responses=WALLET_RESPONSE)
    def retrieve(self, request: Request, **kwargs: object) -> Response:
        return super().retrieve(request)

    @extend_schema(
        parameters=[LAGO_ID],
        request=wrapped_schema("WalletUpdate", WalletUpdateInput, "wallet"),
        responses=WALLET_RESPONSE,
    )
    def update(self, request: Request, **kwargs: object) -> Response:
        return super().update(request)

    @extend_schema(parameters=[LAGO_ID], responses=WALLET_RESPONSE)
    def destroy(self, request: Request, **kwargs: object) -> Response:
        return super().destroy(request)


class CustomerWalletViewSet(_WalletViewSet):
    """`/customers/{external_customer_id}/wallets[/{code}]`."""

    def wallet(self) -> Wallet:
        return wallet_get_by_code(
            organization=self.organization,
            external_customer_id=self.kwargs["external_customer_id"],
            code=self.kwargs["code"],
        )

    def get_queryset(self) -> QuerySet[Wallet]:
        if getattr(self, "swagger_fake_view", False):
            return Wallet.objects.none()
        return wallet_list(
            organization=self.organization,
            external_customer_id=self.kwargs["external_customer_id"],
        )

    @extend_schema(parameters=[EXTERNAL_CUSTOMER_ID], operation_id="customers_wallets_list")
    def list(self, request: Request, **kwargs: object) -> Response:
        return super().list(request)

    @extend_schema(
        parameters=[EXTERNAL_CUSTOMER_ID],
        request=wrapped_schema("CustomerWalletCreate", WalletInput, "wallet"),
        responses=WALLET_RESPONSE,
        operation_id="customers_wallets_create",
    )
    def create(self, request: Request, external_customer_id: str) -> Response:
        return self._create(request, external_customer_id)

    @extend_schema(
        parameters=[EXTERNAL_CUSTOMER_ID, CODE],
        responses=WALLET_RESPONSE,
        operation_id="customers_wallets_retrieve",
    )
    def retrieve(self, request: Request, **kwargs: object) -> Response:
        return super().retrieve(request)

    @extend_schema(
        parameters=[EXTERNAL_CUSTOMER_ID, CODE],
        request=wrapped_schema("WalletUpdate", WalletUpdateInput, "wallet"),
        responses=WALLET_RESPONSE,
        operation_id="customers_wallets_update",
    )
    def update(self, request: Request, **kwargs: object) -> Response:
        return super().update(request)

    @extend_schema(
        parameters=[EXTERNAL_CUSTOMER_ID, CODE],
        responses=WALLET_RESPONSE,
        operation_id="customers_wallets_destroy",
    )
    def destroy(self, request: Request, **kwargs: object) -> Response:
        return super().destroy(request)


# --------------------------------------------------------------------------------------------
# Wallet metadata


class _WalletMetadataBase(LagoAPIView):
    permission_resource = "wallet"

    def wallet(self, kwargs: dict) -> Wallet:
        if "lago_id" in kwargs:
            return wallet_get(organization=self.organization, lago_id=kwargs["lago_id"])
        return wallet_get_by_code(
            organization=self.organization,
            external_customer_id=kwargs["external_customer_id"],
            code=kwargs["code"],
        )

    @staticmethod
    def answer(wallet: Wallet) -> Response:
        return Response({"metadata": wallet.metadata or None})

    @staticmethod
    def metadata(request: Request) -> dict:
        return parse(WalletMetadataInput, {"body": request.data}, root="body").get("metadata")


class WalletMetadataView(_WalletMetadataBase):
    """`.../metadata`: POST replaces, PATCH merges, DELETE clears."""

    @extend_schema(request=WalletMetadataInput, responses=METADATA_RESPONSE)
    def post(self, request: Request, **kwargs: str) -> Response:
        metadata = self.metadata(request)
        return self.answer(
            wallet_metadata_replace(wallet=self.wallet(kwargs), metadata=metadata, actor=self.actor)
        )

    @extend_schema(request=WalletMetadataInput, responses=METADATA_RESPONSE)
    def patch(self, request: Request, **kwargs: str) -> Response:
        wallet = wallet_metadata_merge(
            wallet=self.wallet(kwargs), metadata=self.metadata(request), actor=self.actor
        )
        return self.answer(wallet)

    @extend_schema(request=None, responses=METADATA_RESPONSE)
    def delete(self, request: Request, **kwargs: str) -> Response:
        return self.answer(wallet_metadata_clear(wallet=self.wallet(kwargs), actor=self.actor))


class WalletMetadataKeyView(_WalletMetadataBase):
    """`DELETE /wallets/{lago_id}/metadata/{key}`."""

    @extend_schema(
        request=None, responses=METADATA_RESPONSE, operation_id="wallets_metadata_key_destroy"
    )
    def delete(self, request: Request, key: str, **kwargs: str) -> Response:
        return self.answer(
            wallet_metadata_key_delete(wallet=self.wallet(kwargs), key=key, actor=self.actor)
        )


class CustomerWalletMetadataKeyView(WalletMetadataKeyView):
    """`DELETE /customers/{external_customer_id}/wallets/{code}/metadata/{key}`."""

    @extend_schema(
        request=None,
        responses=METADATA_RESPONSE,
        operation_id="customers_wallets_metadata_key_destroy",
    )
    def delete(self, request: Request, key: str, **kwargs: str) -> Response:
        return super().delete(request, key, **kwargs)


# --------------------------------------------------------------------------------------------
# Wallet transactions


class WalletTransactionViewSet(OrganizationViewSet):
    """`POST /wallet_transactions`, `GET /wallet_transactions/{id}` and the ledger of a wallet
    (`GET /wallets/{id}/wallet_transactions`)."""

    serializer_class = WalletTransactionSerializer
    root_key, root_key_plural = "wallet_transaction", "wallet_transactions"
    permission_resource = "wallet_transaction"

    def get_queryset(self) -> QuerySet[WalletTransaction]:
        if getattr(self, "swagger_fake_view", False):
            return WalletTransaction.objects.none()
        wallet = wallet_get(organization=self.organization, lago_id=self.kwargs["lago_id"])
        params = self.request.query_params
        for field, choices in (
            ("status", Tx.Status.values),
            ("transaction_type", Tx.TransactionType.values),
            ("transaction_status", Tx.TransactionStatus.values),
        ):
            if params.get(field) and params[field] not in choices:
                raise Invalid({field: ["value_is_invalid"]})
        return wallet_transaction_list(
            wallet=wallet,
            status=params.get("status"),
            transaction_type=params.get("transaction_type"),
            transaction_status=params.get("transaction_status"),
        )

    @extend_schema(
        parameters=[LAGO_ID, *TRANSACTION_FILTERS],
        operation_id="wallets_wallet_transactions_list",
    )
    def list(self, request: Request, **kwargs: object) -> Response:
        return super().list(request)

    @extend_schema(
        request=wrapped_schema(
            "WalletTransactionCreate", WalletTransactionInput, "wallet_transaction"
        ),
        responses=TRANSACTIONS_RESPONSE,
    )
    def create(self, request: Request) -> Response:
        values = dict(parse(WalletTransactionInput, request.data, root="wallet_transaction"))
        wallet_id = values.pop("wallet_id", None)
        try:
            wallet = wallet_get(organization=self.organization, lago_id=wallet_id)
        except NotFound:
            raise Invalid({"wallet_id": ["wallet_not_found"]}) from None
        transactions = wallet_top_up(
            wallet=wallet,
            paid_credits=values.get("paid_credits"),
            granted_credits=values.get("granted_credits"),
            voided_credits=values.get("voided_credits"),
            actor=self.actor,
            now=timezone.now(),
            name=values.get("name") or "",
            metadata=values.get("metadata"),
            invoice_requires_successful_payment=values.get("invoice_requires_successful_payment"),
            ignore_paid_top_up_limits=bool(values.get("ignore_paid_top_up_limits")),
            priority=values.get("priority"),
            payment_method=values.get("payment_method"),
            purchase_order_number=values.get("purchase_order_number") or "",
        )
        for tx in transactions:
            tx.refresh_from_db()
        return Response({"wallet_transactions": self.get_serializer(transactions, many=True).data})

    @extend_schema(
        parameters=[TRANSACTION_ID],
        responses=wrapped_schema(
            "WalletTransactionResponse", WalletTransactionSerializer, "wallet_transaction"
        ),
    )
    def retrieve(self, request: Request, lago_id: str) -> Response:
        return self.respond(wallet_transaction_get(organization=self.organization, lago_id=lago_id))


class _TraceViewSet(OrganizationViewSet):
    permission_resource = "wallet_transaction"
    transaction_type = ""

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return WalletTransactionConsumption.objects.none()
        tx = wallet_transaction_get(organization=self.organization, lago_id=self.kwargs["lago_id"])
        if tx.transaction_type != self.transaction_type:
            raise Invalid({"transaction_type": ["invalid_transaction_type"]})
        return self.linked_transactions(tx)

    def linked_transactions(self, tx: WalletTransaction) -> QuerySet:
        raise NotImplementedError


class WalletTransactionConsumptionViewSet(_TraceViewSet):
    """`GET /wallet_transactions/{id}/consumptions`: what drew on an inbound transaction."""

    serializer_class = WalletTransactionConsumptionSerializer
    root_key_plural = "wallet_transaction_consumptions"
    transaction_type = Tx.TransactionType.INBOUND

    def linked_transactions(self, tx: WalletTransaction) -> QuerySet:
        return wallet_transaction_consumptions(transaction=tx)

    @extend_schema(parameters=[TRANSACTION_ID], operation_id="wallet_transactions_consumptions")
    def list(self, request: Request, **kwargs: object) -> Response:
        return super().list(request)


class WalletTransactionFundingViewSet(_TraceViewSet):
    """`GET /wallet_transactions/{id}/fundings`: what funded an outbound transaction."""

    serializer_class = WalletTransactionFundingSerializer
    root_key_plural = "wallet_transaction_fundings"
    transaction_type = Tx.TransactionType.OUTBOUND

    def linked_transactions(self, tx: WalletTransaction) -> QuerySet:
        return wallet_transaction_fundings(transaction=tx)

    @extend_schema(parameters=[TRANSACTION_ID], operation_id="wallet_transactions_fundings")
    def list(self, request: Request, **kwargs: object) -> Response:
        return super().list(request)


class WalletTransactionPaymentUrlView(LagoAPIView):
    """`POST /wallet_transactions/{id}/payment_url` (Lago `GeneratePaymentUrlService`).

    No payment provider is integrated: once the transaction could be paid, the answer is the
    error Lago gives for a customer without a linked provider."""

    permission_resource = "wallet_transaction"

    @extend_schema(
        parameters=[TRANSACTION_ID],
        request=None,
        responses=inline_serializer(
            "WalletTransactionPaymentUrlResponse",
            fields={
                "wallet_transaction_payment_details": inline_serializer(
                    "WalletTransactionPaymentDetails",
                    fields={
                        "lago_customer_id": serializers.UUIDField(),
                        "lago_wallet_transaction_id": serializers.UUIDField(),
                        "external_customer_id": serializers.CharField(),
                        "payment_provider": serializers.CharField(),
                        "payment_url": serializers.CharField(),
                    },
                )
            },
        ),
    )
    def post(self, request: Request, lago_id: str) -> Response:
        tx = wallet_transaction_get(organization=self.organization, lago_id=lago_id)
        if tx.transaction_status != Tx.TransactionStatus.PURCHASED:
            raise Invalid({"base": ["wallet_transaction_not_purchased"]})
        if tx.status == Tx.Status.SETTLED:
            raise Invalid({"base": ["wallet_transaction_already_settled"]})
        if tx.invoice_id is None:
            raise Invalid({"base": ["wallet_transaction_has_no_attached_invoice"]})
        customer = tx.wallet.customer
        provider = (customer.billing_configuration or {}).get("payment_provider")
        if not provider:
            raise Invalid({"base": ["no_linked_payment_provider"]})
        if provider == "gocardless":
            raise Invalid({"base": ["invalid_payment_provider"]})
        raise Invalid({"base": ["missing_payment_provider"]})  # no provider integration yet
