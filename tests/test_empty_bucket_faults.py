"""The bucket emptier under faults: a failed hand-off racing the watchdog, S3 throttling
(whole calls and per key), refusals mixed with throttling, and keys XML cannot carry.

Fixtures and helpers come from tests/test_empty_bucket.py (moto S3, the client spy).
"""
# ruff: noqa: F811 (its fixtures, imported, are parameters here)

import json
import threading
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.core.responses import ActionResult
from moto.s3.responses import S3Response

from templates.functions import custom_resource, empty_bucket
from tests.conftest import FakeContext
from tests.test_empty_bucket import (  # noqa: F401 (fixtures)
    BUCKET,
    delete_event,
    fill,
    make_bucket,
    moto_bucket,
    no_waiting,
    s3,
    spy,
    versions_left,
)

MARGIN_MS = custom_resource.WATCHDOG_MARGIN_SECONDS * 1000


def invoke_error(message="Rate exceeded"):
    return ClientError(
        {"Error": {"Code": "TooManyRequestsException", "Message": message}}, "Invoke"
    )


@pytest.mark.parametrize("retry_succeeds", [False, True], ids=["retry fails", "retry succeeds"])
def test_a_hand_off_failing_while_the_watchdog_fires_is_answered_once(
    s3, spy, cfn_responses, monkeypatch, retry_succeeds
):
    """The loop's lambda.invoke is in flight when the watchdog asks to hand off; then it fails.
    The watchdog must not take the unfinished attempt for a hand-off: it tries itself, and if
    that fails too, answers FAILED (once: the loop's own failure is discarded)."""
    make_bucket(s3)
    fill(s3, keys=3)
    loop_invoking, watchdog_asked = threading.Event(), threading.Event()
    real_hand_off = empty_bucket.Emptier.hand_off

    def hand_off(self, *args, **kwargs):
        if threading.current_thread() is not threading.main_thread():  # the watchdog's timer
            assert loop_invoking.wait(5)
            watchdog_asked.set()
        return real_hand_off(self, *args, **kwargs)

    attempts = []

    def invoke(**kwargs):
        attempts.append(kwargs)
        if len(attempts) == 1:  # the loop's
            loop_invoking.set()
            assert watchdog_asked.wait(5)
            raise invoke_error()
        if not retry_succeeds:
            raise invoke_error("Rate exceeded again")
        return {"StatusCode": 202}

    def start_watchdog(invocation):
        """The watchdog fires exactly while the loop's invoke is in flight, however long the
        loop took to get there (a wall-clock delay would race it on a busy machine)."""

        def fire_when_the_loop_invokes():
            assert loop_invoking.wait(30)
            invocation._deadline()

        threading.Thread(target=fire_when_the_loop_invokes, daemon=True).start()

    monkeypatch.setattr(empty_bucket.Emptier, "hand_off", hand_off)
    monkeypatch.setattr(custom_resource.Invocation, "start_watchdog", start_watchdog)
    spy.invoke = invoke
    # Under HAND_OFF_MS left: the loop hands off after one page.
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext(MARGIN_MS + 300))

    assert len(attempts) == 2
    if retry_succeeds:
        assert cfn_responses.requests == []  # the continuation answers
        assert json.loads(attempts[1]["Payload"])["Continuation"] == {"Hop": 1, "Deleted": 3}
    else:
        body = cfn_responses.only_body()
        assert body["Status"] == "FAILED"
        assert body["Reason"].startswith("Timed out; hand-off failed: An error occurred")
        assert "Rate exceeded again" in body["Reason"]


def test_the_loop_does_not_hand_off_after_the_watchdog_answered(
    s3, spy, cfn_responses, monkeypatch
):
    """The watchdog's hand-off failed and it answered FAILED; the loop, still listing, must
    then neither hand off (a second answer would follow) nor answer."""
    make_bucket(s3)
    fill(s3, keys=3)
    attempts = []

    def invoke(**kwargs):
        attempts.append(kwargs)
        raise invoke_error()

    spy.invoke = invoke
    answered = threading.Event()
    spy.hooks.append(("before-call.s3.ListObjectVersions", lambda **_: answered.wait(5)))
    real_send = custom_resource.send_response

    def send_response(*args, **kwargs):
        real_send(*args, **kwargs)
        answered.set()

    monkeypatch.setattr(custom_resource, "send_response", send_response)
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext(MARGIN_MS + 300))

    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED" and body["Reason"].startswith("Timed out; hand-off failed")
    assert len(attempts) == 1


