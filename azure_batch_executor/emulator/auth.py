"""SharedKey verification as the Batch service does it (docs/dev/emulator-rest.md).

Role: rebuild the string-to-sign from the received request (raw, still percent-encoded
path; received header values, a missing standard header signed as an empty line;
`parse_qs` of the raw query, names case-preserved) and compare HMAC-SHA256 signatures.
A mismatch raises 403 `AuthenticationFailed` carrying the server's string-to-sign in
`AuthenticationErrorDetail`. Every official client signs what it sends: azure-batch 15.x
(azure-core), 14.x (`batch_auth.SharedKeyAuth`, on the prepared request) and @azure/batch
(`BatchSharedKeyCredentials`: "if header without value, append a newline"; a DELETE
without a body is sent and signed without `Content-Length`).

Imports: the standard library and `exceptions`, `wire`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from . import exceptions as exc
from . import wire

SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)

MAX_CLOCK_SKEW = 15 * 60.0


def string_to_sign(
    method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], account: str
) -> str:
    """The canonical string (no trailing newline). `headers` keys: any case.

    Each of the 11 standard headers is its received value, or an empty line when it was
    not sent ("Authenticate requests to the Azure Batch service", learn.microsoft.com:
    the StringToSign lists the header values; a header not in the request contributes an
    empty string). A DELETE without `Content-Length` is therefore signed with an empty
    line, as @azure/batch signs it and as the service verifies it (a recorded bodiless
    DELETE without the header got 202: azure-sdk-for-js sdk/batch/batch-rest/recordings/
    node/job_operations_test/recording_should_delete_a_job_successfully.json).
    """
    lower = {k.lower(): v for k, v in headers.items() if v}
    method = method.upper()
    sts = method + "\n"
    sts += "\n".join(lower.get(h, "") for h in SIGNED_HEADERS) + "\n"
    for name, value in sorted((k, v) for k, v in lower.items() if k.startswith("ocp-")):
        sts += f"{name}:{value}\n"
    sts += f"/{account}{raw_path}"
    query = parse_qs(raw_query)
    for name in sorted(query):
        value = query[name][0]
        if value:
            sts += f"\n{name}:{value}"
    return sts


def sign(key_b64: str, sts: str) -> str:
    key = base64.b64decode(key_b64)
    digest = hmac.new(key, sts.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _lowercased_query_variant(raw_query: str) -> str:
    """The documented service algorithm lowercases query names; accept that form too."""
    parts = []
    for item in raw_query.split("&"):
        name, sep, value = item.partition("=")
        parts.append(name.lower() + sep + value)
    return "&".join(parts)


def verify(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    account: str,
    key_b64: str,
    *,
    now: float | None = None,
) -> None:
    """Raise `AuthenticationFailed` / `InvalidAuthenticationInfo` unless the request is signed."""
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization")
    if not auth:
        raise exc.AuthenticationFailed(
            "Server failed to authenticate the request. The Authorization header is missing; "
            "the Batch emulator accepts SharedKey (AzureNamedKeyCredential) only.",
            {"AuthenticationErrorDetail": "The Authorization header is missing."},
        )
    scheme, _, credentials = auth.partition(" ")
    name, colon, signature = credentials.strip().rpartition(":")
    if scheme != "SharedKey" or not colon or not name or not signature:
        raise exc.InvalidAuthenticationInfo(
            "The Authorization header must be 'SharedKey <account>:<signature>'; the Batch "
            "emulator accepts SharedKey (AzureNamedKeyCredential) only.",
            {"AuthenticationErrorDetail": f"Unsupported Authorization header scheme {scheme!r}."},
        )
    try:
        base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise exc.InvalidAuthenticationInfo(
            "The signature in the Authorization header is not valid base64.",
            {"AuthenticationErrorDetail": "The signature is not valid base64."},
        ) from None
    if name != account:
        raise exc.AuthenticationFailed(
            values={"AuthenticationErrorDetail": f"The account {name!r} in the Authorization "
                    f"header is not this emulator's account {account!r}."}
        )
    date_value = lower.get("ocp-date") or lower.get("date")
    if not date_value:
        raise exc.AuthenticationFailed(
            values={"AuthenticationErrorDetail": "Neither ocp-date nor Date header was sent."}
        )
    sent = wire.parse_rfc1123(date_value)
    current = time.time() if now is None else now
    if sent is None or abs(current - sent) > MAX_CLOCK_SKEW:
        raise exc.AuthenticationFailed(
            values={"AuthenticationErrorDetail": f"Request date header {date_value!r} is invalid "
                    "or more than 15 minutes away from the server time."}
        )
    sts = string_to_sign(method, raw_path, raw_query, headers, account)
    expected = sign(key_b64, sts)
    if hmac.compare_digest(expected, signature):
        return
    alt = string_to_sign(method, raw_path, _lowercased_query_variant(raw_query), headers, account)
    if alt != sts and hmac.compare_digest(sign(key_b64, alt), signature):
        return
    raise exc.AuthenticationFailed(
        values={"AuthenticationErrorDetail": "The MAC signature found in the HTTP request "
                f"'{signature}' is not the same as any computed signature. Server used following "
                f"string to sign: '{sts}'."}
    )
