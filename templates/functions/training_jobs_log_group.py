"""Own or adopt SageMaker's training-jobs log group.

SageMaker writes every training job's logs to ``/aws/sagemaker/TrainingJobs``, one group per
account and region, which exists already if SageMaker ever ran there; a plain
``AWS::Logs::LogGroup`` then fails with AlreadyExists. This handler creates the group when it
is missing and adopts it when it is not; either way retention and the KMS key end up as
configured. The physical id records which: on Delete a created group is deleted, an adopted
one only gets its KMS key detached (the key is about to be deleted) and stays, logs intact.
"""

from contextlib import suppress

import boto3

from .custom_resource import run

CREATED = "created:"
ADOPTED = "adopted:"


def _properties(event):
    properties = event["ResourceProperties"]
    return properties["LogGroupName"], int(properties["RetentionInDays"]), properties["KmsKeyArn"]


def _exists(logs, name):
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
    return any(group["logGroupName"] == name for page in pages for group in page["logGroups"])


def create(event, context):
    name, retention, key = _properties(event)
    logs = boto3.client("logs")
    if _exists(logs, name):
        origin = ADOPTED
    else:
        try:
            logs.create_log_group(logGroupName=name, kmsKeyId=key)
            origin = CREATED
        except logs.exceptions.ResourceAlreadyExistsException:
            origin = ADOPTED  # SageMaker made it between the two calls
    try:
        configure(logs, name, retention, key)
    except Exception:
        # The Delete after a failed Create names nothing to undo: undo now, or the group
        # keeps the key the rollback deletes and SageMaker can no longer log to it.
        with suppress(Exception):
            release(logs, origin + name)
        raise
    return origin + name, {"LogGroupName": name}


def update(event, context):
    name, retention, key = _properties(event)
    old_id = event["PhysicalResourceId"]
    if old_id.split(":", 1)[1] != name:
        return create(event, context)  # CloudFormation deletes the old one afterwards
    configure(boto3.client("logs"), name, retention, key)
    return old_id, {"LogGroupName": name}


def configure(logs, name, retention, key):
    logs.associate_kms_key(logGroupName=name, kmsKeyId=key)
    logs.put_retention_policy(logGroupName=name, retentionInDays=retention)


def release(logs, physical_id):
    """Delete the group if created, detach the key if adopted."""
    origin, _, name = physical_id.partition(":")
    try:
        if origin + ":" == CREATED:
            logs.delete_log_group(logGroupName=name)
        elif origin + ":" == ADOPTED:
            logs.disassociate_kms_key(logGroupName=name)
    except logs.exceptions.ResourceNotFoundException:
        pass  # already gone


def delete(event, context):
    release(boto3.client("logs"), event["PhysicalResourceId"])
    return event["PhysicalResourceId"], {}


def handler(event, context):
    run(event, context, {"Create": create, "Update": update, "Delete": delete})
