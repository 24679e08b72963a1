"""Custom resource that empties a stack-owned S3 bucket when the resource is deleted.

Properties: ``BucketName``. Only a bucket tagged ``OPT_IN_TAG_KEY`` with the event's
``StackId`` is ever touched; any other is refused (FAILED, nothing deleted). Create and
Update touch nothing and answer PhysicalResourceId ``empty-on-delete:<BucketName>`` (a
renamed bucket gets a new id, so CloudFormation later sends Delete for the old one) with
Data ``{"BucketName": ...}``. Delete removes every object version and delete marker
(ListObjectVersions pages, DeleteObjects of at most 1,000 keys and Quiet, 8 threads, at
most 16 batches in flight: memory does not grow with the bucket), aborts multipart uploads
and repeats until a pass finds nothing (at most 3 passes: late writes such as access logs),
answering Data ``{"Deleted": "<versions>"}``. A bucket already gone is SUCCESS. Keys S3
refuses (object lock, legal hold, AccessDenied) stop the pass: FAILED naming the first one.

Time: each invocation stops listing when 60 s are left (Timeout 900 s), lets its batches
finish and re-invokes itself asynchronously with the same event plus ``"Continuation":
{"Hop": n, "Deleted": versions so far}``; the last invocation answers. At most MAX_HOPS (3)
re-invocations: 4 x 900 s fits the custom resource's ServiceTimeout of 3600 s. The handler
spends ~0.07 CPU-seconds per 1,000 versions and sends 2.04 S3 requests per 1,000 versions
(benchmarks/empty_bucket.py: ~3,000 versions/s against moto, ~11x `aws s3 rm`), so with
the template's MemorySize 512 (~0.3 vCPU) it deletes ~3,500 versions/s, which is also what S3
allows per prefix: about 11 million versions in 4 x 840 s of work.
Beyond that the fourth invocation answers FAILED ("not empty after 4 invocations, delete
again"); what it deleted stays deleted, so deleting the stack again carries on.
"""

import functools
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from .custom_resource import HANDED_OFF, logger, run

# Tag key on every bucket the stack owns; its value must be the stack id (AWS::StackId).
OPT_IN_TAG_KEY = "grand-challenge:empty-on-delete"
PHYSICAL_ID_PREFIX = "empty-on-delete:"
BATCH = 1000  # most versions a ListObjectVersions page or a DeleteObjects call carries
WORKERS = 8
PASSES = 3
MAX_HOPS = 3  # re-invocations after CloudFormation's: 4 x 900 s <= ServiceTimeout 3600 s
HAND_OFF_MS = 60_000  # time left when an invocation stops listing and hands off


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
    bucket = parse(event)[0]
    return PHYSICAL_ID_PREFIX + bucket, {"BucketName": bucket}


class Emptier:
    """Empties one bucket during one invocation."""

    def __init__(self, context):
        self.context, self.lock = context, threading.Lock()
        self.deleted, self.handed_off, self.failed = 0, False, False

    def hand_off(self, event, context):
        """Re-invoke this function to continue; once, whoever asks first (loop or watchdog)."""
        if event.get("RequestType") != "Delete":
            return None
        bucket, hop, deleted = parse(event)
        with self.lock:
            first, self.handed_off = not self.handed_off, True
        if hop >= MAX_HOPS:
            raise RuntimeError(f"{bucket} not empty after {hop + 1} invocations, delete again")
        if first:
            more = {"Hop": hop + 1, "Deleted": deleted + self.deleted}
            logger.info("handing off: %s", more)
            boto3.client("lambda").invoke(
                FunctionName=context.invoked_function_arn,
                InvocationType="Event",
                Payload=json.dumps({**event, "Continuation": more}).encode(),
            )
        return HANDED_OFF

    def delete(self, event, context):
        self.bucket, _, deleted = parse(event)
        # WORKERS + 1 connections fit in botocore's default pool of 10.
        self.s3 = s3_session().create_client("s3", config=Config(retries={"mode": "standard"}))
        try:
            self.empty(event, context)
        except ClientError as error:
            if code(error) != "NoSuchBucket":
                raise
        if self.handed_off:
            return HANDED_OFF
        return event.get("PhysicalResourceId"), {"Deleted": str(deleted + self.deleted)}

    def empty(self, event, context):
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
        with ThreadPoolExecutor(WORKERS) as pool:
            for _ in range(PASSES):
                found = self.delete_versions(pool)
                if found is None:
                    return self.hand_off(event, context)
                if not found + self.abort_uploads():
                    return None
        raise RuntimeError(f"{self.bucket} still not empty after {PASSES} passes")

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
        """A batch failed, the watchdog handed off or time runs short: list no further."""
        return (
            self.failed
            or self.handed_off
            or self.context.get_remaining_time_in_millis() < HAND_OFF_MS
        )

    def submit(self, pool, pending, batch):
        """Queue a batch, first waiting for the oldest of 2 * WORKERS in flight (so the first
        failure in listing order is the one raised)."""
        if len(pending) >= 2 * WORKERS:
            pending.pop(0).result()
        pending.append(pool.submit(self.delete_batch, batch))

    def delete_batch(self, batch):
        reply = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = reply.get("Errors", [])
        with self.lock:
            self.deleted += len(batch) - len(errors)
        if errors:
            self.failed, first = True, errors[0]
            raise RuntimeError(
                f"{len(errors)} versions not deleted, first {first['Key'][:200]!r} "
                f"({first.get('VersionId')}): {first['Code']} {first.get('Message')}"
            )

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
