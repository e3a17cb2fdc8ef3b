"""Who may call the API: the source-address allowlist and the bearer-token (JWT) verifier.

``AddressPolicy`` decides the client's address (the TCP peer, or the ``X-Forwarded-For``
entry a trusted proxy vouches for) and whether it is allowed. ``TokenVerifier`` checks a
JWT with PyJWT: signature, ``exp`` (required), ``nbf``, ``iat``, ``sub`` (required: it owns
the caller's results), and ``aud``/``iss`` when they are configured. The algorithm comes
from the configured key, never from the token's header (RFC 8725 §3.1): a shared secret
verifies HS256, an RSA public key RS256, an EC key ES256/ES384/ES512 by its curve.

Sources: RFC 7519 (JWT), RFC 6750 (bearer tokens, ``WWW-Authenticate`` errors), RFC 8693 §4.2
(the space-separated ``scope`` claim), RFC 7239 / MDN's X-Forwarded-For (right-most
untrusted entry).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.errors import ConfigError
from narrate.config.settings import APISettings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MIN_HS256_SECRET_BYTES = 32  # RFC 7518 §3.2: a key of the same size as the hash output


def parse_networks(text: str, setting: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses and CIDR blocks (IPv4 and IPv6) as networks.

    Args:
        text: e.g. ``"127.0.0.1, 10.0.0.0/8, ::1, 2001:db8::/32"``; empty gives ``()``.
        setting: the setting's name, for the error message.

    Returns:
        The networks; a single address is a /32 (IPv4) or /128 (IPv6) network.

    Raises:
        ConfigError: an item is not an address or a CIDR block.
    """
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{setting}: {item!r} is not an IP address or CIDR block") from exc
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address from a peer or header value (IPv4-mapped IPv6 unwrapped, zone dropped).

    Args:
        text: ``"192.0.2.1"``, ``"192.0.2.1:443"``, ``"[2001:db8::1]:443"``, ``"fe80::1%eth0"``.

    Returns:
        The address, or None when ``text`` is not one.
    """
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:443" as some proxies write it
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:5678"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _inside(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


@dataclass(frozen=True)
class AddressPolicy:
    """The allowlist (empty = everyone) and the proxies whose ``X-Forwarded-For`` counts."""

    allow: tuple[IPNetwork, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, api: APISettings) -> AddressPolicy:
        """The policy of ``NARRATE_API_ALLOW_IPS`` and ``NARRATE_API_TRUSTED_PROXIES``.

        Args:
            api: the ``NARRATE_API_*`` settings.

        Returns:
            The policy.

        Raises:
            ConfigError: an entry is not an address or a CIDR block.
        """
        return cls(
            parse_networks(api.allow_ips, "NARRATE_API_ALLOW_IPS"),
            parse_networks(api.trusted_proxies, "NARRATE_API_TRUSTED_PROXIES"),
        )

    def client_address(self, peer: str | None, forwarded_for: Sequence[str]) -> IPAddress | None:
        """The caller's address: the TCP peer, unless the peer is a trusted proxy.

        Behind trusted proxies the ``X-Forwarded-For`` entries are read from the right and
        the first one that is not itself a trusted proxy is the client (entries further
        left were written by the client and prove nothing).

        Args:
            peer: the TCP peer's address (ASGI ``scope["client"][0]``).
            forwarded_for: the values of every ``X-Forwarded-For`` header, in order.

        Returns:
            The address, or None when it cannot be told (no peer, a garbled entry).
        """
        address = parse_address(peer) if peer else None
        if address is None or not _inside(address, self.trusted_proxies):
            return address
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            hop_address = parse_address(hop)
            if hop_address is None:
                return None
            if not _inside(hop_address, self.trusted_proxies):
                return hop_address
            address = hop_address
        return address  # every hop was a trusted proxy: the left-most one

    def allows(self, address: IPAddress | None) -> bool:
        """Whether ``address`` may call.

        Args:
            address: the client's address (``client_address``); None when unknown.

        Returns:
            True when it is inside the allowlist, or the allowlist is empty.
        """
        if not self.allow:
            return True
        return address is not None and _inside(address, self.allow)


# -- bearer tokens --------------------------------------------------------------------------


class AuthError(Exception):
    """A request's token is missing, bad, or lacks a scope; ``status`` is 401 or 403."""

    def __init__(
        self, status: int, detail: str, *, error: str | None = None, scope: str = ""
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error  # RFC 6750 §3.1: invalid_request | invalid_token | insufficient_scope
        self.scope = scope

    @property
    def www_authenticate(self) -> str:
        """The ``WWW-Authenticate`` value (RFC 6750 §3)."""
        value = 'Bearer realm="narrate"'
        if self.error:
            text = self.detail.replace("\\", "").replace('"', "'")
            value += f', error="{self.error}", error_description="{text}"'
        if self.scope:
            value += f', scope="{self.scope}"'
        return value


@dataclass(frozen=True)
class Caller:
    """Who made a request, from a verified token (or ``local`` when tokens are off)."""

    subject: str
    issuer: str | None = None
    scopes: frozenset[str] | None = None  # None: the token carries no scope claim

    @property
    def owner(self) -> str:
        """The key results are stored under: issuer and subject."""
        issuer = self.issuer or ""
        return f"{len(issuer)}:{issuer}{self.subject}"  # length-prefixed: no two pairs clash

    def require(self, scope: str) -> None:
        """Fail unless the token allows ``scope`` (a token without scopes allows all).

        Args:
            scope: ``describe`` or ``ask``.

        Raises:
            AuthError: 403 ``insufficient_scope``.
        """
        if self.scopes is not None and scope not in self.scopes:
            have = " ".join(sorted(self.scopes)) or "none"
            raise AuthError(
                403,
                f"the token's scopes ({have}) do not include {scope!r}",
                error="insufficient_scope",
                scope=scope,
            )


LOCAL_CALLER = Caller(subject="local")


def _scopes(claims: dict[str, Any]) -> frozenset[str] | None:
    """Scopes from ``scope`` (space-separated, RFC 8693), ``scp`` or ``scopes`` (lists)."""
    for name in ("scope", "scp", "scopes"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list | tuple):
            return frozenset(str(v) for v in value)
        raise AuthError(401, f"the token's {name!r} claim is malformed", error="invalid_token")
    return None


def _key_algorithms(key: Any) -> list[str]:
    """The JWS algorithm a public key verifies (RFC 7518 §3.1)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return ["RS256"]
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name not in by_curve:
            raise ConfigError(f"NARRATE_API_JWT_PUBLIC_KEY: unsupported EC curve {key.curve.name}")
        return [by_curve[key.curve.name]]
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ["EdDSA"]
    raise ConfigError("NARRATE_API_JWT_PUBLIC_KEY: need an RSA, EC or Ed25519 public key")


def load_public_key(path: Path) -> Any:
    """A PEM public key (or the key of a PEM certificate) from ``path``.

    Args:
        path: the PEM file (``NARRATE_API_JWT_PUBLIC_KEY``).

    Returns:
        A ``cryptography`` public key object.

    Raises:
        ConfigError: the file is missing or holds no public key.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"NARRATE_API_JWT_PUBLIC_KEY: cannot read {path} ({exc})") from exc
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        return serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(
            f"NARRATE_API_JWT_PUBLIC_KEY: {path} holds no PEM public key or certificate"
        ) from exc


