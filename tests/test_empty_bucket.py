"""The bucket-emptier custom resource against moto S3, answering a real local ResponseURL.

An event table (CDK style: event in, response out) covers the cheap cases; the big, versioned
bucket, per-key errors, S3 failures and the near-timeout hand-off have their own tests. A spy
wraps botocore's client creation: it records the handler's S3 calls (moto does not enforce
the 1,000-key DeleteObjects cap, so batch sizes are checked here), injects faults and stubs
Lambda.
"""

import json
import re
import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from botocore.session import Session
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.s3.utils import _VersionedKeyStore

from templates.functions import custom_resource, empty_bucket
from tests.conftest import FakeContext, make_event

STACK_ID = make_event("Create", "")["StackId"]
OTHER_STACK_ID = "arn:aws:cloudformation:eu-central-1:123456789012:stack/other/9f8e7d6c"
BUCKET = "gc-outputs"
PHYSICAL_ID = empty_bucket.PHYSICAL_ID_PREFIX + BUCKET
REGION = {"LocationConstraint": "eu-central-1"}


class Spy:
    """Wraps botocore's ``Session.create_client`` (boto3 clients are made by it too)."""

    def __init__(self, real_create_client):
        self.real_create_client = real_create_client
        self.calls = []  # (operation name, API parameters) of every S3 call the handler made
        self.faults = {}  # operation name -> function(params, nth call) raising to inject a fault
        self.invokes = []  # keyword arguments of every lambda.invoke
        self.hooks = []  # (botocore event name, handler) added to every S3 client
        self.first_hooks = []  # the same, ahead of moto's (which answers in before-send)

    def create_client(self, session, service, *args, **kwargs):
        if service == "lambda":
            return self
        client = self.real_create_client(session, service, *args, **kwargs)
        client.meta.events.register(f"before-parameter-build.{service}", self.record)
        for name, hook in self.hooks:
            client.meta.events.register(name, hook)
        for name, hook in self.first_hooks:
            client.meta.events.register_first(name, hook)
        return client

    def record(self, params, model, **_):
        self.calls.append((model.name, params))
        fault = self.faults.get(model.name)
        if fault:
            fault(params, len(self.of(model.name)))

    def of(self, operation):
        return [params for name, params in self.calls if name == operation]

    def invoke(self, **kwargs):
        self.invokes.append(kwargs)
        return {"StatusCode": 202}


@pytest.fixture
def s3(monkeypatch):
    """moto S3 with its list-while-deleting race fixed (a key deleted between moto's copy of
    the key index and its lookup yields None and crashes ListObjectVersions; real S3 has no
    such race and the handler lists while its worker threads delete)."""
    monkeypatch.setattr(
        _VersionedKeyStore,
        "iterlists",
        lambda store: ((key, store.getlist(key, [])) for key in store._self_iterable()),
    )
    with mock_aws():
        yield boto3.client("s3")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """Pauses (settling, per-key backoff, botocore's retry backoff) shrink to almost nothing:
    the tests check what is retried and when it stops, not how long it sleeps."""
    monkeypatch.setattr(empty_bucket, "SETTLE_SECONDS", 0.01)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def spy(s3, monkeypatch):
    spy = Spy(Session.create_client)
    monkeypatch.setattr(
        Session, "create_client", lambda *args, **kw: spy.create_client(*args, **kw)
    )
    return spy


def make_bucket(s3, name=BUCKET, tag=STACK_ID, lock=False, before_versioning=()):
    s3.create_bucket(Bucket=name, CreateBucketConfiguration=REGION, ObjectLockEnabledForBucket=lock)
    for key in before_versioning:  # their version id is "null"
        s3.put_object(Bucket=name, Key=key, Body=b"old")
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if tag:
        tags = [{"Key": "team", "Value": "gc"}, {"Key": empty_bucket.OPT_IN_TAG_KEY, "Value": tag}]
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})


class CountdownContext(FakeContext):
    """A Lambda context whose remaining time runs down with the wall clock, as Lambda's does."""

    def __init__(self, remaining_ms, **kwargs):
        super().__init__(remaining_ms, **kwargs)
        self.end = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self):
        return int((self.end - time.monotonic()) * 1000)


