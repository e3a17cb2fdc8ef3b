"""Who may call: JWT verification (HS256, RS256, ES256) and the IP allowlist, on a real server.

Tokens are made with PyJWT and keys with cryptography, as an identity provider would; the
allowlist is checked with clients bound to different loopback addresses (127.0.0.2 is a
real source address on Linux's loopback interface).
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapters.errors import ConfigError
from narrate.config.settings import APISettings
from narrate.service.access import AddressPolicy, TokenVerifier, parse_networks
from tests.narrate.service.conftest import SAMPLES, SECRET, bearer, make_token

AUTH = {"NARRATE_API_JWT_SECRET": SECRET}


def _describe(url: str, headers: dict[str, str], **client_options) -> httpx.Response:
    image = (SAMPLES / "receipt_en.png").read_bytes()
    with httpx.Client(timeout=120, **client_options) as client:
        return client.post(f"{url}/v1/describe", files={"image": ("r.png", image)}, headers=headers)


def test_jwt_cases(serve_api):
    served = serve_api(
        {
            **AUTH,
            "NARRATE_API_JWT_AUDIENCE": "narrate-api",
            "NARRATE_API_JWT_ISSUER": "https://id.example",
            "NARRATE_API_JWT_LEEWAY_S": "0",
        }
    )
    claims = {"aud": "narrate-api", "iss": "https://id.example"}
    cases = {
        "none": ({}, 401, "needs an access token"),
        "not a bearer": ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "must be 'Bearer <JWT>'"),
        "garbage": (bearer("not.a.jwt"), 401, "not a well-formed JWT"),
        "wrong signature": (
            bearer(make_token(key="another-secret-0123456789abcdef-0123456789", **claims)),
            401,
            "signature does not verify",
        ),
        "expired": (bearer(make_token(lifetime_s=-10, **claims)), 401, "has expired"),
        "wrong audience": (
            bearer(make_token(aud="someone-else", iss=claims["iss"])),
            401,
            "not for this audience",
        ),
        "wrong issuer": (
            bearer(make_token(aud=claims["aud"], iss="https://evil.example")),
            401,
            "another issuer",
        ),
        "alg none": (
            bearer(
                __import__("jwt").encode(
                    {"sub": "x", "exp": 2**31, **claims}, key=None, algorithm="none"
                )
            ),
            401,
            "not signed with HS256",
        ),
        "missing scope": (
            bearer(make_token(scope="ask", **claims)),
            403,
            "do not include 'describe'",
        ),
    }
    for name, (headers, status, reason) in cases.items():
        response = _describe(served.url, headers)
        assert response.status_code == status, (name, response.text)
        assert reason in response.json()["detail"], name
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer"), name
        else:
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    good = _describe(served.url, bearer(make_token(scope="describe ask", **claims)))
    assert good.status_code == 200, good.text
    assert "TOTAL 7.20" in good.json()["ocr_text"]
    no_scope_claim = _describe(served.url, bearer(make_token(**claims)))  # no claim: all allowed
    assert no_scope_claim.status_code == 200


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_public_key_tokens(serve_api, tmp_path, kind):
    if kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        algorithm, wrong = "RS256", "ES256"
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        algorithm, wrong = "ES256", "RS256"
    pem = tmp_path / "jwt.pub.pem"
    pem.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    served = serve_api({"NARRATE_API_JWT_PUBLIC_KEY": str(pem)})
    good = _describe(served.url, bearer(make_token(key=private, algorithm=algorithm)))
    assert good.status_code == 200, good.text
    other = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    forged = _describe(served.url, bearer(make_token(key=other, algorithm=algorithm)))
    assert forged.status_code == 401 and "signature" in forged.json()["detail"]
    # the classic confusion: an HMAC token keyed with the public key's PEM text
    confused = _describe(served.url, bearer(_hs256_by_hand(pem.read_bytes())))
    assert (
        confused.status_code == 401 and f"not signed with {algorithm}" in confused.json()["detail"]
    )
    assert wrong not in confused.json()["detail"]


def _hs256_by_hand(key: bytes) -> str:
    """An HS256 token keyed with ``key`` (PyJWT itself refuses to sign with a PEM key)."""
    import base64
    import hashlib
    import hmac
    import json
    import time

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": "eve", "exp": int(time.time()) + 300}).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def test_verifier_settings_are_checked():
    with pytest.raises(ConfigError, match="at least 32"):
        TokenVerifier.from_settings(APISettings(jwt_secret="short"))
    with pytest.raises(ConfigError, match="not both"):
        TokenVerifier.from_settings(APISettings(jwt_secret=SECRET, jwt_public_key="k.pem"))
    with pytest.raises(ConfigError, match="cannot read"):
        TokenVerifier.from_settings(APISettings(jwt_public_key="/nonexistent/k.pem"))
    assert TokenVerifier.from_settings(APISettings()) is None
    verifier = TokenVerifier.from_settings(APISettings(jwt_secret=SECRET))
    assert SECRET not in repr(verifier)
    caller = verifier.verify(make_token("dave", scp=["describe"]))
    assert caller.subject == "dave" and caller.scopes == frozenset({"describe"})


def test_networks_parse_v4_v6_and_cidr():
    nets = parse_networks("127.0.0.1, 10.0.0.0/8 ,::1,2001:db8::/32,", "X")
    assert [str(n) for n in nets] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "2001:db8::/32"]
    with pytest.raises(ConfigError, match=r"X: 'example\.com' is not an IP address"):
        parse_networks("10.0.0.1, example.com", "X")


def test_address_policy_with_and_without_trusted_proxies():
    policy = AddressPolicy(
        parse_networks("192.0.2.0/24, 2001:db8::/32", "A"), parse_networks("10.0.0.0/8", "P")
    )
    ip = ipaddress.ip_address
    # a direct client: its own address, whatever X-Forwarded-For it claims
    assert policy.client_address("203.0.113.9", ["192.0.2.7"]) == ip("203.0.113.9")
    assert not policy.allows(policy.client_address("203.0.113.9", ["192.0.2.7"]))
    # through trusted proxies: the right-most address that is not a proxy
    forwarded = ["198.51.100.1, 192.0.2.7", "10.1.1.1"]  # spoofed, client, inner proxy
    assert policy.client_address("10.0.0.5", forwarded) == ip("192.0.2.7")
    assert policy.allows(ip("192.0.2.7"))
    assert policy.client_address("10.0.0.5", ["2001:db8::5"]) == ip("2001:db8::5")
    assert policy.allows(ip("2001:db8::5"))
    assert policy.client_address("::ffff:192.0.2.8", []) == ip("192.0.2.8")  # v4-mapped
    assert policy.client_address("10.0.0.5", ["garbage"]) is None
    assert not policy.allows(None)
    assert AddressPolicy().allows(ip("198.51.100.1"))  # empty allowlist: everyone


def test_allowlist_refuses_another_loopback_address(serve_api):
    served = serve_api({"NARRATE_API_ALLOW_IPS": "127.0.0.1"})
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    refused = _describe(served.url, {}, transport=other)
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "your address (127.0.0.2) is not allowed to use this server"
    )
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as client:
        assert client.get(f"{served.url}/healthz").status_code == 403  # before anything else
        spoofed = client.get(f"{served.url}/healthz", headers={"X-Forwarded-For": "127.0.0.1"})
        assert spoofed.status_code == 403  # 127.0.0.2 is no trusted proxy
    allowed = _describe(served.url, {}, transport=httpx.HTTPTransport(local_address="127.0.0.1"))
    assert allowed.status_code == 200, allowed.text


def test_allowlist_behind_a_trusted_proxy(serve_api):
    served = serve_api(
        {"NARRATE_API_ALLOW_IPS": "192.0.2.0/24", "NARRATE_API_TRUSTED_PROXIES": "127.0.0.1"}
    )
    url = f"{served.url}/healthz"
    assert httpx.get(url, headers={"X-Forwarded-For": "192.0.2.10"}).status_code == 200
    assert httpx.get(url, headers={"X-Forwarded-For": "198.51.100.4"}).status_code == 403
    assert httpx.get(url).status_code == 403  # the proxy itself is not on the allowlist


def test_allowlist_over_ipv6(serve_api):
    served = serve_api({"NARRATE_API_ALLOW_IPS": "::1/128"}, host="::1")
    assert httpx.get(f"{served.url}/healthz").status_code == 200
    served_v4 = serve_api({"NARRATE_API_ALLOW_IPS": "::1"})
    assert httpx.get(f"{served_v4.url}/healthz").status_code == 403
