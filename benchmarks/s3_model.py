"""A timing model of S3 for the bucket-emptier benchmark: time goes into waiting, not computing.

It answers the S3 calls of the emptier and its baselines inside botocore, on the
``before-send`` event (nothing leaves the process: the real client serialises, signs,
retries and parses), after sleeping for a modelled latency. Correctness is tested on moto
(tests/test_empty_bucket.py); this model is for timing only.

Calibration (published figures, and the assumptions where S3 publishes none):

- 3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD requests per second per partitioned prefix;
  past that S3 answers 503 SlowDown while it scales, which takes 30-60 minutes
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html,
  https://repost.aws/knowledge-center/s3-503-within-request-rate-prefix). Every key of a
  DeleteObjects counts as one DELETE. Modelled as a token bucket of 3,500 keys/s per
  partition (burst: one second's worth); a DeleteObjects arriving with fewer tokens than keys
  deletes what the tokens allow and answers SlowDown for the rest of its keys, one arriving
  with none is a whole-request 503 SlowDown. A partition is a contiguous key range (S3
  partitions by key prefix); an unsplit bucket is one partition.
- Latency: "consistent small object latencies ... of roughly 100-200 milliseconds"
  (same performance guide); modelled as BASE_S per request plus a per-key cost. S3 publishes
  no per-key cost for ListObjectVersions or DeleteObjects: LIST_KEY_S and DELETE_KEY_S are
  assumptions (a 1,000-key list ~0.2 s, a 1,000-key DeleteObjects ~0.6 s), exposed as knobs.
- No published cap on concurrent requests per client: CONCURRENCY is generous by default
  (requests beyond it queue, and the queueing counts as latency).
- Injected faults: a fraction of whole requests answered 503 SlowDown, and a fraction of the
  keys of each DeleteObjects answered SlowDown in its Errors.

The bucket is virtual: ``size`` entries in key order, two per key (the newest first; every
fourth key's newest is a delete marker), generated when listed; deletion is one byte per
entry, so a million versions take 1 MB. Model time runs ``1 / scale`` times faster than the
wall clock: every modelled wait is multiplied by ``scale`` (and ``scaled_sleep`` does the
same to the client's own sleeps, e.g. retry back-off), so rates read in model seconds.
"""

import bisect
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS

REAL_SLEEP = time.sleep
XMLNS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
OWNER = "<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>"
KEYS_PER_JOB = 100
SLOW_DOWN = "Please reduce your request rate."
MODELLED = {  # the S3 operations the emptier and the baselines send
    "GetBucketTagging",
    "GetBucketPolicy",
    "PutBucketPolicy",
    "ListObjectVersions",
    "DeleteObjects",
    "DeleteObject",
    "ListMultipartUploads",
    "AbortMultipartUpload",
}
OBJECT_PATTERN = re.compile(rb"<Key>([^<]*)</Key>(?:<VersionId>([^<]*)</VersionId>)?")


@dataclass(frozen=True)
class Calibration:
    base_s: float = 0.1  # first byte of any request (published: 100-200 ms)
    list_key_s: float = 0.0001  # per entry of a ListObjectVersions page (assumption)
    delete_key_s: float = 0.0005  # per key of a DeleteObjects (assumption)
    deletes_per_s: float = 3500  # per partition, every key of a DeleteObjects (published)
    concurrency: int = 256  # requests served at once; more queue (no published cap)
    partitions: int = 1  # contiguous key ranges with a rate cap each (unsplit bucket: 1)
    slowdown: float = 0.0  # fraction of requests answered 503 SlowDown (injected)
    key_slowdown: float = 0.0  # fraction of DeleteObjects keys answered SlowDown (injected)

    def describe(self):
        return (
            f"latency {1000 * self.base_s:.0f} ms + {1000 * self.list_key_s:.2f} ms per listed "
            f"entry / {1000 * self.delete_key_s:.2f} ms per deleted key; {self.deletes_per_s:,.0f}"
            f" deleted keys/s per partition x {self.partitions} partition(s); at most "
            f"{self.concurrency} requests at once; injected SlowDown: {self.slowdown:.0%} of "
            f"requests, {self.key_slowdown:.0%} of DeleteObjects keys"
        )


class Clock:
    """Model time: wall time since start divided by ``scale``."""

    def __init__(self, scale):
        self.scale, self.start = scale, time.monotonic()

    def now(self):
        return (time.monotonic() - self.start) / self.scale

    def sleep(self, model_seconds):
        REAL_SLEEP(max(model_seconds, 0) * self.scale)


