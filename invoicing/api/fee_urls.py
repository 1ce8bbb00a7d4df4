from django.urls import path

from invoicing.api.fee_views import FeeViewSet

urlpatterns = [
    path("fees", FeeViewSet.as_view({"get": "list"}), name="fee-list"),
    path(
        "fees/<str:lago_id>",
        FeeViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="fee-detail",
    ),
]
