"""Deployments sharing an account and region cannot touch each other's jobs, and every call
Grand Challenge and SageMaker need stays allowed: the RENDERED template's policies, resolved
for concrete deployments (prefixes ``gc``, ``gc-prod``, ``gcx``, ``gc-a`` side by side), go
through an IAM policy simulator (@cloud-copilot/iam-simulate), all cases in one Node run.

The one template serves every region, and the zones an operator picks decide which subnet
slots (a-f) exist: the jobs' network grants are checked per region and pick (ZONE_PICKS)."""

import pytest

from templates.names import (
    JOB_NAME_LENGTH_AFTER_PREFIX,
    training_job_any_model_arn_name,
    training_job_arn_names,
    training_job_log_streams,
)
from templates.network import ZONE_LETTERS
from templates.runtime import MAX_PREFIX_LENGTH
from tests.cfn_resolve import ACCOUNT, Deployment, UnresolvableError
from tests.helpers import rendered
from tests.iam_simulator import request, simulate

REGION = "eu-central-1"
UUID = "2d9a6c1e-5b7f-4e11-9a3c-0b1d2e3f4a5b"
WORKERS = f"arn:aws:iam::{ACCOUNT}:role/grand-challenge-workers"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
ALLOWED, DENIED = "Allowed", "ImplicitlyDenied"
# Each sibling prefix starts with ours: the overlap the exact patterns close.
NEIGHBOURS = [("gc", "gc-prod"), ("gc-prod", "gc"), ("gc", "gcx"), ("gc", "gc-a")]


# Regions and picked zone letters: different regions, and picks with gaps, so a slot that
# exists in every stack or a letter misread as another would show.
ZONE_PICKS = [
    ("eu-central-1", "ac"),
    ("us-east-1", "bdf"),
    ("us-east-1", "e"),
    ("us-west-2", "abcd"),
]


def deploy(prefix, region=REGION, letters="abc", **parameters):
    """The one product template as a stack in ``region`` with ``<region><letter>`` picked,
    given to CloudFormation as a List parameter is: comma-separated."""
    zones = ",".join(f"{region}{letter}" for letter in letters)
    return Deployment(
        rendered(), region, {"NamePrefix": prefix, "AvailabilityZones": zones, **parameters}
    )


DEPLOYMENTS = {prefix: deploy(prefix) for prefix in ("gc", "gc-prod", "gcx", "gc-a")}


def job(prefix, model="A", attempt="00"):
    return f"{prefix}-{model}-{UUID}-{attempt}"


def job_arn(name, region=REGION):
    """SageMaker lower-cases the job name inside the ARN."""
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:training-job/{name.lower()}"


def stream_arn(name):
    return f"{LOG_GROUP}:log-stream:{name}/algo-1-1732435200"


def policy(deployment, logical_id):
    return deployment.resolve(deployment.template["Resources"][logical_id]["Properties"])[
        "PolicyDocument"
    ]


def workers(deployment):
    """The managed policies an operator attaches to the Grand Challenge workers' role."""
    ids = ["SchedulePolicy", "LogsPolicy", "ConsumeStoppedJobsPolicy"]
    return [policy(deployment, i) for i in ids if deployment.exists(i)]


def execution_role(deployment):
    return deployment.get_att("ExecutionRole", "Arn")


def good_job_context(deployment):
    """What the backend sends for a job in this deployment's VPC on an allowed type."""
    subnets = deployment.resolve(deployment.template["Outputs"]["PrivateSubnetIds"]["Value"])
    return {
        "sagemaker:MaxRuntimeInSeconds": "86400",
        "sagemaker:VpcSubnets": subnets.split(","),
        "sagemaker:VpcSecurityGroupIds": [deployment.get_att("ExecutionSecurityGroup", "GroupId")],
        "sagemaker:InstanceTypes": ["ml.g4dn.xlarge"],
        "sagemaker:EnableRemoteDebug": "false",
    }


def worker_call(deployment, action, resource, context=None):
    return request(WORKERS, action, resource, workers(deployment), context=context)


def execution_call(deployment, action, resource, context=None, resource_policy=None):
    return request(
        execution_role(deployment),
        action,
        resource,
        [policy(deployment, "ExecutionPolicy")],
        resource_policy,
        context,
    )


