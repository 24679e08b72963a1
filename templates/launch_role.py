"""The Service Catalog launch role: the IAM role Service Catalog assumes to create, update and
delete this product's stacks (its LAUNCH constraint names it by local role name).

One region-independent template per account (IAM is global). Three limits keep the role narrow:

* only Service Catalog may assume it, and it drives CloudFormation only on Service Catalog's
  stacks (``SC-<account>-pp-<id>``), reading templates only from Service Catalog's copies and
  the publisher's artifact buckets;
* every permission on the product's resources holds only in requests CloudFormation makes
  for a stack (``aws:CalledVia``), never in direct API calls with the role;
* resources are scoped by the product's own names (``templates/names.py``), by the
  ``SC-*`` names CloudFormation generates for unnamed resources, or at least to this account.

``REQUIRED_ACTIONS`` maps every resource type of the product to the actions CloudFormation
needs for it; tests/test_launch_role.py checks it against each type in dist/*.json, against
the handler permissions cfn-lint ships for each type, and against the statements below.
"""

import re

from awacs.aws import (
    Action,
    Allow,
    ArnLike,
    Condition,
    ForAnyValueStringEquals,
    PolicyDocument,
    Statement,
    StringEquals,
)
from troposphere import GetAtt, Output, Parameter, Ref, Sub, Template, iam

from .names import PATTERNS
from .stack import trusted_by

FILE_NAME = "launch-role.json"
DEFAULT_ROLE_NAME = "GrandChallengeComponentsLaunch"
DEFAULT_ARTIFACT_BUCKET_PREFIX = "gc-components-templates"
DESCRIPTION = (
    "Grand Challenge components runtime: the launch role Service Catalog assumes to create, "
    "update and delete the product's stacks"
)
ROLE_NAME_PATTERN = r"^[\w+=,.@-]{1,64}$"
# Bucket names are <prefix>-<12-digit account>-<region>: at most 63 characters.
ARTIFACT_BUCKET_PREFIX_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
MAX_ARTIFACT_BUCKET_PREFIX_LENGTH = 34

# Service Catalog names each provisioned product's stack SC-<account>-pp-<provisioned product id>.
STACK_NAME = "SC-${AWS::AccountId}-pp-*"
# CloudFormation names unnamed resources <stack>-<logical id>-<suffix>, cut to the service's
# length limit; only the start survives every cut.
GENERATED_NAME = "SC-*"
VIA_CLOUDFORMATION = ForAnyValueStringEquals("aws:CalledVia", "cloudformation.amazonaws.com")

# Names in templates/names.py that no IAM resource ARN contains, and why.
NAMES_NOT_IN_ARNS = {
    "stopped_jobs_dead_letter_queue": "under the stopped_jobs_queue pattern's trailing *",
    "security_group": "EC2 ARNs carry the group id, not its name",
    "vpc_tag": "a tag value",
    "training_jobs_log_group": "Custom::TrainingJobsLogGroup: the custodian's role manages it",
    "logs_resource_policy": "CloudWatch Logs resource policies have no ARN",
    "training_job": "Grand Challenge starts training jobs, the stack does not",
}

