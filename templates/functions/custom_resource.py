"""CloudFormation custom-resource protocol shared by the inlined handlers.

Handlers import it with ``from .custom_resource import ...``; at build time the
inliner replaces that import with this module's body, so the Lambda is one
self-contained ``index.py`` (standard library + boto3 only).
"""

import json
import logging
import threading
import urllib.request

SUCCESS = "SUCCESS"
FAILED = "FAILED"
# CloudFormation sends Delete with this id after a Create that failed before a resource existed.
FAILED_CREATE_PREFIX = "failed-create-"
# A response body must stay under 4,096 bytes; the reason is the only open-ended field,
# measured as sent (JSON-escaped).
MAX_REASON_BYTES = 1000
# Seconds before the Lambda deadline at which the watchdog answers (or hands off).
WATCHDOG_MARGIN_SECONDS = 20
REQUIRED_KEYS = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class HandedOff:
    """Returned by an operation that re-invoked the function to continue; nobody answers now."""


HANDED_OFF = HandedOff()


def truncate_reason(reason):
    """At most MAX_REASON_BYTES as sent, i.e. JSON-escaped (a control character takes 6)."""
    text = str(reason)
    if len(json.dumps(text)) - 2 <= MAX_REASON_BYTES:
        return text
    size = 0
    for end, char in enumerate(text):
        size += len(json.dumps(char)) - 2
        if size > MAX_REASON_BYTES - 3:
            return text[:end] + "..."


def send_response(event, status, reason="", physical_id=None, data=None):
    """PUT the result to the pre-signed ResponseURL; raises only if every attempt fails."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": truncate_reason(reason or status),
            "PhysicalResourceId": physical_id
            or event.get("PhysicalResourceId")
            or FAILED_CREATE_PREFIX + str(event.get("RequestId", "unknown")),
            "StackId": event.get("StackId", ""),
            "RequestId": event.get("RequestId", ""),
            "LogicalResourceId": event.get("LogicalResourceId", ""),
            "Data": data or {},
        },
        sort_keys=True,
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    last_error = None
    for _ in range(3):
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                logger.info("responded %s: HTTP %s", status, reply.status)
                return
        except OSError as error:
            last_error = error
    raise last_error


class Invocation:
    """One invocation: answers CloudFormation exactly once, whoever finishes first."""

    def __init__(self, event, context, on_deadline=None):
        self.event = event
        self.context = context
        self.on_deadline = on_deadline
        self._lock = threading.Lock()
        self.finished = False
        self._timer = None

    def finish(self, status, reason="", physical_id=None, data=None):
        """Answer unless someone already did; returns whether this call answered."""
        with self._lock:
            if self.finished:
                return False
            self.finished = True
        if self._timer:
            self._timer.cancel()
        if status is not None:
            send_response(self.event, status, reason, physical_id, data)
        return True

    def start_watchdog(self):
        remaining_ms = self.context.get_remaining_time_in_millis() if self.context else 0
        delay = max(remaining_ms / 1000 - WATCHDOG_MARGIN_SECONDS, 0)
        self._timer = threading.Timer(delay, self._deadline)
        self._timer.daemon = True
        self._timer.start()

    def _deadline(self):
        with self._lock:
            if self.finished:
                return
            self.finished = True
        try:
            if self.on_deadline and self.on_deadline(self.event, self.context) is HANDED_OFF:
                return
        except Exception as error:
            logger.exception("hand-off failed")
            send_response(self.event, FAILED, f"Timed out; hand-off failed: {error}")
            return
        send_response(self.event, FAILED, "Timed out before the operation finished")


def run(event, context, operations, on_deadline=None):
    """Dispatch ``event`` to ``operations[RequestType]`` and always answer.

    An operation returns ``(physical_id, data)`` for SUCCESS, or ``HANDED_OFF`` when it
    re-invoked the function to continue; any exception becomes FAILED with its message.
    """
    if not isinstance(event, dict) or not event.get("ResponseURL"):
        logger.error("no ResponseURL, cannot answer: %r", event)
        return
    invocation = Invocation(event, context, on_deadline)
    missing = [key for key in REQUIRED_KEYS if not event.get(key)]
    operation = operations.get(event.get("RequestType"))
    if missing or operation is None:
        invocation.finish(FAILED, f"Malformed event: missing {missing or 'a known RequestType'}")
        return
    if event["RequestType"] == "Delete" and str(event.get("PhysicalResourceId", "")).startswith(
        FAILED_CREATE_PREFIX
    ):
        invocation.finish(SUCCESS, "Nothing was created")
        return
    invocation.start_watchdog()
    try:
        result = operation(event, context)
    except Exception as error:
        logger.exception("operation failed")
        invocation.finish(FAILED, f"{type(error).__name__}: {error}")
        return
    if result is HANDED_OFF:
        invocation.finish(None)
        return
    physical_id, data = result
    invocation.finish(SUCCESS, physical_id=physical_id, data=data)
