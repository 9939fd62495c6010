"""Server-side printing: the ``meta.k8s.io/v1`` Table ``kubectl get`` asks for."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from tests.fakes.kube._model import Obj, RecordedRequest, Resource


def _wants_table(req: RecordedRequest) -> bool:
    return "as=Table" in req.headers.get("Accept", "")


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    created = dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    secs = max(0, int((dt.datetime.now(dt.UTC) - created).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _json_path(obj: Any, path: str) -> str:
    """The value at a printer column's JSONPath: ``.a.b`` steps and ``[?(@.k=="v")]`` filters."""
    for step, key, value in re.findall(r'\.([A-Za-z0-9_-]+)|\[\?\(@\.(\w+)=="([^"]*)"\)\]', path):
        if step:
            obj = obj.get(step) if isinstance(obj, dict) else None
        else:
            matches = [i for i in obj or [] if isinstance(i, dict) and i.get(key) == value]
            obj = matches[0] if matches else None
    return "" if obj is None else str(obj)


def _table(res: Resource, items: list[Obj], rv: str) -> Obj:
    """A ``meta.k8s.io/v1`` Table, the server-side printing ``kubectl get`` asks for."""
    columns = ["Name"]
    extra: dict[str, Any] = {
        "Deployment": (
            ["Ready", "Up-to-date", "Available"],
            lambda o: [
                f"{o.get('status', {}).get('readyReplicas', 0)}/{o['spec'].get('replicas', 1)}",
                o.get("status", {}).get("updatedReplicas", 0),
                o.get("status", {}).get("availableReplicas", 0),
            ],
        ),
        "Secret": (["Type", "Data"], lambda o: [o.get("type", ""), len(o.get("data") or {})]),
        "ConfigMap": (
            ["Data"],
            lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})],
        ),
        "Namespace": (["Status"], lambda o: [o.get("status", {}).get("phase", "")]),
    }
    names, cells = extra.get(res.kind, ([], lambda o: []))
    if res.printer_columns:
        names = [name for name, _ in res.printer_columns]

        def cells(o: Obj) -> list[Any]:
            return [_json_path(o, path) for _, path in res.printer_columns]

    columns += [*names, "Age"]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [
            {
                "name": c,
                "type": "integer" if c in ("Up-to-date", "Available", "Data") else "string",
                "format": "name" if c == "Name" else "",
                "description": c,
                "priority": 0,
            }
            for c in columns
        ],
        "rows": [
            {
                "cells": [
                    o["metadata"]["name"],
                    *cells(o),
                    _age(o["metadata"].get("creationTimestamp")),
                ],
                "object": copy.deepcopy(o),
            }
            for o in items
        ],
    }
