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
Split buckets: S3 allows 3,500 deletes/s per partition, a key range it splits a busy bucket
into. A pass that lists more than SPLIT_AFTER_PAGES (3) pages cuts the rest of the key space
into LISTERS (4) ranges listed at once, so the batches in flight span partitions: the cuts are
prefixes from delimiter listings (the top level, or one level deeper below fewer than 8
prefixes; at most 10 pages, sampled), each range is paged from its KeyMarker and ends at the
next cut. A flat bucket (no "/") keeps one lister.
Throttling: whole calls are retried by botocore's adaptive mode (10 attempts, client-side
rate limiting across the threads); versions DeleteObjects reports with a transient code
(SlowDown, InternalError, ServiceUnavailable, RequestTimeout) go back into a later batch
(KEY_ATTEMPTS (10) in all, then left to the next pass) and the batches allowed in flight shrink
by half the share throttled, growing back by one per window of whole batches (as TCP's
window): no worker sleeps, and a throttled bucket gets few batches at a time. Any other code
(AccessDenied, object lock, legal hold) is a refusal: FAILED naming the first refused key.
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
Budget (benchmarks/empty_bucket.py on its S3 timing model, 100,000 versions, 5 s settle wait
included): ~0.05-0.06 CPU-seconds and ~2.1-2.5 S3 requests per 1,000 versions; peak traced
memory 17-21 MiB from 100,000 to 600,000 versions (the pages 4 listers hold at once). Under
5% injected SlowDown (requests and keys): ~2,700/s unsplit, ~4,000/s split into 4 partitions.
Without: split into 4, ~6,500/s (46% of 14,000; the settle wait is a third of that run), and
1,000,000 versions at ~10,800/s (77%); a 512 MB Lambda (~0.3 vCPU) would cap that near
5,000-6,000/s at this CPU cost, hence the custodian's 1,769 MB (one vCPU, ~20,000/s). Unsplit,
~2,900 versions/s, 83% of S3's 3,500 DELETE/s per partition: S3 is the limit, about 10 million
versions in 4 x 840 s of work.
Beyond that the fourth invocation answers FAILED ("not empty after 4 invocations, delete
again"); what it deleted stays deleted, so deleting the stack again carries on.
"""

import functools
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

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
# Key ranges listed at once, so that the batches in flight span the partitions S3 has split a
# big bucket into (3,500 deletes/s each); a bucket of more than SPLIT_AFTER_PAGES pages is split
# at prefixes read from at most SPLIT_PAGES delimiter-listing pages, sampled down to SPLIT_SAMPLE.
LISTERS, SPLIT_AFTER_PAGES, SPLIT_PAGES, SPLIT_SAMPLE = 4, 3, 10, 64
MAX_HOPS = 3  # re-invocations after CloudFormation's: 4 x 900 s <= ServiceTimeout 3600 s
HAND_OFF_MS = 60_000  # time left when an invocation stops listing and hands off
# After a pass that found something, look again this much later: log deliveries may still land.
SETTLE_SECONDS = 5
BUCKET_DELETE_ATTEMPTS = 5  # with DeleteBucket: each BucketNotEmpty is emptied again
# Whole calls: botocore retries throttling (503 SlowDown) and 5xx, slowing all threads down.
S3_CONFIG = Config(
    retries={"mode": "adaptive", "total_max_attempts": 10}, max_pool_connections=WORKERS + LISTERS
)
# An async Invoke answers at once; bounded so a hung hand-off leaves time to answer FAILED.
LAMBDA_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"total_max_attempts": 2})
# Per-key DeleteObjects errors that pass when retried; any other code is a refusal.
TRANSIENT_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503"}
KEY_ATTEMPTS = 10  # then the keys are left to the next pass
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


def next_markers(page):
    """The parameters that list the page after ``page`` (none after the last)."""
    if not page.get("IsTruncated"):
        return {}
    markers = {"KeyMarker": page["NextKeyMarker"]}
    if page.get("NextVersionIdMarker"):  # S3 rejects an empty one
        markers["VersionIdMarker"] = page["NextVersionIdMarker"]
    return markers


def tried(version):
    return version["Key"], version["VersionId"]


def sample(items, size):
    """Every n-th item, n doubling as needed so that fewer than 2 * size are kept at once."""
    kept, step = [], 1
    for index, item in enumerate(items):
        if index % step == 0:
            kept.append(item)
            if len(kept) == 2 * size:
                kept, step = kept[::2], step * 2
    return kept


class Emptier:
    """Empties one bucket during one invocation."""

    def __init__(self, context):
        self.context, self.lock, self.hand_off_lock = context, threading.Lock(), threading.Lock()
        self.deleted, self.handed_off, self.failed = 0, False, False
        # Batches in flight: at most ``window`` (2 x WORKERS, less while S3 throttles).
        self.flow, self.in_flight, self.window = threading.Condition(), 0, 2.0 * WORKERS

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
        """One listing pass, deleting as it goes: versions found, None if cut short. One lister
        starts; past SPLIT_AFTER_PAGES pages it splits the rest of the bucket among more."""
        self.retry, self.listers = [], []
        with ThreadPoolExecutor(LISTERS - 1) as self.listing:
            counts = [self.list_range(pool, None, None, True)]
            counts += [lister.result() for lister in self.listers]  # the first failure, by key
        self.drain_retries(pool)
        return None if None in counts else sum(counts)

    def list_range(self, pool, after, upto, splits=False):
        """Delete the versions of the keys in (after, upto] (None: no bound) as they are listed."""
        try:
            return self.list_and_delete(pool, after, upto, splits)
        except BaseException:
            self.failed = True  # the other listers stop too
            raise

    def list_and_delete(self, pool, after, upto, splits):
        found, batch, pending, pages = 0, [], [], 0
        params = {"Bucket": self.bucket, **({"KeyMarker": after} if after else {})}
        while True:
            page = self.s3.list_object_versions(**params)  # up to 1,000 versions (S3's maximum)
            pages, params = pages + 1, {**params, **next_markers(page)}
            # The next page starts after this page's marker version: that version goes last into
            # the batch, and a full batch is only sent with the next entry (the next page's).
            marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
            entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
            for entry in sorted(entries, key=lambda e: (e["Key"], e["VersionId"]) == marker):
                if upto is not None and entry["Key"] > upto:
                    continue
                if len(batch) == BATCH:
                    self.submit(pool, pending, batch)
                    batch = []
                batch.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
                found += 1
            if self.must_stop():
                found = None
                break
            if splits and pages == SPLIT_AFTER_PAGES and page.get("IsTruncated"):
                upto = self.split(pool, marker[0])
            if not page.get("IsTruncated") or (upto is not None and marker[0] > upto):
                break
        if batch and not self.failed:
            self.submit(pool, pending, batch)
        for future in pending:
            future.result()
        return found

    def split(self, pool, after):
        """Cut the keys after ``after`` into ranges of about as many prefixes each (S3 partitions
        by key range), from delimiter listings: the top level, or one level deeper if it has
        fewer than 8 prefixes (a flat bucket: no cut). Listers start for all ranges but the
        first, which the caller's goes on with: its new upper bound is returned."""
        top = sample(self.prefixes("", SPLIT_PAGES), SPLIT_SAMPLE)
        if len(top) < 8:
            pages = max(1, SPLIT_PAGES // max(1, len(top)))
            top = chain.from_iterable(chain([p], self.prefixes(p, pages)) for p in top)
        found = sample((p for p in top if p > after), SPLIT_SAMPLE)
        cuts = sorted(
            {found[len(found) * i // LISTERS] for i in range(1, LISTERS)} if found else ()
        )
        for low, high in zip(cuts, [*cuts[1:], None][: len(cuts)], strict=True):
            self.listers.append(self.listing.submit(self.list_range, pool, low, high))
        return cuts[0] if cuts else None

    def prefixes(self, prefix, pages):
        """The common prefixes one level below ``prefix``, in key order, from at most ``pages``
        (fewer once a page has none: a flat bucket is not worth paging through)."""
        params = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        for _ in range(pages):
            page = self.s3.list_object_versions(**params)
            yield from (common["Prefix"] for common in page.get("CommonPrefixes", []))
            if not (page.get("IsTruncated") and page.get("CommonPrefixes")):
                return
            params = {**params, **next_markers(page)}

    def must_stop(self):
        """A batch failed, a hand-off happened, the watchdog took over or time runs short."""
        return (
            self.failed
            or self.handed_off
            or is_cancelled(self.context)
            or self.context.get_remaining_time_in_millis() < HAND_OFF_MS
        )

    def submit(self, pool, pending, batch):
        """Queue a listed batch, after any full batches of throttled versions waiting."""
        while retries := self.take_retries(everything=False):
            self.send(pool, pending, *retries)
        self.send(pool, pending, batch)

    def send(self, pool, pending, batch, tries=None):
        """Queue a batch once fewer than ``window`` are in flight; a lister raises the first
        failure among its own batches in listing order."""
        with self.flow:
            self.flow.wait_for(lambda: self.in_flight < self.window)
            self.in_flight += 1
        future = pool.submit(self.delete_batch, *((batch, tries) if tries else (batch,)))
        future.add_done_callback(self.landed)
        pending.append(future)
        while pending and pending[0].done():
            pending.pop(0).result()

    def landed(self, _):
        with self.flow:
            self.in_flight -= 1
            self.flow.notify_all()

    def adapt(self, throttled):
        """The batches in flight follow what S3 accepts, as TCP's window does: up by one per
        window of batches S3 took whole, down by half the share ``throttled`` (a few sporadic
        SlowDowns cost little, a throttled bucket soon gets a few batches at a time)."""
        with self.flow:
            window = self.window + (1 - throttled) / self.window - throttled * self.window / 2
            self.window = min(max(window, 1.0), 2.0 * WORKERS)

    def take_retries(self, everything):
        """(versions, earlier attempts) of up to BATCH throttled versions: only a full batch
        unless ``everything``; None if there are none (or too few)."""
        with self.lock:
            if not self.retry or (len(self.retry) < BATCH and not everything):
                return None
            taken, self.retry = self.retry[:BATCH], self.retry[BATCH:]
        return [version for version, _ in taken], {tried(v): n for v, n in taken}

    def drain_retries(self, pool):
        """After listing: send the throttled versions left, round after round, until none are."""
        pending = []
        while True:
            retries = self.take_retries(everything=True)
            if retries and not self.must_stop():
                self.send(pool, pending, *retries)
            elif pending:
                pending.pop(0).result()
            else:
                return

    def delete_batch(self, batch, tries=None):
        """Delete up to 1,000 versions (``tries``: (Key, VersionId) -> earlier attempts) once.
        Versions S3 reports with a transient code (it throttles near 3,500 deletes/s per
        partition) go back for a later batch; a refusal stops the pass, naming the first refused
        key."""
        errors = self.delete_once(batch)
        self.adapt(len(errors) / len(batch))
        with self.lock:
            self.deleted += len(batch) - len(errors)
        refused = [error for error in errors if error["Code"] not in TRANSIENT_CODES]
        if refused:
            self.failed, first = True, refused[0]
            raise RuntimeError(
                f"{len(refused)} versions not deleted, first {first['Key'][:200]!r} "
                f"({first.get('VersionId')}): {first['Code']} {first.get('Message')}"
            )
        if errors:
            self.requeue(tries, errors)

    def requeue(self, tries, errors):
        """Throttled versions wait for a later batch (after KEY_ATTEMPTS, for the next pass): no
        worker sits out a backoff; fewer batches in flight (adapt) keep S3 from being hammered."""
        again = []
        for error in errors:
            version = {"Key": error["Key"], "VersionId": error.get("VersionId")}
            attempts = (tries or {}).get(tried(version), 0) + 1
            if attempts < KEY_ATTEMPTS:
                again.append((version, attempts))
        if len(again) < len(errors):
            left = len(errors) - len(again)
            logger.warning("%d versions still throttled; left to the next pass", left)
        with self.lock:
            self.retry += again

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
