// Drive the Batch emulator with @azure/batch from npm (BatchServiceClient, ms-rest-js) as a
// user would. Started by test_compat_clients.py: `node drive_azure_batch_js.js URL ACCOUNT KEY`
// with node_modules from the repo's package.json (the version pinned there). Every step is
// one SDK call (list steps follow listNext to the end); the script prints one JSON object:
// the SDK version and, per step, its name, whether it succeeded and the error otherwise.
// A failed step does not stop the run.
"use strict";

const batch = require("@azure/batch");
const sdkVersion = require("@azure/batch/package.json").version;

const POOL = "compatjs-pool", POOL2 = "compatjs-pool2", JOB = "compatjs-job", JOB2 = "compatjs-job2";
const MANY = 130; // more than one addCollection request (the service takes at most 100)
const steps = [];

async function step(name, fn) {
  try {
    const result = await fn();
    steps.push({ op: name, ok: true });
    return result;
  } catch (error) {
    const code = (error && error.body && error.body.code) || (error && error.code) || "";
    steps.push({ op: name, ok: false, error: `${code} ${error && error.message}`.slice(0, 400) });
    return undefined;
  }
}

function check(name, condition, detail) {
  steps.push({ op: name, ok: Boolean(condition), error: condition ? "" : String(detail || "") });
}

async function wait(probe, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("condition not reached");
}

async function all(first, next) {
  // Follow odata.nextLink with the operation's listNext, as the SDK's docs show.
  let page = await first();
  const items = [...page];
  let pages = 1;
  while (page.odatanextLink) {
    page = await next(page.odatanextLink);
    items.push(...page);
    pages += 1;
  }
  items.pages = pages;
  return items;
}

async function expectCode(code, fn) {
  try {
    await fn();
  } catch (error) {
    const got = error && error.body && error.body.code;
    if (got !== code) throw new Error(`expected ${code}, got ${got} (${error.statusCode})`);
    return true;
  }
  throw new Error(`expected ${code}, the call succeeded`);
}

function poolSpec(id, nodes) {
  return {
    id, vmSize: "standard_d2s_v3", targetDedicatedNodes: nodes, taskSlotsPerNode: 2,
    virtualMachineConfiguration: {
      imageReference: { publisher: "canonical", offer: "0001-com-ubuntu-server-jammy",
                        sku: "22_04-lts", version: "latest" },
      nodeAgentSKUId: "batch.node.ubuntu 22.04",
    },
    startTask: { commandLine: "/bin/sh -c 'echo started'", waitForSuccess: true },
    metadata: [{ name: "suite", value: "compat" }],
  };
}