# What CloudFormation needs for each resource type the product uses (and the queue types a
# later issue adds): the handler permissions of each type minus UNNEEDED_HANDLER_PERMISSIONS.
_TAG_EC2 = ("ec2:CreateTags", "ec2:DeleteTags")
_INVOKE_CUSTODIAN = ("lambda:InvokeFunction",)  # CloudFormation invokes the ServiceToken
REQUIRED_ACTIONS = {
    "AWS::EC2::VPC": (
        "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:DescribeVpcAttribute",
        "ec2:DescribeVpcs", "ec2:DescribeVpcEncryptionControls", "ec2:DescribeNetworkAcls",
        "ec2:DescribeSecurityGroups", *_TAG_EC2,
    ),
    "AWS::EC2::Subnet": (
        "ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute",
        "ec2:DescribeSubnets", "ec2:DescribeNetworkAcls", *_TAG_EC2,
    ),
    "AWS::EC2::RouteTable": (
        "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:DescribeRouteTables", *_TAG_EC2,
    ),
    "AWS::EC2::SubnetRouteTableAssociation": (
        "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable",
        "ec2:ReplaceRouteTableAssociation", "ec2:DescribeRouteTables", "ec2:DescribeSubnets",
    ),
    "AWS::EC2::NetworkAcl": (
        "ec2:CreateNetworkAcl", "ec2:DeleteNetworkAcl", "ec2:DescribeNetworkAcls",
        "ec2:DescribeTags", *_TAG_EC2,
    ),
    "AWS::EC2::SubnetNetworkAclAssociation": (
        "ec2:ReplaceNetworkAclAssociation", "ec2:DescribeNetworkAcls",
    ),
    "AWS::EC2::SecurityGroup": (
        "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress", "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
        "ec2:DescribeSecurityGroups", "ec2:DescribeInstances", *_TAG_EC2,
    ),
    "AWS::EC2::VPCEndpoint": (
        "ec2:CreateVpcEndpoint", "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints",
        "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups", *_TAG_EC2,
    ),
    "AWS::EC2::FlowLog": (
        "ec2:CreateFlowLogs", "ec2:DeleteFlowLogs", "ec2:DescribeFlowLogs", "ec2:DescribeTags",
        "autoscaling:DescribeTags", "logs:CreateLogDelivery", "logs:DeleteLogDelivery",
        "s3:GetBucketPolicy", "s3:PutBucketPolicy", *_TAG_EC2,
    ),
    "AWS::ECR::Repository": (
        "ecr:CreateRepository", "ecr:DeleteRepository", "ecr:DescribeRepositories",
        "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability",
        "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:TagResource",
        "ecr:UntagResource", "ecr:ListTagsForResource",
    ),
    "AWS::Events::Rule": (
        "events:PutRule", "events:DeleteRule", "events:DescribeRule", "events:PutTargets",
        "events:RemoveTargets", "events:ListTargetsByRule", "events:TagResource",
        "events:UntagResource", "events:ListTagsForResource",
    ),
    "AWS::IAM::Role": (
        "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole",
        "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:TagRole",
        "iam:UntagRole", "iam:ListRoleTags", "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies", "iam:GetRolePolicy", "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
    ),
    "AWS::IAM::Policy": ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
    "AWS::IAM::ManagedPolicy": (
        "iam:CreatePolicy", "iam:DeletePolicy", "iam:CreatePolicyVersion",
        "iam:DeletePolicyVersion", "iam:GetPolicy", "iam:GetPolicyVersion",
        "iam:ListPolicyVersions", "iam:ListEntitiesForPolicy", "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
    ),
    "AWS::KMS::Key": (
        "kms:CreateKey", "kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey",
        "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:GetKeyRotationStatus",
        "kms:EnableKey", "kms:DisableKey", "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion",
        "kms:TagResource", "kms:UntagResource", "kms:ListResourceTags",
    ),
    "AWS::KMS::Alias": (
        "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:ListAliases",
    ),
    "AWS::Lambda::Function": (
        "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
        "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
        "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionRecursionConfig",
        "lambda:GetFunctionScalingConfig", "lambda:GetRuntimeManagementConfig",
        "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags", "iam:PassRole",
        "ec2:DescribeNetworkInterfaces",
    ),
    "AWS::Lambda::Permission": (
        "lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy",
    ),
    "AWS::Logs::LogGroup": (
        "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:DescribeLogGroups",
        "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey",
        "logs:DisassociateKmsKey", "logs:GetDataProtectionPolicy", "logs:DescribeIndexPolicies",
        "logs:DescribeResourcePolicies", "logs:TagResource", "logs:UntagResource",
        "logs:ListTagsForResource",
    ),
    "AWS::Logs::ResourcePolicy": (
        "logs:PutResourcePolicy", "logs:DeleteResourcePolicy", "logs:DescribeResourcePolicies",
    ),
    "AWS::S3::Bucket": (
        "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:PutBucketOwnershipControls",
        "s3:PutEncryptionConfiguration", "s3:PutBucketLogging", "s3:PutBucketVersioning",
        "s3:PutAccelerateConfiguration", "s3:PutBucketPublicAccessBlock",
        "s3:PutLifecycleConfiguration", "s3:PutBucketTagging", "s3:TagResource",
        "s3:UntagResource", "s3:ListTagsForResource", "s3:GetBucketAcl",
        "s3:GetAccelerateConfiguration", "s3:GetAnalyticsConfiguration", "s3:GetBucketAbac",
        "s3:GetBucketCORS", "s3:GetBucketLogging", "s3:GetBucketMetadataTableConfiguration",
        "s3:GetBucketNotification", "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketOwnershipControls", "s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging",
        "s3:GetBucketVersioning", "s3:GetBucketWebsite", "s3:GetEncryptionConfiguration",
        "s3:GetIntelligentTieringConfiguration", "s3:GetInventoryConfiguration",
        "s3:GetLifecycleConfiguration", "s3:GetMetricsConfiguration",
        "s3:GetReplicationConfiguration",
    ),
    "AWS::S3::BucketPolicy": ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
    "AWS::SQS::Queue": (
        "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
        "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue", "sqs:ListQueueTags",
    ),
    "AWS::SQS::QueuePolicy": ("sqs:SetQueueAttributes",),
    "Custom::S3NetworkAclEntries": _INVOKE_CUSTODIAN,
    "Custom::TrainingJobsLogGroup": _INVOKE_CUSTODIAN,
    "Custom::VpcLockdown": _INVOKE_CUSTODIAN,
    "Custom::NetworkInterfaceCleanup": _INVOKE_CUSTODIAN,
    "Custom::EmptyBucket": _INVOKE_CUSTODIAN,
}  # fmt: skip

