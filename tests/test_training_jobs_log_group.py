"""training_jobs_log_group: CloudFormation events in, the response PUT and the log groups out.

CloudWatch Logs and KMS are moto's. moto 5.2 does not implement AssociateKmsKey or
DisassociateKmsKey (NotImplementedError), so ``api`` answers those two itself from a botocore
before-call hook, on moto's own log group: the key then shows in describe_log_groups exactly
as moto reports a key given to CreateLogGroup. Every other call reaches moto.
"""

import json
import time
from types import SimpleNamespace

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.kms.models import kms_backends
from moto.logs.models import logs_backends

from templates.functions import training_jobs_log_group
from templates.inline import inline_source
from tests.conftest import FakeContext, answer_of, make_event

REGION = "eu-central-1"
NAME = "/aws/sagemaker/TrainingJobs"
NEW_NAME = "/aws/sagemaker/TrainingJobs-gc"
SIBLING = "/aws/sagemaker/TrainingJobsArchive"  # shares NAME as a prefix: never ours
UNKNOWN_KEY = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
EVENTS_IN_STREAM = ["job 1 started", "job 1 finished"]


@pytest.fixture(scope="module")
def moto_account():
    """One in-process moto for the module, with two real KMS keys (made once: they are slow)."""
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        yield SimpleNamespace(
            logs=boto3.client("logs", region_name=REGION),
            key=kms.create_key(Description="logs")["KeyMetadata"]["Arn"],
            other_key=kms.create_key(Description="next logs")["KeyMetadata"]["Arn"],
        )


@pytest.fixture
def aws(moto_account):
    """The module's account with no log groups; ``seeded`` names the groups holding logs."""
    for page in moto_account.logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            moto_account.logs.delete_log_group(logGroupName=group["logGroupName"])
    return SimpleNamespace(**vars(moto_account), seeded=set())


def _answer(status, parsed):
    return AWSResponse(f"https://logs.{REGION}.amazonaws.com/", status, {}, None), parsed


def _error(code, message):
    return _answer(400, {"Error": {"Code": code, "Message": message}})


def emulate_kms_association(operation, request):
    """AssociateKmsKey/DisassociateKmsKey on moto's log group, with AWS's errors."""
    group = logs_backends[DEFAULT_ACCOUNT_ID][REGION].groups.get(request["logGroupName"])
    if group is None:
        return _error("ResourceNotFoundException", "The specified log group does not exist.")
    if operation == "DisassociateKmsKey":
        group.kms_key_id = None
        return _answer(200, {})
    key_id = request["kmsKeyId"].rpartition("key/")[2]
    if (
        not request["kmsKeyId"].startswith("arn:")
        or key_id not in kms_backends[DEFAULT_ACCOUNT_ID][REGION].keys
    ):
        return _error("InvalidParameterException", "Unable to validate the KMS key")
    group.kms_key_id = request["kmsKeyId"]
    return _answer(200, {})


def instrumented_boto3():
    """Stands in for the handler's ``boto3``: records calls, injects ``faults``, fills moto's gaps."""
    spy = SimpleNamespace(calls=[], requests=[], faults={})

    def before_call(model, params, **_):
        request = json.loads(params["body"])
        spy.calls.append(model.name)
        spy.requests.append((model.name, request))
        if model.name in spy.faults:
            return _error(*spy.faults[model.name])
        if model.name in ("AssociateKmsKey", "DisassociateKmsKey"):
            return emulate_kms_association(model.name, request)
        return None

    def client(*args, **kwargs):
        made = boto3.client(*args, **kwargs)
        made.meta.events.register("before-call.*.*", before_call)
        return made

    spy.client = client
    return spy


@pytest.fixture
def api(aws, monkeypatch):
    """The handler's AWS calls by operation name; ``api.faults[name] = (code, message)``."""
    spy = instrumented_boto3()
    monkeypatch.setattr(training_jobs_log_group, "boto3", spy)
    return spy


