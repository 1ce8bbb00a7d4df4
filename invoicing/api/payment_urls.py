from django.urls import path

from invoicing.api.payment_views import (
    CustomerPaymentRequestViewSet,
    CustomerPaymentViewSet,
    PaymentReceiptViewSet,
    PaymentRequestViewSet,
    PaymentViewSet,
    payment_receipt_file_view,
)

LIST = {"get": "list"}
LIST_CREATE = {"get": "list", "post": "create"}
DETAIL = {"get": "retrieve"}

urlpatterns = [
    path("payments", PaymentViewSet.as_view(LIST_CREATE), name="payment-list"),
    path("payments/<str:lago_id>", PaymentViewSet.as_view(DETAIL), name="payment-detail"),
    path("payment_receipts", PaymentReceiptViewSet.as_view(LIST), name="payment-receipt-list"),
    path(
        "payment_receipts/files/<str:token>",
        payment_receipt_file_view,
        name="payment-receipt-file",
    ),
    path(
        "payment_receipts/<str:lago_id>",
        PaymentReceiptViewSet.as_view(DETAIL),
        name="payment-receipt-detail",
    ),
    path(
        "payment_requests",
        PaymentRequestViewSet.as_view(LIST_CREATE),
        name="payment-request-list",
    ),
    path(
        "payment_requests/<str:lago_id>",
        PaymentRequestViewSet.as_view(DETAIL),
        name="payment-request-detail",
    ),
    path(
        "customers/<str:external_customer_id>/payments",
        CustomerPaymentViewSet.as_view(LIST),
        name="customer-payment-list",
    ),
    path(
        "customers/<str:external_customer_id>/payment_requests",
        CustomerPaymentRequestViewSet.as_view(LIST),
        name="customer-payment-request-list",
    ),
]