# Permissions the CloudFormation handlers of these types list that this product never needs.
UNNEEDED_HANDLER_PERMISSIONS = {
    "ec2:CreateVpcEncryptionControl": "the VPC sets no encryption control",
    "ec2:ModifyVpcTenancy": "the VPC keeps default tenancy",
    "ec2:AssociateSubnetCidrBlock": "subnets have no IPv6 CIDR",
    "ec2:DisassociateSubnetCidrBlock": "subnets have no IPv6 CIDR",
    "ec2:AuthorizeSecurityGroupIngress": "the jobs' security group has no ingress rules",
    "ec2:RevokeSecurityGroupIngress": "the jobs' security group has no ingress rules",
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress": "no ingress rules",
    "vpce:AllowMultiRegion": "the S3 endpoint is in the stack's own region",
    "vpc-lattice:CreateServiceNetworkVpcEndpointAssociation": "a Gateway endpoint, no Lattice",
    "vpc-lattice:DescribeServiceNetworkVpcEndpointAssociation": "a Gateway endpoint, no Lattice",
    "iam:CreateServiceLinkedRole": "flow logs to S3 use no service-linked role",
    "iam:PutRolePermissionsBoundary": "the product's roles have no permissions boundary",
    "iam:DeleteRolePermissionsBoundary": "the product's roles have no permissions boundary",
    "iam:AttachGroupPolicy": "the product attaches policies to roles only",
    "iam:DetachGroupPolicy": "the product attaches policies to roles only",
    "iam:AttachUserPolicy": "the product attaches policies to roles only",
    "iam:DetachUserPolicy": "the product attaches policies to roles only",
    "iam:GetGroupPolicy": "the only inline policy is on a role",
    "iam:PutGroupPolicy": "the only inline policy is on a role",
    "iam:DeleteGroupPolicy": "the only inline policy is on a role",
    "iam:GetUserPolicy": "the only inline policy is on a role",
    "iam:PutUserPolicy": "the only inline policy is on a role",
    "iam:DeleteUserPolicy": "the only inline policy is on a role",
    "ecr:PutLifecyclePolicy": "repositories set no lifecycle policy",
    "ecr:DeleteLifecyclePolicy": "repositories set no lifecycle policy",
    "ecr:SetRepositoryPolicy": "repositories set no repository policy",
    "ecr:DeleteRepositoryPolicy": "repositories set no repository policy",
    "kms:CreateGrant": "repositories and the function use no customer managed key",
    "kms:RetireGrant": "repositories and the function use no customer managed key",
    "kms:Encrypt": "the function uses no customer managed key",
    "kms:Decrypt": "the function uses no customer managed key",
    "kms:GenerateDataKey": "the function uses no customer managed key",
    "lambda:AssociateRuntimeAlias": "no runtime alias",
    "lambda:GetCodeSigningConfig": "no code signing",
    "lambda:PutFunctionCodeSigningConfig": "no code signing",
    "lambda:DeleteFunctionCodeSigningConfig": "no code signing",
    "lambda:GetLayerVersion": "the function uses no layers",
    "lambda:PassCapacityProvider": "no capacity provider",
    "lambda:PutFunctionConcurrency": "no reserved concurrency",
    "lambda:DeleteFunctionConcurrency": "no reserved concurrency",
    "lambda:PutFunctionRecursionConfig": "recursive-loop detection stays at its default",
    "lambda:PutFunctionScalingConfig": "no scaling configuration",
    "lambda:PutRuntimeManagementConfig": "runtime updates stay automatic",
    "lambda:PublishVersion": "no versions are published",
    "s3:GetObject": "the function's code is inline (ZipFile), not in S3",
    "s3:GetObjectVersion": "the function's code is inline (ZipFile), not in S3",
    "s3files:ListMountTargets": "no file system is mounted",
    "elasticfilesystem:DescribeMountTargets": "no file system is mounted",
    "firehose:TagDeliveryStream": "log groups deliver to no Firehose stream",
    "logs:PutBearerTokenAuthentication": "no bearer-token log ingestion",
    "logs:PutDataProtectionPolicy": "log groups set no data protection policy",
    "logs:DeleteDataProtectionPolicy": "log groups set no data protection policy",
    "logs:PutIndexPolicy": "log groups set no field index policy",
    "logs:DeleteIndexPolicy": "log groups set no field index policy",
    "logs:PutLogGroupDeletionProtection": "log groups set no deletion protection",
    "s3:REST.PUT.OBJECT": "not an IAM action",
    "s3:DeleteBucketTagging": "not an IAM action: s3:PutBucketTagging authorizes it",
    "s3:DeleteObject": "buckets are emptied by the custodian's role, not by CloudFormation",
    "s3:PutObjectAcl": "ownership is BucketOwnerEnforced: ACLs are off",
    "s3:PutBucketAcl": "ownership is BucketOwnerEnforced: ACLs are off",
    "s3:PutBucketAbac": "no attribute-based access control on buckets",
    "s3:PutAnalyticsConfiguration": "buckets set no such configuration",
    "s3:PutBucketCORS": "buckets set no such configuration",
    "s3:PutBucketNotification": "buckets set no such configuration",
    "s3:PutBucketObjectLockConfiguration": "buckets set no such configuration",
    "s3:PutBucketReplication": "buckets set no such configuration",
    "s3:PutBucketWebsite": "buckets set no such configuration",
    "s3:PutIntelligentTieringConfiguration": "buckets set no such configuration",
    "s3:PutInventoryConfiguration": "buckets set no such configuration",
    "s3:PutMetricsConfiguration": "buckets set no such configuration",
    "s3:PutObjectLockConfiguration": "buckets set no such configuration",
    "s3:PutReplicationConfiguration": "buckets set no such configuration",
    "s3:CreateBucketMetadataTableConfiguration": "buckets set no such configuration",
    "s3:UpdateBucketMetadataAnnotationTableConfiguration": "buckets set no such configuration",
    "s3:UpdateBucketMetadataInventoryTableConfiguration": "buckets set no such configuration",
    "s3:UpdateBucketMetadataJournalTableConfiguration": "buckets set no such configuration",
    "s3:DeleteBucketMetadataTableConfiguration": "buckets set no such configuration",
    "s3:DeleteBucketAnalyticsConfiguration": "buckets set no such configuration",
    "s3:DeleteBucketCors": "buckets set no such configuration",
    "s3:DeleteBucketMetricsConfiguration": "buckets set no such configuration",
    "s3:DeleteBucketReplication": "buckets set no such configuration",
    "s3:DeleteBucketWebsite": "buckets set no such configuration",
    "s3:DeleteBucketEncryption": "encryption is always on",
    "s3:DeleteBucketLifecycle": "the lifecycle rules are always set",
    "s3tables:CreateNamespace": "no S3 table buckets",
    "s3tables:CreateTable": "no S3 table buckets",
    "s3tables:CreateTableBucket": "no S3 table buckets",
    "s3tables:GetTable": "no S3 table buckets",
    "s3tables:GetTableMetadataLocation": "no S3 table buckets",
    "s3tables:PutTableBucketPolicy": "no S3 table buckets",
    "s3tables:PutTableEncryption": "no S3 table buckets",
    "s3tables:PutTablePolicy": "no S3 table buckets",
    "s3tables:UpdateTableMetadataLocation": "no S3 table buckets",
}


