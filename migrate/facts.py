"""What the running deployment is, read from the module's resources in the state.

The state holds no input variables: each setting is read back from the resource that used it
(the prefix from the inputs bucket's name, instance types and maximum runtime from the schedule
policy's conditions, the queue from the rule's target, the logs bucket from the access logging).
"""

import json
import re
from dataclasses import dataclass

from . import MigrationError
from .tfstate import attribute

ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>\d*):"
)
INPUTS_BUCKET = re.compile(r"^(?P<prefix>.+)-components-inputs$")
MAX_REPOSITORIES = 4  # the product's repository slots


@dataclass(frozen=True)
class Facts:
    region: str
    account: str
    partition: str
    prefix: str
    vpc_cidr: str
    zone_names: tuple  # zones with a subnet, by name (the AvailabilityZones parameter), sorted
    repository_names: tuple  # without the "<prefix>/", sorted as Terraform orders a set
    log_retention_days: int
    allowed_instance_types: tuple
    maximum_runtime_seconds: int
    stopped_events_queue_arn: str
    logs_bucket_name: str


def read_facts(state):
    vpc = state.one("aws_vpc", "this")
    arn = ARN.match(attribute(vpc, "arn"))
    if arn is None:
        raise MigrationError(f"{vpc.address}: arn {vpc.attributes['arn']!r} is not an ARN")
    inputs = state.one("aws_s3_bucket", "io", "inputs")
    prefix_match = INPUTS_BUCKET.match(attribute(inputs, "bucket"))
    if prefix_match is None:
        raise MigrationError(f"{inputs.address}: bucket name does not end in -components-inputs")
    prefix = prefix_match["prefix"]
    create_jobs = _schedule_statement(state, "CreateSageMakerJobs")
    return Facts(
        region=arn["region"],
        account=arn["account"],
        partition=arn["partition"],
        prefix=prefix,
        vpc_cidr=attribute(vpc, "cidr_block"),
        zone_names=tuple(sorted(subnet["ZoneName"] for subnet in subnet_zones(state))),
        repository_names=_repository_names(state, prefix),
        log_retention_days=attribute(
            state.one("aws_cloudwatch_log_group", "stopped_jobs"), "retention_in_days"
        ),
        allowed_instance_types=tuple(
            sorted(_as_list(_condition(create_jobs, "ForAllValues:StringEquals", "InstanceTypes")))
        ),
        maximum_runtime_seconds=int(
            _condition(create_jobs, "NumericLessThanEquals", "MaxRuntimeInSeconds")
        ),
        stopped_events_queue_arn=attribute(
            state.one("aws_cloudwatch_event_target", "stopped_training_jobs_sqs"), "arn"
        ),
        logs_bucket_name=attribute(
            state.one("aws_s3_bucket_logging", "io", "inputs"), "target_bucket"
        ),
    )


def subnet_zones(state):
    """``[{"ZoneName", "ZoneId", "CidrBlock"}]`` of the module's private subnets, by zone id."""
    return [
        {
            "ZoneName": attribute(subnet, "availability_zone"),
            "ZoneId": attribute(subnet, "availability_zone_id"),
            "CidrBlock": attribute(subnet, "cidr_block"),
        }
        for _, subnet in sorted(state.each("aws_subnet", "private").items())
    ]


def _repository_names(state, prefix):
    repositories = state.each("aws_ecr_repository", "this")
    if not repositories:
        raise MigrationError(f"the state has no aws_ecr_repository.this under {prefix!r}")
    if len(repositories) > MAX_REPOSITORIES:
        raise MigrationError(
            f"{len(repositories)} repositories: the product has {MAX_REPOSITORIES} slots"
        )
    names = []
    for key, repository in sorted(repositories.items()):
        if attribute(repository, "name") != f"{prefix}/{key}":
            raise MigrationError(f"{repository.address}: name is not {prefix}/{key}")
        names.append(key)
    return tuple(names)


def _schedule_statement(state, sid):
    policy = state.one("aws_iam_policy", "schedule")
    try:
        document = json.loads(attribute(policy, "policy"))
    except json.JSONDecodeError:
        raise MigrationError(f"{policy.address}: policy is not JSON") from None
    for statement in document.get("Statement", []):
        if statement.get("Sid") == sid:
            return policy, statement
    raise MigrationError(f"{policy.address}: policy has no statement {sid}")


def _condition(policy_and_statement, operator, key):
    policy, statement = policy_and_statement
    value = statement.get("Condition", {}).get(operator, {}).get(f"sagemaker:{key}")
    if value is None:
        raise MigrationError(f"{policy.address}: no {operator} sagemaker:{key} condition")
    return value


def _as_list(value):
    return value if isinstance(value, list) else [value]
