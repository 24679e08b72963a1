"""Custom resource that empties a stack-owned S3 bucket when the resource is deleted.

Properties: ``BucketName``. Only a bucket tagged ``OPT_IN_TAG_KEY`` with the event's
``StackId`` is ever touched; any other is refused (FAILED, nothing deleted). Create and
Update touch nothing and answer Data ``{"BucketName": ...}``; Create's PhysicalResourceId is
``empty-on-delete:<BucketName>``. Update keeps the event's PhysicalResourceId unless
BucketName changed (then the new id makes CloudFormation send Delete for the old one, which
empties the old bucket: for an unchanged name that would empty the live bucket).

Delete removes every object version and delete marker (ListObjectVersions pages,
DeleteObjects of at most 1,000 keys and Quiet, 8 threads, at most 16 batches in flight:
memory does not grow with the bucket) and aborts multipart uploads, answering Data
``{"Deleted": "<versions>"}``. A bucket already gone is SUCCESS. Keys that XML 1.0 cannot
carry (control characters) are deleted one by one with DeleteObject.
Throttling: whole calls are retried by botocore's adaptive mode (10 attempts, client-side
rate limiting across the threads); versions DeleteObjects reports with a transient code
(SlowDown, InternalError, ServiceUnavailable, RequestTimeout) are retried with full-jitter
exponential backoff, then left to the next pass. Any other code (AccessDenied, object lock,
legal hold) is a refusal: FAILED naming the first refused key.
Late writes: passes repeat until one finds nothing, waiting SETTLE_SECONDS (5 s) before each
pass that follows a pass that found something, for as long as time allows. What lands after
the final, empty pass (S3 server access logs are best effort and can arrive hours late) would
make CloudFormation's DeleteBucket fail with BucketNotEmpty, and the emptier is not asked again
then. So with ``DeleteBucket: "true"`` (the logs bucket, which receives those deliveries) the
emptier deletes the bucket itself right after the empty pass, emptying again on BucketNotEmpty;
CloudFormation then finds the bucket gone.

Time: the protocol's deadline is the earlier of Lambda's timeout and the resource's
ServiceTimeout. Each invocation stops listing when 60 s are left (Timeout 900 s), lets its
batches finish and re-invokes itself asynchronously with the same event plus
``"Continuation": {"Hop": n, "Deleted": versions so far}``; the last invocation answers. At
most MAX_HOPS (3) re-invocations: 4 x 900 s fits the custom resource's ServiceTimeout of
3600 s. A hand-off counts once lambda.invoke succeeded; if it fails, whoever owns the answer
(the loop or the watchdog) sends one FAILED.
Budget (benchmarks/empty_bucket.py, on its S3 timing model): ~0.05 CPU-seconds and ~2.02 S3
requests per 1,000 versions; 200,000 versions at ~2,900 versions/s, 83% of S3's 3,500 DELETE/s
per prefix (the 5 s settle wait included). A 512 MB Lambda (~0.3 vCPU) could sustain ~6,000/s
at that CPU cost, so S3 is the limit: about 10 million versions in 4 x 840 s of work. Under 5%
injected SlowDown (requests and keys) it still finishes, at about half that rate.
Beyond that the fourth invocation answers FAILED ("not empty after 4 invocations, delete
again"); what it deleted stays deleted, so deleting the stack again carries on.
"""

import functools
import json
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from .custom_resource import HANDED_OFF, is_cancelled, logger, raise_if_cancelled, run

# Tag key on every bucket the stack owns; its value must be the stack id (AWS::StackId).
OPT_IN_TAG_KEY = "grand-challenge:empty-on-delete"
PHYSICAL_ID_PREFIX = "empty-on-delete:"
BATCH = 1000  # most versions a ListObjectVersions page or a DeleteObjects call carries
WORKERS = 8
MAX_HOPS = 3  # re-invocations after CloudFormation's: 4 x 900 s <= ServiceTimeout 3600 s
HAND_OFF_MS = 60_000  # time left when an invocation stops listing and hands off
# After a pass that found something, look again this much later: log deliveries may still land.
SETTLE_SECONDS = 5
BUCKET_DELETE_ATTEMPTS = 5  # with DeleteBucket: each BucketNotEmpty is emptied again
# Whole calls: botocore retries throttling (503 SlowDown) and 5xx, slowing all threads down.
S3_CONFIG = Config(retries={"mode": "adaptive", "total_max_attempts": 10})
# An async Invoke answers at once; bounded so a hung hand-off leaves time to answer FAILED.
LAMBDA_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"total_max_attempts": 2})
# Per-key DeleteObjects errors that pass when retried; any other code is a refusal.
TRANSIENT_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503"}
KEY_ATTEMPTS = 6  # then the keys are left to the next pass
RETRY_BASE_SECONDS, RETRY_CAP_SECONDS = 0.5, 8  # full-jitter exponential backoff
# Characters XML 1.0 cannot carry (and CR, which parsers turn into LF): such keys cannot be named
# in DeleteObjects' XML body, so their versions are deleted one by one.
NOT_IN_XML = re.compile("[\x00-\x1f\ud800-\udfff\ufffe\uffff]")


