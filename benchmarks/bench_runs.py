"""The runs the benchmark times: the emptier (templates/functions/empty_bucket.py, imported as
the Lambda runs it) and two published baselines, each on a fresh model bucket."""

import json
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CDK_TAG = "aws-cdk:auto-delete-objects"
POLICY_STUB = {"Version": "2012-10-17", "Statement": []}


@dataclass
class Result:
    name: str
    size: int
    deleted: int
    wall: float
    model_seconds: float
    cpu: float  # process CPU seconds, the model's own included
    model_cpu: float
    requests: dict = field(default_factory=dict)
    outcome: str = ""
    peak: int = 0  # traced bytes, if traced
    throttled: dict = field(default_factory=dict)

    @property
    def rate(self):
        return self.deleted / self.model_seconds

    @property
    def requests_per_1000(self):
        return 1000 * sum(self.requests.values()) / max(self.deleted, 1)

    @property
    def client_cpu(self):
        return max(self.cpu - self.model_cpu, 0.0)

    @property
    def cpu_busy(self):
        return self.cpu / self.wall


def timed(name, model, bucket, work, trace=False):
    """Run ``work()`` (returning an outcome string) and measure it."""
    if trace:
        tracemalloc.start()
    wall, cpu, model_cpu = time.perf_counter(), time.process_time(), model.cpu
    outcome = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    return Result(
        name,
        bucket.size,
        bucket.size - bucket.remaining(),
        wall,
        wall / model.clock.scale,
        cpu,
        model.cpu - model_cpu,
        dict(model.requests),
        outcome,
        peak,
        dict(model.throttled),
    )


# --- the emptier -----------------------------------------------------------------------


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
    """A Lambda context with Timeout 900 s counting down in model time."""

    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:gc-custodian"

    def __init__(self, clock, timeout_s=900):
        self.clock, self.deadline = clock, clock.now() + timeout_s

    def get_remaining_time_in_millis(self):
        return int((self.deadline - self.clock.now()) * 1000)


def run_handler(model, bucket, trace=False, timeout_s=900):
    """The Delete event, with the Lambda Timeout ``timeout_s`` in model seconds."""
    from templates.functions import empty_bucket

    responses = Responses()
    stack_id = bucket.tags[empty_bucket.OPT_IN_TAG_KEY]
    event = {
        "RequestType": "Delete",
        "ResponseURL": responses.url,
        "StackId": stack_id,
        "RequestId": f"bench-{bucket.name}",
        "LogicalResourceId": "EmptyOutputsBucket",
        "PhysicalResourceId": empty_bucket.PHYSICAL_ID_PREFIX + bucket.name,
        "ResourceType": "Custom::EmptyBucket",
        "ResourceProperties": {"BucketName": bucket.name},
    }

    def work():
        empty_bucket.handler(event, Context(model.clock, timeout_s))
        if not responses.bodies:
            return "no answer (handed off?)"
        answer = responses.bodies[-1]
        return answer["Status"] if answer["Status"] == "SUCCESS" else f"FAILED: {answer['Reason']}"

    try:
        return timed("handler", model, bucket, work, trace)
    finally:
        responses.shutdown()
        responses.server_close()


# --- baselines -------------------------------------------------------------------------


def leftover(bucket):
    left = bucket.remaining()
    return f"{left:,} versions left" if left else "empty"


def cdk_auto_delete(s3, bucket_name):
    """CDK's autoDeleteObjects Delete handler (aws-cdk-lib custom-resource-handlers
    lib/aws-s3/auto-delete-objects-handler/index.ts), step for step."""
    tags = s3.get_bucket_tagging(Bucket=bucket_name).get("TagSet", [])
    if not any(tag["Key"] == CDK_TAG and tag["Value"] == "true" for tag in tags):
        return
    try:  # denyWrites: best effort, like CDK's
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket_name)["Policy"])
        policy["Statement"].append(
            {
                "Principal": "*",
                "Effect": "Deny",
                "Action": ["s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{bucket_name}/*"],
            }
        )
        s3.put_bucket_policy(Bucket=bucket_name, Policy=json.dumps(policy))
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucket":
            raise
    while True:  # emptyBucket: always list from the start
        listed = s3.list_object_versions(Bucket=bucket_name)
        contents = listed.get("Versions", []) + listed.get("DeleteMarkers", [])
        if not contents:
            return
        records = [{"Key": item["Key"], "VersionId": item["VersionId"]} for item in contents]
        s3.delete_objects(Bucket=bucket_name, Delete={"Objects": records})
        if not listed.get("IsTruncated"):
            return


def run_cdk(model, bucket, trace=False):
    # The JavaScript SDK v3's default retry strategy is "standard" with 3 attempts.
    s3 = boto3.session.Session().client("s3", config=Config(retries={"mode": "standard"}))

    def work():
        cdk_auto_delete(s3, bucket.name)
        return leftover(bucket)

    return timed("CDK", model, bucket, work, trace)


def run_boto3(model, bucket, trace=False):
    """The AWS documentation's ``bucket.object_versions.delete()`` with boto3's defaults."""
    s3 = boto3.session.Session().resource("s3")

    def work():
        s3.Bucket(bucket.name).object_versions.delete()
        return leftover(bucket)

    return timed("boto3", model, bucket, work, trace)
