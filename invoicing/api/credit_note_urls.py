from django.urls import path

from invoicing.api.credit_note_views import (
    CreditNoteMetadataKeyView,
    CreditNoteMetadataView,
    CreditNoteViewSet,
    CustomerCreditNoteViewSet,
    credit_note_file_view,
)


def _action(name: str, method: str = "post") -> object:
    return CreditNoteViewSet.as_view({method: name})


urlpatterns = [
    path(
        "credit_notes",
        CreditNoteViewSet.as_view({"get": "list", "post": "create"}),
        name="credit-note-list",
    ),
    path("credit_notes/estimate", _action("estimate"), name="credit-note-estimate"),
    path("credit_notes/files/<str:token>", credit_note_file_view, name="credit-note-file"),
    path(
        "credit_notes/<str:lago_id>",
        CreditNoteViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="credit-note-detail",
    ),
    path("credit_notes/<str:lago_id>/void", _action("void", "put"), name="credit-note-void"),
    path("credit_notes/<str:lago_id>/download", _action("download"), name="credit-note-download"),
    path(
        "credit_notes/<str:lago_id>/metadata",
        CreditNoteMetadataView.as_view(),
        name="credit-note-metadata",
    ),
    path(
        "credit_notes/<str:lago_id>/metadata/<str:key>",
        CreditNoteMetadataKeyView.as_view(),
        name="credit-note-metadata-key",
    ),
    path(
        "customers/<str:external_customer_id>/credit_notes",
        CustomerCreditNoteViewSet.as_view({"get": "list"}),
        name="customer-credit-note-list",
    ),
]
