"""The shared custom-resource protocol: one answer per event, whatever happens.

Every answer is a real HTTP PUT to the ``cfn_responses`` server on 127.0.0.1.
"""

import json
import socket
import threading
import time

import pytest

from templates.functions import custom_resource
from templates.functions.custom_resource import HANDED_OFF, run, send_response, truncate_reason
from tests.conftest import FakeContext, make_event

MARGIN_MS = custom_resource.WATCHDOG_MARGIN_SECONDS * 1000


def wait_for(predicate, seconds=5):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


class Operation:
    """Records its calls; returns ``result`` or raises it, optionally after ``release``."""

    def __init__(self, result=("physical-1", {"Answer": "42"}), release=None):
        self.result, self.release, self.calls = result, release, []

    def __call__(self, event, context):
        self.calls.append(event)
        if self.release:
            self.release.wait(10)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_success_answers_once_with_the_operation_result(cfn_responses):
    event = make_event("Create", cfn_responses.url, {"Size": "1"})
    operation = Operation()

    # The watchdog would fire 1 s in (well after this quick operation, even on a busy
    # machine): it must have been cancelled by the answer.
    run(event, FakeContext(remaining_ms=MARGIN_MS + 1000), {"Create": operation})
    time.sleep(1.2)

    (request,) = cfn_responses.requests
    assert request["method"] == "PUT" and request["headers"]["Content-Type"] == ""
    assert request["body"] == {
        "Status": "SUCCESS",
        "Reason": "SUCCESS",
        "PhysicalResourceId": "physical-1",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Answer": "42"},
    }
    assert operation.calls == [event]


@pytest.mark.parametrize(
    ("request_type", "overrides", "physical_id"),
    [
        ("Create", {}, None),  # nothing exists: the failed-create marker
        ("Update", {"PhysicalResourceId": "kept-1"}, "kept-1"),
    ],
)
def test_an_exception_answers_failed_with_its_message(
    cfn_responses, request_type, overrides, physical_id
):
    event = make_event(request_type, cfn_responses.url, **overrides)

    run(event, FakeContext(), {request_type: Operation(ValueError("no such subnet"))})

    body = cfn_responses.only_body()
    assert (body["Status"], body["Reason"]) == ("FAILED", "ValueError: no such subnet")
    expected_id = physical_id or custom_resource.FAILED_CREATE_PREFIX + event["RequestId"]
    assert body["PhysicalResourceId"] == expected_id


def test_watchdog_answers_failed_when_an_operation_hangs(cfn_responses):
    release = threading.Event()
    operation = Operation(release=release)
    worker = threading.Thread(
        target=run,
        args=(
            make_event("Create", cfn_responses.url),
            FakeContext(remaining_ms=MARGIN_MS + 200),
            {"Create": operation},
        ),
    )
    worker.start()

    assert wait_for(lambda: cfn_responses.requests)
    release.set()  # the operation finishes after all: it must not answer again
    worker.join(5)

    body = cfn_responses.only_body()
    assert (body["Status"], body["Reason"]) == ("FAILED", "Timed out before the operation finished")


@pytest.mark.parametrize(
    ("on_deadline", "expected"),
    [
        (lambda event, context: HANDED_OFF, None),
        (lambda event, context: None, "Timed out before the operation finished"),
        (lambda event, context: 1 / 0, "Timed out; hand-off failed: division by zero"),
    ],
    ids=["handed off", "declined", "hand-off failed"],
)
def test_watchdog_asks_on_deadline_to_hand_off(cfn_responses, on_deadline, expected):
    asked, release = [], threading.Event()

    def deadline(event, context):
        asked.append((event, context))
        try:
            return on_deadline(event, context)
        finally:
            release.set()

    event, context = make_event("Delete", cfn_responses.url), FakeContext(MARGIN_MS + 100)
    run(event, context, {"Delete": Operation(release=release)}, on_deadline=deadline)

    assert asked == [(event, context)]
    if expected is None:
        time.sleep(0.1)
        assert cfn_responses.requests == []  # the new invocation will answer
    else:
        assert wait_for(lambda: cfn_responses.requests)  # sent from the watchdog's thread
        time.sleep(0.1)
        body = cfn_responses.only_body()
        assert (body["Status"], body["Reason"]) == ("FAILED", expected)


def test_an_operation_that_handed_off_is_not_answered(cfn_responses):
    run(
        make_event("Delete", cfn_responses.url),
        FakeContext(remaining_ms=MARGIN_MS + 1000),
        {"Delete": Operation(HANDED_OFF)},
    )
    time.sleep(1.2)  # nor does the watchdog answer later
    assert cfn_responses.requests == []


def test_delete_after_a_failed_create_succeeds_without_the_operation(cfn_responses):
    marker = custom_resource.FAILED_CREATE_PREFIX + "abc"
    operation = Operation(RuntimeError("must not run"))

    run(
        make_event("Delete", cfn_responses.url, PhysicalResourceId=marker),
        FakeContext(),
        {"Delete": operation},
    )

    body = cfn_responses.only_body()
    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", marker)
    assert body["Reason"] == "Nothing was created" and operation.calls == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"RequestId": ""}, "Malformed event: missing ['RequestId']"),
        ({"StackId": None, "LogicalResourceId": ""}, "['StackId', 'LogicalResourceId']"),
        ({"RequestType": "Explode"}, "Malformed event: missing a known RequestType"),
    ],
)
def test_malformed_events_answer_failed_without_the_operation(cfn_responses, overrides, reason):
    operation = Operation()
    event = make_event("Create", cfn_responses.url, **overrides)

    run(event, FakeContext(), {"Create": operation})

    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED" and reason in body["Reason"]
    assert operation.calls == []


@pytest.mark.parametrize(
    "event",
    [None, [], "Create", {"RequestType": "Create"}, {"RequestType": "Create", "ResponseURL": ""}],
)
def test_an_event_without_a_response_url_is_dropped_without_crashing(cfn_responses, event):
    operation = Operation()
    run(event, FakeContext(), {"Create": operation})
    assert operation.calls == [] and cfn_responses.requests == []


@pytest.mark.parametrize(
    "reason",
    [
        "x" * 1000,  # fits exactly
        "x" * 1001,
        "\x01" * 5000,  # 6 bytes each once JSON-escaped
        "\u00e9" * 2000,  # 6 bytes escaped, 2 in UTF-8
        "\U0001f600" * 2000,  # 12 bytes escaped (a surrogate pair)
        '"\\' * 2000,  # 2 bytes each
    ],
    ids=["ascii-1000", "ascii-1001", "control", "latin", "emoji", "quotes"],
)
def test_reason_is_truncated_as_sent(cfn_responses, reason):
    run(
        make_event("Create", cfn_responses.url),
        FakeContext(),
        {"Create": Operation(RuntimeError(reason))},
    )

    (request,) = cfn_responses.requests
    sent = request["body"]["Reason"]
    assert request["size"] < 4096
    assert len(json.dumps(sent)) - 2 <= custom_resource.MAX_REASON_BYTES
    assert sent.endswith("...") and ("RuntimeError: " + reason).startswith(sent[:-3])


def test_short_reasons_are_kept_whole():
    assert truncate_reason("x" * 1000) == "x" * 1000
    assert truncate_reason("bucket 'a\u00e9' is \x01 gone") == "bucket 'a\u00e9' is \x01 gone"
    assert truncate_reason(ValueError("boom")) == "boom"


def test_send_response_retries_then_raises_when_nobody_listens():
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/response"
    with pytest.raises(OSError):
        send_response(make_event("Create", url), "SUCCESS", physical_id="p")
