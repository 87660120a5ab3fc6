"""NVIDIA confidential-computing evidence: the token NVIDIA's attestation service (NRAS) signs.

On a GPU in CC mode the job asks the NVIDIA Attestation SDK for the GPU's signed attestation
report, with `sdk_nonce(nonce)` as its nonce, and has NRAS appraise it; NRAS answers with an
EAT (JWT, ES384) signed by NVIDIA. The verifier here checks that token offline: signature
against NVIDIA's JWKS (`NVIDIA_ATTESTATION_JWKS_URL`), issuer, the overall result, and that the
nonce is ours. This is the only check in the platform whose root of trust is the vendor's,
hence the `vendor-verified` assurance level.

No GPU here was in CC mode: the tests use constructed tokens signed by a test key (labelled
so in the fixtures), which exercises this code but not NVIDIA's own service.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from typing import Any

import jwt

DEFAULT_JWKS_URL = "https://nras.attestation.nvidia.com/.well-known/jwks.json"
DEFAULT_ISSUER = "https://nras.attestation.nvidia.com"
ALGORITHMS = ["ES384", "ES256"]


def sdk_nonce(nonce: str) -> str:
    """The SDK wants 32 bytes of hex: derived from our nonce, so NVIDIA's report is bound to it."""
    return hashlib.sha256(b"lotabots-nvidia-nonce\x00" + nonce.encode()).hexdigest()


@cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def reset() -> None:
    _jwks_client.cache_clear()


def verify(cc_evidence: dict[str, Any], nonce: str, device_uuid: str | None) -> tuple[bool, str]:
    """(verified, detail) for the NRAS token in `cc_evidence["overall"]`."""
    token = cc_evidence.get("overall")
    if not isinstance(token, str) or len(token) > 64_000:
        return False, "no NRAS token in the NVIDIA evidence"
    url = os.environ.get("NVIDIA_ATTESTATION_JWKS_URL", DEFAULT_JWKS_URL)
    issuer = os.environ.get("NVIDIA_ATTESTATION_ISSUER", DEFAULT_ISSUER)
    try:
        key = _jwks_client(url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            issuer=issuer,
            options={"require": ["iss", "iat", "exp"], "verify_aud": False},
        )
    except jwt.PyJWKClientError as exc:
        return False, f"NVIDIA keys unavailable or unknown kid: {exc}"
    except jwt.PyJWTError as exc:
        return False, f"NRAS token rejected: {type(exc).__name__}: {exc}"
    if claims.get("x-nvidia-overall-att-result") is not True:
        return False, "NRAS did not affirm the GPU (x-nvidia-overall-att-result is not true)"
    if claims.get("eat_nonce") != sdk_nonce(nonce):
        return False, "NRAS token answers another nonce"
    return True, f"NRAS affirmed the GPU{f' {device_uuid}' if device_uuid else ''} (issuer {issuer})"