def code(error):
    return error.response["Error"]["Code"]


def parse(event):
    """(bucket, hop, versions deleted by earlier hops) of an event; ValueError if malformed."""
    properties = event.get("ResourceProperties")
    bucket = properties.get("BucketName") if isinstance(properties, dict) else None
    more = event.get("Continuation", {"Hop": 0, "Deleted": 0})
    more = more if isinstance(more, dict) else {}
    hop, deleted = more.get("Hop"), more.get("Deleted")
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("ResourceProperties.BucketName must be a non-empty string")
    if not (type(hop) is type(deleted) is int and 0 <= hop <= MAX_HOPS):
        raise ValueError("Malformed Continuation")
    return bucket, hop, deleted


@functools.cache
def s3_session():
    """Timestamps stay strings: parsing them is two thirds of a listing's CPU."""
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


def create_or_update(event, context):
    """A new id only when BucketName changed: CloudFormation then sends Delete for the old id,
    which empties the old bucket; for the same bucket that would empty a live one."""
    bucket = parse(event)[0]
    old = event.get("OldResourceProperties")
    old_bucket = old.get("BucketName") if isinstance(old, dict) else None
    kept = event.get("PhysicalResourceId")
    if event["RequestType"] == "Update" and kept and old_bucket in (bucket, None):
        return kept, {"BucketName": bucket}
    return PHYSICAL_ID_PREFIX + bucket, {"BucketName": bucket}


def backoff_seconds(attempt):
    return random.uniform(0, min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt))


