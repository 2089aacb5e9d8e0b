"""Request-body schemas of the emulated operations (checked by `validator.py`).

Role: every JSON body is checked here before a model sees it: types, required
properties, enum values (case-insensitive, echoed verbatim), ranges, ISO durations.
Properties fall in three groups:
  * emulated: the models act on them;
  * echoed: infrastructure a local machine stands in for (VM image, networking, user
    accounts, upgrade policy...): accepted, stored and returned unchanged (`kind="any"`);
  * not emulated (`unsupported=True`) or unknown: 400 `InvalidPropertyValue` naming the
    property and the `--loose` switch; with `loose=True` they are stored and echoed.
Property names are the SDK's (azure-batch 15.1.0, REST api-version 2025-06-01).

The checking itself is `validator.py` (compiled once per schema, names rendered only for
errors); `validate`, `validate_owned` and `check` are re-exported here.

Imports: `validator`.
"""

from __future__ import annotations

from .validator import F, check, enum, lst, obj, validate, validate_owned

__all__ = ["F", "check", "enum", "lst", "obj", "validate", "validate_owned"]

STR, REQ_STR = F("str"), F("str", True)
INT, BOOL, DURATION, ANY = F("int"), F("bool"), F("duration"), F("any")
NOT_EMULATED = F("any", unsupported=True)

ENV = lst(obj(name=REQ_STR, value=STR))
METADATA = lst(obj(name=REQ_STR, value=REQ_STR))
IDENTITY_REF = obj(resourceId=STR)
REGISTRY = obj(username=STR, password=STR, registryServer=STR, identityReference=IDENTITY_REF)
RESOURCE_FILE = obj(
    autoStorageContainerName=STR,
    storageContainerUrl=STR,
    httpUrl=STR,
    blobPrefix=STR,
    filePath=STR,
    fileMode=STR,
    identityReference=F("any", unsupported=True),
)
OUTPUT_FILE = obj(
    filePattern=REQ_STR,
    destination=obj(
        True,
        container=obj(
            path=STR,
            containerUrl=REQ_STR,
            identityReference=F("any", unsupported=True),
            uploadHeaders=lst(obj(name=REQ_STR, value=STR)),
        ),
    ),
    uploadOptions=obj(True, uploadCondition=enum("tasksuccess", "taskfailure", "taskcompletion",
                                                 required=True)),
)
CONTAINER_SETTINGS = obj(
    containerRunOptions=STR,
    imageName=REQ_STR,
    registry=REGISTRY,
    workingDirectory=enum("taskWorkingDirectory", "containerImageDefault"),
    containerHostBatchBindMounts=ANY,
)
USER_IDENTITY = obj(
    username=STR,
    autoUser=obj(scope=enum("task", "pool"), elevationLevel=enum("nonadmin", "admin")),
)
RETRY_COUNT = F("int", lo=-1, range_error="InvalidConstraintValue")
TASK_CONSTRAINTS = obj(maxWallClockTime=DURATION, retentionTime=DURATION,
                       maxTaskRetryCount=RETRY_COUNT)
EXIT_OPTIONS = obj(jobAction=enum("none", "disable", "terminate"),
                   dependencyAction=enum("satisfy", "block"))
EXIT_CONDITIONS = obj(
    exitCodes=lst(obj(code=F("int", True), exitOptions=F("obj", True, sub=EXIT_OPTIONS.sub))),
    exitCodeRanges=lst(obj(start=F("int", True), end=F("int", True),
                           exitOptions=F("obj", True, sub=EXIT_OPTIONS.sub))),
    preProcessingError=EXIT_OPTIONS,
    fileUploadError=EXIT_OPTIONS,
    default=EXIT_OPTIONS,
)

TASK_CREATE: dict[str, F] = {
    "id": REQ_STR,
    "displayName": STR,
    "exitConditions": EXIT_CONDITIONS,
    "commandLine": REQ_STR,
    "containerSettings": CONTAINER_SETTINGS,
    "resourceFiles": lst(RESOURCE_FILE),
    "outputFiles": lst(OUTPUT_FILE),
    "environmentSettings": ENV,
    "affinityInfo": obj(affinityId=REQ_STR),
    "constraints": TASK_CONSTRAINTS,
    "requiredSlots": F("int", lo=1),
    "userIdentity": USER_IDENTITY,
    "multiInstanceSettings": NOT_EMULATED,
    "dependsOn": obj(taskIds=lst(STR), taskIdRanges=lst(obj(start=F("int", True),
                                                            end=F("int", True)))),
    "applicationPackageReferences": NOT_EMULATED,
}
TASK_COLLECTION: dict[str, F] = {"value": lst(F("any"), True)}
TASK_REPLACE: dict[str, F] = {"constraints": TASK_CONSTRAINTS}

START_TASK = obj(
    commandLine=REQ_STR,
    containerSettings=CONTAINER_SETTINGS,
    resourceFiles=lst(RESOURCE_FILE),
    environmentSettings=ENV,
    userIdentity=USER_IDENTITY,
    maxTaskRetryCount=RETRY_COUNT,
    waitForSuccess=BOOL,
)
VM_CONFIGURATION = obj(
    imageReference=obj(True, publisher=STR, offer=STR, sku=STR, version=STR,
                       virtualMachineImageId=STR, sharedGalleryImageId=STR,
                       communityGalleryImageId=STR),
    nodeAgentSKUId=REQ_STR,
    windowsConfiguration=ANY,
    dataDisks=ANY,
    licenseType=STR,
    containerConfiguration=obj(
        type=enum("dockerCompatible", "criCompatible", required=True),
        containerImageNames=lst(STR),
        containerRegistries=lst(REGISTRY),
    ),
    diskEncryptionConfiguration=ANY,
    nodePlacementConfiguration=ANY,
    extensions=ANY,
    osDisk=ANY,
    securityProfile=ANY,
    serviceArtifactReference=ANY,
)
SCHEDULING_POLICY = obj(jobDefaultOrder=enum("none", "creationtime"),
                        nodeFillType=enum("spread", "pack", required=True))
