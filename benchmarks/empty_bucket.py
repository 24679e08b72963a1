"""The bucket emptier against `aws s3 rm --recursive` on one local moto server.

Prints versions/s, S3 requests per 1,000 versions (every HTTP attempt the handler sends,
counted with a botocore hook), and the handler's peak traced memory on a small and a big
bucket (flat: it streams page by page). Targets: <= 2.05 requests per 1,000 versions,
>= 10x the CLI's objects/s, flat memory. Run from the repository root:

    python benchmarks/empty_bucket.py [--versions 80000] [--markers 20000] [--small 20000]
    python benchmarks/empty_bucket.py --versions 8000 --small 2000   # about 30 s

The data, identical for every run: ``versions / 2`` keys of 2 versions each, the first
``markers`` keys also carrying a delete marker (deleted objects). Unless --stock-moto, the
server process (only it; the handler is untouched) replaces moto's ListObjectVersions, which
sorts and deep-copies every version in the bucket for every page (quadratic: 100k versions
take minutes, where S3 answers a page in ~100 ms, and a key deleted meanwhile crashes it),
by one that seeks to the marker and answers the same (checked at start-up against moto's on
a small bucket). ETags are computed when filling, as S3 stores them on upload (moto computes
them lazily from the body). moto's ListObjectsV2, which the CLI uses, is left as it is.

The server runs in its own process (so tracemalloc sees only the handler) and is filled
there directly. The CLI only removes current objects (a delete marker each, in a versioned
bucket): its objects/s counts those; versions and markers stay behind.
"""

import argparse
import bisect
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from botocore.handlers import BUILTIN_HANDLERS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AWS_CLI = Path(sys.executable).parent / "aws"
LAMBDA_MEMORY_MB = 256  # the custodian's; Lambda gives 1 vCPU per 1,769 MB
LAMBDA_VCPU = LAMBDA_MEMORY_MB / 1769
REGION = "eu-central-1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/gc-bench/0b1c2d3e"
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION=REGION,
    AWS_CONFIG_FILE="/nonexistent",
    AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
)
os.environ.pop("AWS_PROFILE", None)


# --- the moto server process -------------------------------------------------------------


def seek_list_object_versions(original):
    """moto's ListObjectVersions, seeking to the marker instead of copying and sorting every
    version in the bucket for each page; the same answers (checked by ``check_listing``)."""
    from moto.core.utils import unix_time_millis
    from moto.s3.models import FakeDeleteMarker

    def list_object_versions(
        self, bucket_name, delimiter=None, key_marker=None, max_keys=1000, prefix="", **kwargs
    ):
        version_id_marker = kwargs.get("version_id_marker")
        if delimiter or prefix or (key_marker and not version_id_marker):
            return original(
                self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker
            )
        store = self.get_bucket(bucket_name).keys
        names = sorted(store)
        versions, markers, last = [], [], None
        for name in names[bisect.bisect_left(names, key_marker) if key_marker else 0 :]:
            entries = sorted(
                store.getlist(name, []), key=lambda v: -unix_time_millis(v.last_modified)
            )
            if name == key_marker:  # resume after the marker version, as moto does
                ids = [str(entry.version_id) for entry in entries]
                if version_id_marker not in ids:
                    return [], [], [], None, None
                entries = entries[ids.index(version_id_marker) + 1 :]
            for position, entry in enumerate(entries):
                if len(versions) + len(markers) >= max_keys:
                    return versions, [], markers, last.name, last.version_id
                twin = object.__new__(type(entry))  # moto deep-copies: a shallow copy will do
                twin.__dict__.update(entry.__dict__)
                twin.is_latest = position == 0 and name != key_marker
                (markers if isinstance(entry, FakeDeleteMarker) else versions).append(twin)
                last = entry
        return versions, [], markers, None, None

    return list_object_versions


