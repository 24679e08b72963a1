"""CloudFormation custom-resource protocol shared by the inlined handlers.

Handlers import it with ``from .custom_resource import ...``; at build time the
inliner replaces that import with this module's body, so the Lambda is one
self-contained ``index.py`` (standard library + boto3 only).

Contract for operations (``run(event, context, operations, on_deadline)``):

- ``operations[RequestType](event, invocation)`` returns ``(physical_id, data)`` for SUCCESS
  or ``HANDED_OFF`` (it re-invoked the function, which will answer); an exception is FAILED.
- ``invocation`` stands in for Lambda's context (its attributes pass through) and its
  ``get_remaining_time_in_millis()`` counts down, on Lambda's clock, to the *invocation's
  end*: the earlier of Lambda's timeout and the resource's ``ServiceTimeout`` counted from
  this invocation's start (CloudFormation sends it in ResourceProperties as a string; absent
  or not a positive number: Lambda's timeout only). ``deadline_ms_left(invocation)`` is what
  is left before the watchdog answers, ``WATCHDOG_MARGIN_SECONDS`` before that end. Both
  helpers below also accept a plain Lambda context (never cancelled).
- At that moment the watchdog sets ``invocation.cancelled`` (a ``threading.Event``), then asks
  ``on_deadline(event, invocation)`` to hand off: it returns ``HANDED_OFF`` only once
  ``lambda.invoke`` has succeeded; ``None`` or an exception makes the watchdog answer FAILED.
  From then on the operation's own result or exception is discarded (and logged). So an
  operation that waits or works in steps calls ``raise_if_cancelled(invocation)`` (raises
  ``CancelledError``) before each change it makes, or checks ``is_cancelled(invocation)``:
  else a Create answered FAILED (CloudFormation's Delete then carries ``failed-create-...``
  and is a no-op) could still create something nobody deletes. ``cancelled.wait(seconds)``
  is a sleep the watchdog cuts short.
- ``run`` returns only once whichever path owns the answer has sent it (or handed off):
  Lambda freezes the sandbox on return, which would strand an answer on another thread.
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
# Seconds before the invocation's end at which the watchdog answers (or hands off).
WATCHDOG_MARGIN_SECONDS = 20
REQUIRED_KEYS = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class HandedOff:
    """Returned by an operation that re-invoked the function to continue; nobody answers now."""


HANDED_OFF = HandedOff()


class CancelledError(Exception):
    """The watchdog has answered (or handed off): the operation must change nothing more."""


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


def service_timeout_seconds(event):
    """The resource's ServiceTimeout (CloudFormation sends it as a string), or None."""
    try:
        seconds = float(event["ResourceProperties"]["ServiceTimeout"])
    except (KeyError, TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None  # not NaN either


def deadline_ms_left(context):
    """Milliseconds before the watchdog answers (negative: it has)."""
    return context.get_remaining_time_in_millis() - WATCHDOG_MARGIN_SECONDS * 1000


def is_cancelled(context):
    """Whether the watchdog has taken over the answer (False for a plain Lambda context)."""
    cancelled = getattr(context, "cancelled", None)
    return cancelled is not None and cancelled.is_set()


def raise_if_cancelled(context):
    if is_cancelled(context):
        raise CancelledError("the watchdog has already answered")


class Invocation:
    """One invocation: answers CloudFormation exactly once, whoever finishes first (the
    operation or the watchdog); operations get it as their context."""

    def __init__(self, event, context, on_deadline=None):
        self.context = context  # first: attribute look-ups fall through to it
        self.event, self.on_deadline = event, on_deadline
        self._lock = threading.Lock()
        self.finished = False  # someone owns the answer
        self.cancelled = threading.Event()  # the watchdog owns it
        self.answered = threading.Event()  # the owner has sent it (or handed off)
        self._timer = None
        # The ServiceTimeout's end, as milliseconds before Lambda's (whose clock stays the one
        # time source: a test or benchmark may run it faster).
        self.cut_ms = 0
        timeout = service_timeout_seconds(event)
        if context and timeout:
            self.cut_ms = max(context.get_remaining_time_in_millis() - timeout * 1000, 0)

    def __getattr__(self, name):
        return getattr(self.context, name)

    def get_remaining_time_in_millis(self):
        remaining = self.context.get_remaining_time_in_millis() if self.context else 0
        return max(int(remaining - self.cut_ms), 0)

    def _claim(self):
        with self._lock:
            won, self.finished = not self.finished, True
        return won

    def finish(self, status, reason="", physical_id=None, data=None):
        """Answer unless the watchdog owns the answer: then wait until it has gone out.
        Returns whether this call answered."""
        if not self._claim():
            logger.warning("watchdog answered; discarding %s %s %s", status, physical_id, reason)
            self.answered.wait()
            return False
        try:
            if self._timer:
                self._timer.cancel()
            if status is not None:
                send_response(self.event, status, reason, physical_id, data)
        finally:
            self.answered.set()
        return True

    def start_watchdog(self):
        delay = max(deadline_ms_left(self) / 1000, 0)
        self._timer = threading.Timer(delay, self._deadline)
        self._timer.daemon = True
        self._timer.start()

    def _deadline(self):
        if not self._claim():
            return
        self.cancelled.set()
        try:
            reason = "Timed out before the operation finished"
            try:
                if self.on_deadline and self.on_deadline(self.event, self) is HANDED_OFF:
                    return
            except Exception as error:
                logger.exception("hand-off failed")
                reason = f"Timed out; hand-off failed: {error}"
            send_response(self.event, FAILED, reason)
        except Exception:
            logger.exception("could not answer")
        finally:
            self.answered.set()


def run(event, context, operations, on_deadline=None):
    """Dispatch ``event`` to ``operations[RequestType]`` and always answer (see the module
    docstring for the contract)."""
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
        result = operation(event, invocation)
    except Exception as error:
        logger.exception("operation failed")
        invocation.finish(FAILED, f"{type(error).__name__}: {error}")
        return
    if result is HANDED_OFF:
        invocation.finish(None)
        return
    physical_id, data = result
    invocation.finish(SUCCESS, physical_id=physical_id, data=data)
