"""Compiles the document catalogs (`invoicing/locale/<lang>/LC_MESSAGES/django.po`) to the `.mo`
files Django reads, with Babel (GNU gettext's `msgfmt` is not needed on the machine)."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@dataclass(frozen=True)
class Catalog:
    po: Path
    mo: Path
    compiled: bytes

    @property
    def stale(self) -> bool:
        """The committed `.mo` is missing or differs from what its `.po` compiles to."""
        return not self.mo.exists() or self.mo.read_bytes() != self.compiled


def po_files(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/django.po"))


def compile_po(po: Path) -> bytes:
    """The `.mo` bytes of one catalog (fuzzy entries left out, as `msgfmt` does)."""
    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parent.parent.name, abort_invalid=True)
    out = BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def catalogs(locale_dir: Path = LOCALE_DIR) -> list[Catalog]:
    return [Catalog(po, po.with_suffix(".mo"), compile_po(po)) for po in po_files(locale_dir)]


def write_catalogs(items: list[Catalog]) -> list[Catalog]:
    """Writes the stale `.mo` files; returns the ones written."""
    written = [item for item in items if item.stale]
    for item in written:
        item.mo.write_bytes(item.compiled)
    return written
