"""The task-definition builder both the executor and the SuperBatch client use."""

from __future__ import annotations

import json

from azure_batch_executor import constants as C
from azure_batch_executor.cloud.taskdef import TaskFactory, group_collections
from azure_batch_executor.config import Settings
from azure_batch_executor.wire.layout import JobLayout

URL = "https://acct.blob.core.windows.net/c?sp=cw&sig=x"
REGISTRY = {"registryServer": "reg.azurecr.io", "username": "reg", "password": "pw"}


def _settings(**kw) -> Settings:
    return Settings.resolve(env={}, python_command="python3", **kw)


def test_the_executors_task_runs_the_worker_with_inline_inputs() -> None:
    factory = TaskFactory(_settings(max_task_retries=2, task_timeout=90),
                          [("https://w?sig", C.WORKER_SCRIPT_FILE)], URL)
    lay = JobLayout("job")
    text = factory.body("task-000000", [("https://s?sig", "shared_0.pickle")],
                        [(C.WORKER_OUTPUTS_FILE, lay.outputs_blob(0)), *lay.log_files(0)],
                        "aW5saW5l")
    body = json.loads(text)
    assert body["commandLine"] == f"python3 {C.WORKER_SCRIPT_FILE}"
    assert [r["filePath"] for r in body["resourceFiles"]] == [C.WORKER_SCRIPT_FILE,
                                                             "shared_0.pickle"]
    assert [(o["filePattern"], o["destination"]["container"]["path"],
             o["uploadOptions"]["uploadCondition"]) for o in body["outputFiles"]] == [
        ("outputs.pickle", "job/iter_0_outputs.pickle", "taskcompletion"),
        ("../stdout.txt", "job/iter_0_stdout.txt", "taskcompletion"),
        ("../stderr.txt", "job/iter_0_stderr.txt", "taskcompletion")]
    assert body["constraints"] == {"maxTaskRetryCount": 2, "maxWallClockTime": "PT1M30S",
                                   "retentionTime": "PT1H"}  # the task_retention default
    assert body["environmentSettings"] == [{"name": C.INLINE_INPUTS_ENV, "value": "aW5saW5l"}]
    assert "containerSettings" not in body
    assert set(body) == {"id", "commandLine", "resourceFiles", "outputFiles", "constraints",
                         "environmentSettings"}


def test_a_command_line_task_uploads_its_outputs_on_success_only() -> None:
    factory = TaskFactory(_settings(container_image="reg.azurecr.io/img:v1"), [], URL,
                          registry=REGISTRY)
    body = json.loads(factory.body(
        "task-000003", [("https://in?sig", "inputs.pickle")], JobLayout("job").log_files(3),
        command_line="python3 worker.py",
        success_files=[("outputs.pickle", "job/iter_3_outputs.pickle")]))
    assert body["commandLine"] == "python3 worker.py"
    assert [(o["filePattern"], o["uploadOptions"]["uploadCondition"])
            for o in body["outputFiles"]] == [("outputs.pickle", "tasksuccess"),
                                              ("../stdout.txt", "taskcompletion"),
                                              ("../stderr.txt", "taskcompletion")]
    assert body["containerSettings"] == {"imageName": "reg.azurecr.io/img:v1",
                                         "registry": REGISTRY}
    assert "environmentSettings" not in body


def test_a_registry_without_an_image_is_not_sent() -> None:
    body = json.loads(TaskFactory(_settings(), [], URL, registry=REGISTRY).body(
        "task-000000", [], [], command_line="true"))
    assert "containerSettings" not in body


def test_collections_hold_at_most_100_tasks_and_stay_under_the_body_limit() -> None:
    groups = list(group_collections((i, 10) for i in range(250)))
    assert [len(g) for g in groups] == [100, 100, 50]
    assert [i for g in groups for i in g] == list(range(250))
    big = C.MAX_COLLECTION_BODY // 3 + 1
    assert [len(g) for g in group_collections((i, big) for i in range(5))] == [2, 2, 1]
    assert list(group_collections([])) == []


def test_strings_are_escaped_and_the_text_is_ascii() -> None:
    """Command lines and names are the user's: quotes, backslashes, newlines and non-ASCII
    characters survive the trip, and the text's length is its size in bytes."""
    command = 'python3 -c "print(\'\\n\')"\n# naïve ✓'
    text = TaskFactory(_settings(), [("https://u?a=1&b=\"x\"", "dir\\f é")], URL).body(
        "task-000007", [], [("out ü.txt", "job/ü")], command_line=command)
    assert text.isascii()
    body = json.loads(text)
    assert body["commandLine"] == command
    assert body["resourceFiles"] == [{"httpUrl": "https://u?a=1&b=\"x\"", "filePath": "dir\\f é"}]
    assert body["outputFiles"][0]["filePattern"] == "out ü.txt"
    assert body["outputFiles"][0]["destination"]["container"] == {"containerUrl": URL,
                                                                  "path": "job/ü"}
