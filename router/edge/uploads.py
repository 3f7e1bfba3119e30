"""GraphQL multipart requests (the multipart request spec): files read at the edge, placed in
the operation's variables, and sent on as a multipart request to the subgraph owning the field.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import multipart
import orjson

from router.protocols import HttpProblem


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file of the request, standing in the variables where the client's `map` put it."""

    filename: str
    content_type: str
    content: bytes


def read_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The request parameters (`operations`) with each mapped file in place of its null."""
    boundary = multipart.parse_options_header(content_type)[1].get("boundary")
    if not boundary:
        raise HttpProblem(400, "A multipart request needs a boundary")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    try:
        parser = multipart.MultipartParser(io.BytesIO(body), boundary, len(body))
        for part in parser:
            if part.filename is None:
                fields[part.name] = part.value
            else:
                files[part.name] = UploadedFile(
                    part.filename, part.content_type or "application/octet-stream", part.raw
                )
    except multipart.MultipartError as exc:
        raise HttpProblem(400, "The multipart request is malformed") from exc
    try:
        operations = orjson.loads(fields["operations"])
        mapping = orjson.loads(fields["map"])
    except (KeyError, orjson.JSONDecodeError) as exc:
        raise HttpProblem(400, "A multipart request needs `operations` and `map` JSON") from exc
    if not isinstance(operations, dict) or not isinstance(mapping, dict):
        raise HttpProblem(400, "Multipart `operations` and `map` must be JSON objects")
    for name, paths in mapping.items():
        if name not in files or not isinstance(paths, list):
            raise HttpProblem(400, f"Multipart `map` names a missing file '{name}'")
        for path in paths:
            _place(operations, str(path), files[name])
    return operations


def _place(operations: dict[str, Any], path: str, file: UploadedFile) -> None:
    """Put `file` at a dotted `variables.x.0` path, where the client left a null."""
    steps = path.split(".")
    if steps[0] != "variables" or len(steps) < 2:
        raise HttpProblem(400, f"Multipart `map` path '{path}' is not under `variables`")
    target: Any = operations
    for step in steps[:-1]:
        target = target[int(step)] if isinstance(target, list) else target.get(step)
        if target is None:
            raise HttpProblem(400, f"Multipart `map` path '{path}' is not in `operations`")
    last = steps[-1]
    if isinstance(target, list):
        target[int(last)] = file
    else:
        target[last] = file


def has_uploads(value: Any) -> bool:
    if isinstance(value, UploadedFile):
        return True
    if isinstance(value, Mapping):
        return any(has_uploads(v) for v in value.values())
    if isinstance(value, list):
        return any(has_uploads(v) for v in value)
    return False


def multipart_form(payload: Mapping[str, Any]) -> aiohttp.FormData:
    """The subgraph request of `payload` whose variables hold files, per the multipart spec."""
    files: list[UploadedFile] = []
    paths: dict[str, list[str]] = {}

    def strip(value: Any, path: str) -> Any:
        if isinstance(value, UploadedFile):
            paths[str(len(files))] = [path]
            files.append(value)
            return None
        if isinstance(value, Mapping):
            return {k: strip(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v, f"{path}.{i}") for i, v in enumerate(value)]
        return value

    operations = {**payload, "variables": strip(payload.get("variables") or {}, "variables")}
    form = aiohttp.FormData()
    form.add_field("operations", orjson.dumps(operations).decode(), content_type=JSON)
    form.add_field("map", orjson.dumps(paths).decode(), content_type=JSON)
    for index, file in enumerate(files):
        # A stream, not bytes: aiohttp writes big bytes bodies in one go, holding the loop.
        form.add_field(
            str(index),
            io.BytesIO(file.content),
            filename=file.filename,
            content_type=file.content_type,
        )
    return form


JSON = "application/json"
