"""Custom resource that deletes a stack-owned ECR repository, images and all, on Delete.

ECR refuses to delete a repository that holds images, so the template gives every
repository DeletionPolicy Retain and pairs it with this resource, which CloudFormation
deletes first (it refers to the repository). Properties: ``RepositoryName`` and
``KeepImages`` ("true"/"false"). Create and Update only validate and answer
PhysicalResourceId ``repository:<RepositoryName>``: a renamed repository gets a new id,
so CloudFormation sends Delete for the old one. Delete with KeepImages "true" touches
nothing (CloudFormation then retains the repository and its images). Otherwise the
repository must carry tag ``OPT_IN_TAG_KEY`` with the event's StackId, else FAILED and
nothing is deleted; then DeleteRepository(force=True). A repository already gone is SUCCESS.
"""

import boto3

from .custom_resource import run
from .empty_bucket import OPT_IN_TAG_KEY  # the buckets' opt-in tag, value: the stack id

REPOSITORY_ID_PREFIX = "repository:"


def parse_repository(event):
    """(repository name, keep images) of an event; ValueError if malformed."""
    properties = event.get("ResourceProperties")
    properties = properties if isinstance(properties, dict) else {}
    name, keep = properties.get("RepositoryName"), properties.get("KeepImages")
    if not isinstance(name, str) or not name:
        raise ValueError("ResourceProperties.RepositoryName must be a non-empty string")
    if keep not in ("true", "false"):
        raise ValueError(f"ResourceProperties.KeepImages must be true or false, not {keep!r}")
    return name, keep == "true"


def repository_arn(stack_id, name):
    """The repository's ARN in the stack's partition, region and account (from StackId)."""
    _, partition, _, region, account = stack_id.split(":")[:5]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


def validate_repository(event, _context):
    name = parse_repository(event)[0]
    return REPOSITORY_ID_PREFIX + name, {"RepositoryName": name}


def delete_repository(event, _context):
    name, keep = parse_repository(event)
    if keep:
        print(f"keeping {name}")
        return event["PhysicalResourceId"], {}
    ecr = boto3.client("ecr")
    try:
        tags = ecr.list_tags_for_resource(resourceArn=repository_arn(event["StackId"], name))
        owner = next((t["Value"] for t in tags["tags"] if t["Key"] == OPT_IN_TAG_KEY), None)
        if owner != event["StackId"]:
            raise PermissionError(
                f"Refusing to delete {name}: tag {OPT_IN_TAG_KEY} is {owner!r}, not this stack"
            )
        ecr.delete_repository(repositoryName=name, force=True)
    except ecr.exceptions.RepositoryNotFoundException:
        print(f"{name} is already gone")
    return event["PhysicalResourceId"], {}


def handler(event, context):
    run(
        event,
        context,
        {
            "Create": validate_repository,
            "Update": validate_repository,
            "Delete": delete_repository,
        },
    )