def sagemaker_assumes(deployment, training_job_arn, account=ACCOUNT):
    trust = deployment.resolve(
        deployment.template["Resources"]["ExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]
    )
    context = {"aws:SourceAccount": account, "aws:SourceArn": training_job_arn}
    return request(
        "sagemaker.amazonaws.com", "sts:AssumeRole", execution_role(deployment), (), trust, context
    )


def job_cases(ours, theirs):
    """Our deployment's grants on our jobs and on a neighbour's, both models."""
    mine, cases = DEPLOYMENTS[ours], {}
    for model in ("A", "E"):
        for owner, expected in ((ours, ALLOWED), (theirs, DENIED)):
            name = job(owner, model)
            key = f"{ours} on {owner}'s {model} job"
            context = good_job_context(mine)
            cases[f"{key}: CreateTrainingJob"] = (
                expected,
                worker_call(mine, "sagemaker:CreateTrainingJob", job_arn(name), context),
            )
            for action in ("DescribeTrainingJob", "StopTrainingJob"):
                cases[f"{key}: {action}"] = (
                    expected,
                    worker_call(mine, f"sagemaker:{action}", job_arn(name)),
                )
            cases[f"{key}: GetLogEvents"] = (
                expected,
                worker_call(mine, "logs:GetLogEvents", stream_arn(name)),
            )
            cases[f"{key}: SageMaker assumes the execution role"] = (
                expected,
                sagemaker_assumes(mine, job_arn(name)),
            )
            for action in ("CreateLogStream", "PutLogEvents"):
                cases[f"{key}: the job's {action}"] = (
                    expected,
                    execution_call(mine, f"logs:{action}", stream_arn(name)),
                )
    return cases


def shape_cases():
    """Names the backend never produces, under our own prefix: denied."""
    gc, cases = DEPLOYMENTS["gc"], {}
    wrong = {
        "model X": job("gc", "X"),
        "three-digit attempt": job("gc", attempt="000"),
        "no attempt": f"gc-A-{UUID}",
        "no uuid": "gc-A-00",
    }
    for label, name in wrong.items():
        cases[f"gc, {label}: DescribeTrainingJob"] = (
            DENIED,
            worker_call(gc, "sagemaker:DescribeTrainingJob", job_arn(name)),
        )
        cases[f"gc, {label}: GetLogEvents"] = (
            DENIED,
            worker_call(gc, "logs:GetLogEvents", stream_arn(name)),
        )
    cases["gc, lowercase model letter in a stream: GetLogEvents"] = (
        DENIED,
        worker_call(gc, "logs:GetLogEvents", stream_arn(job("gc", "a"))),
    )
    cases["another account's job: SageMaker assumes the execution role"] = (
        DENIED,
        sagemaker_assumes(gc, job_arn(job("gc")).replace(ACCOUNT, "999999999999"), "999999999999"),
    )
    return cases


def create_job_condition_cases():
    """CreateTrainingJob: each condition key, one at a time, away from the allowed request."""
    gc, sibling = DEPLOYMENTS["gc"], DEPLOYMENTS["gc-prod"]
    good = good_job_context(gc)
    variants = {
        "runtime above the cap": {"sagemaker:MaxRuntimeInSeconds": "86401"},
        "a neighbour's subnet": {
            "sagemaker:VpcSubnets": good_job_context(sibling)["sagemaker:VpcSubnets"][:1]
        },
        "a neighbour's security group": {
            "sagemaker:VpcSecurityGroupIds": good_job_context(sibling)[
                "sagemaker:VpcSecurityGroupIds"
            ]
        },
        "an instance type not allowed": {"sagemaker:InstanceTypes": ["ml.p5.48xlarge"]},
        "remote debugging": {"sagemaker:EnableRemoteDebug": "true"},
    }
    cases = {
        f"CreateTrainingJob with {label}": (
            DENIED,
            worker_call(gc, "sagemaker:CreateTrainingJob", job_arn(job("gc")), good | change),
        )
        for label, change in variants.items()
    }
    for key in ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds", "sagemaker:InstanceTypes"):
        without = {k: v for k, v in good.items() if k != key}
        cases[f"CreateTrainingJob without {key}"] = (
            DENIED,
            worker_call(gc, "sagemaker:CreateTrainingJob", job_arn(job("gc")), without),
        )
    return cases


TLS = {"aws:SecureTransport": "true"}  # the buckets' policies deny anything else
TO_SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}


def s3_object(deployment, bucket, key="job/x"):
    return f"arn:aws:s3:::{deployment.ref(bucket)}" + (f"/{key}" if key else "")