class VirtualBucket:
    """``size`` entries in listing order: entry ``e`` is version ``e % 2`` (0 = newest) of key
    ``e // 2``; deletion is a byte per entry."""

    def __init__(self, name, size, tags=()):
        self.name, self.size, self.tags = name, size, dict(tags)
        self.keys = (size + 1) // 2
        self.deleted = bytearray(size)
        self.policy = None

    def key(self, index):
        return f"outputs/job-{index // KEYS_PER_JOB:06d}/result-{index:08d}.json"

    @staticmethod
    def key_index(key):
        return int(key[-13:-5])

    @staticmethod
    def version_id(entry):
        return f"{entry:032x}"

    def is_marker(self, entry):
        """The newest entry of every fourth key, if the key has an older version."""
        return entry % 2 == 0 and (entry // 2) % 4 == 0 and entry + 1 < self.size

    def entry(self, key, version_id):
        """The entry a (key, version id) names, or None."""
        try:
            index, entry = self.key_index(key), int(version_id, 16)
        except (ValueError, TypeError):
            return None
        ok = key == self.key(index) and 0 <= entry < self.size and entry // 2 == index
        return entry if ok else None

    def start_after(self, key_marker, version_marker):
        """First entry after the markers (S3 seeks by key, then by version order)."""
        if not key_marker:
            return 0
        entry = self.entry(key_marker, version_marker) if version_marker else None
        if entry is not None:
            return entry + 1
        return 2 * self.first_key_at_or_after(key_marker, after=True)

    def first_key_at_or_after(self, text, after=False):
        """Index of the first key >= ``text`` (> with ``after``); keys ascend with their index."""
        search = bisect.bisect_right if after else bisect.bisect_left
        return search(range(self.keys), text, key=self.key)

    def rolled_up(self, start, limit, prefix, delimiter, key_marker):
        """A delimiter listing: up to ``limit`` live entries of keys under ``prefix`` and common
        prefixes (each counting one), from entry ``start``; and the last item, if truncated."""
        entries, commons, position, last = (
            [],
            [],
            max(start, 2 * self.first_key_at_or_after(prefix)),
            None,
        )
        while True:
            position = self.deleted.find(0, position)
            key = self.key(position // 2) if position >= 0 else ""
            if position < 0 or not key.startswith(prefix):
                return entries, commons, None
            if len(entries) + len(commons) == limit:
                return entries, commons, last
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common != key_marker:
                    commons.append(common)
                    last = (common, None)
                beyond = common[:-1] + chr(ord(common[-1]) + 1)
                position = 2 * self.first_key_at_or_after(beyond)
            else:
                entries.append(position)
                last, position = (key, self.version_id(position)), position + 1

    def live(self, start, limit):
        """Up to ``limit`` live entries from ``start``, and whether more remain."""
        found, position = [], start
        while len(found) < limit:
            position = self.deleted.find(0, position)
            if position < 0:
                return found, False
            found.append(position)
            position += 1
        return found, self.deleted.find(0, position) >= 0

    def remaining(self):
        return self.size - sum(self.deleted)

    def partition(self, entry, partitions):
        return (entry // 2) * partitions // self.keys


class TokenBuckets:
    """Per-partition DELETE rate: ``rate`` keys/s, a burst of one second's worth."""

    def __init__(self, rate, partitions, clock):
        self.rate, self.clock, self.lock = rate, clock, threading.Lock()
        self.tokens = [rate] * partitions
        self.updated = [clock.now()] * partitions

    def take(self, partition, wanted):
        """How many of ``wanted`` deletes the partition allows now."""
        with self.lock:
            now = self.clock.now()
            tokens = self.tokens[partition] + self.rate * (now - self.updated[partition])
            granted = min(wanted, int(min(tokens, self.rate)))
            self.tokens[partition] = min(tokens, self.rate) - granted
            self.updated[partition] = now
            return granted


class RawBody:
    def __init__(self, body):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def reply(request, status, body=b"", headers=None):
    headers = {"x-amz-request-id": "MODEL", "Content-Length": str(len(body)), **(headers or {})}
    return AWSResponse(request.url, status, headers, RawBody(body))


def error(request, status, code, message):
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return reply(request, status, body.encode())


def xml(tag, inner):
    return f'<?xml version="1.0" encoding="UTF-8"?><{tag} {XMLNS}>{inner}</{tag}>'.encode()


class FakeS3:
    """The S3 operations the emptier and its baselines send, answered after modelled waits.

    ``install()`` routes every botocore S3 request made in this process here (sessions made
    after this module is imported), ``uninstall()`` stops it; ``requests`` counts HTTP
    attempts by operation."""

    active = None

    def __init__(self, calibration=Calibration(), scale=1.0, seed=1):
        self.calibration, self.clock = calibration, Clock(scale)
        self.buckets, self.requests, self.cpu = {}, {}, 0.0
        self.throttled = {"503 SlowDown": 0, "keys SlowDown": 0}  # answered, injected or not
        self.lock, self.random = threading.Lock(), random.Random(seed)
        self.slots = threading.BoundedSemaphore(calibration.concurrency)
        self.rate = TokenBuckets(calibration.deletes_per_s, calibration.partitions, self.clock)

    def install(self):
        FakeS3.active = self
        return self

    def uninstall(self):
        FakeS3.active = None

    def add_bucket(self, name, size, tags=()):
        self.buckets[name] = VirtualBucket(name, size, tags)
        return self.buckets[name]

    def chance(self, fraction):
        with self.lock:
            return fraction > 0 and self.random.random() < fraction

    def handle(self, request, operation):
        """Count, answer, and book the CPU spent answering (sleeping costs none)."""
        started = time.thread_time()
        try:
            return self.answer(request, operation)
        finally:
            with self.lock:
                self.requests[operation] = self.requests.get(operation, 0) + 1
                self.cpu += time.thread_time() - started

    def answer(self, request, operation):
        url = urlsplit(request.url)
        name, _, key = url.path.lstrip("/").partition("/")
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with self.slots:
            if self.chance(self.calibration.slowdown):
                return self.slow_down(request)
            bucket = self.buckets.get(name)
            if bucket is None:
                self.clock.sleep(self.calibration.base_s)
                return error(request, 404, "NoSuchBucket", "The specified bucket does not exist")
            serve = getattr(self, xform_name(operation)) if operation in MODELLED else None
            if serve is None:
                return error(request, 501, "NotImplemented", f"{operation} is not modelled")
            return serve(request, bucket, query, key)

    def slow_down(self, request):
        with self.lock:
            self.throttled["503 SlowDown"] += 1
        self.clock.sleep(self.calibration.base_s)
        return error(request, 503, "SlowDown", SLOW_DOWN)

    def get_bucket_tagging(self, request, bucket, query, key):
        self.clock.sleep(self.calibration.base_s)
        tags = "".join(
            f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in bucket.tags.items()
        )
        return reply(request, 200, xml("Tagging", f"<TagSet>{tags}</TagSet>"))

    def get_bucket_policy(self, request, bucket, query, key):
        self.clock.sleep(self.calibration.base_s)
        if bucket.policy is None:
            return error(request, 404, "NoSuchBucketPolicy", "The bucket policy does not exist")
        return reply(request, 200, bucket.policy)

    def put_bucket_policy(self, request, bucket, query, key):
        self.clock.sleep(self.calibration.base_s)
        bucket.policy = request.body if isinstance(request.body, bytes) else request.body.read()
        return reply(request, 204)

    def list_multipart_uploads(self, request, bucket, query, key):
        self.clock.sleep(self.calibration.base_s)
        inner = f"<Bucket>{bucket.name}</Bucket><MaxUploads>1000</MaxUploads>"
        return reply(
            request,
            200,
            xml("ListMultipartUploadsResult", inner + "<IsTruncated>false</IsTruncated>"),
        )

    def abort_multipart_upload(self, request, bucket, query, key):
        self.clock.sleep(self.calibration.base_s)
        return error(request, 404, "NoSuchUpload", "The specified upload does not exist")

    def list_object_versions(self, request, bucket, query, key):
        limit = min(int(query.get("max-keys", 1000)), 1000)
        start = bucket.start_after(query.get("key-marker"), query.get("version-id-marker"))
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        if prefix or delimiter:
            entries, commons, last = bucket.rolled_up(
                start, limit, prefix, delimiter, query.get("key-marker")
            )
        else:
            entries, more = bucket.live(start, limit)
            commons = []
            last = (bucket.key(entries[-1] // 2), bucket.version_id(entries[-1])) if more else None
        self.clock.sleep(self.calibration.base_s + self.calibration.list_key_s * len(entries))
        items = [self.listed(bucket, entry) for entry in entries]
        items += [f"<CommonPrefixes><Prefix>{c}</Prefix></CommonPrefixes>" for c in commons]
        head = f"<Name>{bucket.name}</Name><Prefix>{prefix}</Prefix><MaxKeys>{limit}</MaxKeys>"
        if delimiter:
            head += f"<Delimiter>{delimiter}</Delimiter>"
        if "encoding-type" in query:
            head += "<EncodingType>url</EncodingType>"
        if last:
            head += f"<NextKeyMarker>{last[0]}</NextKeyMarker>"
            if last[1]:
                head += f"<NextVersionIdMarker>{last[1]}</NextVersionIdMarker>"
        head += f"<IsTruncated>{'true' if last else 'false'}</IsTruncated>"
        return reply(request, 200, xml("ListVersionsResult", head + "".join(items)))

    @staticmethod
    def listed(bucket, entry):
        common = (
            f"<Key>{bucket.key(entry // 2)}</Key><VersionId>{bucket.version_id(entry)}</VersionId>"
            f"<IsLatest>{'true' if entry % 2 == 0 else 'false'}</IsLatest>"
            "<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        )
        if bucket.is_marker(entry):
            return f"<DeleteMarker>{common}{OWNER}</DeleteMarker>"
        return (
            f'<Version>{common}<ETag>"9b2cf535f27731c974343645a3985328"</ETag>'
            f"<Size>2048</Size><StorageClass>STANDARD</StorageClass>{OWNER}</Version>"
        )

    def delete_object(self, request, bucket, query, key):
        entry = bucket.entry(unquote(key), query.get("versionId"))
        if entry is not None and not self.rate.take(
            bucket.partition(entry, self.calibration.partitions), 1
        ):
            return self.slow_down(request)
        self.clock.sleep(self.calibration.base_s + self.calibration.delete_key_s)
        if entry is not None:
            bucket.deleted[entry] = 1
        return reply(request, 204)

    def delete_objects(self, request, bucket, query, key):
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        objects = [(k.decode(), (v or b"").decode()) for k, v in OBJECT_PATTERN.findall(body)]
        granted, refused = self.admit(bucket, objects)
        if objects and not granted:
            return self.slow_down(request)
        with self.lock:
            self.throttled["keys SlowDown"] += len(refused)
        self.clock.sleep(self.calibration.base_s + self.calibration.delete_key_s * len(granted))
        deleted = []
        for entry, item in granted:
            if entry is not None:
                bucket.deleted[entry] = 1
            deleted.append(item)
        parts = (
            []
            if b"<Quiet>true</Quiet>" in body
            else [
                f"<Deleted><Key>{k}</Key><VersionId>{v}</VersionId></Deleted>" for k, v in deleted
            ]
        )
        parts += [
            f"<Error><Key>{k}</Key><VersionId>{v}</VersionId><Code>SlowDown</Code>"
            f"<Message>{SLOW_DOWN}</Message></Error>"
            for k, v in refused
        ]
        return reply(request, 200, xml("DeleteResult", "".join(parts)))

    def admit(self, bucket, objects):
        """Split a DeleteObjects' keys into (entry, item) granted and items refused: per-key
        injected SlowDown first, then each partition's rate."""
        wanted, refused = {}, []
        for item in objects:
            if self.chance(self.calibration.key_slowdown):
                refused.append(item)
                continue
            entry = bucket.entry(*item)
            part = 0 if entry is None else bucket.partition(entry, self.calibration.partitions)
            wanted.setdefault(part, []).append((entry, item))
        granted = []
        for part, items in wanted.items():
            allowed = self.rate.take(part, len(items))
            granted += items[:allowed]
            refused += [item for _, item in items[allowed:]]
        return granted, refused


def route(request, event_name, **kwargs):
    """botocore before-send hook: answer from the active model, or let the request go on."""
    model = FakeS3.active
    if model is None:
        return None
    return model.handle(request, event_name.rsplit(".", 1)[-1])


BUILTIN_HANDLERS.append(("before-send.s3", route))


@contextmanager
def scaled_sleep(scale):
    """Within the block the client's own waits run on model time too: ``time.sleep`` (botocore's
    retry back-off), timed ``Condition.wait`` (``Event.wait``, ``threading.Timer``: the
    handler's pauses and watchdog) last ``scale`` times as long, and botocore's adaptive retry
    clock reads model seconds."""
    from botocore.retries import bucket

    wait, now = threading.Condition.wait, bucket.Clock.current_time

    def scaled_wait(self, timeout=None):
        return wait(self, None if timeout is None else timeout * scale)

    time.sleep = lambda seconds: REAL_SLEEP(seconds * scale)
    threading.Condition.wait = scaled_wait
    bucket.Clock.current_time = lambda self: time.time() / scale
    try:
        yield
    finally:
        time.sleep, threading.Condition.wait, bucket.Clock.current_time = REAL_SLEEP, wait, now
