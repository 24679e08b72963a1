"""Imported storage, registry, IAM, logs and events resources, sub-resources folded in."""

import json

from . import MigrationError
from .tfstate import attribute

DEFAULT_MAX_SESSION_SECONDS = 3600


def bucket(state, kind, logical_id):
    """The bucket with its aws_s3_bucket_* sub-resources as CloudFormation properties."""
    main = state.one("aws_s3_bucket", "io", kind)
    logging = state.one("aws_s3_bucket_logging", "io", kind)
    encryption = state.one("aws_s3_bucket_server_side_encryption_configuration", "io", kind)
    default = attribute(encryption, "rule", 0, "apply_server_side_encryption_by_default", 0)
    block = state.one("aws_s3_bucket_public_access_block", "io", kind)
    versioning = state.one("aws_s3_bucket_versioning", "io", kind)
    return (
        main.address,
        logical_id,
        "AWS::S3::Bucket",
        {"BucketName": attribute(main, "bucket")},
        {
            "BucketName": attribute(main, "bucket"),
            "AccelerateConfiguration": {
                "AccelerationStatus": attribute(
                    state.one("aws_s3_bucket_accelerate_configuration", "io", kind), "status"
                )
            },
            "OwnershipControls": {
                "Rules": [
                    {
                        "ObjectOwnership": attribute(
                            state.one("aws_s3_bucket_ownership_controls", "io", kind),
                            "rule",
                            0,
                            "object_ownership",
                        )
                    }
                ]
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": default["sse_algorithm"]}}
                ]
            },
            "LoggingConfiguration": {
                "DestinationBucketName": attribute(logging, "target_bucket"),
                "LogFilePrefix": attribute(logging, "target_prefix"),
            },
            "VersioningConfiguration": {
                "Status": attribute(versioning, "versioning_configuration", 0, "status")
            },
            "LifecycleConfiguration": {
                "Rules": [
                    _lifecycle_rule(rule)
                    for rule in attribute(
                        state.one("aws_s3_bucket_lifecycle_configuration", "io", kind), "rule"
                    )
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": attribute(block, "block_public_acls"),
                "BlockPublicPolicy": attribute(block, "block_public_policy"),
                "IgnorePublicAcls": attribute(block, "ignore_public_acls"),
                "RestrictPublicBuckets": attribute(block, "restrict_public_buckets"),
            },
        },
    )


def _lifecycle_rule(rule):
    """One aws_s3_bucket_lifecycle_configuration rule (provider v5 shape) as CloudFormation's."""
    converted = {"Id": rule["id"], "Status": rule["status"]}
    prefix = next((f.get("prefix") for f in rule.get("filter") or [] if f.get("prefix")), "")
    if prefix:
        converted["Prefix"] = prefix
    for expiration in rule.get("expiration") or []:
        if expiration.get("days"):
            converted["ExpirationInDays"] = expiration["days"]
        if expiration.get("expired_object_delete_marker"):
            converted["ExpiredObjectDeleteMarker"] = True
    for noncurrent in rule.get("noncurrent_version_expiration") or []:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": noncurrent["noncurrent_days"]}
    for abort in rule.get("abort_incomplete_multipart_upload") or []:
        converted["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": abort["days_after_initiation"]
        }
    if rule.get("transition") or rule.get("noncurrent_version_transition"):
        raise MigrationError(f"lifecycle rule {rule['id']!r} has transitions: not the module's")
    return converted


def repositories(state, facts):
    """Repository1..N in the order of the RepositoryNames parameter (the set's sorted order)."""
    for slot, key in enumerate(facts.repository_names, start=1):
        repository = state.one("aws_ecr_repository", "this", key)
        yield (
            repository.address,
            f"Repository{slot}",
            "AWS::ECR::Repository",
            {"RepositoryName": attribute(repository, "name")},
            {
                "RepositoryName": attribute(repository, "name"),
                "ImageTagMutability": attribute(repository, "image_tag_mutability"),
                "ImageScanningConfiguration": {
                    "ScanOnPush": attribute(
                        repository, "image_scanning_configuration", 0, "scan_on_push"
                    )
                },
                "EncryptionConfiguration": {
                    "EncryptionType": attribute(
                        repository, "encryption_configuration", 0, "encryption_type"
                    )
                },
            },
        )


def role(state):
    execution = state.one("aws_iam_role", "execution")
    properties = {
        "RoleName": attribute(execution, "name"),
        "AssumeRolePolicyDocument": json.loads(attribute(execution, "assume_role_policy")),
    }
    if execution.attributes.get("description"):
        properties["Description"] = execution.attributes["description"]
    if execution.attributes.get("max_session_duration", 3600) != DEFAULT_MAX_SESSION_SECONDS:
        properties["MaxSessionDuration"] = execution.attributes["max_session_duration"]
    if execution.attributes.get("path", "/") != "/":
        raise MigrationError(f"{execution.address}: path is not /: not the module's role")
    return (
        execution.address,
        "ExecutionRole",
        "AWS::IAM::Role",
        {"RoleName": properties["RoleName"]},
        properties,
    )


def policy(state, key, logical_id, product):
    """A managed policy; the execution policy with its role attachment folded in.

    Description is create-only and IAM cannot change it: the module left it empty, the product
    sets one. The import template carries the product's, so the update replaces nothing; the
    running policy keeps its empty description (drift detection shows only that)."""
    managed = state.one("aws_iam_policy", key)
    properties = {
        "ManagedPolicyName": attribute(managed, "name"),
        "PolicyDocument": json.loads(attribute(managed, "policy")),
    }
    description = product["Resources"][logical_id]["Properties"].get("Description")
    if description:
        properties["Description"] = description
    if key == "execution":
        attachment = state.one("aws_iam_role_policy_attachment", "execution")
        if attribute(attachment, "policy_arn") != attribute(managed, "arn"):
            raise MigrationError(f"{attachment.address}: attaches another policy")
        properties["Roles"] = [{"Ref": "ExecutionRole"}]
    return (
        managed.address,
        logical_id,
        "AWS::IAM::ManagedPolicy",
        {"PolicyArn": attribute(managed, "arn")},
        properties,
    )


def logs(state):
    key = state.one("aws_kms_key", "sagemaker")
    yield (
        key.address,
        "LogsKey",
        "AWS::KMS::Key",
        {"KeyId": attribute(key, "key_id")},
        {
            "Description": attribute(key, "description"),
            "EnableKeyRotation": attribute(key, "enable_key_rotation"),
            "KeyPolicy": json.loads(attribute(key, "policy")),
        },
    )
    alias = state.one("aws_kms_alias", "sagemaker")
    yield (
        alias.address,
        "LogsKeyAlias",
        "AWS::KMS::Alias",
        {"AliasName": attribute(alias, "name")},
        {"AliasName": attribute(alias, "name"), "TargetKeyId": {"Ref": "LogsKey"}},
    )
    group = state.one("aws_cloudwatch_log_group", "stopped_jobs")
    yield (
        group.address,
        "StoppedJobsLogGroup",
        "AWS::Logs::LogGroup",
        {"LogGroupName": attribute(group, "name")},
        {
            "LogGroupName": attribute(group, "name"),
            "RetentionInDays": attribute(group, "retention_in_days"),
            "KmsKeyId": {"Fn::GetAtt": ["LogsKey", "Arn"]},
        },
    )
    resource_policy = state.one("aws_cloudwatch_log_resource_policy", "stopped_jobs")
    yield (
        resource_policy.address,
        "StoppedJobsPutLogsPolicy",
        "AWS::Logs::ResourcePolicy",
        {"PolicyName": attribute(resource_policy, "policy_name")},
        {
            "PolicyName": attribute(resource_policy, "policy_name"),
            "PolicyDocument": attribute(resource_policy, "policy_document"),
        },
    )


def rule(state):
    """The rule with both aws_cloudwatch_event_target as its Targets, under their Terraform
    ids: the update puts the product's targets and removes these (with the product's ids here,
    CloudFormation would never remove the Terraform ones and every event would go out twice)."""
    stopped = state.one("aws_cloudwatch_event_rule", "stopped_training_jobs")
    targets = []
    for name in ("stopped_training_jobs", "stopped_training_jobs_sqs"):
        target = state.one("aws_cloudwatch_event_target", name)
        converted = {"Id": attribute(target, "target_id"), "Arn": attribute(target, "arn")}
        for transformer in target.attributes.get("input_transformer") or []:
            converted["InputTransformer"] = {
                "InputPathsMap": transformer["input_paths"],
                "InputTemplate": transformer["input_template"],
            }
        targets.append(converted)
    return (
        stopped.address,
        "StoppedTrainingJobsRule",
        "AWS::Events::Rule",
        {"Arn": attribute(stopped, "arn")},
        {
            "Name": attribute(stopped, "name"),
            "EventPattern": json.loads(attribute(stopped, "event_pattern")),
            "State": attribute(stopped, "state"),
            "Targets": targets,
        },
    )
