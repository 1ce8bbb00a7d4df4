"""The tier table of graduated, volume and graduated percentage charges: one row per tier (from,
to, price or rate, flat fee) instead of typed lines.

The widget reads and writes the same text the form has always parsed (`from-to: price + flat`,
one tier per line; `parse_tiers` in plans/admin/plans.py), so the validation and the services
are unchanged; a POST carrying that text directly (scripts, older forms) still works.
"""

from __future__ import annotations

import re

from django import forms
from django.forms.utils import flatatt
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.widgets import INPUT_CLASSES

_LINE = re.compile(
    r"^(?P<low>[^-\s:]*)\s*-\s*(?P<high>[^:\s]*)\s*:\s*(?P<price>[^\s+%]*)\s*%?\s*"
    r"(?:\+\s*(?P<flat>\S*))?$"
)
COLUMNS = ("from", "to", "price", "flat")

# Adds a row by copying the table's last row (its inputs carry the inline's real names) and
# removes a row, keeping one. Without JavaScript one empty row is always offered.
_SCRIPT = """<script>
(function () {
  if (window.billingTierTable) { return; }
  window.billingTierTable = true;
  document.addEventListener('click', function (event) {
    var add = event.target.closest && event.target.closest('[data-tier-add]');
    var remove = event.target.closest && event.target.closest('[data-tier-remove]');
    if (add) {
      event.preventDefault();
      var body = add.closest('.tier-table').querySelector('tbody');
      var last = body.querySelector('tr:last-child');
      var row = last.cloneNode(true);
      row.querySelectorAll('input').forEach(function (input) { input.value = ''; });
      var from = row.querySelector('input[name$="-from"]');
      var previousTo = last.querySelector('input[name$="-to"]');
      if (from && previousTo) { from.value = previousTo.value; }
      body.appendChild(row);
    } else if (remove) {
      event.preventDefault();
      var rows = remove.closest('tbody').querySelectorAll('tr');
      var row = remove.closest('tr');
      if (rows.length > 1) { row.remove(); }
      else { row.querySelectorAll('input').forEach(function (input) { input.value = ''; }); }
    }
  });
})();
</script>"""


def rows_from_text(text: str) -> list[dict[str, str]]:
    """Typed tier lines -> table rows (unreadable lines are kept whole in the `from` cell, so
    the form shows them back with its error instead of dropping them)."""
    rows = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        if match is None:
            rows.append({"from": line.strip(), "to": "", "price": "", "flat": ""})
            continue
        rows.append(
            {
                "from": match["low"],
                "to": "" if match["high"] in ("inf", "∞") else match["high"],
                "price": match["price"],
                "flat": match["flat"] or "",
            }
        )
    return rows


def text_from_rows(rows: list[dict[str, str]]) -> str:
    """Table rows -> the tier lines the form parses; blank rows are left out."""
    lines = []
    for row in rows:
        if not any(row[column].strip() for column in COLUMNS):
            continue
        low, high = row["from"].strip(), row["to"].strip()
        price, flat = row["price"].strip(), row["flat"].strip() or "0"
        lines.append(f"{low}-{high}: {price} + {flat}")
    return "\n".join(lines)


class TierTableWidget(forms.Widget):
    """Tiers as a table: From, To (blank: no limit), Price per unit or rate, Flat fee."""

    headers = ("From", "To (blank: ∞)", "Price per unit / rate %", "Flat fee")

    def value_from_datadict(self, data, files, name: str) -> str | None:
        columns = {column: data.getlist(f"{name}-{column}") for column in COLUMNS}
        if not any(columns.values()):
            return data.get(name)  # the tier text itself
        count = max(len(values) for values in columns.values())
        rows = [
            {column: (columns[column][i] if i < len(columns[column]) else "") for column in COLUMNS}
            for i in range(count)
        ]
        return text_from_rows(rows)

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return name not in data and f"{name}-from" not in data

    def render(self, name: str, value: str | None, attrs=None, renderer=None) -> str:
        rows = rows_from_text(value or "") or [dict.fromkeys(COLUMNS, "")]
        input_classes = " ".join(INPUT_CLASSES)
        body = format_html_join(
            "",
            '<tr>{}<td><button type="button" class="tier-remove" data-tier-remove '
            'title="Remove this tier">✕</button></td></tr>',
            (
                (
                    mark_safe(
                        "".join(
                            f'<td><input type="text" name="{escape(name)}-{column}" '
                            f'value="{escape(row[column])}" class="{input_classes}" '
                            f'inputmode="decimal" aria-label="{escape(header)}"></td>'
                            for column, header in zip(COLUMNS, self.headers, strict=True)
                        )
                    ),
                )
                for row in rows
            ),
        )
        head = format_html_join("", "<th>{}</th>", ((header,) for header in self.headers))
        final_attrs = self.build_attrs(self.attrs, attrs or {})
        final_attrs.pop("name", None)
        return format_html(
            '<div class="tier-table"{}><table><thead><tr>{}<th></th></tr></thead>'
            "<tbody>{}</tbody></table>"
            '<button type="button" class="tier-add" data-tier-add>+ Add a tier</button>'
            "</div>{}",
            flatatt(final_attrs),
            head,
            body,
            mark_safe(_SCRIPT),
        )