def check_listing(backend, original, patched):
    """Both listings page through a small bucket (ties, markers, resumed keys) identically."""
    backend.create_bucket("gc-check", REGION)
    backend.put_bucket_versioning("gc-check", "Enabled")
    for i in range(60):
        for _ in range(1 + i % 3):
            backend.put_object("gc-check", f"k/{i % 23:02d}/{i}", b"x")
        if i % 4 == 0:
            backend.delete_object("gc-check", f"k/{i % 23:02d}/{i}")
    for page_size in (1, 7, 1000):
        pages = {}
        for name, listing in (("original", original), ("patched", patched)):
            markers, seen = {}, []
            while True:
                versions, _, deletes, key, version = listing(
                    backend,
                    "gc-check",
                    None,
                    markers.get("key"),
                    page_size,
                    "",
                    version_id_marker=markers.get("version"),
                )
                seen.append([(v.name, v.version_id, v.is_latest) for v in versions + deletes])
                if key is None:
                    break
                markers = {"key": key, "version": version}
            pages[name] = seen
        assert pages["original"] == pages["patched"], page_size


def serve(connection, stock):
    """Run moto on 127.0.0.1 (any free port) and fill buckets on request."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.s3.models import S3Backend, s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    if not stock:
        original = S3Backend.list_object_versions
        S3Backend.list_object_versions = seek_list_object_versions(original)
        check_listing(backend, original, S3Backend.list_object_versions)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    connection.send(server.get_host_and_port()[1])
    while True:
        command, *args = connection.recv()
        if command == "fill":
            bucket, versions, markers = args
            backend.create_bucket(bucket, REGION)
            backend.put_bucket_versioning(bucket, "Enabled")
            backend.put_bucket_tagging(
                bucket, {"grand-challenge:empty-on-delete": STACK_ID, "team": "gc"}
            )
            keys = [f"jobs/{i // 1000:04d}/output-{i:06d}.json" for i in range(versions // 2)]
            for key in keys:
                for version in range(2):
                    # S3 keeps the ETag from the upload; moto computes it lazily from the body,
                    # which a deleted version no longer has (shallow copies still list it).
                    _ = backend.put_object(bucket, key, f'{{"{key}": {version}}}'.encode()).etag
            for key in keys[:markers]:
                backend.delete_object(bucket, key)
        if command in ("fill", "count"):
            store = backend.get_bucket(args[0]).keys
            entries = sum(len(versions) for _, versions in store.lists())
            current = sum(1 for _, v in store.lists() if v and type(v[-1]).__name__ == "FakeKey")
            connection.send((entries, current))
        if command == "stop":
            server.stop()
            return


# --- the handler's side ------------------------------------------------------------------


REQUESTS = Counter()  # HTTP attempts to S3 by operation, from every botocore session made
BUILTIN_HANDLERS.append(
    ("before-send.s3", lambda event_name, **_: REQUESTS.update([event_name.split(".")[-1]]))
)


class Responses(ThreadingHTTPServer):
    """CloudFormation's pre-signed ResponseURL, on 127.0.0.1."""

    def __init__(self):
        self.bodies = []
        responses = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                length = int(self.headers["Content-Length"])
                responses.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server_port}/response?signature=x"


class Context:
    """A Lambda context with Timeout 900 s counting down for real."""

    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:gc-custodian"

    def __init__(self, timeout_s=900):
        self.deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)


