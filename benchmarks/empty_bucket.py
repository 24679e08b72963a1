"""The bucket emptier against `aws s3 rm --recursive` on one local moto server.

Prints versions/s, S3 requests per 1,000 versions (every HTTP attempt the handler sends,
counted with a botocore hook), and the handler's peak traced memory on a small and a big
bucket (flat: it streams page by page). Targets: <= 2.05 requests per 1,000 versions,
>= 10x the CLI's objects/s, flat memory. Run from the repository root:

    python benchmarks/empty_bucket.py [--versions 80000] [--markers 20000] [--small 10000]

The data, identical for every run: ``versions / 2`` keys of 2 versions each, the first
``markers`` keys also carrying a delete marker (deleted objects), and, unless --stock-moto,
two fixes applied to moto inside its server process only (the handler is untouched):

* moto's ListObjectVersions deep-copies every version in the bucket for every page (about
  0.1 ms each, i.e. minutes per pass for 100k versions; S3 answers a page in ~100 ms): it
  gets a shallow copy instead, the same data.
* a key deleted while moto lists crashes that listing (HTTP 500, retried by botocore): a
  deleted key is skipped instead. Real S3 lists and deletes concurrently without errors.
  (ETags are computed when filling, as S3 stores them on upload: moto computes them lazily
  from the body, which a deleted version no longer has.)

The server runs in its own process (so tracemalloc sees only the handler) and is filled
there directly. The CLI only removes current objects (a delete marker each, in a versioned
bucket): its objects/s counts those; versions and markers stay behind.
"""

import argparse
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


def patch_moto():
    from moto.s3.models import FakeDeleteMarker, FakeKey
    from moto.s3.utils import _VersionedKeyStore

    def shallow(version, memo=None):
        twin = object.__new__(type(version))
        twin.__dict__.update(version.__dict__)
        return twin

    FakeKey.__deepcopy__ = FakeDeleteMarker.__deepcopy__ = shallow
    _VersionedKeyStore.lists = _VersionedKeyStore.iterlists = lambda store: (
        (key, store.getlist(key, [])) for key in store._self_iterable()
    )


def serve(connection, stock):
    """Run moto on 127.0.0.1 (any free port) and fill buckets on request."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    if not stock:
        patch_moto()
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.s3.models import s3_backends

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    connection.send(server.get_host_and_port()[1])
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
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
                    # which fails once the version is deleted (with the shallow copies).
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
    parser.add_argument("--stock-moto", action="store_true", help="moto without the two fixes")
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

    print(f"moto server {endpoint} ({'stock' if args.stock_moto else 'with the two fixes'})")
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
