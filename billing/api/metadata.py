"""What OPTIONS answers on every API route."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request

if TYPE_CHECKING:  # DRF imports this module while importing its views
    from rest_framework.views import APIView


class LagoMetadata(SimpleMetadata):
    """The view's name, description and media types, without DRF's `actions`: those call the
    view's `get_object` (which our detail views read from their own URL kwargs, not `pk`) and
    describe serializers that are not Lago's request bodies."""

    def determine_metadata(self, request: Request, view: APIView) -> dict:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }
