"""Own or adopt SageMaker's training-jobs log group.

SageMaker writes every training job's logs to ``/aws/sagemaker/TrainingJobs``, one group per
account and region, which exists already if SageMaker ever ran there; a plain
``AWS::Logs::LogGroup`` then fails with AlreadyExists. This handler creates the group when it
is missing and adopts it when it is not; either way the KMS key ends up as configured.

A created group gets ``RetentionInDays`` and is deleted with the stack. An adopted group holds
logs older than the stack, so its retention is never shortened: it keeps the longer of its own
(never expiring counts as longest) and ``RetentionInDays``, unless ``ShortenExistingRetention``
is "true". On Delete it gets back the retention and key it had, logs intact.

The physical id records all that, because it is the one thing CloudFormation hands back on
Delete (a response's Data is not): ``created:<name>``, or ``adopted:<retention days or
never>:<key ARN or none>:<name>`` (a log group name has no colon, so the name is what follows
the last one). It stays the same on Update unless the name changes, so no Delete follows.
Ids of the first release, ``adopted:<name>``, recorded nothing: their Delete only detaches the
key, as it did then.
"""

from contextlib import suppress

import boto3

from .custom_resource import logger, run

CREATED = "created"
ADOPTED = "adopted"
NEVER = "never"  # retention of a group whose logs never expire
NO_KEY = "none"


def _properties(event):
    properties = event["ResourceProperties"]
    name, retention = properties["LogGroupName"], int(properties["RetentionInDays"])
    shorten = str(properties.get("ShortenExistingRetention", "false")).lower() == "true"
    return name, retention, properties["KmsKeyArn"], shorten


def _find(logs, name):
    """The log group's description, or None when there is none."""
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
    return next((g for page in pages for g in page["logGroups"] if g["logGroupName"] == name), None)


def adopted_id(name, group, key):
    """The id of an adopted group, recording what it had; our own key (an earlier delivery of
    this Create associated it) is nothing to restore."""
    prior_key = group.get("kmsKeyId")
    prior_key = NO_KEY if prior_key in (None, key) else prior_key
    return f"{ADOPTED}:{group.get('retentionInDays') or NEVER}:{prior_key}:{name}"


def parse_id(physical_id):
    """(origin, name, (prior retention, prior key) or None when nothing was recorded)."""
    origin, _, rest = physical_id.partition(":")
    if origin != ADOPTED or rest.count(":") < 2:
        return origin, rest, None
    retention, _, rest = rest.partition(":")
    key, _, name = rest.rpartition(":")
    prior = None if retention == NEVER else int(retention), None if key == NO_KEY else key
    return origin, name, prior


def adopted_retention(requested, prior, shorten):
    """Retention for a group with logs older than the stack; None: never expire."""
    if shorten:
        return requested
    return None if prior is None else max(prior, requested)


def _stop_if_answered(context):
    """The protocol's watchdog sets ``context.cancelled`` once it has answered FAILED."""
    if getattr(context, "cancelled", None) and context.cancelled.is_set():
        raise RuntimeError("the watchdog has answered: stopped")


def create(event, context):
    name, retention, key, shorten = _properties(event)
    logs = boto3.client("logs")
    group = _find(logs, name)
    if group is None:
        try:
            _stop_if_answered(context)
            logs.create_log_group(logGroupName=name, kmsKeyId=key)
        except logs.exceptions.ResourceAlreadyExistsException:
            group = _find(logs, name) or {}  # SageMaker made it between the two calls
    if group is None:
        physical_id = f"{CREATED}:{name}"
    else:
        physical_id = adopted_id(name, group, key)
        retention = adopted_retention(retention, group.get("retentionInDays"), shorten)
    try:
        configure(logs, name, retention, key)
        _stop_if_answered(context)
    except Exception:
        # The Delete after a failed Create (ours, or the watchdog's answer) names nothing to
        # undo: undo now, or the group keeps the key the rollback deletes and SageMaker can no
        # longer log to it.
        with suppress(Exception):
            release(logs, physical_id)
        raise
    return physical_id, {"LogGroupName": name}


def update(event, context):
    name, retention, key, shorten = _properties(event)
    old_id = event["PhysicalResourceId"]
    _, old_name, prior = parse_id(old_id)
    if old_name != name:
        return create(event, context)  # CloudFormation deletes the old one afterwards
    if prior:
        retention = adopted_retention(retention, prior[0], shorten)
    configure(boto3.client("logs"), name, retention, key)
    return old_id, {"LogGroupName": name}


def configure(logs, name, retention, key):
    logs.associate_kms_key(logGroupName=name, kmsKeyId=key)
    set_retention(logs, name, retention)


def set_retention(logs, name, retention):
    """``retention`` days, or never expire when None."""
    if retention is None:
        logs.delete_retention_policy(logGroupName=name)
    else:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)


def release(logs, physical_id):
    """Delete the group if created; if adopted, give back the key and retention it had."""
    origin, name, prior = parse_id(physical_id)
    try:
        if origin == CREATED:
            logs.delete_log_group(logGroupName=name)
        elif origin == ADOPTED:
            restore(logs, name, prior)
    except logs.exceptions.ResourceNotFoundException:
        pass  # already gone


def restore(logs, name, prior):
    retention, key = prior or (None, None)
    if not (key and _reassociate(logs, name, key)):
        logs.disassociate_kms_key(logGroupName=name)  # ours goes with the stack
    if prior:  # else an id of the first release: the retention before is unknown, keep it
        set_retention(logs, name, retention)


def _reassociate(logs, name, key):
    try:
        logs.associate_kms_key(logGroupName=name, kmsKeyId=key)
        return True
    except logs.exceptions.InvalidParameterException as error:
        logger.warning("%s: its key before the stack is unusable, detaching ours: %s", name, error)
        return False


def delete(event, context):
    release(boto3.client("logs"), event["PhysicalResourceId"])
    return event["PhysicalResourceId"], {}


def handler(event, context):
    run(event, context, {"Create": create, "Update": update, "Delete": delete})