def _pattern(key):
    """An ARN-ready wildcard for one of the product's names: every ``${...}`` but the account
    becomes ``*`` (the prefix, the region: this role serves every region and prefix)."""
    return re.sub(r"\$\{(?!AWS::AccountId\})[^}]+\}", "*", PATTERNS[key])


def _arn(service, resource, region="*"):
    return Sub(f"arn:${{AWS::Partition}}:{service}:{region}:${{AWS::AccountId}}:{resource}")


def _actions(names):
    return [Action(*name.split(":", 1)) for name in names]


def _statement(sid, actions, resources, *conditions, via_cloudformation=True):
    """An Allow statement; on the product's resources it holds only in CloudFormation's calls."""
    conditions = [VIA_CLOUDFORMATION, *conditions] if via_cloudformation else list(conditions)
    return Statement(
        Sid=sid,
        Effect=Allow,
        Action=_actions(actions),
        Resource=resources,
        **({"Condition": Condition(conditions)} if conditions else {}),
    )


def _role_arn(name):
    return _arn("iam", f"role/{name}", region="")


def _policy_arn(name):
    return _arn("iam", f"policy/{name}", region="")


def _stack_statements():
    stacks = [_arn("cloudformation", f"stack/{STACK_NAME}/*")]
    return [
        _statement(
            "ManageServiceCatalogStacks",
            [
                "cloudformation:CreateStack", "cloudformation:UpdateStack",
                "cloudformation:DeleteStack", "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents", "cloudformation:DescribeStackResource",
                "cloudformation:DescribeStackResources", "cloudformation:ListStackResources",
                "cloudformation:GetTemplate", "cloudformation:GetTemplateSummary",
                "cloudformation:SetStackPolicy", "cloudformation:CreateChangeSet",
                "cloudformation:DescribeChangeSet", "cloudformation:ExecuteChangeSet",
                "cloudformation:DeleteChangeSet", "cloudformation:ListChangeSets",
                "cloudformation:TagResource", "cloudformation:UntagResource",
            ],
            [*stacks, _arn("cloudformation", "changeSet/*/*")],
            via_cloudformation=False,
        ),
        _statement(
            "InspectTemplates",
            ["cloudformation:ValidateTemplate", "cloudformation:GetTemplateSummary"],
            ["*"],  # read-only; a template URL (not a stack) has no resource ARN
            via_cloudformation=False,
        ),
        _statement(
            "ReadServiceCatalogTemplateCopies",
            ["s3:GetObject"],
            ["*"],  # Service Catalog's own buckets, unnamed: the tag it sets scopes the read
            StringEquals("s3:ExistingObjectTag/servicecatalog:provisioning", "true"),
            via_cloudformation=False,
        ),
        _statement(
            "ReadPublishedTemplates",
            ["s3:GetObject"],
            [Sub("arn:${AWS::Partition}:s3:::${ArtifactBucketPrefix}-*/*")],
            via_cloudformation=False,
        ),
    ]  # fmt: skip


