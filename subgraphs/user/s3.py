"""An S3-compatible `BlobStore` (AWS S3, MinIO, Ceph, ...): path-style requests signed with
AWS Signature Version 4, over the service's async HTTP client.

Configured by one URL, `s3+https://ACCESS_KEY:SECRET@host[:port]/bucket[/prefix]?region=eu-1`
(`s3+http://` for a local MinIO); the credentials may be percent-encoded.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.etree import ElementTree

import httpx

from core.errors import ConfigError

_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _uri_encode(value: str, *, keep_slash: bool) -> str:
    return quote(value, safe="/-_.~" if keep_slash else "-_.~")


class S3BlobStore:
    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        prefix: str,
        region: str,
        access_key: str,
        secret_key: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._host = urlsplit(self._endpoint).netloc
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._client = client or httpx.AsyncClient(timeout=10.0)

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        parts = urlsplit(url)
        if parts.scheme not in ("s3+http", "s3+https") or not parts.hostname:
            raise ConfigError("AVATAR_STORAGE_URL: expected s3+https://KEY:SECRET@host/bucket")
        bucket, _, prefix = parts.path.lstrip("/").partition("/")
        if not bucket or not parts.username or not parts.password:
            raise ConfigError("AVATAR_STORAGE_URL: needs credentials and a bucket")
        region = parse_qs(parts.query).get("region", ["us-east-1"])[0]
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(
            endpoint=f"{parts.scheme.removeprefix('s3+')}://{host}",
            bucket=bucket,
            prefix=prefix,
            region=region,
            access_key=unquote(parts.username),
            secret_key=unquote(parts.password),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _object(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    async def put(self, key: str, data: bytes) -> None:
        response = await self._request("PUT", self._object(key), body=data)
        response.raise_for_status()

    async def get(self, key: str) -> bytes | None:
        response = await self._request("GET", self._object(key))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.content

    async def keys(self, prefix: str) -> list[str]:
        listed: list[str] = []
        token: str | None = None
        strip = len(self._object(""))
        while True:
            query = {"list-type": "2", "prefix": self._object(prefix)}
            if token:
                query["continuation-token"] = token
            response = await self._request("GET", "", query=query)
            response.raise_for_status()
            root = ElementTree.fromstring(response.content)  # noqa: S314 - our storage
            listed += [(element.text or "")[strip:] for element in root.iter(f"{_S3_NS}Key")]
            truncated = root.findtext(f"{_S3_NS}IsTruncated") == "true"
            token = root.findtext(f"{_S3_NS}NextContinuationToken")
            if not truncated or not token:
                return sorted(listed)

    async def delete_prefix(self, prefix: str) -> None:
        for key in await self.keys(prefix + "/"):
            response = await self._request("DELETE", self._object(key))
            if response.status_code not in (200, 204, 404):
                response.raise_for_status()

    async def _request(
        self, method: str, key: str, *, body: bytes = b"", query: dict[str, str] | None = None
    ) -> httpx.Response:
        path = "/" + self._bucket + ("/" + key if key else "")
        headers, canonical_path, canonical_query = self.sign(
            method, path, query or {}, body, datetime.now(UTC)
        )
        url = self._endpoint + canonical_path + (f"?{canonical_query}" if canonical_query else "")
        return await self._client.request(method, url, content=body or None, headers=headers)

    def sign(
        self, method: str, path: str, query: dict[str, str], body: bytes, now: datetime
    ) -> tuple[dict[str, str], str, str]:
        """Signature V4 headers of a request: (headers, encoded path, encoded query)."""
        canonical_path = _uri_encode(path, keep_slash=True)
        canonical_query = "&".join(
            f"{_uri_encode(k, keep_slash=False)}={_uri_encode(v, keep_slash=False)}"
            for k, v in sorted(query.items())
        )
        payload_hash = hashlib.sha256(body).hexdigest()
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "host": self._host,
            "x-amz-content-sha256": payload_hash,
            "x-amz-date": amz_date,
        }
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                canonical_path,
                canonical_query,
                "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
                signed,
                payload_hash,
            ]
        )
        scope = f"{now:%Y%m%d}/{self._region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(self._signing_key(f"{now:%Y%m%d}"), to_sign.encode(), "sha256")
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature.hexdigest()}"
        )
        return headers, canonical_path, canonical_query

    def _signing_key(self, day: str) -> bytes:
        key = ("AWS4" + self._secret_key).encode()
        for part in (day, self._region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), "sha256").digest()
        return key
