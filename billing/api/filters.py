"""django-filter bases every app's list filters build on, reading Lago's query params."""

from __future__ import annotations

from datetime import datetime

import django_filters as filters
from django import forms
from django.db.models import QuerySet
from django.http import QueryDict
from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

from billing.api.fields import storable_instant


class LagoFilterSet(filters.FilterSet):
    """Reads Lago's array params: `countries[]=FR&countries[]=DE` filters on `countries`."""

    def __init__(self, data: QueryDict | None = None, *args: object, **kwargs: object) -> None:
        if data is not None:
            normalized = QueryDict(mutable=True)
            for key in data:
                name = key.removesuffix("[]")
                normalized.setlist(name, [*normalized.getlist(name), *data.getlist(key)])
            data = normalized
        super().__init__(data, *args, **kwargs)


class _ListField(forms.Field):
    widget = forms.MultipleHiddenInput  # reads every repeated value of the parameter

    def to_python(self, value: object) -> list[str]:
        return [str(item) for item in (value or []) if str(item) != ""]


class ListFilter(filters.Filter):
    """Any of the given values (free text: states, zipcodes, codes)."""

    field_class = _ListField

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class LagoFilterBackend(DjangoFilterBackend):
    """django-filter's backend, refusing (422) instants PostgreSQL or a time zone conversion
    cannot take (offsets past ±15:59, years at the edge of 9999) before the query runs."""

    def filter_queryset(self, request: object, queryset: QuerySet, view: object) -> QuerySet:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        unstorable = {
            name: ["invalid_date"]
            for name, value in filterset.form.cleaned_data.items()
            if isinstance(value, datetime) and not storable_instant(value)
        }
        if unstorable:
            raise ValidationError(unstorable)
        return filterset.qs