def moto_bucket(name=BUCKET):
    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(name)


def fill(s3, keys, versions=1, markers=0, name=BUCKET):
    """``keys`` keys of ``versions`` versions and ``markers`` delete markers each; returns the
    number of entries ListObjectVersions shows. Versions go straight into moto (fast)."""
    names = [f"data/{index:05d}.bin" for index in range(keys)]
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in names:
        for version in range(versions):
            backend.put_object(name, key, f"{key} v{version}".encode())
    for _ in range(markers):
        for start in range(0, keys, 1000):
            objects = [{"Key": key} for key in names[start : start + 1000]]
            s3.delete_objects(Bucket=name, Delete={"Objects": objects})
    return keys * (versions + markers)


def versions_left(s3, name=BUCKET):
    """Object versions and delete markers in the bucket (counted in moto: listing is slow)."""
    return sum(len(versions) for _, versions in moto_bucket(name).keys.lists())


def uploads_left(s3, name=BUCKET):
    return len(s3.list_multipart_uploads(Bucket=name).get("Uploads", []))


def delete_event(url, bucket=BUCKET, **overrides):
    return make_event(
        "Delete", url, {"BucketName": bucket}, PhysicalResourceId=PHYSICAL_ID, **overrides
    )


def client_error(code, operation, message="injected"):
    def fault(params, nth):
        raise ClientError({"Error": {"Code": code, "Message": message}}, operation)

    return fault


# Event table: (request type, properties, event overrides, bucket set-up) -> expected response.
TABLE = {
    "create is a no-op": (
        ("Create", {"BucketName": BUCKET}, {}, "tagged"),
        ("SUCCESS", PHYSICAL_ID, None, 3),
    ),
    "update of the same bucket keeps the id": (
        (
            "Update",
            {"BucketName": BUCKET},
            {"PhysicalResourceId": PHYSICAL_ID, "OldResourceProperties": {"BucketName": BUCKET}},
            "tagged",
        ),
        ("SUCCESS", PHYSICAL_ID, None, 3),
    ),
    "update of the same bucket keeps an id it did not make": (
        (
            "Update",
            {"BucketName": BUCKET},
            {"PhysicalResourceId": "legacy-1", "OldResourceProperties": {"BucketName": BUCKET}},
            "tagged",
        ),
        ("SUCCESS", "legacy-1", None, 3),
    ),
    "update without old properties keeps the id": (
        ("Update", {"BucketName": BUCKET}, {"PhysicalResourceId": "legacy-1"}, "tagged"),
        ("SUCCESS", "legacy-1", None, 3),
    ),
    "update to a renamed bucket gets a new id": (
        (
            "Update",
            {"BucketName": "gc-outputs-v2"},
            {"PhysicalResourceId": PHYSICAL_ID, "OldResourceProperties": {"BucketName": BUCKET}},
            "tagged",
        ),
        ("SUCCESS", empty_bucket.PHYSICAL_ID_PREFIX + "gc-outputs-v2", None, 3),
    ),
    "delete of a missing bucket succeeds": (
        ("Delete", {"BucketName": BUCKET}, {"PhysicalResourceId": PHYSICAL_ID}, None),
        ("SUCCESS", PHYSICAL_ID, None, None),
    ),
    "delete of an untagged bucket is refused": (
        ("Delete", {"BucketName": BUCKET}, {"PhysicalResourceId": PHYSICAL_ID}, "untagged"),
        ("FAILED", PHYSICAL_ID, "Refusing to empty gc-outputs: tag", 3),
    ),
    "delete of another stack's bucket is refused": (
        ("Delete", {"BucketName": BUCKET}, {"PhysicalResourceId": PHYSICAL_ID}, "other stack"),
        ("FAILED", PHYSICAL_ID, OTHER_STACK_ID, 3),
    ),
    "delete after a failed create touches nothing": (
        ("Delete", {"BucketName": BUCKET}, {"PhysicalResourceId": "failed-create-1"}, "tagged"),
        ("SUCCESS", "failed-create-1", "Nothing was created", 3),
    ),
    "create without a bucket name fails": (
        ("Create", {}, {}, "tagged"),
        ("FAILED", None, "BucketName must be a non-empty string", 3),
    ),
    "delete with a non-string bucket name fails": (
        ("Delete", {"BucketName": ["a"]}, {"PhysicalResourceId": PHYSICAL_ID}, "tagged"),
        ("FAILED", PHYSICAL_ID, "BucketName must be a non-empty string", 3),
    ),
    "properties that are not an object fail": (
        ("Delete", None, {"PhysicalResourceId": PHYSICAL_ID, "ResourceProperties": "x"}, "tagged"),
        ("FAILED", PHYSICAL_ID, "BucketName", 3),
    ),
    "an event without a stack id fails": (
        (
            "Delete",
            {"BucketName": BUCKET},
            {"PhysicalResourceId": PHYSICAL_ID, "StackId": ""},
            "tagged",
        ),
        ("FAILED", PHYSICAL_ID, "Malformed event", 3),
    ),
    "an unknown request type fails": (
        ("Replace", {"BucketName": BUCKET}, {}, "tagged"),
        ("FAILED", None, "Malformed event", 3),
    ),
    "a forged continuation beyond the hop cap fails": (
        (
            "Delete",
            {"BucketName": BUCKET},
            {"PhysicalResourceId": PHYSICAL_ID, "Continuation": {"Hop": 99, "Deleted": 0}},
            "tagged",
        ),
        ("FAILED", PHYSICAL_ID, "Malformed Continuation", 3),
    ),
    "a continuation that is not an object fails": (
        (
            "Delete",
            {"BucketName": BUCKET},
            {"PhysicalResourceId": PHYSICAL_ID, "Continuation": 1},
            "tagged",
        ),
        ("FAILED", PHYSICAL_ID, "Malformed Continuation", 3),
    ),
}


