"""Credentials that put an Authorization header on IdP requests.

``StaticAuthorization`` sends a fixed value (Okta's ``SSWS`` API token).
``ClientCredentials`` gets OAuth 2.0 access tokens with the client credentials
grant (RFC 6749, section 4.4), authenticating the client with a secret or with
a JWT signed by its private key (``private_key_jwt``, RFC 7523). Authlib
builds the token request and signs the JWT; the request itself goes through
``IdpHttp`` so that it is retried and rate-limited like any other. A token is
reused until shortly before it expires.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from scim_reconciler.errors import ConnectorConfigError, ConnectorUnavailableError

if TYPE_CHECKING:
    from scim_reconciler.reconcile.connectors.http import IdpHttp

ClientAuthMethod = Literal[
    "client_secret_basic", "client_secret_post", "private_key_jwt"
]

# A token is renewed this many seconds before it expires (at most half its
# lifetime), so that a request never leaves with a token about to expire.
DEFAULT_LEEWAY_SECONDS = 60.0
# Lifetime of a private_key_jwt client assertion.
ASSERTION_LIFETIME_SECONDS = 300
# Lifetime assumed when a token response has no expires_in.
DEFAULT_LIFETIME_SECONDS = 3600.0


class Authenticator(abc.ABC):
    """Produces the Authorization header value of an IdP request."""

    # Whether a new credential can be fetched after a 401.
    renewable = False

    @abc.abstractmethod
    async def authorization(self, http: IdpHttp) -> str:
        """Return the Authorization header value, fetching a token if needed."""

    def invalidate(self) -> None:  # noqa: B027 - only renewable credentials act
        """Forget a cached token, so that the next request fetches a new one."""


class StaticAuthorization(Authenticator):
    """A fixed Authorization header value, such as ``SSWS <token>``."""

    def __init__(self, value: str) -> None:
        self._value = value

    async def authorization(self, http: IdpHttp) -> str:
        return self._value

    def __repr__(self) -> str:
        return "StaticAuthorization(****)"


class ClientCredentials(Authenticator):
    """OAuth 2.0 client credentials grant with a cached access token."""

    renewable = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        *,
        method: ClientAuthMethod,
        client_secret: str | None = None,
        private_key: RSAKey | None = None,
        jwt_header: dict[str, str] | None = None,
        scope: str | None = None,
        clock: Callable[[], float],
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._clock = clock
        self._leeway = leeway_seconds
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._method = method
        self._client_secret = client_secret or ""
        self._private_key = private_key
        self._jwt_header = jwt_header
        if method == "private_key_jwt" and private_key is None:
            raise ValueError("private_key_jwt needs a private key")

    def __repr__(self) -> str:
        return f"ClientCredentials({self.token_url!r}, {self.client_id!r}, ****)"

    async def authorization(self, http: IdpHttp) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                await self._fetch(http)
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        self._token = None

    def _client_auth(self, now: float) -> Any:
        """Return Authlib's client authentication for a token request at ``now``."""
        if self._method != "private_key_jwt":
            return ClientAuth(self.client_id, self._client_secret, self._method)
        # iat and exp come from the injected clock, not Authlib's time.time().
        # The assertion is used at once, so it lives only a few minutes.
        issued = int(now)
        claims = {"iat": issued, "exp": issued + ASSERTION_LIFETIME_SECONDS}
        signer = PrivateKeyJWT(
            self.token_url, claims=claims, headers=self._jwt_header, alg="RS256"
        )
        return ClientAuth(self.client_id, self._private_key, signer)

    async def _fetch(self, http: IdpHttp) -> None:
        extra = {"scope": self.scope} if self.scope else {}
        body = prepare_token_request("client_credentials", **extra)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        requested_at = self._clock()
        _uri, headers, body = self._client_auth(requested_at).prepare(
            "POST", self.token_url, headers, body
        )
        response = await http.request_json(
            "POST",
            self.token_url,
            content=body,
            headers=headers,
            authenticated=False,
        )
        token, lifetime = _read_token(response.body, http.profile.name)
        self._token = token
        self._renew_at = requested_at + lifetime - min(self._leeway, lifetime / 2)


def _read_token(body: Any, idp_name: str) -> tuple[str, float]:
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise ConnectorUnavailableError(
            f"the {idp_name} token endpoint returned no access_token; "
            "retry later, and check the token URL if it persists"
        )
    try:
        lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME_SECONDS
    return body["access_token"], max(lifetime, 1.0)


def load_private_key(text: str, name: str) -> RSAKey:
    """Load an RSA private key given as PEM or as a JWK (JSON)."""
    try:
        if text.lstrip().startswith("{"):
            key = RSAKey.import_key(json.loads(text))
        else:
            key = RSAKey.import_key(text.encode())
    except (ValueError, JoseError) as exc:
        raise ConnectorConfigError(
            f"secret {name!r} is not an RSA private key in PEM or JWK form "
            f"({type(exc).__name__}); paste the whole key, including its BEGIN "
            "and END lines"
        ) from None
    if not key.is_private:
        raise ConnectorConfigError(
            f"secret {name!r} is a public key; the connector needs the private key"
        )
    return key


def certificate_thumbprint(pem: str, name: str) -> str:
    """Return the base64url SHA-1 thumbprint (JWS ``x5t``) of a PEM certificate."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ConnectorConfigError(
            f"secret {name!r} has no PEM certificate (-----BEGIN CERTIFICATE-----); "
            "give the certificate and its private key in one PEM text"
        ) from None
    # x5t is a SHA-1 thumbprint by definition (RFC 7515, section 4.1.7).
    digest = hashlib.sha1(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