def _identity_statements():
    execution_role = _role_arn(_pattern("execution_role"))
    custodian_role = _role_arn(GENERATED_NAME)
    product_policies = [
        _policy_arn(_pattern(key))
        for key in ("execution_policy", "schedule_policy", "logs_policy", "ecr_policy")
    ]
    return [
        _statement(
            "ManageProductRoles",
            [
                "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole",
                "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:TagRole",
                "iam:UntagRole", "iam:ListRoleTags", "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
            ],
            [execution_role, custodian_role],
        ),
        _statement(
            "WriteCustodianInlinePolicy",
            ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"],
            [custodian_role],
        ),
        _statement(
            "AttachOnlyProductPolicies",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [execution_role, custodian_role],
            ArnLike("iam:PolicyARN", product_policies),
        ),
        _statement(
            "ManageProductPolicies",
            [
                "iam:CreatePolicy", "iam:DeletePolicy", "iam:CreatePolicyVersion",
                "iam:DeletePolicyVersion", "iam:GetPolicy", "iam:GetPolicyVersion",
                "iam:ListPolicyVersions", "iam:ListEntitiesForPolicy",
            ],
            product_policies,
        ),
        # The only role the stack passes: the custodian's, to its Lambda function.
        _statement(
            "PassCustodianRoleToLambda",
            ["iam:PassRole"],
            [custodian_role],
            StringEquals("iam:PassedToService", "lambda.amazonaws.com"),
            via_cloudformation=False,
        ),
    ]  # fmt: skip


