"""SharedKey string-to-sign and verification, checked against the SDK's own signing policy."""

from __future__ import annotations

import base64
import os
from urllib.parse import urlencode, urlsplit

import pytest
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from azure_batch_executor.emulator import auth
from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator.wire import rfc1123

KEY = base64.b64encode(os.urandom(32)).decode()
ACCOUNT = "devbatch"


def _sdk_signed(method: str, path: str, params: dict[str, str],
                json: dict | None = None) -> tuple[str, str, dict[str, str]]:
    """What the SDK would put on the wire: (raw path, raw query, headers)."""
    url = "http://127.0.0.1:9" + path + "?" + urlencode(params)
    request = HttpRequest(method, url, json=json)
    policy = BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(ACCOUNT, KEY))
    policy.on_request(PipelineRequest(request, PipelineContext(None)))
    parts = urlsplit(request.url)
    headers = dict(request.headers)
    if method not in ("GET", "HEAD") and "Content-Length" not in headers:
        headers["Content-Length"] = "0"  # what the requests transport adds on the wire
    return parts.path, parts.query, headers


def test_documented_example_string() -> None:
    headers = {"ocp-date": "Tue, 24 Nov 2026 06:37:44 GMT"}
    sts = auth.string_to_sign("GET", "/jobs/j1/taskcounts",
                              "api-version=2025-06-01&timeOut=10", headers, "devacct")
    assert sts == ("GET\n" + "\n" * 11 + "ocp-date:Tue, 24 Nov 2026 06:37:44 GMT\n"
                   "/devacct/jobs/j1/taskcounts\napi-version:2025-06-01\ntimeOut:10")


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "PATCH", "GET"])
def test_a_missing_content_length_signs_an_empty_line(method: str) -> None:
    """As the service does, and @azure/batch signs its bodiless DELETEs."""
    sts = auth.string_to_sign(method, "/x", "", {"ocp-date": "d"}, "a")
    assert sts.split("\n")[3] == ""
    sts = auth.string_to_sign(method, "/x", "", {"ocp-date": "d", "Content-Length": "0"}, "a")
    assert sts.split("\n")[3] == "0"


def test_every_missing_standard_header_is_an_empty_line() -> None:
    sts = auth.string_to_sign("DELETE", "/x", "api-version=1", {"ocp-date": "d"}, "a")
    assert sts == "DELETE\n" + "\n" * 11 + "ocp-date:d\n/a/x\napi-version:1"


@pytest.mark.parametrize("method, path, params, body", [
    ("GET", "/jobs/j1/tasks", {"api-version": "2025-06-01", "$filter": "state eq 'active'",
                               "$select": "id,state", "maxresults": "10"}, None),
    ("GET", "/jobs/j1/tasks/t1/files/wd%2Fout.txt", {"api-version": "2025-06-01"}, None),
    ("POST", "/jobs", {"api-version": "2025-06-01", "timeOut": "30"}, {"id": "j1"}),
    ("DELETE", "/pools/p1", {"api-version": "2025-06-01"}, None),
])
def test_sdk_signatures_verify(method: str, path: str, params: dict[str, str],
                               body: dict | None) -> None:
    raw_path, raw_query, headers = _sdk_signed(method, path, params, body)
    auth.verify(method, raw_path, raw_query, headers, ACCOUNT, KEY)


def test_bad_signature_reports_the_string_to_sign() -> None:
    raw_path, raw_query, headers = _sdk_signed("GET", "/pools", {"api-version": "2025-06-01"})
    with pytest.raises(exc.AuthenticationFailed) as info:
        auth.verify("GET", raw_path, raw_query, headers, ACCOUNT,
                    base64.b64encode(os.urandom(32)).decode())
    detail = info.value.values["AuthenticationErrorDetail"]
    assert f"/{ACCOUNT}/pools\napi-version:2025-06-01" in detail
    assert info.value.status == 403


def test_tampered_path_fails() -> None:
    _, raw_query, headers = _sdk_signed("GET", "/pools/p1", {"api-version": "2025-06-01"})
    with pytest.raises(exc.AuthenticationFailed):
        auth.verify("GET", "/pools/p2", raw_query, headers, ACCOUNT, KEY)


def test_lowercased_query_names_are_accepted_too() -> None:
    headers = {"ocp-date": rfc1123(1e9)}
    sts = auth.string_to_sign("GET", "/x", "api-version=1&timeout=5", headers, ACCOUNT)
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{auth.sign(KEY, sts)}"
    auth.verify("GET", "/x", "api-version=1&timeOut=5", headers, ACCOUNT, KEY, now=1e9)


@pytest.mark.parametrize("header, error", [
    (None, exc.AuthenticationFailed),
    ("Bearer abc", exc.InvalidAuthenticationInfo),
    ("SharedKey nocolon", exc.InvalidAuthenticationInfo),
    ("SharedKey devbatch:not base64!", exc.InvalidAuthenticationInfo),
    ("SharedKey other:AAAA", exc.AuthenticationFailed),
])
def test_malformed_or_foreign_headers(header: str | None, error: type) -> None:
    headers = {"ocp-date": rfc1123(1e9)}
    if header:
        headers["Authorization"] = header
    with pytest.raises(error):
        auth.verify("GET", "/pools", "", headers, ACCOUNT, KEY, now=1e9)


def test_clock_skew_is_refused() -> None:
    headers = {"ocp-date": rfc1123(1e9)}
    sts = auth.string_to_sign("GET", "/pools", "", headers, ACCOUNT)
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{auth.sign(KEY, sts)}"
    auth.verify("GET", "/pools", "", headers, ACCOUNT, KEY, now=1e9 + 60)
    with pytest.raises(exc.AuthenticationFailed) as info:
        auth.verify("GET", "/pools", "", headers, ACCOUNT, KEY, now=1e9 + 3600)
    assert "15 minutes" in info.value.values["AuthenticationErrorDetail"]