@pytest.mark.parametrize(("given", "expected"), TABLE.values(), ids=TABLE.keys())
def test_event_table(s3, spy, cfn_responses, given, expected):
    request_type, properties, overrides, setup = given
    status, physical_id, reason, left = expected
    if setup:
        tag = {"tagged": STACK_ID, "untagged": None, "other stack": OTHER_STACK_ID}[setup]
        make_bucket(s3, tag=tag)
        fill(s3, keys=1, versions=2, markers=1)
    event = make_event(request_type, cfn_responses.url, properties, **overrides)

    empty_bucket.handler(event, FakeContext())

    body = cfn_responses.only_body()
    assert body["Status"] == status, body["Reason"]
    assert body["PhysicalResourceId"] == (physical_id or f"failed-create-{event['RequestId']}")
    assert (body["RequestId"], body["StackId"]) == (event["RequestId"], event["StackId"])
    if reason:
        assert reason in body["Reason"]
    if request_type in ("Create", "Update") and status == "SUCCESS":
        assert body["Data"] == {"BucketName": properties["BucketName"]}  # for Fn::GetAtt
    if left is not None:
        assert versions_left(s3) == left
    assert not spy.of("ListObjectVersions") and not spy.of("DeleteObjects") and not spy.invokes
    if request_type != "Delete":
        assert spy.calls == []


def test_event_that_is_not_an_object_does_not_crash(spy, cfn_responses):
    empty_bucket.handler(["not", "an", "event"], FakeContext())
    empty_bucket.handler({"RequestType": "Delete"}, FakeContext())  # no ResponseURL
    assert cfn_responses.requests == [] and spy.calls == []