def _network_statements():
    ec2_types = (
        "vpc",
        "subnet",
        "route-table",
        "network-acl",
        "security-group",
        "security-group-rule",
        "vpc-endpoint",
        "vpc-flow-log",
    )
    return [
        _statement(
            "DescribeNetwork",
            [
                "ec2:DescribeVpcs", "ec2:DescribeVpcEncryptionControls", "ec2:DescribeSubnets",
                "ec2:DescribeRouteTables", "ec2:DescribeNetworkAcls",
                "ec2:DescribeSecurityGroups", "ec2:DescribeVpcEndpoints", "ec2:DescribeFlowLogs",
                "ec2:DescribeTags", "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces",
                "autoscaling:DescribeTags",
            ],
            ["*"],  # Describe* have no resource-level permissions
        ),
        # EC2 ARNs carry ids, unknown before creation: this account's resources of these types.
        _statement(
            "ManageNetwork",
            [
                "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute",
                "ec2:DescribeVpcAttribute", "ec2:CreateSubnet", "ec2:DeleteSubnet",
                "ec2:ModifySubnetAttribute", "ec2:CreateRouteTable", "ec2:DeleteRouteTable",
                "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable",
                "ec2:ReplaceRouteTableAssociation", "ec2:CreateNetworkAcl",
                "ec2:DeleteNetworkAcl", "ec2:ReplaceNetworkAclAssociation",
                "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress",
                "ec2:UpdateSecurityGroupRuleDescriptionsEgress", "ec2:CreateVpcEndpoint",
                "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints", "ec2:CreateFlowLogs",
                "ec2:DeleteFlowLogs", *_TAG_EC2,
            ],
            [_arn("ec2", f"{kind}/*") for kind in ec2_types],
        ),
        _statement(
            "DeliverFlowLogs",
            ["logs:CreateLogDelivery", "logs:DeleteLogDelivery"],
            ["*"],  # log deliveries have no resource-level permissions
        ),
    ]  # fmt: skip


def _data_statements():
    buckets = [
        Sub(f"arn:${{AWS::Partition}}:s3:::{_pattern(key)}")
        for key in ("inputs_bucket", "outputs_bucket", "logs_bucket")
    ]
    return [
        _statement(
            "ManageProductBuckets",
            REQUIRED_ACTIONS["AWS::S3::Bucket"] + REQUIRED_ACTIONS["AWS::S3::BucketPolicy"],
            buckets,  # the flow log may write the logs bucket's policy too
        ),
        _statement(
            "ManageProductRepositories",
            REQUIRED_ACTIONS["AWS::ECR::Repository"],
            [_arn("ecr", f"repository/{_pattern('repository')}")],
        ),
        _statement(
            "ManageStoppedJobsQueues",
            REQUIRED_ACTIONS["AWS::SQS::Queue"],
            [_arn("sqs", f"{_pattern('stopped_jobs_queue')}*")],  # the queue and its -dlq
        ),
    ]