class PerKeyErrors:
    """Makes DeleteObjects report chosen versions in Errors, without deleting them: a hook
    takes them out of the request (sending none if none is left) and another puts them into
    the reply."""

    def __init__(self, code_for):
        self.code_for = code_for  # (key, attempt) -> error code, or None to let it through
        self.attempts, self.reported, self.local = {}, [], threading.local()

    def before(self, params, **_):
        held, sent = [], []
        for version in params["Delete"]["Objects"]:
            name = version["Key"], version["VersionId"]
            self.attempts[name] = self.attempts.get(name, 0) + 1
            error_code = self.code_for(version["Key"], self.attempts[name])
            if error_code:
                held.append({**version, "Code": error_code, "Message": f"{error_code}!"})
            else:
                sent.append(version)
        params["Delete"]["Objects"], self.local.held = sent, held

    def answer_without_sending(self, params, **_):
        if not params["body"].count(b"<Object>"):
            return SimpleNamespace(status_code=200, headers={}), {"Errors": []}
        return None

    def after(self, parsed, **_):
        parsed.setdefault("Errors", []).extend(self.local.held)
        self.reported.extend(self.local.held)

    def install(self, spy):
        spy.hooks.append(("before-parameter-build.s3.DeleteObjects", self.before))
        spy.hooks.append(("before-call.s3.DeleteObjects", self.answer_without_sending))
        spy.hooks.append(("after-call.s3.DeleteObjects", self.after))


def test_throttled_keys_are_retried_until_deleted(s3, spy, cfn_responses):
    make_bucket(s3)
    total = fill(s3, keys=1500, versions=1, markers=1)

    def throttle(key, attempt):  # a third of the keys twice, in the codes S3 uses
        index = int(key[5:10])
        if index % 3 == 0 and attempt <= 2:
            return ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout")[index % 4]
        return None

    errors = PerKeyErrors(throttle)
    errors.install(spy)
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": str(total)}), body
    assert versions_left(s3) == 0
    assert len(errors.reported) == 2 * 1000  # 500 keys x 2 entries x 2 attempts
    assert max(errors.attempts.values()) == 3


def test_keys_still_throttled_after_every_attempt_are_left_to_the_next_pass(s3, spy, cfn_responses):
    make_bucket(s3)
    total = fill(s3, keys=4)
    errors = PerKeyErrors(
        lambda key, attempt: "SlowDown" if attempt <= empty_bucket.KEY_ATTEMPTS else None
    )
    errors.install(spy)
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": str(total)}), body
    assert versions_left(s3) == 0 and len(spy.of("ListObjectVersions")) == 3
    assert set(errors.attempts.values()) == {empty_bucket.KEY_ATTEMPTS + 1}


def test_a_refusal_among_throttled_keys_fails_naming_the_refused_key(s3, spy, cfn_responses):
    make_bucket(s3)
    fill(s3, keys=10)
    codes = {"data/00002.bin": "SlowDown", "data/00005.bin": "AccessDenied"}
    codes["data/00007.bin"] = "InvalidRequest"  # e.g. object lock without the bypass
    errors = PerKeyErrors(lambda key, attempt: codes.get(key))
    errors.install(spy)
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("RuntimeError: 2 versions not deleted, first 'data/00005.bin'")
    assert "AccessDenied AccessDenied!" in body["Reason"]
    assert versions_left(s3) == 3


class RawBody:
    def __init__(self, body):
        self.body = body

    def stream(self, **_):
        yield self.body


def test_whole_calls_answered_slow_down_are_retried(s3, spy, cfn_responses):
    """503 SlowDown for the first 4 attempts of DeleteObjects: more than standard mode's 3."""
    make_bucket(s3)
    total = fill(s3, keys=5, versions=2)
    slowed = []
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>"
    )

    def slow_down(request, **_):
        if len(slowed) < 4:
            slowed.append(request.url)
            return AWSResponse(request.url, 503, {}, RawBody(body))
        return None

    spy.first_hooks.append(("before-send.s3.DeleteObjects", slow_down))
    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    answer = cfn_responses.only_body()
    assert (answer["Status"], answer["Data"]) == ("SUCCESS", {"Deleted": str(total)}), answer
    assert len(slowed) == 4 and versions_left(s3) == 0