class TokenVerifier:
    """Verifies bearer JWTs with one key; ``verify(token)`` gives the ``Caller``."""

    def __init__(
        self,
        key: Any,
        algorithms: Sequence[str],
        *,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_s: float = 30.0,
    ) -> None:
        self._key = key
        self.algorithms = list(algorithms)
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s

    def __repr__(self) -> str:  # never the key
        return f"TokenVerifier(algorithms={self.algorithms}, audience={self.audience!r})"

    @classmethod
    def from_settings(cls, api: APISettings) -> TokenVerifier | None:
        """The verifier the settings configure, or None when tokens are off.

        Args:
            api: the ``NARRATE_API_*`` settings.

        Returns:
            The verifier, or None without ``jwt_secret`` and ``jwt_public_key``.

        Raises:
            ConfigError: both a secret and a public key are set, the secret is shorter than
                32 bytes, or the key file is unusable.
        """
        if api.jwt_secret is not None and api.jwt_public_key is not None:
            raise ConfigError(
                "set NARRATE_API_JWT_SECRET (HS256) or NARRATE_API_JWT_PUBLIC_KEY "
                "(RS256/ES256), not both"
            )
        aud, iss, leeway = api.jwt_audience, api.jwt_issuer, api.jwt_leeway_s
        if api.jwt_secret is not None:
            secret = api.jwt_secret.get_secret_value().encode()
            if len(secret) < MIN_HS256_SECRET_BYTES:
                raise ConfigError(
                    f"NARRATE_API_JWT_SECRET is {len(secret)} bytes; HS256 needs at least "
                    f"{MIN_HS256_SECRET_BYTES} (e.g. python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))')"
                )
            return cls(secret, ["HS256"], audience=aud, issuer=iss, leeway_s=leeway)
        if api.jwt_public_key is not None:
            key = load_public_key(api.jwt_public_key)
            return cls(key, _key_algorithms(key), audience=aud, issuer=iss, leeway_s=leeway)
        return None

    def verify(self, token: str) -> Caller:
        """Check ``token`` and return who it speaks for.

        Args:
            token: the compact JWS (``header.payload.signature``).

        Returns:
            The caller: ``sub``, ``iss`` and the scopes, if the token carries any.

        Raises:
            AuthError: 401 ``invalid_token`` with a one-line reason.
        """
        import jwt

        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(401, _token_reason(exc, self), error="invalid_token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthError(401, "the token's 'sub' claim is empty", error="invalid_token")
        issuer = claims.get("iss")
        return Caller(subject, issuer if isinstance(issuer, str) else None, _scopes(claims))


def _token_reason(exc: Exception, verifier: TokenVerifier) -> str:
    """One line on why PyJWT refused a token (never the token itself)."""
    import jwt

    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired; get a new one"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (nbf/iat in the future)"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the token is not for this audience (expected aud {verifier.audience!r})"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"the token is from another issuer (expected iss {verifier.issuer!r})"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim!r} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"the token is not signed with {'/'.join(verifier.algorithms)}"
    if isinstance(exc, jwt.DecodeError):
        return "the bearer value is not a well-formed JWT"
    return f"the token is invalid ({type(exc).__name__})"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header.

    Args:
        authorization: the header's value, or None when it is missing.

    Returns:
        The token.

    Raises:
        AuthError: 401 when the header is missing or not a bearer credential.
    """
    if not authorization:
        raise AuthError(401, "this API needs an access token: send 'Authorization: Bearer <JWT>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(
            401, "the Authorization header must be 'Bearer <JWT>'", error="invalid_request"
        )
    return token.strip()