def add_group(aws, name, retention=None, key=None, logs=True):
    """A log group as SageMaker (no key, its own retention) or an earlier run left it."""
    aws.logs.create_log_group(logGroupName=name, **({"kmsKeyId": key} if key else {}))
    if retention:
        aws.logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
    if logs:
        now = int(time.time() * 1000)  # CloudWatch drops events older than 14 days
        aws.logs.create_log_stream(logGroupName=name, logStreamName="job-1/algo-1")
        aws.logs.put_log_events(
            logGroupName=name,
            logStreamName="job-1/algo-1",
            logEvents=[
                {"timestamp": now + i, "message": m} for i, m in enumerate(EVENTS_IN_STREAM)
            ],
        )
        aws.seeded.add(name)


def group_state(aws, name):
    """(retention, key) as describe_log_groups reports them, or None when there is no group."""
    pages = aws.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
    for group in (group for page in pages for group in page["logGroups"]):
        if group["logGroupName"] == name:
            return group.get("retentionInDays"), group.get("kmsKeyId")
    return None


def messages(aws, name):
    streams = aws.logs.describe_log_streams(logGroupName=name)["logStreams"]
    return {
        stream["logStreamName"]: [
            event["message"]
            for event in aws.logs.get_log_events(
                logGroupName=name, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
        ]
        for stream in streams
    }


def invoke(cfn_responses, request_type, properties, handler=None, **overrides):
    handler = handler or training_jobs_log_group.handler
    return answer_of(handler, cfn_responses, request_type, properties, **overrides)


def props(name=NAME, retention="14", key="{key}"):
    """As CloudFormation sends them: a Ref to a Number parameter arrives as a string."""
    return {"LogGroupName": name, "RetentionInDays": retention, "KmsKeyArn": key}


SAGEMAKERS = {NAME: (30, None)}  # SageMaker made it: its retention, no key, logs in it
OURS = {NAME: (7, "{key}")}  # as an earlier Create or adoption left it, logs in it
CONFIGURE = ["AssociateKmsKey", "PutRetentionPolicy"]
MADE = ["DescribeLogGroups", "CreateLogGroup", *CONFIGURE]
ADOPT = ["DescribeLogGroups", *CONFIGURE]

# id, groups before {name: (retention, key)}, request type, properties, event overrides,
# status, text the reason must contain, physical id (None: failed-create-...), data,
# groups after {name: (retention, key) or None}, the handler's AWS calls in order.
EVENTS = [
    (
        "create-missing",
        {},
        "Create",
        props(),
        {},
        "SUCCESS",
        "",
        f"created:{NAME}",
        {"LogGroupName": NAME},
        {NAME: (14, "{key}")},
        MADE,
    ),
    (
        "create-adopts-sagemakers-keeping-its-longer-retention",
        SAGEMAKERS,
        "Create",
        props(),
        {},
        "SUCCESS",
        "",
        f"adopted:30:none:{NAME}",
        {"LogGroupName": NAME},
        {NAME: (30, "{key}")},
        ADOPT,
    ),
    (
        "create-ignores-prefix-sibling",
        {SIBLING: (30, None)},
        "Create",
        props(),
        {},
        "SUCCESS",
        "",
        f"created:{NAME}",
        {"LogGroupName": NAME},
        {NAME: (14, "{key}"), SIBLING: (30, None)},
        MADE,
    ),
    (
        "update-same-name-new-key-and-retention",
        OURS,
        "Update",
        props(retention="365", key="{other_key}"),
        {"PhysicalResourceId": f"created:{NAME}", "OldResourceProperties": props(retention="7")},
        "SUCCESS",
        "",
        f"created:{NAME}",
        {"LogGroupName": NAME},
        {NAME: (365, "{other_key}")},
        CONFIGURE,
    ),
    (
        "update-new-retention-adopted",
        OURS,
        "Update",
        props(retention="90"),
        {"PhysicalResourceId": f"adopted:{NAME}", "OldResourceProperties": props(retention="7")},
        "SUCCESS",
        "",
        f"adopted:{NAME}",
        {"LogGroupName": NAME},
        {NAME: (90, "{key}")},
        CONFIGURE,
    ),
    (
        "update-new-name-creates-leaves-old-to-delete",
        OURS,
        "Update",
        props(name=NEW_NAME),
        {"PhysicalResourceId": f"created:{NAME}", "OldResourceProperties": props()},
        "SUCCESS",
        "",
        f"created:{NEW_NAME}",
        {"LogGroupName": NEW_NAME},
        {NAME: (7, "{key}"), NEW_NAME: (14, "{key}")},
        MADE,
    ),
    (
        "update-new-name-adopts",
        {**OURS, NEW_NAME: (3, None)},
        "Update",
        props(name=NEW_NAME),
        {"PhysicalResourceId": f"created:{NAME}", "OldResourceProperties": props()},
        "SUCCESS",
        "",
        f"adopted:3:none:{NEW_NAME}",
        {"LogGroupName": NEW_NAME},
        {NAME: (7, "{key}"), NEW_NAME: (14, "{key}")},
        ADOPT,
    ),
    (
        "delete-created",
        {**OURS, SIBLING: (30, None)},
        "Delete",
        props(),
        {"PhysicalResourceId": f"created:{NAME}"},
        "SUCCESS",
        "",
        f"created:{NAME}",
        {},
        {NAME: None, SIBLING: (30, None)},
        ["DeleteLogGroup"],
    ),
    (
        "delete-adopted-keeps-group-and-logs",
        OURS,
        "Delete",
        props(),
        {"PhysicalResourceId": f"adopted:{NAME}"},
        "SUCCESS",
        "",
        f"adopted:{NAME}",
        {},
        {NAME: (7, None)},
        ["DisassociateKmsKey"],
    ),
    (
        "delete-created-already-gone",
        {},
        "Delete",
        props(),
        {"PhysicalResourceId": f"created:{NAME}"},
        "SUCCESS",
        "",
        f"created:{NAME}",
        {},
        {NAME: None},
        ["DeleteLogGroup"],
    ),
    (
        "delete-adopted-already-gone",
        {},
        "Delete",
        props(),
        {"PhysicalResourceId": f"adopted:{NAME}"},
        "SUCCESS",
        "",
        f"adopted:{NAME}",
        {},
        {NAME: None},
        ["DisassociateKmsKey"],
    ),
    (
        "delete-failed-create-marker",
        OURS,
        "Delete",
        props(),
        {"PhysicalResourceId": "failed-create-abc"},
        "SUCCESS",
        "Nothing was created",
        "failed-create-abc",
        {},
        OURS,
        [],
    ),
    (
        "delete-unknown-id-touches-nothing",
        OURS,
        "Delete",
        props(),
        {"PhysicalResourceId": NAME},
        "SUCCESS",
        "",
        NAME,
        {},
        OURS,
        [],
    ),
    # moto's CreateLogGroup takes any key (AWS would refuse it there); the emulated
    # AssociateKmsKey refuses it, which makes this the configure-fails-after-creating case.
    (
        "create-unknown-key-undoes-the-creation",
        {},
        "Create",
        props(key=UNKNOWN_KEY),
        {},
        "FAILED",
        "InvalidParameterException",
        None,
        {},
        {NAME: None},
        [*MADE[:3], "DeleteLogGroup"],
    ),
    (
        "create-unknown-key-undoes-the-adoption",
        SAGEMAKERS,
        "Create",
        props(key=UNKNOWN_KEY),
        {},
        "FAILED",
        "InvalidParameterException",
        None,
        {},
        SAGEMAKERS,
        [*ADOPT[:2], "DisassociateKmsKey", "PutRetentionPolicy"],
    ),
    (
        "create-without-properties",
        {},
        "Create",
        {},
        {},
        "FAILED",
        "KeyError: 'LogGroupName'",
        None,
        {},
        {NAME: None},
        [],
    ),
    (
        "create-without-key",
        SAGEMAKERS,
        "Create",
        {"LogGroupName": NAME, "RetentionInDays": "14"},
        {},
        "FAILED",
        "KmsKeyArn",
        None,
        {},
        SAGEMAKERS,
        [],
    ),
    (
        "create-retention-not-a-number",
        {},
        "Create",
        props(retention="forever"),
        {},
        "FAILED",
        "ValueError",
        None,
        {},
        {NAME: None},
        [],
    ),
    (
        "update-without-properties-keeps-id",
        OURS,
        "Update",
        {},
        {"PhysicalResourceId": f"created:{NAME}", "OldResourceProperties": props()},
        "FAILED",
        "LogGroupName",
        f"created:{NAME}",
        {},
        OURS,
        [],
    ),
    (
        "unknown-request-type",
        {},
        "Bogus",
        props(),
        {},
        "FAILED",
        "Malformed event",
        None,
        {},
        {NAME: None},
        [],
    ),
    (
        "create-without-stack-id",
        {},
        "Create",
        props(),
        {"StackId": ""},
        "FAILED",
        "Malformed event",
        None,
        {},
        {NAME: None},
        [],
    ),
]


def fill(value, aws):
    if isinstance(value, str):
        return value.replace("{key}", aws.key).replace("{other_key}", aws.other_key)
    if isinstance(value, tuple | list):
        return type(value)(fill(item, aws) for item in value)
    if isinstance(value, dict):
        return {key: fill(item, aws) for key, item in value.items()}
    return value


def assert_groups(aws, expected):
    for name, state in fill(expected, aws).items():
        assert group_state(aws, name) == state, name
        if state and name in aws.seeded:
            assert messages(aws, name) == {"job-1/algo-1": EVENTS_IN_STREAM}, name


@pytest.mark.parametrize(
    (
        "before",
        "request_type",
        "properties",
        "overrides",
        "status",
        "reason",
        "physical_id",
        "data",
        "after",
        "calls",
    ),
    [row[1:] for row in EVENTS],
    ids=[row[0] for row in EVENTS],
)
def test_event_table(
    aws,
    api,
    cfn_responses,
    before,
    request_type,
    properties,
    overrides,
    status,
    reason,
    physical_id,
    data,
    after,
    calls,
):
    for name, (retention, key) in fill(before, aws).items():
        add_group(aws, name, retention, key)
    assert_groups(aws, before)

    body = invoke(cfn_responses, request_type, fill(properties, aws), **fill(overrides, aws))

    assert body["Status"] == status, body["Reason"]
    assert reason in body["Reason"]
    if physical_id:
        assert body["PhysicalResourceId"] == physical_id
    else:
        assert body["PhysicalResourceId"].startswith("failed-create-")
    assert body["Data"] == data
    assert_groups(aws, after)
    assert api.calls == calls


def test_created_group_is_encrypted_from_the_start(aws, api, cfn_responses):
    # SageMaker may log into it at once: the key goes with CreateLogGroup, not just after it.
    assert invoke(cfn_responses, "Create", fill(props(), aws))["Status"] == "SUCCESS"

    assert ("CreateLogGroup", {"logGroupName": NAME, "kmsKeyId": aws.key}) in api.requests


def test_race_with_sagemaker_creating_the_group_adopts_it(aws, api, cfn_responses, monkeypatch):
    # DescribeLogGroups saw nothing, then SageMaker made the group before CreateLogGroup ran.
    add_group(aws, NAME, 30)
    find = training_jobs_log_group._find
    looks = iter([lambda logs, name: None, find])
    monkeypatch.setattr(training_jobs_log_group, "_find", lambda *a: next(looks)(*a))

    body = invoke(cfn_responses, "Create", fill(props(), aws))

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == f"adopted:30:none:{NAME}"
    assert api.calls == ["CreateLogGroup", "DescribeLogGroups", *CONFIGURE]
    assert_groups(aws, {NAME: (30, "{key}")})


def test_event_without_response_url_is_dropped_without_crashing(aws, api, cfn_responses):
    event = make_event("Create", cfn_responses.url, fill(props(), aws))
    del event["ResponseURL"]

    assert training_jobs_log_group.handler(event, FakeContext()) is None
    assert training_jobs_log_group.handler("not an event", FakeContext()) is None
    assert cfn_responses.requests == []
    assert api.calls == []
    assert group_state(aws, NAME) is None


def test_inlined_source_creates_and_deletes_too(aws, cfn_responses):
    namespace = {}
    exec(compile(inline_source("training_jobs_log_group"), "index.py", "exec"), namespace)
    spy = namespace["boto3"] = instrumented_boto3()  # the inlined module's own global

    created = invoke(cfn_responses, "Create", fill(props(), aws), handler=namespace["handler"])

    assert (created["Status"], created["PhysicalResourceId"]) == ("SUCCESS", f"created:{NAME}")
    assert_groups(aws, {NAME: (14, "{key}")})

    deleted = invoke(
        cfn_responses,
        "Delete",
        {},
        handler=namespace["handler"],
        PhysicalResourceId=f"created:{NAME}",
    )

    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert group_state(aws, NAME) is None
    assert spy.calls == [*MADE, "DeleteLogGroup"]
