"""Extracts the subset of Lago's `openapi.yaml` for the operations our served document implements.

    python tests/api/lago_openapi/extract.py LAGO_YAML OUR_JSON OUT_JSON [INFO_FROM_JSON]

LAGO_YAML is `openapi.yaml` of getlago/lago-openapi at a tag; OUR_JSON is what
`/api/v1/openapi.json` serves; INFO_FROM_JSON (the current subset) gives the `info` block to keep.
Operations match by method and path shape (parameter names aside); README.md says what is kept.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

METHODS = ("get", "post", "put", "delete", "patch")
DROPPED = {"description", "summary", "externalDocs"}


def shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def clean(node: object, names: bool = False) -> object:
    """Without descriptions and extensions; `names`: a dict of property names, kept whole."""
    if isinstance(node, dict):
        return {
            key: clean(value, names=(key == "properties" and not names))
            for key, value in node.items()
            if names or (key not in DROPPED and not key.startswith("x-"))
        }
    if isinstance(node, list):
        return [clean(value) for value in node]
    return node


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def subset(lago: dict, ours: dict, info: dict) -> dict:
    implemented = {
        (method, shape(path.removeprefix("/api/v1")))
        for path, item in ours["paths"].items()
        for method in item
        if method in METHODS
    }
    paths: dict[str, dict] = {}
    for path, item in lago["paths"].items():
        for method in METHODS:
            if method not in item or (method, shape(path)) not in implemented:
                continue
            operation = item[method]
            kept = {
                key: operation[key]
                for key in ("tags", "operationId", "parameters", "requestBody")
                if key in operation
            }
            kept["responses"] = {
                code: answer
                for code, answer in operation["responses"].items()
                if str(code).startswith("2")
            }
            paths.setdefault(path, {})[method] = clean(kept)
            if item.get("parameters"):
                paths[path]["parameters"] = clean(item["parameters"])
    components = lago.get("components", {})
    kept_components: dict[str, dict] = {}
    pending = list(refs(paths))
    while pending:
        _, _, kind, name = pending.pop().split("/", 3)
        if name in kept_components.setdefault(kind, {}):
            continue
        node = clean(components[kind][name])
        kept_components[kind][name] = node
        pending.extend(refs(node))
    document = {
        "openapi": lago["openapi"],
        "info": info,
        "servers": [{"url": "/api/v1"}],
        "security": lago.get("security"),
        "paths": paths,
        "components": {
            kind: dict(sorted(v.items())) for kind, v in sorted(kept_components.items())
        },
    }
    if "securitySchemes" in components:
        document["components"]["securitySchemes"] = clean(components["securitySchemes"])
    return document


def main(argv: list[str]) -> None:
    lago = yaml.safe_load(Path(argv[1]).read_text())
    ours = json.loads(Path(argv[2]).read_text())
    if len(argv) > 4:
        info = json.loads(Path(argv[4]).read_text())["info"]
    else:
        info = {"title": lago["info"]["title"], "version": lago["info"]["version"]}
    Path(argv[3]).write_text(json.dumps(subset(lago, ours, info)))


if __name__ == "__main__":
    main(sys.argv)