def worker_needed_cases():
    """The backend's calls besides the job ones: allowed, and no more than those."""
    gc, sibling = DEPLOYMENTS["gc"], DEPLOYMENTS["gc-prod"]
    rows = [
        ("PassRole of the execution role to SageMaker", ALLOWED, "iam:PassRole",
         execution_role(gc), TO_SAGEMAKER, None),
        ("PassRole of the execution role to Lambda", DENIED, "iam:PassRole",
         execution_role(gc), {"iam:PassedToService": "lambda.amazonaws.com"}, None),
        ("PassRole of a neighbour's execution role", DENIED, "iam:PassRole",
         execution_role(sibling), TO_SAGEMAKER, None),
        ("DescribeLogStreams", ALLOWED, "logs:DescribeLogStreams",
         f"{LOG_GROUP}:log-stream:", None, None),
        ("PutObject inputs", ALLOWED, "s3:PutObject",
         s3_object(gc, "InputsBucket"), TLS, "InputsBucketPolicy"),
        ("GetObject inputs", ALLOWED, "s3:GetObject",
         s3_object(gc, "InputsBucket"), TLS, "InputsBucketPolicy"),
        ("DeleteObject inputs", ALLOWED, "s3:DeleteObject",
         s3_object(gc, "InputsBucket"), TLS, "InputsBucketPolicy"),
        ("ListBucket inputs", ALLOWED, "s3:ListBucket",
         s3_object(gc, "InputsBucket", key=""), TLS, "InputsBucketPolicy"),
        ("GetObject outputs", ALLOWED, "s3:GetObject",
         s3_object(gc, "OutputsBucket"), TLS, "OutputsBucketPolicy"),
        ("DeleteObject outputs", ALLOWED, "s3:DeleteObject",
         s3_object(gc, "OutputsBucket"), TLS, "OutputsBucketPolicy"),
        ("PutObject outputs", DENIED, "s3:PutObject",
         s3_object(gc, "OutputsBucket"), TLS, "OutputsBucketPolicy"),
        ("GetObject a neighbour's inputs", DENIED, "s3:GetObject",
         s3_object(sibling, "InputsBucket"), TLS, None),
    ]  # fmt: skip
    return {
        f"workers {label}": (
            expected,
            request(WORKERS, action, resource, workers(gc),
                    policy(gc, bucket_policy) if bucket_policy else None, context),
        )
        for label, expected, action, resource, context, bucket_policy in rows
    }  # fmt: skip


def job_needed_cases():
    """What SageMaker does as the execution role for a job: allowed, and no more."""
    gc, sibling = DEPLOYMENTS["gc"], DEPLOYMENTS["gc-prod"]
    vpc_arn = "arn:aws:ec2:${AWS::Region}:${AWS::AccountId}:vpc/${Vpc}"
    vpc, other_vpc = gc.resolve({"Fn::Sub": vpc_arn}), sibling.resolve({"Fn::Sub": vpc_arn})
    eni = f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/eni-0123456789abcdef0"
    subnet = f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{gc.ref('PrivateSubnetA')}"
    repository = gc.get_att("Repository1", "Arn")
    rows = [
        ("GetObject inputs", ALLOWED, "s3:GetObject",
         s3_object(gc, "InputsBucket"), TLS, "InputsBucketPolicy"),
        ("PutObject outputs", ALLOWED, "s3:PutObject",
         s3_object(gc, "OutputsBucket"), TLS, "OutputsBucketPolicy"),
        ("PutObject inputs", DENIED, "s3:PutObject",
         s3_object(gc, "InputsBucket"), TLS, "InputsBucketPolicy"),
        ("GetObject a neighbour's inputs", DENIED, "s3:GetObject",
         s3_object(sibling, "InputsBucket"), TLS, None),
        ("GetAuthorizationToken", ALLOWED, "ecr:GetAuthorizationToken", "*", None, None),
        ("BatchGetImage", ALLOWED, "ecr:BatchGetImage", repository, None, None),
        ("GetDownloadUrlForLayer", ALLOWED, "ecr:GetDownloadUrlForLayer", repository, None, None),
        ("BatchGetImage from a neighbour's repository", DENIED, "ecr:BatchGetImage",
         sibling.get_att("Repository1", "Arn"), None, None),
        # CloudWatch Logs authorises group actions on the group ARN as its API returns it,
        # with ":*" (the Terraform module's grant, working in production); the simulator's
        # ARN data has no suffix, so the request names the suffixed form.
        ("CreateLogGroup", ALLOWED, "logs:CreateLogGroup", f"{LOG_GROUP}:*", None, None),
        ("CreateNetworkInterface in our subnet", ALLOWED, "ec2:CreateNetworkInterface",
         subnet, None, None),
        ("DeleteNetworkInterface in our VPC", ALLOWED, "ec2:DeleteNetworkInterface",
         eni, {"ec2:Vpc": vpc}, None),
        ("DeleteNetworkInterface in another VPC", DENIED, "ec2:DeleteNetworkInterface",
         eni, {"ec2:Vpc": other_vpc}, None),
    ]  # fmt: skip
    return {
        f"job {label}": (
            expected,
            execution_call(gc, action, resource, context,
                           policy(gc, bucket_policy) if bucket_policy else None),
        )
        for label, expected, action, resource, context, bucket_policy in rows
    }  # fmt: skip