def run_handler(responses, bucket, trace=False):
    """Delete event for ``bucket``: (seconds, CPU seconds, S3 requests by operation, peak
    traced bytes). The moto server runs in another process: the CPU time is the handler's."""
    from templates.functions import empty_bucket

    REQUESTS.clear()
    event = {
        "RequestType": "Delete",
        "ResponseURL": responses.url,
        "StackId": STACK_ID,
        "RequestId": f"bench-{bucket}",
        "LogicalResourceId": "EmptyOutputsBucket",
        "PhysicalResourceId": empty_bucket.PHYSICAL_ID_PREFIX + bucket,
        "ResourceType": "Custom::EmptyBucket",
        "ResourceProperties": {"BucketName": bucket},
    }
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    empty_bucket.handler(event, Context())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    answer = responses.bodies[-1]
    assert answer["RequestId"] == event["RequestId"], answer
    assert answer["Status"] == "SUCCESS", answer
    return seconds, cpu, Counter(REQUESTS), peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=80_000, help="object versions")
    parser.add_argument("--markers", type=int, help="delete markers (default: versions / 4)")
    parser.add_argument("--small", type=int, default=20_000, help="versions of the small bucket")
    parser.add_argument("--skip-cli", action="store_true", help="do not time the AWS CLI")
    parser.add_argument(
        "--stock-moto", action="store_true", help="moto's own ListObjectVersions (slow, flaky)"
    )
    args = parser.parse_args()
    markers = args.versions // 4 if args.markers is None else args.markers

    parent, child = multiprocessing.get_context("fork").Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(child, args.stock_moto), daemon=True
    )
    server.start()
    endpoint = f"http://127.0.0.1:{parent.recv()}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    responses = Responses()
    buckets = iter(f"gc-bench-{n}" for n in range(100))

    def fill(versions, markers):
        bucket = next(buckets)
        parent.send(("fill", bucket, versions, markers))
        return bucket, parent.recv()

    def left(bucket):
        parent.send(("count", bucket))
        return parent.recv()

    listing = "moto's own" if args.stock_moto else "seeking to the marker"
    print(f"moto server {endpoint}, ListObjectVersions {listing}")
    run_handler(responses, fill(100, 25)[0])  # warm-up: loads botocore's models

    peaks = {}
    for versions in (args.small, args.versions):
        bucket, (entries, _) = fill(versions, markers * versions // args.versions)
        peaks[entries] = run_handler(responses, bucket, trace=True)[3]
        assert left(bucket) == (0, 0)

    bucket, (entries, current) = fill(args.versions, markers)
    seconds, cpu, requests, _ = run_handler(responses, bucket)
    assert left(bucket) == (0, 0), left(bucket)
    handler_rate = entries / seconds
    total_requests = sum(requests.values())
    print(
        f"\nhandler: {entries:,} versions ({args.versions:,} object versions + {markers:,} delete "
        f"markers) deleted in {seconds:.1f} s = {handler_rate:,.0f} versions/s"
    )
    print(
        f"  S3 requests: {total_requests} = {1000 * total_requests / entries:.3f} per 1,000 "
        f"versions ({', '.join(f'{n} {op}' for op, n in sorted(requests.items()))})"
    )
    print(
        f"  handler CPU: {1000 * cpu / entries:.3f} s per 1,000 versions, i.e. at most "
        f"{entries / cpu * LAMBDA_VCPU:,.0f} versions/s on a {LAMBDA_MEMORY_MB} MB Lambda "
        f"({LAMBDA_VCPU:.2f} vCPU)"
    )
    for traced, peak in peaks.items():
        print(f"  peak traced memory, {traced:>7,} versions: {peak / 2**20:.1f} MiB")

    if not args.skip_cli:
        bucket, (entries, current) = fill(args.versions, markers)
        started = time.perf_counter()
        subprocess.run(
            [
                AWS_CLI,
                "s3",
                "rm",
                "--recursive",
                "--quiet",
                f"s3://{bucket}",
                *("--endpoint-url", endpoint),
            ],
            check=True,
        )
        cli_seconds = time.perf_counter() - started
        after, current_after = left(bucket)
        removed = current - current_after
        started = time.perf_counter()
        subprocess.run([AWS_CLI, "--version"], check=True, capture_output=True)
        startup = time.perf_counter() - started
        cli_rate = removed / cli_seconds
        print(
            f"\naws s3 rm --recursive: {removed:,} current objects removed in {cli_seconds:.1f} s "
            f"= {cli_rate:,.0f} objects/s (CLI start-up alone {startup:.1f} s); "
            f"{after:,} versions and markers left in the bucket"
        )
        print(f"handler / CLI: {handler_rate / cli_rate:.1f}x")
    parent.send(("stop",))
    server.join(10)


if __name__ == "__main__":
    main()
