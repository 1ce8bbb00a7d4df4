from django.urls import path

from invoicing.api.invoice_views import CustomerInvoiceViewSet, InvoiceViewSet, invoice_file_view


def _action(name: str, method: str = "post") -> object:
    return InvoiceViewSet.as_view({method: name})


urlpatterns = [
    path(
        "invoices",
        InvoiceViewSet.as_view({"get": "list", "post": "create"}),
        name="invoice-list",
    ),
    path("invoices/preview", _action("preview"), name="invoice-preview"),
    path("invoices/files/<str:token>", invoice_file_view, name="invoice-file"),
    path(
        "invoices/<str:lago_id>",
        InvoiceViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="invoice-detail",
    ),
    path("invoices/<str:lago_id>/refresh", _action("refresh", "put"), name="invoice-refresh"),
    path("invoices/<str:lago_id>/finalize", _action("finalize", "put"), name="invoice-finalize"),
    path("invoices/<str:lago_id>/void", _action("void"), name="invoice-void"),
    path("invoices/<str:lago_id>/download", _action("download"), name="invoice-download"),
    path("invoices/<str:lago_id>/retry", _action("retry"), name="invoice-retry"),
    path(
        "invoices/<str:lago_id>/lose_dispute",
        # the spec's endpoint is POST; lago-python-client sends PUT
        InvoiceViewSet.as_view({"post": "lose_dispute", "put": "lose_dispute"}),
        name="invoice-lose-dispute",
    ),
    path(
        "customers/<str:external_customer_id>/invoices",
        CustomerInvoiceViewSet.as_view({"get": "list"}),
        name="customer-invoice-list",
    ),
]