async function main() {
  const [url, account, key] = process.argv.slice(2);
  const client = new batch.BatchServiceClient(new batch.BatchSharedKeyCredentials(account, key), url);

  // pools
  await step("pool.add", () => client.pool.add(poolSpec(POOL, 1)));
  await step("pool.add (second)", () => client.pool.add(poolSpec(POOL2, 0)));
  const exists = await step("pool.exists", () => client.pool.exists(POOL));
  check("pool.exists true", exists && exists.body === true, exists && exists.body);
  await step("pool.get", () => client.pool.get(POOL));
  const sel = await step("pool.get $select", () =>
    client.pool.get(POOL, { poolGetOptions: { select: "id,state,allocationState" } }));
  check("pool.get $select projects", sel && sel.id === POOL && sel.vmSize === undefined);
  await step("pool.patch", () => client.pool.patch(POOL, { metadata: [{ name: "k", value: "v" }] }));
  await step("pool wait steady", () =>
    wait(async () => (await client.pool.get(POOL)).allocationState === "steady"));
  const pools = await step("pool.list paged", () => all(
    () => client.pool.list({ poolListOptions: { maxResults: 1 } }),
    (link) => client.pool.listNext(link)));
  check("pool.list pages", pools && pools.pages >= 2 && pools.some((p) => p.id === POOL2),
        pools && pools.map((p) => p.id));
  const filtered = await step("pool.list $filter", () => client.pool.list(
    { poolListOptions: { filter: `id eq '${POOL}'`, select: "id,state" } }));
  check("pool.list $filter matches", filtered && filtered.length === 1 && filtered[0].id === POOL);
  await step("pool.resize", () => client.pool.resize(POOL2, { targetDedicatedNodes: 0 }));
  await step("pool.stopResize", () => client.pool.stopResize(POOL2));
  await step("account.listPoolNodeCounts", () => client.account.listPoolNodeCounts());
  const nodes = await step("computeNode.list", () => wait(async () => {
    const page = await client.computeNode.list(POOL);
    return page.filter((n) => n.state === "idle").length ? page : null;
  }));
  const nodeId = nodes && nodes[0].id;
  if (nodeId) await step("computeNode.get", () => client.computeNode.get(POOL, nodeId));

  // jobs
  await step("job.add", () => client.job.add({
    id: JOB, poolInfo: { poolId: POOL }, priority: 10, constraints: { maxTaskRetryCount: 0 } }));
  await step("job.add (second)", () => client.job.add({ id: JOB2, poolInfo: { poolId: POOL2 } }));
  await step("job.get", () => client.job.get(JOB));
  await step("job.patch", () => client.job.patch(JOB, { priority: 20 }));
  await step("job.update", () => client.job.update(JOB, { poolInfo: { poolId: POOL }, priority: 30 }));
  const jobs = await step("job.list $filter paged", () => all(
    () => client.job.list({ jobListOptions: { filter: "startswith(id,'compatjs-')", maxResults: 1 } }),
    (link) => client.job.listNext(link)));
  check("job.list pages", jobs && jobs.length === 2 && jobs.pages === 2, jobs && jobs.length);
  await step("job.disable", () => client.job.disable(JOB2, "requeue"));
  await step("job wait disabled", () =>
    wait(async () => (await client.job.get(JOB2)).state === "disabled"));
  await step("job.enable", () => client.job.enable(JOB2));

  // tasks
  await step("task.add", () => client.task.add(JOB, {
    id: "single", commandLine: "/bin/sh -c 'echo hello; echo data > out.txt'",
    environmentSettings: [{ name: "A", value: "1" }],
    outputFiles: [{ filePattern: "nothing-matches-*", uploadOptions: { uploadCondition: "taskcompletion" },
                    destination: { container: { containerUrl: "http://127.0.0.1:9/none?sig=x" } } }] }));
  const many = Array.from({ length: MANY }, (_, i) => ({
    id: `t${String(i).padStart(3, "0")}`, commandLine: "/bin/sh -c 'exit 0'" }));
  let ok = 0;
  for (let start = 0; start < MANY; start += 100) {
    const result = await step(`task.addCollection (${start}..)`, () =>
      client.task.addCollection(JOB, many.slice(start, start + 100)));
    if (result) ok += result.value.filter((r) => r.status.toLowerCase() === "success").length;
  }
  check("task.addCollection all success", ok === MANY, ok);
  const single = await step("task.get", () => client.task.get(JOB, "single"));
  check("task.get uploadCondition echoed", single &&
        single.outputFiles[0].uploadOptions.uploadCondition === "TaskCompletion",
        single && JSON.stringify(single.outputFiles));
  await step("task.add (waiting)", () => client.task.add(JOB2, { id: "waiting", commandLine: "/bin/sh -c 'exit 0'" }));
  await step("task.update", () => client.task.update(JOB2, "waiting", { constraints: { maxTaskRetryCount: 1 } }));
  const listed = await step("task.list paged $select", () => all(
    () => client.task.list(JOB, { taskListOptions: { select: "id,state", maxResults: 50 } }),
    (link) => client.task.listNext(link)));
  check("task.list all pages", listed && listed.length === MANY + 1 && listed.pages === 3,
        listed && `${listed.length} items, ${listed.pages} pages`);
  const done = await step("task wait completed", () => wait(async () =>
    (await client.job.getTaskCounts(JOB)).taskCounts.completed === MANY + 1));
  await step("task.list $filter", () => client.task.list(JOB, { taskListOptions: {
    filter: "state eq 'completed' and executionInfo/exitCode eq 0" } }));
  const counts = await step("job.getTaskCounts", () => client.job.getTaskCounts(JOB));
  if (done) check("task counts", counts && counts.taskCounts.succeeded === MANY + 1);
  await step("task.listSubtasks", () => client.task.listSubtasks(JOB, "single"));
  await step("task.reactivate (succeeded: 409)", () =>
    expectCode("TaskSucceeded", () => client.task.reactivate(JOB, "single")));
  await step("task.add (long)", () => client.task.add(JOB, { id: "long", commandLine: "/bin/sh -c 'sleep 30'" }));
  await step("task.terminate", () => client.task.terminate(JOB, "long"));
  await step("task.reactivate", () => client.task.reactivate(JOB, "long"));
  await step("task.terminate (again)", () => client.task.terminate(JOB, "long"));

  // files
  const files = await step("file.listFromTask", () =>
    client.file.listFromTask(JOB, "single", { recursive: true }));
  check("file.listFromTask names", files && files.some((f) => f.name === "wd/out.txt"),
        files && files.map((f) => f.name));
  const body = await step("file.getFromTask", async () => {
    const response = await client.file.getFromTask(JOB, "single", "stdout.txt");
    const chunks = [];
    for await (const chunk of response.readableStreamBody) chunks.push(chunk);
    return Buffer.concat(chunks).toString();
  });
  check("file.getFromTask content", body === "hello\n", JSON.stringify(body));
  const props = await step("file.getPropertiesFromTask", () =>
    client.file.getPropertiesFromTask(JOB, "single", "wd/out.txt"));
  // the service writes .NET's "False"; ms-rest-js keeps a header boolean it cannot read as a string
  check("file properties", props && String(props.ocpBatchFileIsdirectory).toLowerCase() === "false" &&
        props.contentLength === 5, props && JSON.stringify(props._response.parsedHeaders));
  await step("file.deleteFromTask", () => client.file.deleteFromTask(JOB, "single", "wd/out.txt"));
  if (nodeId) {
    await step("file.listFromComputeNode", () => client.file.listFromComputeNode(POOL, nodeId));
    await step("file.getPropertiesFromComputeNode", () =>
      client.file.getPropertiesFromComputeNode(POOL, nodeId, "startup/stdout.txt"));
    await step("file.getFromComputeNode", async () => {
      const response = await client.file.getFromComputeNode(POOL, nodeId, "startup/stdout.txt");
      for await (const chunk of response.readableStreamBody) void chunk;
    });
    await step("file.deleteFromComputeNode", () =>
      client.file.deleteFromComputeNode(POOL, nodeId, "startup/stdout.txt"));
  }

  await step("job.get missing (404)", () => expectCode("JobNotFound", () => client.job.get("nope")));

  // deletes
  await step("task.deleteMethod", () => client.task.deleteMethod(JOB, "single"));
  await step("task.deleteMethod (active)", () => client.task.deleteMethod(JOB2, "waiting"));
  await step("job.terminate", () => client.job.terminate(JOB, { jobTerminateOptions: {}, terminateReason: "done" }));
  await step("job.deleteMethod", () => client.job.deleteMethod(JOB));
  await step("job.deleteMethod (second)", () => client.job.deleteMethod(JOB2));
  await step("pool.deleteMethod", () => client.pool.deleteMethod(POOL));
  await step("pool.deleteMethod (second)", () => client.pool.deleteMethod(POOL2));
  await step("pool gone", () => wait(async () => (await client.pool.exists(POOL)).body === false));

  process.stdout.write(JSON.stringify({ client: `@azure/batch ${sdkVersion}`, steps }) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack) + "\n");
  process.exit(1);
});