def test_delete_empties_a_big_versioned_bucket(s3, spy, cfn_responses):
    make_bucket(s3, before_versioning=["legacy/readme.txt"])
    # 4 entries a key: batch boundaries (every 1,000) never split a key's versions, so moto's
    # unsynchronised version lists are never updated by two batches at once.
    total = fill(s3, keys=520, versions=2, markers=2) + 1
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="data/huge.bin")
    s3.upload_part(
        Bucket=BUCKET, Key="data/huge.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )
    assert total == versions_left(s3) == 2081 and uploads_left(s3) == 1

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", PHYSICAL_ID), body
    assert body["Data"] == {"Deleted": str(total)}
    assert versions_left(s3) == 0 and uploads_left(s3) == 0
    batches = spy.of("DeleteObjects")
    assert [len(b["Delete"]["Objects"]) for b in batches] == [1000, 1000, 81]
    assert all(b["Delete"]["Quiet"] is True for b in batches)
    assert all(set(o) == {"Key", "VersionId"} for b in batches for o in b["Delete"]["Objects"])
    # 3 pages, then one verifying pass that finds nothing; multipart uploads listed each pass.
    # The next page starts after the previous page's last version (its marker), so a page is
    # deleted only once the next is listed; had a marker gone too early, moto would have ended
    # the pass early and more passes would have been needed.
    assert len(spy.of("ListObjectVersions")) == 4
    s3_calls = [name for name, _ in spy.calls if name in ("ListObjectVersions", "DeleteObjects")]
    assert s3_calls[:2] == ["ListObjectVersions", "ListObjectVersions"]
    assert len(spy.of("ListMultipartUploads")) == 2
    assert len(spy.of("AbortMultipartUpload")) == 1
    assert len(spy.of("GetBucketTagging")) == 1
    assert len(spy.calls) == 1 + 4 + 3 + 2 + 1


def test_late_writes_are_deleted_by_a_second_pass(s3, spy, cfn_responses):
    make_bucket(s3)
    fill(s3, keys=3, versions=2)

    def access_log_arrives(params, nth):
        if nth == 1:
            s3.put_object(Bucket=BUCKET, Key="logs/2024-01-01-access", Body=b"GET /")

    spy.faults["DeleteObjects"] = access_log_arrives
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": "7"})
    assert versions_left(s3) == 0 and len(spy.of("ListObjectVersions")) == 3


def test_a_bucket_that_keeps_filling_is_emptied_until_time_runs_short(s3, spy, cfn_responses):
    """Log deliveries may go on for a while: passes continue while they find something, and
    when the time is nearly up the invocation hands off instead of failing."""
    make_bucket(s3)
    fill(s3, keys=1)
    spy.faults["DeleteObjects"] = lambda params, nth: s3.put_object(
        Bucket=BUCKET, Key=f"logs/{nth}", Body=b"GET /"
    )
    context = CountdownContext(remaining_ms=empty_bucket.HAND_OFF_MS + 1500)

    empty_bucket.handler(delete_event(cfn_responses.url), context)

    assert cfn_responses.requests == []  # the continuation answers
    (invoke,) = spy.invokes
    passes = len(spy.of("ListObjectVersions"))
    assert passes > 10
    assert json.loads(invoke["Payload"])["Continuation"]["Deleted"] in (passes - 1, passes)


def test_the_confirming_pass_waits_for_late_deliveries(s3, spy, cfn_responses, monkeypatch):
    """The pass that finds the bucket empty starts SETTLE_SECONDS after the last deletion (the
    bucket is deleted right after the answer), and what lands meanwhile is deleted too."""
    monkeypatch.setattr(empty_bucket, "SETTLE_SECONDS", 0.3)
    make_bucket(s3)
    fill(s3, keys=3)
    timeline, now = [], time.monotonic
    for event_name in ("after-call.s3.DeleteObjects", "before-call.s3.ListObjectVersions"):
        spy.hooks.append((event_name, lambda model, **_: timeline.append((model.name, now()))))
    real_pause = empty_bucket.Emptier.pause

    def pause(self, seconds):
        real_pause(self, seconds)
        if len(spy.of("ListObjectVersions")) == 1:  # an access log lands during the first wait
            s3.put_object(Bucket=BUCKET, Key="logs/late", Body=b"GET /")

    monkeypatch.setattr(empty_bucket.Emptier, "pause", pause)
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": "4"})
    assert versions_left(s3) == 0
    names = [name for name, _ in timeline]
    assert names == ["ListObjectVersions", "DeleteObjects"] * 2 + ["ListObjectVersions"]
    gaps = [
        later - earlier
        for (_, earlier), (_, later) in zip(timeline[1::2], timeline[2::2], strict=True)
    ]
    assert len(gaps) == 2 and min(gaps) >= 0.3


def test_duplicate_delete_is_harmless(s3, spy, cfn_responses):
    make_bucket(s3)
    fill(s3, keys=5, versions=2, markers=1)
    event = delete_event(cfn_responses.url)

    empty_bucket.handler(event, FakeContext())
    empty_bucket.handler(event, FakeContext())

    first, second = cfn_responses.bodies
    assert first["Status"] == second["Status"] == "SUCCESS"
    assert first["PhysicalResourceId"] == second["PhysicalResourceId"] == PHYSICAL_ID
    assert (first["Data"], second["Data"]) == ({"Deleted": "15"}, {"Deleted": "0"})
    assert versions_left(s3) == 0 and len(spy.of("DeleteObjects")) == 1


def test_locked_objects_fail_with_the_first_key_and_code(s3, spy, cfn_responses):
    make_bucket(s3, lock=True)
    fill(s3, keys=4, versions=1)
    for key in ("data/held-1.bin", "data/held-2.bin"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"evidence", ObjectLockLegalHoldStatus="ON")
    event = delete_event(cfn_responses.url)

    empty_bucket.handler(event, FakeContext())
    empty_bucket.handler(event, FakeContext())  # CloudFormation retrying: same answer, no loop

    first, second = cfn_responses.bodies
    assert first["Status"] == second["Status"] == "FAILED"
    assert first["Reason"].startswith(
        "RuntimeError: 2 versions not deleted, first 'data/held-1.bin'"
    )
    assert "AccessDenied" in first["Reason"] and second["Reason"].startswith(
        "RuntimeError: 2 versions not deleted"
    )
    assert versions_left(s3) == 2  # everything else is gone
    assert len(spy.of("DeleteObjects")) == 2 and len(spy.of("ListObjectVersions")) == 2


def test_undeletable_keys_stop_a_big_bucket_after_a_bounded_number_of_calls(
    s3, spy, cfn_responses, monkeypatch
):
    """Every key refused (e.g. no s3:DeleteObjectVersion): listing stops at the next page, no
    second pass, no endless retry."""
    make_bucket(s3)
    fill(s3, keys=1034, versions=1, markers=2)  # 4 pages
    first_batch_done = threading.Event()
    real_delete_batch = empty_bucket.Emptier.delete_batch

    def delete_batch(self, batch):
        try:
            return real_delete_batch(self, batch)
        finally:
            first_batch_done.set()

    def refuse(parsed, **_):
        deleted = parsed.pop("Deleted")  # moto answers as if Quiet were False
        parsed["Errors"] = [dict(d, Code="AccessDenied", Message="Access Denied") for d in deleted]

    monkeypatch.setattr(empty_bucket.Emptier, "delete_batch", delete_batch)
    spy.hooks.append(("after-call.s3.DeleteObjects", refuse))
    # Page 3 is listed only once batch 1 (page 1, sent after page 2 was listed) has failed.
    spy.faults["ListObjectVersions"] = lambda params, nth: nth == 3 and first_batch_done.wait(5)

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED"
    assert re.fullmatch(
        r"RuntimeError: 1000 versions not deleted, first 'data/00000\.bin' "
        r"\([0-9a-f-]{36}\): AccessDenied Access Denied",
        body["Reason"],
    ), body["Reason"]
    assert len(spy.of("ListObjectVersions")) == 3  # not the 4th page, no second pass
    assert len(spy.of("DeleteObjects")) == 2  # pages 1 and 2; page 3 was not sent
    assert not spy.of("ListMultipartUploads")


@pytest.mark.parametrize(
    ("operation", "nth", "code"),
    [("ListObjectVersions", 2, "AccessDenied"), ("DeleteObjects", 1, "InternalError")],
)
def test_s3_error_midway_fails_with_the_error(s3, spy, cfn_responses, operation, nth, code):
    make_bucket(s3)
    fill(s3, keys=1000 if nth == 2 else 3, versions=1, markers=1)
    real = client_error(code, operation, "We could not do it")
    spy.faults[operation] = lambda params, n: real(params, n) if n == nth else None

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        f"ClientError: An error occurred ({code}) when calling the {operation} operation: "
        "We could not do it"
    )
    assert versions_left(s3) > 0


