"""Exports of admin lists, CSV and XLSX, with django-import-export and the theme's export page.

A list's columns are a django-import-export `Resource` (declared next to its admin); the
library's admin mixin gives the "Export" page (format, columns) and the queryset of the list as
filtered and searched, scoped to the staff member's organizations by the admin's `get_queryset`.
The library builds every export in memory (a tablib dataset); here the file is written row by
row instead: CSV streamed to the client, XLSX through openpyxl's write-only workbook into a
temporary file, so a list of a million rows needs no more memory than one of ten.

Cells: money as a decimal amount in the currency's unit next to a currency column; days as ISO
dates (real date cells in XLSX); instants as ISO 8601 in UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from import_export.admin import ExportMixin
from import_export.fields import Field
from import_export.formats.base_formats import CSV, XLSX, Format
from import_export.resources import Resource
from import_export.signals import post_export
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from unfold.contrib.import_export.forms import SelectableFieldsExportForm

from billing.money import to_major

# a spreadsheet reads a text cell starting with one of these as a formula (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def money(cents: int | None, currency: str) -> Decimal | None:
    """An amount of minor units as a decimal in the currency's unit: 123456 EUR -> 1234.56."""
    return None if cents is None else to_major(cents, currency)


def instant(value: dt.datetime | None) -> str:
    """An instant as ISO 8601 in UTC, to the second: "2026-03-01T12:00:00Z"."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return instant(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class _Echo:
    """A file whose write hands the line back, for csv.writer inside a generator."""

    def write(self, value: str) -> str:
        return value


def csv_response(headers: list[str], rows: Iterable[list], filename: str) -> StreamingHttpResponse:
    """The rows as CSV, streamed: each row is read from the database as it is sent."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(headers)
        for row in rows:
            yield writer.writerow([_csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _xlsx_cell(sheet, value: object) -> WriteOnlyCell | object:
    if isinstance(value, str):
        # a text cell stays text: openpyxl would take "=..." for a formula
        cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        cell.data_type = "s"
        return cell
    if isinstance(value, dt.datetime):
        return instant(value)
    if isinstance(value, dt.date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def xlsx_response(headers: list[str], rows: Iterable[list], filename: str) -> FileResponse:
    """The rows as an XLSX workbook written row by row (openpyxl write-only mode) into a
    temporary file, then sent from that file."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=filename.rsplit(".", 1)[0][:31] or "export")
    sheet.append(headers)
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by FileResponse
    workbook.save(output)
    output.seek(0)
    return FileResponse(
        output,
        as_attachment=True,
        filename=filename,
        content_type=XLSX.CONTENT_TYPE,
    )


class StreamingExportMixin(ExportMixin):
    """The library's "Export" page and direct `export.csv` / `export.xlsx` links on a list, both
    for the rows the list shows with its filters and search; who may see the list may export it.

    Set `resource_classes` to the list's Resource; the links keep the list's query string.
    """

    export_form_class = SelectableFieldsExportForm
    import_export_change_list_template = "admin/billing/change_list_export.html"
    formats = (CSV, XLSX)
    export_name = ""  # file name stem, e.g. "invoices"

    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_or_change_permission(request)

    def get_urls(self) -> list:
        opts = self.model._meta
        view = self.admin_site.admin_view
        return [
            path(
                "export.csv",
                view(self.export_csv_view),
                name=f"{opts.app_label}_{opts.model_name}_export_csv",
            ),
            path(
                "export.xlsx",
                view(self.export_xlsx_view),
                name=f"{opts.app_label}_{opts.model_name}_export_xlsx",
            ),
            *super().get_urls(),
        ]

    def export_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The list as filtered and searched, as CSV."""
        return self._direct_export(request, CSV())

    def export_xlsx_view(self, request: HttpRequest) -> HttpResponse:
        """The list as filtered and searched, as XLSX."""
        return self._direct_export(request, XLSX())

    def _direct_export(self, request: HttpRequest, file_format: Format) -> HttpResponse:
        if not self.has_export_permission(request):
            raise PermissionDenied
        return self._do_file_export(file_format, request, self.get_export_queryset(request))

    def get_export_filename(self, request: HttpRequest, queryset: QuerySet, file_format) -> str:
        stem = self.export_name or str(self.model._meta.verbose_name_plural).replace(" ", "-")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        return f"{stem}-{stamp}.{file_format.get_extension()}"

    def export_rows(
        self, request: HttpRequest, queryset: QuerySet, export_form=None
    ) -> tuple[list[str], Iterator[list]]:
        """The header and the rows (read lazily, a chunk at a time) of the chosen resource."""
        resource_class = self.choose_export_resource_class(export_form, request)
        resource: Resource = resource_class(
            **self.get_export_resource_kwargs(request, export_form=export_form)
        )
        fields = self.get_export_resource_fields_from_form(export_form)
        queryset = resource.filter_export(queryset)
        headers = resource.get_export_headers(selected_fields=fields)
        rows = (
            resource.export_resource(obj, selected_fields=fields)
            for obj in resource.iter_queryset(queryset)
        )
        return headers, rows

    def _do_file_export(
        self, file_format: Format, request: HttpRequest, queryset: QuerySet, export_form=None
    ) -> HttpResponse:
        # the library's version renders the whole file in memory first
        if not self.has_export_permission(request):
            raise PermissionDenied
        headers, rows = self.export_rows(request, queryset, export_form)
        filename = self.get_export_filename(request, queryset, file_format)
        if isinstance(file_format, XLSX):
            response = xlsx_response(headers, rows, filename)
        else:
            response = csv_response(headers, rows, filename)
        post_export.send(sender=None, model=self.model)
        return response


class ListResource(Resource):
    """The columns of a list's export: declared fields only (no model introspection), named on
    the export page by `Meta.name`."""

    @classmethod
    def get_display_name(cls) -> str:
        return getattr(cls._meta, "name", None) or cls.__name__


# --- columns of a Resource ----------------------------------------------------------------------


def _follow(obj: object, attribute: str) -> object:
    for part in attribute.split("__"):
        if obj is None:
            return None
        obj = getattr(obj, part)
    return obj


def text_column(attribute: str, name: str | None = None) -> Field:
    """A text column read from `attribute` ("customer__external_id" follows relations)."""
    return Field(
        column_name=name or attribute,
        dehydrate_method=lambda obj: _follow(obj, attribute) if attribute else "",
    )


def value_column(name: str, read: Callable[[Any], object]) -> Field:
    """A column computed from the row; dates and decimals keep their type (XLSX cells)."""
    return Field(column_name=name, dehydrate_method=read)


def money_column(name: str, cents: str, currency: str = "currency") -> Field:
    """An amount of minor units `cents` as a decimal in the unit of the row's `currency`."""
    return Field(
        column_name=name,
        dehydrate_method=lambda obj: money(_follow(obj, cents), _follow(obj, currency)),
    )
