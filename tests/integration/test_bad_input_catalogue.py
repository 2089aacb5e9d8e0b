"""The bad-input catalogue (docs/errors.md#bad-input): one row per wrong input, one test.

Each row: an id, what it does wrong (a callable given the `Bench`), the exception type, a
pattern its message must match (naming the argument or variable *and* the fix), and where
it must be raised, the earliest point:

- ``construction``: the constructor (or `superbatch.client()`), before any request: its
  `connect` is replaced by one that records being called, and must not be;
- ``submit``: `submit()` returns a future that failed already, no task added;
- ``map``: `map()` raises at the call, no task added;
- ``add_task``: the SuperBatch client's `add_task()`, nothing sent;
- ``pool``: the first request that can tell (the service refuses the pool); what the
  constructor made is deleted;
- ``cli``: `cli.main([...])` returns 2 with one line on stderr naming the option and fix.

Every row also checks that nothing is left behind: the shared stack's jobs, pools and
blob prefixes are the same after as before. A new case is one line in `ROWS`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from azure_batch_executor import AzureBatchExecutor, cli, superbatch
from azure_batch_executor import constants as C
from azure_batch_executor.errors import ConfigurationError, TaskPicklingError
from azure_batch_executor.local.stack import ENV_DISCOVERY_DIR

pytestmark = pytest.mark.timeout(300)


class Connected(AssertionError):
    """`connect` was called: the error should have come before any request."""


def _refuse(*_: Any) -> Any:
    raise Connected("connect() was called: the bad input was not caught before any request")


class NoRequests(AzureBatchExecutor):
    connect = staticmethod(_refuse)


class NoRequestsClient(superbatch.client):
    connect = staticmethod(_refuse)


@dataclass
class Bench:
    """What a row may use: a running executor on the shared stack, the stack, capsys."""

    stack: Any
    executor: AzureBatchExecutor
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Any

    def account_options(self) -> list[str]:
        s = self.stack
        return [f"--batch-account-url={s.batch_account_url}",
                f"--batch-account-name={s.batch_account_name}",
                f"--batch-account-key={s.batch_account_key}",
                f"--storage-connection-string={s.storage_connection_string}"]


def ex(**kw: Any) -> Callable[[Bench], Any]:
    return lambda b: NoRequests(**kw)


def env(**variables: str) -> Callable[[Bench], Any]:
    def run(b: Bench) -> Any:
        for name, value in variables.items():
            b.monkeypatch.setenv(name, value)
        return NoRequests()
    return run


_SB = dict(POOL_ID="abx-catalogue", JOB_ID="abx-catalogue-job", POOL_VM_SIZE="standard_d2s_v3",
           BLOB_CONTAINER_NAME=C.DEFAULT_CONTAINER_NAME, DOCKER_IMAGE=None)


def sb(**kw: Any) -> Callable[[Bench], Any]:
    return lambda b: NoRequestsClient(**{**_SB, "BATCH_DIRECTORY": b.tmp_path, **kw})


def add_task_without_command(b: Bench) -> Any:
    client = superbatch.client(**{**_SB, "BATCH_DIRECTORY": b.tmp_path})
    return client.add_task([], [])


def cli_main(*argv: str, account: bool = False, no_stack: bool = False
             ) -> Callable[[Bench], Any]:
    def run(b: Bench) -> Any:
        if no_stack:
            b.monkeypatch.setenv(ENV_DISCOVERY_DIR, str(b.tmp_path))
        return cli.main([*argv, *(b.account_options() if account else [])])
    return run


def bad_vm_size(b: Bench) -> Any:
    b.stack.emulator.inject_faults("POST", "/pools", 400, "InvalidPropertyValue", count=1)
    return AzureBatchExecutor(vm_size="standard_nope", pool_id="abx-catalogue-badvm")


def work(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class Row:
    id: str
    do: Callable[[Bench], Any]
    error: type[BaseException]
    match: str  # names the argument or variable, and the fix
    where: str  # construction | submit | map | add_task | pool | cli


ROWS = [
    # the executor's own arguments
    Row("max_workers=0", ex(max_workers=0), ValueError, r"max_workers must be greater than 0",
        "construction"),
    Row("max_workers=-3", ex(max_workers=-3), ValueError, r"max_workers must be greater than 0",
        "construction"),
    Row("initializer not callable", ex(initializer=42), TypeError,
        r"initializer must be a callable", "construction"),
    Row("unknown setting", ex(pool_size=3), TypeError,
        r"unexpected keyword argument\(s\) pool_size; valid settings are: .*pool_id",
        "construction"),
    # settings out of range or of the wrong type
    Row("pool_id with spaces", ex(pool_id="my pool"), ConfigurationError,
        r"pool_id='my pool': use 1-64 of \[A-Za-z0-9_-\]", "construction"),
    Row("pool_id over 64 chars", ex(pool_id="p" * 65), ConfigurationError,
        r"pool_id='p{65}': use 1-64", "construction"),
    Row("container_name invalid", ex(container_name="My_Container"), ConfigurationError,
        r"container_name='My_Container': use 3-63 of \[a-z0-9-\]", "construction"),
    Row("job_id_prefix invalid", ex(job_id_prefix="abx job"), ConfigurationError,
        r"job_id_prefix='abx job': use 1-30 of", "construction"),
    Row("task_slots_per_node over 256", ex(task_slots_per_node=257), ConfigurationError,
        r"task_slots_per_node=257: must be an int in 1\.\.256", "construction"),
    Row("dedicated_nodes negative", ex(dedicated_nodes=-1), ConfigurationError,
        r"dedicated_nodes=-1: must be an int >= 0", "construction"),
    Row("dedicated_nodes=0 spot_nodes=0", ex(dedicated_nodes=0, spot_nodes=0),
        ConfigurationError, r"dedicated_nodes=0 and spot_nodes=0: the pool needs a node",
        "construction"),
    Row("dedicated_nodes a str", ex(dedicated_nodes="2"), ConfigurationError,
        r"dedicated_nodes='2': must be an int", "construction"),
    Row("max_task_retries=-2", ex(max_task_retries=-2), ConfigurationError,
        r"max_task_retries=-2: must be -1 \(unlimited\) or >= 0", "construction"),
    Row("task_timeout=0", ex(task_timeout=0), ConfigurationError,
        r"task_timeout=0: must be seconds > 0 or None", "construction"),
    Row("task_timeout negative", ex(task_timeout=-5.0), ConfigurationError,
        r"task_timeout=-5\.0: must be seconds > 0", "construction"),
    Row("poll_interval=0", ex(poll_interval=0), ConfigurationError,
        r"poll_interval=0: must be seconds > 0", "construction"),
    Row("pool_start_timeout negative", ex(pool_start_timeout=-1), ConfigurationError,
        r"pool_start_timeout=-1: must be seconds > 0", "construction"),
    Row("max_nodes=0", ex(max_nodes=0), ConfigurationError,
        r"max_nodes=0: must be an int >= 1", "construction"),
    Row("job_max_wall_clock over the SAS limit", ex(job_max_wall_clock=30 * 86400),
        ConfigurationError, r"job_max_wall_clock=2592000: must be seconds from 60 to",
        "construction"),
    Row("progress=2", ex(progress=2), ConfigurationError,
        r"progress=2: must be \"auto\", True or False", "construction"),
    Row("echo_output='yes'", ex(echo_output="yes"), ConfigurationError,
        r"echo_output='yes': must be True or False", "construction"),
    Row("environment=42", ex(environment=42), ConfigurationError,
        r"environment=42: use \"auto\" .* \"none\" .* requirement strings", "construction"),
    Row("requirement not PEP 508", ex(environment=["numpy>=>1"]), ConfigurationError,
        r"(?s)environment: 'numpy>=>1' is not a requirement \(PEP 508\).*e\.g\. \"numpy>=1\.26\"",
        "construction"),
    Row("environment file missing", ex(environment="no/such/requirements.txt"),
        ConfigurationError, r"environment='no/such/requirements.txt': no such file; give the "
        r"path of a requirements\.txt", "construction"),
    Row("index_url not a URL", ex(index_url="pypi.org/simple"), ConfigurationError,
        r"index_url: 'pypi\.org/simple' is not a package index URL; use https://", "construction"),
    Row("python_version malformed", ex(python_version="three"), ConfigurationError,
        r"python_version='three': use 3\.X or 3\.X\.Y", "construction"),
    Row("registry half given", ex(registry_server="r.azurecr.io", registry_username="u"),
        ConfigurationError, r"needs both registry_username and registry_password: pass "
        r"registry_password=", "construction"),
    Row("registry login without server", ex(registry_username="u", registry_password="p"),
        ConfigurationError, r"pass registry_server= \(e\.g\. myregistry\.azurecr\.io\)",
        "construction"),
    Row("pool_identity not a resource id", ex(pool_identity="my-identity"), ConfigurationError,
        r"pool_identity='my-identity': must be the resource id", "construction"),
    # accounts: URLs, keys, connection strings
    Row("BATCH_ACCOUNT_URL not https", env(BATCH_ACCOUNT_URL="mybatch.westeurope.batch.azure.com",
        STORAGE_ACCOUNT_URL="https://st.blob.core.windows.net"), ConfigurationError,
        r"BATCH_ACCOUNT_URL='mybatch\.westeurope\.batch\.azure\.com' is not a URL: use "
        r"https://NAME\.REGION\.batch\.azure\.com .* or batch_account_url=", "construction"),
    Row("STORAGE_ACCOUNT_URL not a URL", env(BATCH_ACCOUNT_URL="https://b.westeurope.batch.azure.com",
        STORAGE_ACCOUNT_URL="st.blob.core.windows.net"), ConfigurationError,
        r"STORAGE_ACCOUNT_URL='st\.blob\.core\.windows\.net' is not a URL: use "
        r"https://NAME\.blob\.core\.windows\.net", "construction"),
    Row("BATCH_ACCOUNT_KEY not base64", env(BATCH_ACCOUNT_URL="https://b.westeurope.batch.azure.com",
        BATCH_ACCOUNT_NAME="b", BATCH_ACCOUNT_KEY="not a key!",
        STORAGE_ACCOUNT_URL="https://st.blob.core.windows.net"), ConfigurationError,
        r"BATCH_ACCOUNT_KEY is not a valid base64 account key; copy the key from the portal",
        "construction"),
    Row("half a Batch account", env(BATCH_ACCOUNT_URL="https://b.westeurope.batch.azure.com",
        BATCH_ACCOUNT_NAME="b", STORAGE_ACCOUNT_URL="https://st.blob.core.windows.net"),
        ConfigurationError, r"needs both the account name and key: set BATCH_ACCOUNT_KEY",
        "construction"),
    Row("storage without Batch", env(STORAGE_ACCOUNT_URL="https://st.blob.core.windows.net"),
        ConfigurationError, r"no Batch account URL: set BATCH_ACCOUNT_URL", "construction"),
    Row("Batch without storage", env(BATCH_ACCOUNT_URL="https://b.westeurope.batch.azure.com"),
        ConfigurationError, r"no storage account: set STORAGE_ACCOUNT_URL", "construction"),
    Row("connection string without AccountName",
        env(BATCH_ACCOUNT_URL="https://b.westeurope.batch.azure.com",
            STORAGE_ACCOUNT_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountKey=eA=="),
        ConfigurationError, r"STORAGE_ACCOUNT_CONNECTION_STRING has no AccountName=\.\.\.; "
        r"copy the whole connection string", "construction"),
    # a VM size the service rejects: the first request that can tell
    Row("vm_size the service rejects", bad_vm_size, ConfigurationError,
        r"vm_size='standard_nope' .*is not a size Batch offers.*az batch location list-skus",
        "pool"),
    # submit and map
    Row("submit a non-callable", lambda b: b.executor.submit(3), TypeError,
        r"'int' object is not callable: submit\(\) takes the function first", "submit"),
    Row("submit an unpicklable argument", lambda b: b.executor.submit(work, threading.Lock()),
        TaskPicklingError, r"cannot pickle positional argument 0 of submit\(work, \.\.\.\).*"
        r"lock.*pass what is needed to recreate it \(a path, a URL", "submit"),
    Row("map a non-callable", lambda b: b.executor.map(3, [1]), TypeError,
        r"'int' object is not callable: map\(\) takes the function first", "map"),
    Row("map chunksize=0", lambda b: b.executor.map(work, [1], chunksize=0), ValueError,
        r"chunksize must be >= 1", "map"),
    Row("map buffersize=0", lambda b: b.executor.map(work, [1], buffersize=0), ValueError,
        r"buffersize must be None or > 0", "map"),
    Row("map buffersize a str", lambda b: b.executor.map(work, [1], buffersize="2"), TypeError,
        r"buffersize must be an integer or None", "map"),
    # the SuperBatch client
    Row("SuperBatch POOL_ID with spaces", sb(POOL_ID="my pool"), ConfigurationError,
        r"POOL_ID='my pool': use 1-64 of \[A-Za-z0-9_-\]", "construction"),
    Row("SuperBatch BLOB_CONTAINER_NAME invalid", sb(BLOB_CONTAINER_NAME="Out_Put"),
        ConfigurationError, r"BLOB_CONTAINER_NAME='Out_Put': use 3-63 of", "construction"),
    Row("SuperBatch JOB_ID invalid", sb(JOB_ID="job/1"), ConfigurationError,
        r"JOB_ID='job/1': use 1-64 of", "construction"),
    Row("SuperBatch POOL_NODE_COUNT negative", sb(POOL_NODE_COUNT=-1), ConfigurationError,
        r"POOL_NODE_COUNT=-1: must be an int >= 0", "construction"),
    Row("SuperBatch STORAGE_ACCESS_DURATION_HRS=0", sb(STORAGE_ACCESS_DURATION_HRS=0),
        ConfigurationError, r"STORAGE_ACCESS_DURATION_HRS=0: must be hours > 0", "construction"),
    Row("SuperBatch registry half given", sb(REGISTRY_SERVER="r.azurecr.io",
        REGISTRY_USERNAME="u"), ConfigurationError,
        r"needs REGISTRY_SERVER, REGISTRY_USERNAME and REGISTRY_PASSWORD: set REGISTRY_PASSWORD",
        "construction"),
    Row("SuperBatch task without COMMAND_LINE", add_task_without_command, ConfigurationError,
        r"no command line: pass COMMAND_LINE= to client\(\)", "add_task"),
    # the CLI
    Row("cli local --nodes 0", cli_main("local", "--nodes", "0"), SystemExit,
        r"--nodes 0", "cli"),
    Row("cli emulator --port 70000", cli_main("emulator", "--port", "70000"), SystemExit,
        r"--port 70000 is not a TCP port: pass --port 1 to 65535", "cli"),
    Row("cli emulator --nodes -1", cli_main("emulator", "--nodes", "-1"), SystemExit,
        r"--nodes -1", "cli"),
    Row("cli logs of an unknown job", cli_main("logs", "no-such-job", account=True),
        SystemExit, r"no-such-job.*(azure-batch-executor jobs|--all)", "cli"),
    Row("cli status of an unknown job", cli_main("status", "no-such-job", account=True),
        SystemExit, r"no-such-job.*(azure-batch-executor jobs|--all)", "cli"),
    Row("cli cleanup --older-than nonsense", cli_main("cleanup", "--older-than", "soon",
        account=True), SystemExit, r"--older-than 'soon' is not a duration: use e\.g\.", "cli"),
    Row("cli with no account and no stack", cli_main("jobs", no_stack=True), SystemExit,
        r"BATCH_ACCOUNT_URL.*azure-batch-executor local", "cli"),
]


@pytest.fixture(scope="module")
def executor(shared_stack: Any) -> Iterator[AzureBatchExecutor]:
    with AzureBatchExecutor(max_workers=1, echo_output=False) as running:
        yield running


def _leftovers(stack: Any) -> tuple[set[str], set[str], set[str]]:
    """The stack's job ids, pool ids and top-level blob prefixes of every container."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.storage.blob import BlobServiceClient

    batch = BatchClient(stack.batch_account_url, AzureNamedKeyCredential(
        stack.batch_account_name, stack.batch_account_key))
    jobs = {job.id for job in batch.list_jobs()}
    pools = {pool.id for pool in batch.list_pools()}
    blobs = BlobServiceClient.from_connection_string(stack.storage_connection_string)
    prefixes = set()
    for container in blobs.list_containers():
        client = blobs.get_container_client(container.name)
        prefixes |= {f"{container.name}/{item.name}" for item in client.walk_blobs()}
    return jobs, pools, prefixes


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input(row: Row, shared_stack: Any, executor: AzureBatchExecutor,
                   monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                   capsys: pytest.CaptureFixture[str]) -> None:
    bench = Bench(shared_stack, executor, monkeypatch, tmp_path)
    before = _leftovers(shared_stack)
    tasks_before = executor._ctx.queue.counter
    capsys.readouterr()
    if row.where == "cli":
        code = row.do(bench)
        err = capsys.readouterr().err
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(row.match, err), err
    elif row.where == "submit":
        future = row.do(bench)
        assert future.done(), "the future should have failed at submit()"
        with pytest.raises(row.error, match=row.match):
            future.result(timeout=0)
    else:
        with pytest.raises(row.error, match=row.match):
            row.do(bench)
    if row.where in ("submit", "map"):
        assert executor._ctx.queue.counter == tasks_before, "a task was made"
    assert _leftovers(shared_stack) == before


def test_the_catalogue_is_listed_in_the_docs() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    table = text.split("## Bad input", 1)[1]
    missing = [row.id for row in ROWS if f"| {row.id} |" not in table]
    assert not missing, f"docs/errors.md#bad-input lacks rows for: {missing}"
    assert len(ROWS) >= 25
