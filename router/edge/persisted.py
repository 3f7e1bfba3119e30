"""Persisted documents: automatic persisted queries (Apollo's APQ protocol, kept in Redis with
a small in-process cache in front) and the trusted-documents allow-list mode."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import ConfigError
from router.protocols import OperationRequest

log = logging.getLogger("unityplan.router.edge")

_LOCAL_DOCUMENTS = 1000


class PersistedQueryError(Exception):
    """An APQ or trusted-documents refusal, answered as a GraphQL error with its code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = [{"message": message, "extensions": {"code": code}}]


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def _requested_hash(request: OperationRequest) -> str | None:
    persisted = (request.extensions or {}).get("persistedQuery")
    if not isinstance(persisted, dict):
        return None
    if persisted.get("version") != 1:
        raise PersistedQueryError("Unsupported persisted query version", "BAD_REQUEST")
    found = persisted.get("sha256Hash")
    if not isinstance(found, str) or not found:
        raise PersistedQueryError("`persistedQuery` needs a `sha256Hash`", "BAD_REQUEST")
    return found.lower()


class AutomaticPersistedQueries:
    """Hash -> document in Redis for `ttl_seconds` (without Redis: in this process only); a
    miss asks the client to send the text."""

    def __init__(self, redis: Redis | None, prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = f"{prefix}router:apq:"
        self.ttl_seconds = ttl_seconds
        # Hot documents skip the Redis round trip; bounded by dropping all when full.
        self._local: dict[str, str] = {}

    async def resolve(self, request: OperationRequest) -> OperationRequest:
        """The request with its document: looked up by hash, or registered under it."""
        wanted = _requested_hash(request)
        if wanted is None:
            return request
        if request.query:
            if sha256_hex(request.query) != wanted:
                raise PersistedQueryError(
                    "provided sha does not match query", "PERSISTED_QUERY_HASH_MISMATCH"
                )
            if self._local.get(wanted) is None:
                if self.redis is None:
                    self._remember(wanted, request.query)
                    return request
                try:
                    await self.redis.set(self.prefix + wanted, request.query, ex=self.ttl_seconds)
                except RedisError as exc:  # the text is here: run it, register it later
                    log.warning("APQ registration failed: %s", exc)
                    return request
                self._remember(wanted, request.query)
            return request
        document = self._local.get(wanted)
        if document is None and self.redis is None:
            raise PersistedQueryError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
        if document is None:
            assert self.redis is not None
            try:
                stored = await self.redis.get(self.prefix + wanted)
            except RedisError as exc:  # the client sends the text next, as after any miss
                log.warning("APQ lookup failed: %s", exc)
                stored = None
            if stored is None:
                raise PersistedQueryError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            document = stored.decode() if isinstance(stored, bytes) else str(stored)
            self._remember(wanted, document)
        return replace(request, query=document)

    def _remember(self, digest: str, document: str) -> None:
        if len(self._local) >= _LOCAL_DOCUMENTS:
            self._local.clear()
        self._local[digest] = document


class TrustedDocuments:
    """Only the documents of a manifest run: by hash (APQ-style extension) or by exact text."""

    def __init__(self, documents: dict[str, str]) -> None:
        self.by_hash = {h.lower(): d for h, d in documents.items()}
        self.texts = frozenset(self.by_hash.values())

    @classmethod
    def load(cls, path: str) -> TrustedDocuments:
        """A manifest `{"<sha256>": "<document>"}` or Apollo's persisted query manifest."""
        try:
            raw: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"ROUTER_TRUSTED_DOCUMENTS_PATH: cannot read {path}: {exc}") from exc
        if isinstance(raw, dict) and isinstance(raw.get("operations"), list):
            raw = {op["id"]: op["body"] for op in raw["operations"]}
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            raise ConfigError("ROUTER_TRUSTED_DOCUMENTS_PATH: expected {hash: document}")
        return cls(raw)

    def resolve(self, request: OperationRequest) -> OperationRequest:
        wanted = _requested_hash(request)
        if wanted is not None:
            document = self.by_hash.get(wanted)
            if document is None or (request.query and request.query != document):
                raise PersistedQueryError(
                    "This document is not a trusted document", "PERSISTED_QUERY_NOT_IN_LIST"
                )
            return replace(request, query=document)
        if request.query in self.texts:
            return request
        raise PersistedQueryError(
            "Only trusted documents are accepted by this router", "PERSISTED_QUERY_NOT_IN_LIST"
        )
