"""The router's proof: what it covers, how old it may be, key rotation, where keys come from."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import ConfigError
from core.security.router_proof import (
    PROOF_HEADER,
    ProofRefused,
    ProofVerifier,
    RouterSigner,
    signing_keys,
)

OLD_KEY = "old-key-" + "o" * 40
NEW_KEY = "new-key-" + "n" * 40
BODY = b'{"query":"{ _entities(representations: $r) { __typename } }"}'
CLIENT = {"x-forwarded-for": "198.51.100.7", "user-agent": "phone/1.0"}


def _check(
    verifier: ProofVerifier,
    proof: dict[str, str],
    *,
    method: str = "POST",
    path: str = "/graphql",
    body: bytes = BODY,
    client: dict[str, str] = CLIENT,
) -> None:
    pending = verifier.check_header(proof[PROOF_HEADER])
    verifier.verify(pending, method, path, hashlib.sha256(body).hexdigest(), client)


def test_a_signed_request_verifies_and_every_part_is_covered() -> None:
    proof = RouterSigner(NEW_KEY).headers("POST", "/graphql", BODY, CLIENT)
    verifier = ProofVerifier([NEW_KEY])
    _check(verifier, proof)
    tampered = {
        "method": {"method": "GET"},
        "path": {"path": "/graphql?x=1"},
        "body": {"body": BODY.replace(b"__typename", b"email")},
        "address": {"client": {**CLIENT, "x-forwarded-for": "203.0.113.1"}},
        "agent": {"client": {**CLIENT, "user-agent": "forged/1"}},
        "no client": {"client": {}},
    }
    for change in tampered.values():
        with pytest.raises(ProofRefused, match="does not match"):
            _check(verifier, proof, **change)  # type: ignore[arg-type]


def test_missing_malformed_foreign_and_stale_proofs_are_refused() -> None:
    verifier = ProofVerifier([NEW_KEY], max_age_seconds=30)
    for header in (None, "", "v1", "v2.abc.1.mac", "v1.abc.notanumber.mac", "v1.a.b.c.d"):
        with pytest.raises(ProofRefused):
            verifier.check_header(header)
    foreign = RouterSigner("someone-else-" + "x" * 40).headers("POST", "/graphql", BODY, CLIENT)
    with pytest.raises(ProofRefused, match="unknown key"):
        verifier.check_header(foreign[PROOF_HEADER])
    signer = RouterSigner(NEW_KEY)
    version, kid, _, mac = signer.headers("POST", "/graphql", BODY, CLIENT)[PROOF_HEADER].split(".")
    for moment in (time.time() - 31, time.time() + 31):
        with pytest.raises(ProofRefused, match="expired"):
            verifier.check_header(f"{version}.{kid}.{int(moment)}.{mac}")


def test_both_keys_verify_during_a_rotation() -> None:
    # Step 1: every subgraph accepts both keys while the routers still sign with the old one.
    during = ProofVerifier([NEW_KEY, OLD_KEY])
    _check(during, RouterSigner(OLD_KEY).headers("POST", "/graphql", BODY, CLIENT))
    # Step 2: the routers sign with the new key.
    _check(during, RouterSigner(NEW_KEY).headers("POST", "/graphql", BODY, CLIENT))
    # Step 3: the old key is gone and no longer accepted.
    after = ProofVerifier([NEW_KEY])
    with pytest.raises(ProofRefused, match="unknown key"):
        _check(after, RouterSigner(OLD_KEY).headers("POST", "/graphql", BODY, CLIENT))


def test_production_refuses_to_start_without_keys(settings: Settings) -> None:
    production = settings.replace(APP_ENV="production", SUBGRAPH_SIGNING_KEYS="")
    with pytest.raises(ConfigError, match="SUBGRAPH_SIGNING_KEYS"):
        RouterSigner.from_settings(production)
    with pytest.raises(ConfigError, match="SUBGRAPH_SIGNING_KEYS"):
        ProofVerifier.from_settings(production)
    configured = production.replace(SUBGRAPH_SIGNING_KEYS=f"{NEW_KEY},{OLD_KEY}")
    assert signing_keys(configured) == [NEW_KEY, OLD_KEY]
    with pytest.raises(ConfigError, match="SUBGRAPH_SIGNING_KEYS"):
        settings.replace(SUBGRAPH_SIGNING_KEYS="short")


def test_development_generates_one_key_every_process_shares(
    settings: Settings, tmp_path: Path
) -> None:
    development = settings.replace(
        APP_ENV="development", SUBGRAPH_SIGNING_KEYS="", DEVSTACK_DIR=str(tmp_path)
    )
    first, again = signing_keys(development), signing_keys(development)
    assert first == again
    assert len(first[0]) >= 32
    key_file = tmp_path / "keys" / "subgraph-signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # A router and a subgraph of the same stack agree without any configuration.
    proof = RouterSigner.from_settings(development).headers("POST", "/graphql", BODY, CLIENT)
    _check(ProofVerifier.from_settings(development), proof)