def _operations_statements():
    log_groups = [
        _arn("logs", f"log-group:{name}{suffix}")
        for name in (_pattern("stopped_jobs_log_group"), GENERATED_NAME)  # custodian's: generated
        for suffix in ("", ":*")
    ]
    keys = _arn("kms", "key/*")
    rules = [
        _arn("events", f"rule/{name}") for name in (_pattern("stopped_jobs_rule"), GENERATED_NAME)
    ]
    functions = [_arn("lambda", f"function:{GENERATED_NAME}")]  # the custodian's: generated
    return [
        _statement(
            "ManageProductLogGroups",
            [
                "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey", "logs:DisassociateKmsKey",
                "logs:GetDataProtectionPolicy", "logs:TagResource", "logs:UntagResource",
                "logs:ListTagsForResource",
            ],
            log_groups,
        ),
        _statement(
            "ManageLogsResourcePolicies",
            [
                "logs:PutResourcePolicy", "logs:DeleteResourcePolicy",
                "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
                "logs:DescribeIndexPolicies",
            ],
            ["*"],  # account-level resource policies and Describe* have no ARN
        ),
        _statement(
            "CreateLogsKey",
            ["kms:CreateKey", "kms:TagResource"],
            ["*"],  # a key's ARN exists only after CreateKey, which tags it as it creates it
        ),
        # Key ids are random and the key carries no tag of the stack: this account's keys.
        _statement(
            "ManageLogsKey",
            [
                "kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey",
                "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:GetKeyRotationStatus",
                "kms:EnableKey", "kms:DisableKey", "kms:UpdateKeyDescription",
                "kms:ScheduleKeyDeletion", "kms:UntagResource", "kms:ListResourceTags",
            ],
            [keys],
        ),
        _statement(
            "ManageLogsKeyAlias",
            ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
            [_arn("kms", _pattern("kms_alias")), keys],
        ),
        _statement("ListKeyAliases", ["kms:ListAliases"], ["*"]),  # no resource-level permissions
        _statement(
            "ManageProductRules",
            REQUIRED_ACTIONS["AWS::Events::Rule"],
            rules,  # the daily ACL sync's name is generated
        ),
        _statement(
            "ManageCustodianFunction",
            [
                "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
                "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
                "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionRecursionConfig",
                "lambda:GetFunctionScalingConfig", "lambda:GetRuntimeManagementConfig",
                "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags",
                "lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy",
                *_INVOKE_CUSTODIAN,
            ],
            functions,
        ),
    ]  # fmt: skip


POLICIES = {
    "StacksPolicy": ("Drive Service Catalog's stacks of this product", _stack_statements),
    "IdentityPolicy": ("The product's IAM roles and policies", _identity_statements),
    "NetworkPolicy": ("The product's VPC and its parts", _network_statements),
    "DataPolicy": ("The product's buckets, repositories and queues", _data_statements),
    "OperationsPolicy": ("The product's log groups, key, rules and custodian function",
                         _operations_statements),
}  # fmt: skip


def build_launch_role_template(
    role_name=DEFAULT_ROLE_NAME, artifact_bucket_prefix=DEFAULT_ARTIFACT_BUCKET_PREFIX
) -> Template:
    template = Template(Description=DESCRIPTION)
    template.set_version("2010-09-09")
    template.add_parameter(
        Parameter(
            "RoleName",
            Type="String",
            Default=role_name,
            AllowedPattern=ROLE_NAME_PATTERN,
            ConstraintDescription="1-64 letters, digits or +=,.@_- characters",
            Description="The LAUNCH constraint's local role name (publish.launch_role_name).",
        )
    )
    template.add_parameter(
        Parameter(
            "ArtifactBucketPrefix",
            Type="String",
            Default=artifact_bucket_prefix,
            MaxLength=MAX_ARTIFACT_BUCKET_PREFIX_LENGTH,
            AllowedPattern=ARTIFACT_BUCKET_PREFIX_PATTERN,
            ConstraintDescription=(
                f"1-{MAX_ARTIFACT_BUCKET_PREFIX_LENGTH} lowercase letters, digits or hyphens, "
                "starting with a letter or digit"
            ),
            Description="Templates are published to <prefix>-<account>-<region> "
            "(publish.artifact_bucket_prefix).",
        )
    )
    role = template.add_resource(
        iam.Role(
            "LaunchRole",
            RoleName=Ref("RoleName"),  # path /: a LAUNCH constraint's local role name has none
            Description="Assumed by Service Catalog to launch the Grand Challenge components "
            "runtime",
            AssumeRolePolicyDocument=trusted_by("servicecatalog.amazonaws.com"),
        )
    )
    for logical_id, (description, statements) in POLICIES.items():
        template.add_resource(
            iam.ManagedPolicy(
                logical_id,
                Description=description,
                Roles=[Ref(role)],
                PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements()),
            )
        )
    template.add_output(
        Output("LaunchRoleArn", Description="The launch role's ARN", Value=GetAtt(role, "Arn"))
    )
    template.add_output(
        Output("LaunchRoleName", Description="The LAUNCH constraint's local role name",
               Value=Ref(role))
    )  # fmt: skip
    return template
