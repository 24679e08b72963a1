"""What happens to every resource address of the module: nothing is left unaccounted for."""

from . import MigrationError
from .importing import BUCKETS

IMPORTED = "imported"
FOLDED = "folded"
ADOPTED = "adopted"
TAKEN_OVER = "taken over"
REPLACED = "replaced"

BUCKET_PARTS = {
    "aws_s3_bucket_accelerate_configuration": "AccelerateConfiguration",
    "aws_s3_bucket_ownership_controls": "OwnershipControls",
    "aws_s3_bucket_server_side_encryption_configuration": "BucketEncryption",
    "aws_s3_bucket_logging": "LoggingConfiguration",
    "aws_s3_bucket_versioning": "VersioningConfiguration",
    "aws_s3_bucket_lifecycle_configuration": "LifecycleConfiguration",
    "aws_s3_bucket_public_access_block": "PublicAccessBlockConfiguration",
}
# (type, name) -> (fate, what becomes of it); {key} is the instance's for_each key.
NOT_IMPORTED = {
    ("aws_vpc_endpoint_policy", "s3"): (FOLDED, "S3GatewayEndpoint.PolicyDocument"),
    ("aws_vpc_endpoint_route_table_association", "s3"): (
        FOLDED,
        "S3GatewayEndpoint.RouteTableIds",
    ),
    ("aws_vpc_security_group_egress_rule", "to_s3_gateway"): (
        FOLDED,
        "ExecutionSecurityGroup.SecurityGroupEgress",
    ),
    ("aws_iam_role_policy_attachment", "execution"): (FOLDED, "ExecutionPolicy.Roles"),
    ("aws_cloudwatch_event_target", "stopped_training_jobs"): (
        FOLDED,
        "StoppedTrainingJobsRule.Targets (the update swaps in the product's target)",
    ),
    ("aws_cloudwatch_event_target", "stopped_training_jobs_sqs"): (
        FOLDED,
        "StoppedTrainingJobsRule.Targets (the update swaps in the product's target)",
    ),
    ("aws_cloudwatch_log_group", "training_jobs"): (
        ADOPTED,
        "TrainingJobsLogGroup (Custom::TrainingJobsLogGroup adopts the existing group at the "
        "update, with its events; a later stack delete gives it back, not deletes it)",
    ),
    ("aws_default_security_group", "vpc"): (
        TAKEN_OVER,
        "VpcLockdown keeps the VPC's default security group without rules (a VPC default: "
        "never imported, never deleted)",
    ),
    ("aws_default_route_table", "this"): (
        TAKEN_OVER,
        "VpcLockdown keeps the VPC's main route table without routes (a VPC default)",
    ),
    ("aws_default_network_acl", "this"): (
        TAKEN_OVER,
        "VpcLockdown keeps the VPC's default network ACL without rules (a VPC default)",
    ),
    ("aws_network_acl", "private"): (
        REPLACED,
        "PrivateNetworkAcl with S3NetworkAclEntries and PrivateNetworkAclAssociation* (one "
        "shared ACL, entries kept in sync daily). The update moves the {key} subnet to it; "
        "this ACL stays, unassociated, until you delete it (step 5)",
    ),
} | {(part, "io"): (FOLDED, f"{{bucket}}.{prop}") for part, prop in BUCKET_PARTS.items()}


def fates(state, imported):
    """``[(address, fate, detail)]`` for every managed instance of the module, in state order.

    ``imported`` is import_resources()' list. An address this release of migrate does not know
    refuses the state: a resource of a newer module must not be silently dropped."""
    imported_as = {address: logical_id for address, logical_id, *_ in imported}
    result = []
    for instance in state.instances:
        if instance.address in imported_as:
            result.append((instance.address, IMPORTED, imported_as[instance.address]))
            continue
        known = NOT_IMPORTED.get((instance.type, instance.name))
        if known is None:
            raise MigrationError(
                f"{instance.address}: not a resource of the module release this migrate "
                "knows (7044460); refusing rather than dropping it"
            )
        fate, detail = known
        bucket = BUCKETS.get(instance.key, "")
        result.append((instance.address, fate, detail.format(key=instance.key, bucket=bucket)))
    return result
