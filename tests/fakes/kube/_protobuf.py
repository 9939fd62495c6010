"""Decoding the protobuf bodies ``kubectl create`` sends for the simple kinds."""

from __future__ import annotations

import base64
from collections.abc import Iterator

from tests.fakes.kube._model import Obj


def _pb_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Walk a protobuf message: (field number, varint value or length-delimited bytes)."""

    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            b = buf[i]
            value |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                return value, i
            shift += 7

    i = 0
    while i < len(buf):
        tag, i = varint(i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = varint(i)
            yield number, value
        elif wire == 2:
            length, i = varint(i)
            yield number, buf[i : i + length]
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield number, buf[i : i + size]
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _pb_map(entry: bytes, *, binary: bool = False) -> tuple[str, str]:
    fields = dict(_pb_fields(entry))
    key, value = fields.get(1, b""), fields.get(2, b"")
    assert isinstance(key, bytes) and isinstance(value, bytes)
    return key.decode(), base64.b64encode(value).decode() if binary else value.decode()


def _decode_protobuf(body: bytes) -> Obj:
    """Decode the ``k8s\\0`` protobuf envelope ``kubectl create`` sends, for the simple kinds
    (Namespace, Secret, ConfigMap, ServiceAccount): ObjectMeta name/generateName/namespace/
    labels/annotations and the kinds' data fields. Anything else raises ValueError."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("not a kubernetes protobuf envelope")
    unknown = dict(_pb_fields(body[4:]))
    type_meta, raw = unknown.get(1, b""), unknown.get(2, b"")
    assert isinstance(type_meta, bytes) and isinstance(raw, bytes)
    tm = {n: v.decode() for n, v in _pb_fields(type_meta) if isinstance(v, bytes)}
    obj: Obj = {"apiVersion": tm.get(1, ""), "kind": tm.get(2, "")}
    kind = obj["kind"]
    if kind not in ("Namespace", "Secret", "ConfigMap", "ServiceAccount"):
        raise ValueError(f"protobuf bodies for {kind or 'this kind'} are not supported")
    meta: Obj = {}
    for number, value in _pb_fields(raw):
        if not isinstance(value, bytes):
            if (kind, number) in (("Secret", 5), ("ConfigMap", 4)):
                obj["immutable"] = bool(value)
            continue
        if number == 1:
            for n, v in _pb_fields(value):
                if not isinstance(v, bytes):
                    continue
                if n in (1, 2, 3) and v:
                    meta[{1: "name", 2: "generateName", 3: "namespace"}[n]] = v.decode()
                elif n in (11, 12):
                    k, val = _pb_map(v)
                    meta.setdefault("labels" if n == 11 else "annotations", {})[k] = val
                elif n == 14:
                    meta.setdefault("finalizers", []).append(v.decode())
        elif kind == "Secret" and number in (2, 4):
            k, val = _pb_map(value, binary=number == 2)
            obj.setdefault("data" if number == 2 else "stringData", {})[k] = val
        elif kind == "Secret" and number == 3 and value:
            obj["type"] = value.decode()
        elif kind == "ConfigMap" and number in (2, 3):
            k, val = _pb_map(value, binary=number == 3)
            obj.setdefault("data" if number == 2 else "binaryData", {})[k] = val
    obj["metadata"] = meta
    return obj