def test_huge_error_reason_keeps_the_response_under_4096_bytes(s3, spy, cfn_responses):
    make_bucket(s3)
    fill(s3, keys=1)
    message = '\x01\u00e9\U0001f600"\\' * 50_000  # every character escapes to 2-12 bytes
    spy.faults["DeleteObjects"] = client_error("InternalError", "DeleteObjects", message)

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    (request,) = cfn_responses.requests
    assert request["body"]["Status"] == "FAILED" and request["body"]["Reason"].endswith("...")
    assert request["size"] < 4096
    assert len(json.dumps(request["body"]["Reason"])) - 2 <= custom_resource.MAX_REASON_BYTES


def test_near_the_deadline_it_hands_off_instead_of_answering(s3, spy, cfn_responses):
    make_bucket(s3)
    total = fill(s3, keys=275, versions=2, markers=2)
    event = delete_event(cfn_responses.url)
    context = FakeContext(remaining_ms=empty_bucket.HAND_OFF_MS - 1)

    empty_bucket.handler(event, context)

    assert cfn_responses.requests == []  # nobody answered: the continuation will
    (invoke,) = spy.invokes
    assert invoke["FunctionName"] == context.invoked_function_arn
    assert invoke["InvocationType"] == "Event"
    payload = json.loads(invoke["Payload"])
    assert payload == {**event, "Continuation": {"Hop": 1, "Deleted": 1000}}
    assert versions_left(s3) == total - 1000  # it made progress: one page, then handed off

    empty_bucket.handler(payload, FakeContext())  # the continuation, with time to finish

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": str(total)})
    assert body["RequestId"] == event["RequestId"] and versions_left(s3) == 0
    assert len(spy.invokes) == 1