# --- Zones: each stack's grants cover exactly the subnets of its picked slots -------------


def subnet_ids(deployment):
    """``{letter: subnet id}`` of the subnet slots that exist in this stack."""
    return {
        letter: deployment.ref(f"PrivateSubnet{letter.upper()}")
        for letter in ZONE_LETTERS
        if deployment.exists(f"PrivateSubnet{letter.upper()}")
    }


def subnet_arn(region, subnet_id):
    return f"arn:aws:ec2:{region}:{ACCOUNT}:subnet/{subnet_id}"


def statement_with(deployment, logical_id, action):
    [statement] = [s for s in policy(deployment, logical_id)["Statement"] if action in s["Action"]]
    return statement


def zone_cases(region, letters):
    """In a stack with ``letters`` picked, jobs may use those subnets and not the ones the
    unpicked slots would have (their ids from the same stack with every zone picked)."""
    picked, every = deploy("gc", region, letters), deploy("gc", region, ZONE_LETTERS)
    unpicked = {k: v for k, v in subnet_ids(every).items() if k not in letters}
    training_job = job_arn(job("gc"), region)
    label, cases = f"{region} picking {letters}", {}
    for subnets, expected in ((subnet_ids(picked), ALLOWED), (unpicked, DENIED)):
        for letter, subnet in subnets.items():
            cases[f"{label}: CreateNetworkInterface in slot {letter}"] = (
                expected,
                execution_call(picked, "ec2:CreateNetworkInterface", subnet_arn(region, subnet)),
            )
            context = good_job_context(picked) | {"sagemaker:VpcSubnets": [subnet]}
            cases[f"{label}: CreateTrainingJob in slot {letter}"] = (
                expected,
                worker_call(picked, "sagemaker:CreateTrainingJob", training_job, context),
            )
    context = good_job_context(picked)
    cases[f"{label}: CreateTrainingJob across every picked subnet"] = (
        ALLOWED,
        worker_call(picked, "sagemaker:CreateTrainingJob", training_job, context),
    )
    return cases


@pytest.mark.parametrize("region, letters", ZONE_PICKS)
def test_subnet_slots_exist_exactly_for_the_picked_zones(region, letters):
    deployment = deploy("gc", region, letters)
    for letter in ZONE_LETTERS:
        suffix = letter.upper()
        slot = [
            f"PrivateSubnet{suffix}",
            f"PrivateRouteTable{suffix}",
            f"PrivateRouteTableAssociation{suffix}",
            f"PrivateNetworkAclAssociation{suffix}",
        ]
        assert [deployment.exists(i) for i in slot] == [letter in letters] * 4, letter
    subnets = deployment.resources("AWS::EC2::Subnet")
    zones = sorted(subnet["AvailabilityZone"] for subnet in subnets.values())
    assert zones == [f"{region}{letter}" for letter in letters]


@pytest.mark.parametrize("region, letters", ZONE_PICKS)
def test_job_network_grants_name_exactly_the_picked_subnets(region, letters):
    """No more (a slot not picked, or another region's subnet), no less (a picked zone the
    jobs could not use): the execution role's ENI subnets and the workers' VpcSubnets."""
    deployment = deploy("gc", region, letters)
    ids = list(subnet_ids(deployment).values())
    assert len(ids) == len(letters)
    eni = statement_with(deployment, "ExecutionPolicy", "ec2:CreateNetworkInterface")
    subnets = [arn for arn in eni["Resource"] if ":subnet/" in arn]
    assert subnets == [subnet_arn(region, subnet) for subnet in ids]
    create = statement_with(deployment, "SchedulePolicy", "sagemaker:CreateTrainingJob")
    assert create["Condition"]["ForAllValues:StringEquals"]["sagemaker:VpcSubnets"] == ids
    outputs = deployment.template["Outputs"]
    assert deployment.resolve(outputs["PrivateSubnetIds"]["Value"]) == ",".join(ids)