NODE_COUNT = F("int", lo=0)
POOL_CREATE: dict[str, F] = {
    "id": REQ_STR,
    "displayName": STR,
    "vmSize": REQ_STR,
    "virtualMachineConfiguration": VM_CONFIGURATION,
    "resizeTimeout": DURATION,
    "targetDedicatedNodes": NODE_COUNT,
    "targetLowPriorityNodes": NODE_COUNT,
    "enableAutoScale": BOOL,  # with the formula: models/autoscale_ops.py
    "autoScaleFormula": STR,
    "autoScaleEvaluationInterval": DURATION,
    "enableInterNodeCommunication": BOOL,
    "networkConfiguration": ANY,
    "startTask": START_TASK,
    "applicationPackageReferences": NOT_EMULATED,
    "taskSlotsPerNode": F("int", lo=1),
    "taskSchedulingPolicy": SCHEDULING_POLICY,
    "userAccounts": ANY,
    "metadata": METADATA,
    "mountConfiguration": NOT_EMULATED,
    "upgradePolicy": ANY,
}
POOL_UPDATE: dict[str, F] = {
    k: POOL_CREATE[k] for k in (
        "displayName", "vmSize", "enableInterNodeCommunication", "startTask",
        "applicationPackageReferences", "metadata", "virtualMachineConfiguration",
        "taskSlotsPerNode", "taskSchedulingPolicy", "networkConfiguration", "userAccounts",
        "mountConfiguration", "upgradePolicy")
}
POOL_UPDATE["vmSize"] = STR
POOL_RESIZE: dict[str, F] = {
    "targetDedicatedNodes": NODE_COUNT,
    "targetLowPriorityNodes": NODE_COUNT,
    "resizeTimeout": DURATION,
    "nodeDeallocationOption": enum("requeue", "terminate", "taskcompletion", "retaineddata"),
}

POOL_ENABLE_AUTOSCALE: dict[str, F] = {"autoScaleFormula": STR,
                                       "autoScaleEvaluationInterval": DURATION}
POOL_EVALUATE_AUTOSCALE: dict[str, F] = {"autoScaleFormula": REQ_STR}

NODE_REBOOT: dict[str, F] = {
    "nodeRebootOption": enum("requeue", "terminate", "taskcompletion", "retaineddata"),
}

JOB_CONSTRAINTS = obj(maxWallClockTime=DURATION, maxTaskRetryCount=RETRY_COUNT)
JOB_PREPARATION_TASK = obj(
    id=STR,
    commandLine=REQ_STR,
    containerSettings=CONTAINER_SETTINGS,
    resourceFiles=lst(RESOURCE_FILE),
    environmentSettings=ENV,
    constraints=TASK_CONSTRAINTS,
    waitForSuccess=BOOL,
    userIdentity=USER_IDENTITY,
    rerunOnNodeRebootAfterSuccess=BOOL,
)
JOB_RELEASE_TASK = obj(
    id=STR,
    commandLine=REQ_STR,
    containerSettings=CONTAINER_SETTINGS,
    resourceFiles=lst(RESOURCE_FILE),
    environmentSettings=ENV,
    maxWallClockTime=DURATION,
    retentionTime=DURATION,
    userIdentity=USER_IDENTITY,
)
POOL_INFO = obj(poolId=STR, autoPoolSpecification=NOT_EMULATED)
PRIORITY = F("int", lo=-1000, hi=1000)
ALL_TASKS_COMPLETE = enum("noaction", "terminatejob")
JOB_CREATE: dict[str, F] = {
    "id": REQ_STR,
    "displayName": STR,
    "usesTaskDependencies": BOOL,
    "priority": PRIORITY,
    "allowTaskPreemption": BOOL,
    "maxParallelTasks": F("int", lo=-1),
    "constraints": JOB_CONSTRAINTS,
    "jobManagerTask": NOT_EMULATED,
    "jobPreparationTask": JOB_PREPARATION_TASK,
    "jobReleaseTask": JOB_RELEASE_TASK,
    "commonEnvironmentSettings": ENV,
    "poolInfo": F("obj", True, sub=POOL_INFO.sub),
    "onAllTasksComplete": ALL_TASKS_COMPLETE,
    "onTaskFailure": enum("noaction", "performexitoptionsjobaction"),
    "networkConfiguration": ANY,
    "metadata": METADATA,
}
JOB_UPDATE: dict[str, F] = {
    k: JOB_CREATE[k] for k in ("priority", "allowTaskPreemption", "maxParallelTasks",
                               "constraints", "poolInfo", "onAllTasksComplete", "metadata",
                               "networkConfiguration")
}
JOB_UPDATE["poolInfo"] = POOL_INFO
JOB_REPLACE: dict[str, F] = dict(JOB_UPDATE, poolInfo=JOB_CREATE["poolInfo"])
JOB_DISABLE: dict[str, F] = {"disableTasks": enum("requeue", "terminate", "wait", required=True)}
JOB_TERMINATE: dict[str, F] = {"terminateReason": STR}