class UrlEncodedKey:
    """A moto key whose name is listed URL-encoded, as S3 does for EncodingType=url."""

    def __init__(self, key):
        self.key = key

    def __getattr__(self, name):
        return getattr(self.key, name)

    @property
    def name(self):
        return quote(self.key.name, safe="/")


@pytest.fixture
def url_encoded_listing(monkeypatch):
    """moto ignores ListObjectVersions' EncodingType=url (botocore always asks for it and
    decodes the reply); without it, keys with control characters cannot be listed."""
    real = S3Response.list_object_versions

    def list_object_versions(self):  # self: this request's own S3Response
        assert self.querystring.get("encoding-type") == ["url"]
        backend, listing, serialized = (
            self.backend,
            self.backend.list_object_versions,
            self.serialized,
        )

        def encoded(*args, **kwargs):
            versions, prefixes, markers, next_key, next_version = listing(*args, **kwargs)
            return (
                [UrlEncodedKey(v) for v in versions],
                prefixes,
                [UrlEncodedKey(m) for m in markers],
                next_key and quote(next_key, safe="/"),
                next_version,
            )

        self.serialized = lambda result: serialized(
            ActionResult({**result.result, "EncodingType": "url"})
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(backend, "list_object_versions", encoded)
            return real(self)

    monkeypatch.setattr(S3Response, "list_object_versions", list_object_versions)


def test_keys_xml_cannot_carry_are_deleted_one_by_one(s3, spy, cfn_responses, url_encoded_listing):
    make_bucket(s3)
    odd = ["ctl\x01key", "cr\rkey", "tab\tkey", "nl\nkey", "us\x1fkey"]
    for key in [*odd, "data/plain", "data/amp&<>"]:
        for _ in range(2):
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "data/plain"}]})  # a marker
    assert versions_left(s3) == 15

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": "15"}), body
    assert versions_left(s3) == 0
    singles = spy.of("DeleteObject")
    assert sorted(p["Key"] for p in singles) == sorted(odd * 2)
    assert all(set(p) == {"Bucket", "Key", "VersionId"} for p in singles)
    batched = [o["Key"] for p in spy.of("DeleteObjects") for o in p["Delete"]["Objects"]]
    assert sorted(batched) == ["data/amp&<>"] * 2 + ["data/plain"] * 3


def delete_bucket_event(url):
    event = delete_event(url)
    event["ResourceProperties"]["DeleteBucket"] = "true"
    return event


def test_the_logs_bucket_is_deleted_right_after_it_is_emptied(s3, spy, cfn_responses):
    make_bucket(s3)
    fill(s3, keys=3, versions=2)

    empty_bucket.handler(delete_bucket_event(cfn_responses.url), FakeContext())

    assert cfn_responses.only_body()["Status"] == "SUCCESS"
    assert BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_a_log_delivered_after_the_last_pass_is_emptied_before_the_bucket_goes(
    s3, spy, cfn_responses
):
    """An access log landing between the final empty pass and DeleteBucket: S3 refuses
    (BucketNotEmpty), the emptier empties again and deletes; CloudFormation's own DeleteBucket
    then finds nothing left to fail on."""
    make_bucket(s3)
    fill(s3, keys=2)

    def late_delivery(params, nth):
        if nth == 1:
            s3.put_object(Bucket=BUCKET, Key="s3/gc-inputs/2026-12-02-late", Body=b"GET /")

    spy.faults["DeleteBucket"] = late_delivery
    empty_bucket.handler(delete_bucket_event(cfn_responses.url), FakeContext())

    assert cfn_responses.only_body()["Status"] == "SUCCESS"
    assert len(spy.of("DeleteBucket")) == 2
    assert BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_without_delete_bucket_the_bucket_is_left_to_cloudformation(s3, spy, cfn_responses):
    make_bucket(s3)
    fill(s3, keys=1)

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    assert cfn_responses.only_body()["Status"] == "SUCCESS"
    assert spy.of("DeleteBucket") == [] and versions_left(s3) == 0
