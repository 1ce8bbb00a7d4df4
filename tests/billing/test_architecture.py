"""Seams the code keeps: one outbox writer, row locks in each app's `locks.py`, no import cycle
between the modules of an app."""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("billing", "plans", "customers", "metering", "wallets", "invoicing", "integrations")
OUTBOX_MODULE = ROOT / "billing" / "outbox.py"
# Building an outbox row by hand: creating one, bulk-creating many, or instantiating the model.
OUTBOX_WRITE = re.compile(
    r"OutboxEvent\.objects\.(?:create|bulk_create|get_or_create)\b|(?<!class )OutboxEvent\("
)


def _sources() -> list[Path]:
    return sorted(
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    )


def test_only_the_outbox_module_writes_outbox_rows():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        if path != OUTBOX_MODULE
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if OUTBOX_WRITE.search(line)
    ]
    assert offenders == [], "record outbox events through billing.outbox.emit:\n" + "\n".join(
        offenders
    )


def test_row_locks_are_taken_only_in_the_locks_module_of_an_app():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        if path.name != "locks.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "select_for_update" in line or "pg_advisory" in line
    ]
    assert offenders == [], "lock through a helper of the app's locks.py:\n" + "\n".join(offenders)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # grimp also sees imports made inside functions: a cycle hidden that way still counts.
    return grimp.build_graph(*APPS, cache_dir=None)


def _cycles(graph: grimp.ImportGraph, app: str) -> list[list[str]]:
    """Strongly connected groups of two or more modules of `app` (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m == app or m.startswith(f"{app}."))
    inside = set(modules)
    edges = {
        m: sorted(x for x in graph.find_modules_directly_imported_by(m) if x in inside)
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def _describe(graph: grimp.ImportGraph, group: list[str]) -> str:
    members = set(group)
    lines = []
    for importer in group:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(str(d["line_number"]) for d in details)
            lines.append(f"  {importer} -> {imported} (line {where})")
    return "\n".join(lines)


@pytest.mark.parametrize("app", APPS)
def test_no_import_cycle_between_the_modules_of_an_app(graph, app):
    cycles = _cycles(graph, app)
    assert cycles == [], f"import cycles in {app}:\n" + "\n\n".join(
        _describe(graph, group) for group in cycles
    )