def test_the_resolver_refuses_what_cloudformation_refuses():
    """The zone tests lean on the resolver: a list parameter resolves alike given as
    CloudFormation takes it or as a list; a stack without its required zones, or a Ref to a
    slot that does not exist, raises instead of yielding a plausible ARN."""
    given_as_list = Deployment(
        rendered(), "us-east-1", {"NamePrefix": "gc", "AvailabilityZones": ["us-east-1b"]}
    )
    assert subnet_ids(given_as_list) == subnet_ids(deploy("gc", "us-east-1", "b"))
    assert given_as_list.ref("AvailabilityZones") == ["us-east-1b"]
    with pytest.raises(UnresolvableError, match="AvailabilityZones has no default"):
        Deployment(rendered(), REGION, {"NamePrefix": "gc"}).condition("UseZoneA")
    with pytest.raises(UnresolvableError, match="PrivateSubnetA does not exist"):
        given_as_list.ref("PrivateSubnetA")


CASES = {
    **{key: case for ours, theirs in NEIGHBOURS for key, case in job_cases(ours, theirs).items()},
    **shape_cases(),
    **create_job_condition_cases(),
    **worker_needed_cases(),
    **job_needed_cases(),
    **{key: case for picks in ZONE_PICKS for key, case in zone_cases(*picks).items()},
}


@pytest.fixture(scope="module")
def results():
    return simulate({key: case for key, (_, case) in CASES.items()})


@pytest.mark.parametrize("key", sorted(CASES))
def test_iam_decision(results, key):
    expected, _ = CASES[key]
    assert results[key] == expected


def test_the_simulator_evaluates_what_these_tests_rely_on():
    """The simulator's `?`, case and condition-operator semantics match IAM's documented ones
    (else every decision above could be right for the wrong reason)."""
    resource = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/"

    def allow(statement_resource, condition=None):
        statement = {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob"}
        statement |= {
            "Resource": statement_resource,
            **({"Condition": condition} if condition else {}),
        }
        return [{"Version": "2012-10-17", "Statement": [statement]}]

    subnets = {"ForAllValues:StringEquals": {"sagemaker:VpcSubnets": ["s1", "s2"]}}
    probes = {
        "? is one character": (ALLOWED, resource + "ab", allow(resource + "a?"), {}),
        "? is not two": (DENIED, resource + "abc", allow(resource + "a?"), {}),
        "case matters": (DENIED, resource + "ab", allow(resource + "A?"), {}),
        "ForAllValues, key absent": (ALLOWED, resource + "x", allow("*", subnets), {}),
        "ForAllValues, one outside": (
            DENIED,
            resource + "x",
            allow("*", subnets),
            {"sagemaker:VpcSubnets": ["s1", "s3"]},
        ),
        "Null false, key absent": (
            DENIED,
            resource + "x",
            allow("*", {"Null": {"sagemaker:VpcSubnets": "false"}}),
            {},
        ),
        "NumericLessThanEquals at the cap": (
            ALLOWED,
            resource + "x",
            allow("*", {"NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": "10"}}),
            {"sagemaker:MaxRuntimeInSeconds": "10"},
        ),
        "NumericLessThanEquals above": (
            DENIED,
            resource + "x",
            allow("*", {"NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": "10"}}),
            {"sagemaker:MaxRuntimeInSeconds": "11"},
        ),
        "Bool false vs true": (
            DENIED,
            resource + "x",
            allow("*", {"Bool": {"sagemaker:EnableRemoteDebug": "false"}}),
            {"sagemaker:EnableRemoteDebug": "true"},
        ),
    }
    outcome = simulate(
        {
            key: request(WORKERS, "sagemaker:CreateTrainingJob", target, identity, context=context)
            for key, (_, target, identity, context) in probes.items()
        }
    )
    assert outcome == {key: expected for key, (expected, *_) in probes.items()}


def test_every_job_pattern_pins_the_length_of_grand_challenge_names():
    """The length argument in names.py: prefix + 42 characters, the most SageMaker allows."""
    assert len(job("gc")) == len("gc") + JOB_NAME_LENGTH_AFTER_PREFIX
    assert MAX_PREFIX_LENGTH + JOB_NAME_LENGTH_AFTER_PREFIX == 63
    patterns = [*training_job_arn_names(), training_job_any_model_arn_name()]
    patterns += [stream.removesuffix("/*") for stream in training_job_log_streams()]
    for pattern in patterns:
        assert "*" not in pattern, pattern
        assert len(pattern) - len("${NamePrefix}") == JOB_NAME_LENGTH_AFTER_PREFIX, pattern
