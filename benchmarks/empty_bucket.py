"""The bucket emptier against CDK's autoDeleteObjects algorithm and boto3's documented
``bucket.object_versions.delete()``, on a timing model of S3 (benchmarks/s3_model.py).

Every client is the real botocore client (serialising, signing, retrying, parsing); only the
HTTP exchange is replaced by the model, which waits for S3's published latency and enforces
its published per-prefix DELETE rate (see the model's calibration, printed first). The model
is for timing only: correctness is tested on moto in tests/test_empty_bucket.py. Run from the
repository root:

    .venv/bin/python benchmarks/empty_bucket.py                  # ~6 min on 2 busy cores
    .venv/bin/python benchmarks/empty_bucket.py --sizes 20000 --memory-sizes 2000   # ~1 min
    .venv/bin/python benchmarks/empty_bucket.py --time-scale 1 --full-baselines    # no CPU skew
    .venv/bin/python benchmarks/empty_bucket.py --partitions 4   # a bucket S3 has split

Baselines, as published (sequential, one request at a time):
- CDK: aws-cdk-lib custom-resource-handlers/lib/aws-s3/auto-delete-objects-handler:
  GetBucketTagging, GetBucketPolicy (+ PutBucketPolicy denying writes), then repeat
  {ListObjectVersions from the start of the bucket; DeleteObjects of that page} while the
  listing was truncated. Per-key errors are not read (the next listing from the start finds
  those keys again, except after the last page).
- boto3: ``s3.Bucket(name).object_versions.delete()`` (the AWS documentation's example for
  versioned buckets): a batch action that pages ListObjectVersions with markers and sends one
  DeleteObjects per page; per-key errors are returned, not retried.

Rates are in model seconds: with --time-scale s every modelled wait (and the clients' own
sleeps and timed waits) lasts s times as long, but CPU time is not scaled: it counts 1/s
times in model time. A client spending ~0.1 s of CPU per 1,000 versions here is slowed
noticeably below --time-scale 0.5; "busy" above ~60% means the run measured this machine's
CPU, not the model. --time-scale 1 is exact (and slow).
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
REGION = "eu-central-1"
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION=REGION,
    AWS_CONFIG_FILE="/nonexistent",
    AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    # Anything the model does not answer goes to a closed local port and fails, never to AWS.
    AWS_ENDPOINT_URL="http://127.0.0.1:9",
)
for name in ("AWS_PROFILE", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
    os.environ.pop(name, None)

import s3_model  # noqa: E402  (registers the botocore hook before any session exists)
from bench_runs import run_boto3, run_cdk, run_handler  # noqa: E402

STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/gc-bench/0b1c2d3e"
TAGS = {"grand-challenge:empty-on-delete": STACK_ID, "aws-cdk:auto-delete-objects": "true"}
LAMBDA_MEMORY_MB = 512  # the custodian's MemorySize; Lambda gives 1 vCPU per 1,769 MB
TARGETS = "targets: >= 5x CDK, >= 80% of the ceiling, finishes under 5% SlowDown, flat memory"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--sizes", default="100000,1000000", help="handler bucket sizes, versions (a,b,...)")
    add("--time-scale", type=float, default=0.5, help="wall seconds per model second")
    add("--partitions", type=int, default=1, help="key ranges S3 has split the bucket into")
    add("--slowdown", type=float, default=0.05, help="SlowDown fraction injected (0: skip)")
    add("--base-ms", type=float, default=100, help="model latency of any request")
    add("--list-key-ms", type=float, default=0.1, help="model latency per listed entry")
    add("--delete-key-ms", type=float, default=0.5, help="model latency per deleted key")
    add("--rate", type=float, default=3500, help="DELETE keys/s per partition")
    add("--concurrency", type=int, default=256, help="requests the model serves at once")
    add("--baseline-versions", type=int, default=20000, help="bucket size for the baselines")
    add("--full-baselines", action="store_true", help="baselines at every --sizes size too")
    add("--memory-sizes", default="10000,100000", help="sizes traced with tracemalloc (a,b,...)")
    add("--memory-time-scale", type=float, default=0.01, help="time scale of the traced runs")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",")})
        args.memory_sizes = sorted({int(size) for size in args.memory_sizes.split(",") if size})
    except ValueError:
        parser.error("--sizes and --memory-sizes take comma-separated integers")
    if min(*args.sizes, args.baseline_versions) < 2 or args.partitions < 1:
        parser.error("sizes must be >= 2 and --partitions >= 1")
    if min(args.time_scale, args.memory_time_scale, args.rate, args.concurrency) <= 0:
        parser.error("--time-scale, --memory-time-scale, --rate and --concurrency must be > 0")
    if not 0 <= args.slowdown < 1:
        parser.error("--slowdown is a fraction in [0, 1)")
    return args


def calibration(args, slowdown=0.0):
    return s3_model.Calibration(
        base_s=args.base_ms / 1000,
        list_key_s=args.list_key_ms / 1000,
        delete_key_s=args.delete_key_ms / 1000,
        deletes_per_s=args.rate,
        concurrency=args.concurrency,
        partitions=args.partitions,
        slowdown=slowdown,
        key_slowdown=slowdown,
    )


def measure(run, args, size, slowdown=0.0, **options):
    """One run of ``run`` on a fresh model and bucket of ``size`` versions."""
    model = s3_model.FakeS3(calibration(args, slowdown), scale=args.time_scale).install()
    bucket = model.add_bucket(f"gc-bench-{size}", size, TAGS)
    try:
        with s3_model.scaled_sleep(args.time_scale):
            return run(model, bucket, **options)
    finally:
        model.uninstall()


HEADER = (
    "  run        versions   deleted  model s   vers/s  req/1k  ceil.  CPU s/1k  Lambda cap*"
    f"  busy  outcome\n  {'-' * 104}"
)


def row(result, ceiling):
    """One result: rate, requests per 1,000, share of the ceiling, CPU; then its requests."""
    client_cpu = result.client_cpu / max(result.deleted, 1)
    cap = (LAMBDA_MEMORY_MB / 1769) / client_cpu if client_cpu else 0
    requests = ", ".join(f"{n:,} {op}" for op, n in sorted(result.requests.items()))
    throttled = ", ".join(f"{n:,} {kind}" for kind, n in result.throttled.items())
    return (
        f"  {result.name:<8} {result.size:>9,} {result.deleted:>9,} {result.model_seconds:>8.1f}"
        f" {result.rate:>8,.0f} {result.requests_per_1000:>7.2f} {result.rate / ceiling:>6.0%}"
        f" {1000 * client_cpu:>9.3f} {cap:>12,.0f} {result.cpu_busy:>5.0%}  {result.outcome}\n"
        f"           requests: {requests}; throttled: {throttled}"
    )


def report(results, ceiling):
    print(HEADER)
    for result in results:
        print(row(result, ceiling))
    print(
        f"  * versions/s a {LAMBDA_MEMORY_MB} MB Lambda ({LAMBDA_MEMORY_MB / 1769:.2f} vCPU) "
        "could sustain at this client CPU cost (this machine's CPU; the model's excluded)"
    )
    for result in results:
        if result.cpu_busy > 0.6:
            print(f"  ! {result.name} {result.size:,}: CPU-bound here; raise --time-scale")


def diagnosis(result, cal, ceiling, settle_s):
    """Why the handler fell short of the ceiling, from what it sent and what the model did."""
    if result.rate >= 0.8 * ceiling:
        return "at >= 80% of the ceiling"
    pages = result.requests.get("ListObjectVersions", 0)
    page_s = cal.base_s + 1000 * cal.list_key_s
    throttled = sum(result.throttled.values())
    if not throttled:
        why = "S3 never throttled it, so it sent deletes slower than S3 allows"
    elif cal.partitions > 1:
        why = (
            f"{throttled:,} throttled answers below the ceiling: the batches in flight did not "
            f"keep all {cal.partitions} partitions busy"
        )
    else:
        why = f"{throttled:,} throttled answers"
    return (
        f"{why}; its {pages} ListObjectVersions pages take {pages * page_s:.0f} model s one after "
        f"another (its run: {result.model_seconds:.0f} s; plus their parsing CPU): at most "
        f"~{1000 / page_s:,.0f} versions/s per lister; and the settle wait after a pass that found "
        f"versions "
        f"adds {settle_s} s"
    )


def summary(args, results, ceiling):
    from templates.functions import empty_bucket

    cal, settle = calibration(args), getattr(empty_bucket, "SETTLE_SECONDS", 0)
    cdk = next(r for r in results if r.name == "CDK")
    print(
        f"\nceiling: {args.rate:,.0f} DELETE keys/s x {args.partitions} partition(s) the keys "
        f"span = {ceiling:,.0f} versions/s; CDK (measured at {cdk.size:,}): {cdk.rate:,.0f}/s"
    )
    for result in (r for r in results if r.name == "handler"):
        print(
            f"  handler {result.size:>9,}: {result.rate / cdk.rate:.1f}x CDK, "
            f"{result.rate / ceiling:.0%} of the ceiling, {result.outcome}; "
            f"{diagnosis(result, cal, ceiling, settle)}"
        )


def sources(args):
    print(__doc__.split("\n\n")[0].replace("\n", " "))
    print(
        f"\nS3 model (timing only; correctness is tested on moto): {calibration(args).describe()}"
    )
    print(
        "  published: 3,500 DELETE/s and 5,500 GET/s per partitioned prefix, 503 SlowDown beyond,"
        " 100-200 ms small-request latency (docs.aws.amazon.com/AmazonS3/latest/userguide/"
        "optimizing-performance.html); assumed: the per-key costs (S3 publishes none)"
    )
    print(
        f"  time scale {args.time_scale}: rates are per model second; {TARGETS}\n"
        "  baselines: CDK = autoDeleteObjects (list from the start, DeleteObjects, repeat; "
        "sequential); boto3 = bucket.object_versions.delete() (page with markers, one "
        "DeleteObjects per page; sequential)"
    )


def timings(args):
    """Handler at every size, baselines at --baseline-versions (and every size if asked)."""
    results = []
    for size in args.sizes:
        results.append(measure(run_handler, args, size))
    sizes = sorted({args.baseline_versions, *(args.sizes if args.full_baselines else ())})
    for size in sizes:
        results += [measure(run_cdk, args, size), measure(run_boto3, args, size)]
    return results


def slowdown_runs(args):
    handler_size, size = args.sizes[0], args.baseline_versions
    print(
        f"\n{args.slowdown:.0%} SlowDown injected ({args.slowdown:.0%} of requests answered 503, "
        f"{args.slowdown:.0%} of DeleteObjects keys answered SlowDown):"
    )
    return [
        measure(run_handler, args, handler_size, slowdown=args.slowdown),
        measure(run_cdk, args, size, slowdown=args.slowdown),
        measure(run_boto3, args, size, slowdown=args.slowdown),
    ]


def memory_runs(args):
    """Untimed (tracemalloc slows every allocation), on a fast clock with no Lambda deadline."""
    print(
        "\nhandler peak traced memory (tracemalloc, untimed run; the model's own allocations, "
        "e.g. the XML of the pages in flight, included):"
    )
    fast = argparse.Namespace(**{**vars(args), "time_scale": args.memory_time_scale})
    for size in args.memory_sizes:
        result = measure(run_handler, fast, size, trace=True, timeout_s=10**7)
        print(f"  {size:>9,} versions: {result.peak / 2**20:6.1f} MiB  ({result.outcome})")


def main(argv=None):
    args = parse_args(argv)
    sources(args)
    ceiling = args.rate * args.partitions
    measure(run_handler, args, 2000)  # warm-up: loads botocore's models
    print("\ntimings:")
    results = timings(args)
    report(results, ceiling)
    summary(args, results, ceiling)
    if args.slowdown:
        report(slowdown_runs(args), ceiling)
    if args.memory_sizes:
        memory_runs(args)


if __name__ == "__main__":
    main()