class Emptier:
    """Empties one bucket during one invocation."""

    def __init__(self, context):
        self.context, self.lock, self.hand_off_lock = context, threading.Lock(), threading.Lock()
        self.deleted, self.handed_off, self.failed = 0, False, False

    def hand_off(self, event, context, by_watchdog=True):
        """Re-invoke this function to continue, once, whoever asks first (loop or watchdog).
        It counts only once lambda.invoke succeeded: a failed attempt raises to its asker, and
        whichever path owns the answer then sends FAILED; the loop does not hand off once the
        watchdog owns the answer (it may have answered FAILED already)."""
        if event.get("RequestType") != "Delete":
            return None
        bucket, hop, deleted = parse(event)
        with self.hand_off_lock:  # a second asker waits for the first one's outcome
            if self.handed_off:
                return HANDED_OFF
            if not by_watchdog:
                raise_if_cancelled(context)
            if hop >= MAX_HOPS:
                raise RuntimeError(f"{bucket} not empty after {hop + 1} invocations, delete again")
            more = {"Hop": hop + 1, "Deleted": deleted + self.deleted}
            logger.info("handing off: %s", more)
            boto3.client("lambda", config=LAMBDA_CONFIG).invoke(
                FunctionName=context.invoked_function_arn,
                InvocationType="Event",
                Payload=json.dumps({**event, "Continuation": more}).encode(),
            )
            self.handed_off = True
        return HANDED_OFF

    def delete(self, event, context):
        self.context = context  # run's Invocation: its deadline and cancelled flag
        self.bucket, _, deleted = parse(event)
        # WORKERS + 1 connections fit in botocore's default pool of 10.
        self.s3 = s3_session().create_client("s3", config=S3_CONFIG)
        try:
            self.empty(event, context)
            if event["ResourceProperties"].get("DeleteBucket") == "true":
                self.delete_bucket(event, context)
        except ClientError as error:
            if code(error) != "NoSuchBucket":
                raise
        if self.handed_off:
            return HANDED_OFF
        return event.get("PhysicalResourceId"), {"Deleted": str(deleted + self.deleted)}

    def delete_bucket(self, event, context):
        """Delete the emptied bucket now: a log delivery landing later can then no longer make
        the stack's delete fail. Deliveries racing this call are emptied and it is retried."""
        for _ in range(BUCKET_DELETE_ATTEMPTS):
            if self.handed_off:
                return None
            try:
                return self.s3.delete_bucket(Bucket=self.bucket)
            except ClientError as error:
                if code(error) != "BucketNotEmpty":
                    raise
            logger.info("%s filled again before it could be deleted", self.bucket)
            self.empty(event, context)
        raise RuntimeError(f"{self.bucket} kept filling up: not deleted")

    def check_owner(self, event):
        try:
            tags = self.s3.get_bucket_tagging(Bucket=self.bucket)["TagSet"]
        except ClientError as error:
            if code(error) != "NoSuchTagSet":
                raise
            tags = []
        owner = next((tag["Value"] for tag in tags if tag["Key"] == OPT_IN_TAG_KEY), None)
        if owner != event["StackId"]:
            raise PermissionError(
                f"Refusing to empty {self.bucket}: tag {OPT_IN_TAG_KEY} is {owner!r}, "
                "not this stack's id"
            )

    def empty(self, event, context):
        """Passes until one finds nothing. After a pass that found something, wait
        SETTLE_SECONDS first: access logs and flow logs land late, and the bucket is deleted
        right after the answer. A bucket that keeps filling is handed off when time runs short."""
        self.check_owner(event)
        with ThreadPoolExecutor(WORKERS) as pool:
            while True:
                found = self.delete_versions(pool)
                if found is None:
                    return self.hand_off(event, context, by_watchdog=False)
                if not found + self.abort_uploads():
                    return None
                logger.info("pass found %d; looking again in %s s", found, SETTLE_SECONDS)
                self.pause(SETTLE_SECONDS)

    def pause(self, seconds):
        """Sleep, waking as soon as the watchdog takes over."""
        cancelled = getattr(self.context, "cancelled", None)
        if cancelled is None:
            time.sleep(seconds)
        else:
            cancelled.wait(seconds)

    def delete_versions(self, pool):
        """One listing pass, deleting as it goes: versions found, None if cut short."""
        found, batch, pending = 0, [], []
        pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket)
        for page in pages:  # of up to 1,000 versions (S3's default and maximum MaxKeys)
            # The next page starts after this page's marker version: that version goes last into
            # the batch, and a full batch is only sent with the next entry (the next page's).
            marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
            entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
            for entry in sorted(entries, key=lambda e: (e["Key"], e["VersionId"]) == marker):
                if len(batch) == BATCH:
                    self.submit(pool, pending, batch)
                    batch = []
                batch.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
                found += 1
            if self.must_stop():
                found = None
                break
        if batch and not self.failed:
            self.submit(pool, pending, batch)
        for future in pending:
            future.result()
        return found

    def must_stop(self):
        """A batch failed, a hand-off happened, the watchdog took over or time runs short."""
        return (
            self.failed
            or self.handed_off
            or is_cancelled(self.context)
            or self.context.get_remaining_time_in_millis() < HAND_OFF_MS
        )

    def submit(self, pool, pending, batch):
        """Queue a batch, first waiting for the oldest of 2 * WORKERS in flight (so the first
        failure in listing order is the one raised)."""
        if len(pending) >= 2 * WORKERS:
            pending.pop(0).result()
        pending.append(pool.submit(self.delete_batch, batch))

    def delete_batch(self, batch):
        """Delete up to 1,000 versions. Keys S3 reports with a transient code (it throttles
        near 3,500 deletes/s per prefix) are retried with backoff, then left to the next pass;
        a refusal stops the pass, naming the first refused key."""
        for attempt in range(KEY_ATTEMPTS):
            if attempt:
                self.pause(backoff_seconds(attempt))
            errors = self.delete_once(batch)
            with self.lock:
                self.deleted += len(batch) - len(errors)
            refused = [error for error in errors if error["Code"] not in TRANSIENT_CODES]
            if refused:
                self.failed, first = True, refused[0]
                raise RuntimeError(
                    f"{len(refused)} versions not deleted, first {first['Key'][:200]!r} "
                    f"({first.get('VersionId')}): {first['Code']} {first.get('Message')}"
                )
            batch = [{"Key": error["Key"], "VersionId": error["VersionId"]} for error in errors]
            if not batch or self.must_stop():
                break
        if batch:
            logger.warning("%d versions still throttled; left to the next pass", len(batch))

    def delete_once(self, batch):
        """One attempt: DeleteObjects for the keys XML can carry, DeleteObject for the others;
        returns the per-version errors (Key, VersionId, Code, Message)."""
        plain = [version for version in batch if not NOT_IN_XML.search(version["Key"])]
        errors = []
        if plain:
            delete = {"Objects": plain, "Quiet": True}
            errors = self.s3.delete_objects(Bucket=self.bucket, Delete=delete).get("Errors", [])
        for version in batch:
            if NOT_IN_XML.search(version["Key"]):
                try:
                    self.s3.delete_object(Bucket=self.bucket, **version)
                except ClientError as error:
                    if code(error) == "NoSuchBucket":
                        raise
                    errors.append({**version, **error.response["Error"]})
        return errors

    def abort_uploads(self):
        found = 0
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
            for upload in page.get("Uploads", []):
                found += 1
                try:
                    self.s3.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as error:
                    if code(error) != "NoSuchUpload":
                        raise
        return found


def handler(event, context):
    emptier = Emptier(context)
    operations = {"Create": create_or_update, "Update": create_or_update, "Delete": emptier.delete}
    run(event, context, operations, on_deadline=emptier.hand_off)
