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

    ((asked_event, invocation),) = asked
    assert asked_event is event and invocation.context is context
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


@pytest.mark.parametrize("outcome", ["answer", "hand-off"])
def test_run_returns_only_once_the_watchdog_has_answered(cfn_responses, outcome):
    """The operation finishes just after the watchdog took over: run() must not return (Lambda
    would freeze the sandbox) before the watchdog's FAILED, or its hand-off, is done."""
    deadline_started, run_returned, handed_off = threading.Event(), threading.Event(), []

    def on_deadline(event, context):
        deadline_started.set()
        run_returned.wait(1)  # an early-returning run() would get here first
        handed_off.append(outcome == "hand-off")
        return HANDED_OFF if outcome == "hand-off" else None

    def operation(event, context):
        deadline_started.wait(5)
        return "physical-1", {}

    seen_at_return = []

    def invoke():
        run(
            make_event("Create", cfn_responses.url),
            FakeContext(remaining_ms=MARGIN_MS + 100),
            {"Create": operation},
            on_deadline=on_deadline,
        )
        seen_at_return.append((len(cfn_responses.requests), list(handed_off)))
        run_returned.set()

    worker = threading.Thread(target=invoke)
    worker.start()
    worker.join(10)

    if outcome == "answer":
        assert seen_at_return == [(1, [False])]
        body = cfn_responses.only_body()
        assert (body["Status"], body["Reason"]) == (
            "FAILED",
            "Timed out before the operation finished",
        )
    else:
        assert seen_at_return == [(0, [True])] and cfn_responses.requests == []


def test_the_operation_sees_the_watchdog_take_over_and_changes_nothing(cfn_responses):
    """A Create answered FAILED by the watchdog must not go on to create the thing."""
    created, outcome = [], []

    def create(event, context):
        assert not context.cancelled.is_set()
        custom_resource.raise_if_cancelled(context)  # not yet: no exception
        assert context.cancelled.wait(5)  # a long wait, cut short by the watchdog
        try:
            custom_resource.raise_if_cancelled(context)
            created.append("vpc-1")
        except custom_resource.CancelledError as error:
            outcome.append(str(error))
            raise
        return "vpc-1", {}

    run(make_event("Create", cfn_responses.url), FakeContext(MARGIN_MS + 100), {"Create": create})

    body = cfn_responses.only_body()
    assert (body["Status"], body["Reason"]) == ("FAILED", "Timed out before the operation finished")
    assert body["PhysicalResourceId"].startswith(custom_resource.FAILED_CREATE_PREFIX)
    assert created == [] and outcome == ["the watchdog has already answered"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("300", 300),  # as CloudFormation sends it
        (300, 300),
        ("1200.0", 1200),
        (None, None),
        ("", None),
        ("0", None),
        ("-5", None),
        ("nan", None),
        ("soon", None),
        ([300], None),
    ],
)
def test_service_timeout_is_read_from_the_resource_properties(value, seconds):
    properties = {} if value is None else {"ServiceTimeout": value}
    event = make_event("Create", "http://127.0.0.1:9/", properties)
    assert custom_resource.service_timeout_seconds(event) == seconds
    assert custom_resource.service_timeout_seconds({"ResourceProperties": "x"}) is None


@pytest.mark.parametrize(
    ("service_timeout", "lambda_ms", "expected_ms"),
    [
        ("300", 880_000, 300_000),  # the resource times out long before the Lambda
        ("3600", 880_000, 880_000),
        (None, 880_000, 880_000),
        ("junk", 880_000, 880_000),
    ],
)
def test_operations_see_the_earlier_of_lambda_and_service_timeout(
    cfn_responses, service_timeout, lambda_ms, expected_ms
):
    seen = []

    def operation(event, context):
        seen.append(
            (
                context.get_remaining_time_in_millis(),
                custom_resource.deadline_ms_left(context),
                context.invoked_function_arn,  # Lambda's context attributes pass through
            )
        )
        return "p", {}

    properties = {} if service_timeout is None else {"ServiceTimeout": service_timeout}
    context = FakeContext(remaining_ms=lambda_ms)
    run(make_event("Create", cfn_responses.url, properties), context, {"Create": operation})

    ((remaining, before_watchdog, arn),) = seen
    assert expected_ms - 1000 < remaining <= expected_ms
    assert before_watchdog == remaining - MARGIN_MS and arn == context.invoked_function_arn
    assert cfn_responses.only_body()["Status"] == "SUCCESS"


def test_watchdog_fires_before_a_short_service_timeout(cfn_responses):
    """ServiceTimeout 21 s, Lambda 300 s left: the watchdog answers 1 s in, not at 280 s."""
    release = threading.Event()
    worker = threading.Thread(
        target=run,
        args=(
            make_event("Create", cfn_responses.url, {"ServiceTimeout": "21"}),
            FakeContext(remaining_ms=300_000),
            {"Create": Operation(release=release)},
        ),
    )
    started = time.monotonic()
    worker.start()

    assert wait_for(lambda: cfn_responses.requests, seconds=10)
    assert 0.9 < time.monotonic() - started < 10
    release.set()
    worker.join(5)
    body = cfn_responses.only_body()
    assert (body["Status"], body["Reason"]) == ("FAILED", "Timed out before the operation finished")


def test_a_plain_lambda_context_is_never_cancelled():
    context = FakeContext(remaining_ms=MARGIN_MS + 5)
    assert not custom_resource.is_cancelled(context)
    custom_resource.raise_if_cancelled(context)
    assert custom_resource.deadline_ms_left(context) == 5


def test_the_remaining_time_follows_the_lambda_contexts_clock(cfn_responses):
    """The ServiceTimeout only moves the end earlier; the time source stays Lambda's context
    (so a context running on a simulated clock is followed, not the wall clock)."""
    context, seen = FakeContext(remaining_ms=880_000), []

    def operation(event, invocation):
        seen.append(invocation.get_remaining_time_in_millis())
        context._remaining_ms -= 100_000  # 100 s pass on the context's clock
        seen.append(invocation.get_remaining_time_in_millis())
        context._remaining_ms = 1_000
        seen.append(invocation.get_remaining_time_in_millis())
        return "p", {}

    event = make_event("Create", cfn_responses.url, {"ServiceTimeout": "300"})
    run(event, context, {"Create": operation})

    assert seen == [300_000, 200_000, 0]


def test_a_huge_hand_off_error_is_truncated_in_the_watchdogs_answer(cfn_responses):
    release = threading.Event()

    def on_deadline(event, context):
        release.set()
        raise RuntimeError("\x01\u00e9" * 20_000)

    run(
        make_event("Delete", cfn_responses.url),
        FakeContext(MARGIN_MS + 100),
        {"Delete": Operation(release=release)},
        on_deadline=on_deadline,
    )

    (request,) = cfn_responses.requests
    reason = request["body"]["Reason"]
    assert request["size"] < 4096 and reason.endswith("...")
    assert reason.startswith("Timed out; hand-off failed: \x01\u00e9")
    assert len(json.dumps(reason)) - 2 <= custom_resource.MAX_REASON_BYTES
