"""Shared fixtures: offline AWS credentials and a local endpoint for custom-resource answers."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import boto3
import pytest


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch):
    """No test may reach AWS: fake credentials, a fixed region, no shared config files."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class ResponseRecorder:
    """What CloudFormation's pre-signed ResponseURL received: one dict per PUT."""

    def __init__(self, url):
        self.url = url
        self.requests = []  # {"method", "headers", "body" (parsed JSON), "size" (bytes)}

    @property
    def bodies(self):
        return [request["body"] for request in self.requests]

    def only_body(self):
        assert len(self.requests) == 1, f"expected one response, got {len(self.requests)}"
        return self.requests[0]["body"]


@pytest.fixture
def cfn_responses():
    """A real HTTP server on 127.0.0.1 recording every PUT sent to its ResponseURL."""
    recorder = None

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            recorder.requests.append(
                {
                    "method": self.command,
                    "headers": dict(self.headers),
                    "body": json.loads(raw),
                    "size": len(raw),
                }
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder = ResponseRecorder(f"http://127.0.0.1:{server.server_port}/response?sig=abc")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()


def make_event(request_type, response_url, properties=None, **overrides):
    """A CloudFormation custom-resource event as the service sends it."""
    event = {
        "RequestType": request_type,
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:eu-central-1:123456789012:stack/gc/1a2b3c4d",
        "RequestId": str(uuid.uuid4()),
        "ResourceType": "Custom::Test",
        "LogicalResourceId": "TestResource",
        "ServiceToken": "arn:aws:lambda:eu-central-1:123456789012:function:gc-handler",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", **(properties or {})},
    }
    event.update(overrides)
    return event


class FakeContext:
    """Lambda context with a controllable deadline."""

    def __init__(self, remaining_ms=300_000, function_arn=None):
        self._remaining_ms = remaining_ms
        self.invoked_function_arn = (
            function_arn or "arn:aws:lambda:eu-central-1:123456789012:function:gc-handler"
        )
        self.function_name = self.invoked_function_arn.rsplit(":", 1)[-1]
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self):
        return self._remaining_ms


def spy_on_clients(monkeypatch, module):
    """Record the AWS operations ``module``'s boto3 clients make, by name, and inject faults:
    ``spy.faults[name]`` is an exception raised on every such call, or a list of exceptions
    raised on the next calls in turn."""
    spy = SimpleNamespace(calls=[], faults={})

    def before_call(model, **_):
        spy.calls.append(model.name)
        fault = spy.faults.get(model.name)
        if isinstance(fault, list):
            fault = fault.pop(0) if fault else None
        if fault:
            raise fault

    def client(*args, **kwargs):
        made = boto3.client(*args, **kwargs)
        made.meta.events.register("before-call.*.*", before_call)
        return made

    monkeypatch.setattr(module, "boto3", SimpleNamespace(client=client))
    return spy


def answer_of(handler, cfn_responses, request_type, properties, context=None, **overrides):
    """Send ``handler`` one custom-resource event; assert it answered exactly once, for this
    event, and return that answer's body."""
    before = len(cfn_responses.requests)
    event = make_event(request_type, cfn_responses.url, properties, **overrides)
    assert handler(event, context or FakeContext()) is None
    assert len(cfn_responses.requests) == before + 1, "exactly one response per event"
    body = cfn_responses.bodies[-1]
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        event["StackId"],
        event["RequestId"],
        event["LogicalResourceId"],
    )
    return body
