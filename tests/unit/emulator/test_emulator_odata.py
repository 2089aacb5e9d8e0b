"""$filter grammar and evaluation, $select projection, maxresults and paging cursors."""

from __future__ import annotations

import pytest

from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator import odata, paging

DONE = {"id": "fut-000017", "state": "completed",
        "stateTransitionTime": "2026-02-01T00:00:00.0000000Z",
        "executionInfo": {"exitCode": 3, "result": "failure"}}
ACTIVE = {"id": "fut-000018", "state": "active", "stateTransitionTime": "2025-06-01T00:00:00Z",
          "executionInfo": {"retryCount": 0, "requeueCount": 0}}


@pytest.mark.parametrize("text, done, active", [
    ("state eq 'completed'", True, False),
    ("state ne 'completed'", False, True),
    ("state eq 'active' or state eq 'running'", False, True),
    ("state eq 'completed' and executionInfo/result eq 'failure'", True, False),
    ("executionInfo/result eq 'success'", False, False),
    ("(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)", True, False),
    ("executionInfo/exitCode ne 0", True, False),  # absent property: false, also for ne
    ("startswith(id,'fut-')", True, True),
    ("id eq 'fut-000017'", True, False),
    ("id gt 'fut-000017'", False, True),
    ("state eq 'completed' and stateTransitionTime gt DateTime'2026-01-01T00:00:00.000Z'",
     True, False),
    ("stateTransitionTime le datetime'2025-06-01T02:00:00+02:00'", False, True),
    ("not (state eq 'Completed')", False, True),  # enum values compare case-insensitively
    ("state EQ 'ACTIVE'", False, True),
    ("executionInfo/exitCode eq null", False, True),
    ("  ( ( state eq 'active' ) )  ", False, True),
])
def test_task_filters(text: str, done: bool, active: bool) -> None:
    flt = odata.Filter(text, "tasks")
    assert (flt.matches(DONE), flt.matches(ACTIVE)) == (done, active)


@pytest.mark.parametrize("text", [
    "", "state", "state eq", "state eq 'deleted'", "state gt 'active'", "foo eq 1",
    "(state eq 'active'", "state eq 'active')", "state eq 'active' xor 1",
    "executionInfo/exitCode eq '1'", "executionInfo/exitCode eq 1.5",
    "stateTransitionTime gt '2020-01-01'", "stateTransitionTime gt DateTime'yesterday'",
    "startswith(state,'a')", "startswith(id, 1)", "id eq \"x\"", "state eq 'active';",
    "substringof('a', id)", "state eq 'active' and", "not",
])
def test_invalid_filters_are_400(text: str) -> None:
    with pytest.raises(exc.InvalidQueryParameterValue) as info:
        odata.Filter(text, "tasks")
    assert info.value.values["QueryParameterName"] == "$filter"


@pytest.mark.parametrize("kind, text, doc", [
    ("jobs", "startswith(id,'exec-') and state eq 'active'", {"id": "exec-1", "state": "active"}),
    ("jobs", "executionInfo/poolId eq 'p1'", {"executionInfo": {"poolId": "P1"}}),
    ("pools", "id eq 'p1' and allocationState eq 'steady'",
     {"id": "p1", "allocationState": "steady"}),
    ("pools", "enableAutoScale eq false", {"enableAutoScale": False}),
    ("nodes", "state eq 'starttaskfailed'", {"state": "starttaskfailed"}),
    ("nodecounts", "poolId eq 'p1'", {"poolId": "p1"}),
    ("files", "startswith(name,'wd/')", {"name": "wd/out.txt"}),
])
def test_other_lists(kind: str, text: str, doc: dict) -> None:
    assert odata.Filter(text, kind).matches(doc)


def test_file_listing_allows_only_startswith_on_name() -> None:
    with pytest.raises(exc.InvalidQueryParameterValue):
        odata.Filter("name eq 'stdout.txt'", "files")


def test_select_paths_and_projection() -> None:
    paths = paging.parse_select("id, state,executionInfo/exitCode", ["id", "state",
                                                                    "executionInfo"], False)
    assert paths == [["id"], ["state"], ["executionInfo", "exitCode"]]
    assert paging.project(DONE, paths) == {"id": "fut-000017", "state": "completed",
                                          "executionInfo": {"exitCode": 3}}
    assert paging.project(ACTIVE, [["executionInfo", "exitCode"]]) == {}


def test_select_unknown_is_strict_unless_loose() -> None:
    with pytest.raises(exc.InvalidQueryParameterValue, match="--loose"):
        paging.parse_select("id,bogus", ["id"], False)
    assert paging.parse_select("id,bogus", ["id"], True) == [["id"]]
    with pytest.raises(exc.InvalidQueryParameterValue):
        paging.parse_select("executionInfo/bogus", ["executionInfo"], False,
                           {"executionInfo": frozenset({"exitCode"})})


@pytest.mark.parametrize("value, error", [("0", exc.InvalidQueryParameterValue),
                                          ("-5", exc.InvalidQueryParameterValue),
                                          ("1001", exc.OutOfRangeQueryParameterValue),
                                          ("ten", exc.InvalidQueryParameterValue)])
def test_maxresults_range(value: str, error: type) -> None:
    with pytest.raises(error):
        paging.parse_maxresults(value, 1000)
    assert paging.parse_maxresults("1000", 50) == 1000
    assert paging.parse_maxresults(None, 50) == 50


def test_maxresults_below_one_is_the_recorded_error() -> None:
    """recording_should_fail_to_list_pools_with_invalid_max.json (azure-sdk-for-js)."""
    with pytest.raises(exc.InvalidQueryParameterValue) as info:
        paging.parse_maxresults("-5", 1000)
    assert info.value.values == {"QueryParameterName": "maxresults",
                                 "QueryParameterValue": "-5",
                                 "Reason": "MaxResults cannot be less than 1"}


def test_tokens_are_unreserved_and_round_trip() -> None:
    token = paging.encode_token(123456)
    assert token.isalnum()
    assert paging.decode_token(token) == 123456
    with pytest.raises(exc.InvalidQueryParameterValue):
        paging.decode_token("c+1")


def test_paging_cursor_is_stable_while_states_change() -> None:
    docs = {i: {"id": f"t{i}", "state": "active"} for i in range(10)}
    flt = odata.Filter("state eq 'active'", "tasks")

    def entries(start: int) -> list:
        return [(i, (lambda i=i: docs[i])) for i in sorted(docs) if i >= start]

    first = paging.page(entries(0), flt, None, 4)
    assert [d["id"] for d in first.items] == ["t0", "t1", "t2", "t3"]
    for i in range(0, 6):  # earlier items complete between pages: nothing skipped
        docs[i]["state"] = "completed"
    assert first.next_position is not None
    second = paging.page(entries(first.next_position), flt, None, 4)
    assert [d["id"] for d in second.items] == ["t6", "t7", "t8", "t9"]
    assert second.next_position is None