def test_the_last_hop_fails_instead_of_handing_off_again(s3, spy, cfn_responses):
    make_bucket(s3)
    fill(s3, keys=3, versions=1, markers=1)
    hops = empty_bucket.MAX_HOPS
    event = delete_event(cfn_responses.url, Continuation={"Hop": hops, "Deleted": 7})

    empty_bucket.handler(event, FakeContext(remaining_ms=empty_bucket.HAND_OFF_MS - 1))

    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED" and not spy.invokes
    assert body["Reason"] == (
        f"RuntimeError: gc-outputs not empty after {hops + 1} invocations, delete again"
    )


def test_watchdog_hands_off_a_stuck_call_exactly_once(s3, spy, cfn_responses):
    """A call hangs past the watchdog: it re-invokes; when the call returns, no second one."""
    make_bucket(s3)
    fill(s3, keys=3)
    release = threading.Event()
    spy.faults["ListObjectVersions"] = lambda params, nth: release.wait(10)
    margin_ms = custom_resource.WATCHDOG_MARGIN_SECONDS * 1000
    worker = threading.Thread(
        target=empty_bucket.handler,
        args=(delete_event(cfn_responses.url), FakeContext(remaining_ms=margin_ms + 200)),
    )
    worker.start()
    deadline = time.monotonic() + 5
    while not spy.invokes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(spy.invokes) == 1 and worker.is_alive()
    release.set()
    worker.join(10)

    assert not worker.is_alive()
    assert len(spy.invokes) == 1 and cfn_responses.requests == []
    assert json.loads(spy.invokes[0]["Payload"])["Continuation"] == {"Hop": 1, "Deleted": 0}


def test_only_a_delete_is_ever_handed_off(spy):
    """The watchdog asks every request type; a stuck Create or Update just times out."""
    context = FakeContext()
    for request_type in ("Create", "Update"):
        event = make_event(request_type, "http://127.0.0.1:9/", {"BucketName": BUCKET})
        assert empty_bucket.Emptier(context).hand_off(event, context) is None
    assert not spy.invokes
