"""What the launch role (templates/launch_role.py) must allow, as plain data.

``REQUIRED_ACTIONS``: what CloudFormation calls for each resource type of the product;
``PARAMETER_TYPE_ACTIONS``: what it calls to check the product's AWS-specific parameter values;
``UNNEEDED_HANDLER_PERMISSIONS``: what the types' handlers list that the product never needs;
``BOUNDARY_*``: the most the product's own roles may do (the permissions boundary).
tests/test_launch_role.py checks them against the rendered product template.
"""

# The union of what the product's roles (execution, custodian) do; the boundary allows no more.
# Actions with no resource type: on "*".
BOUNDARY_UNSCOPED_ACTIONS = (
    "cloudwatch:PutMetricData", "ecr:GetAuthorizationToken", "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkAcls", "ec2:DescribeManagedPrefixLists",
    "ec2:DescribeAvailabilityZones", "logs:DescribeLogGroups",
)  # fmt: skip
# On AWS-managed prefix lists (the S3 one), whose ARNs name the account "aws".
BOUNDARY_PREFIX_LIST_ACTIONS = ("ec2:GetManagedPrefixListEntries",)
# On this account's resources only.
BOUNDARY_ACTIONS = (
    "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer", "ecr:DeleteRepository", "ecr:ListTagsForResource",
    "sqs:SendMessage", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
    "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterfacePermission",
    "ec2:CreateNetworkAclEntry", "ec2:DeleteNetworkAclEntry",
    "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress",
    "lambda:InvokeFunction", "logs:CreateLogGroup", "logs:CreateLogStream",
    "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:AssociateKmsKey",
    "logs:DisassociateKmsKey", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
    "logs:DeleteLogGroup",
)  # fmt: skip
# S3 ARNs carry no account: s3:ResourceAccount pins it.
BOUNDARY_S3_ACTIONS = (
    "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload", "s3:ListBucket", "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads", "s3:GetBucketTagging", "s3:DeleteBucket",
)  # fmt: skip
BOUNDARY_SERVICES = sorted(
    {
        action.split(":")[0]
        for actions in (BOUNDARY_UNSCOPED_ACTIONS, BOUNDARY_PREFIX_LIST_ACTIONS, BOUNDARY_ACTIONS,
                        BOUNDARY_S3_ACTIONS)
        for action in actions
    }
)  # fmt: skip

# What CloudFormation needs for each resource type the product uses (and the queue types a
# later issue adds): the handler permissions of each type minus UNNEEDED_HANDLER_PERMISSIONS.
TAG_EC2 = ("ec2:CreateTags", "ec2:DeleteTags")
INVOKE_CUSTODIAN = ("lambda:InvokeFunction",)  # CloudFormation invokes the ServiceToken
REQUIRED_ACTIONS = {
    "AWS::EC2::VPC": (
        "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:DescribeVpcAttribute",
        "ec2:DescribeVpcs", "ec2:DescribeVpcEncryptionControls", "ec2:DescribeNetworkAcls",
        "ec2:DescribeSecurityGroups", *TAG_EC2,
    ),
    "AWS::EC2::Subnet": (
        "ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute",
        "ec2:DescribeSubnets", "ec2:DescribeNetworkAcls", *TAG_EC2,
    ),
    "AWS::EC2::RouteTable": (
        "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:DescribeRouteTables", *TAG_EC2,
    ),
    "AWS::EC2::SubnetRouteTableAssociation": (
        "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable",
        "ec2:ReplaceRouteTableAssociation", "ec2:DescribeRouteTables", "ec2:DescribeSubnets",
    ),
    "AWS::EC2::NetworkAcl": (
        "ec2:CreateNetworkAcl", "ec2:DeleteNetworkAcl", "ec2:DescribeNetworkAcls",
        "ec2:DescribeTags", *TAG_EC2,
    ),
    "AWS::EC2::SubnetNetworkAclAssociation": (
        "ec2:ReplaceNetworkAclAssociation", "ec2:DescribeNetworkAcls",
    ),
    "AWS::EC2::SecurityGroup": (
        "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress", "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
        "ec2:DescribeSecurityGroups", "ec2:DescribeInstances", *TAG_EC2,
    ),
    "AWS::EC2::VPCEndpoint": (
        "ec2:CreateVpcEndpoint", "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints",
        "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups", *TAG_EC2,
    ),
    "AWS::EC2::FlowLog": (
        "ec2:CreateFlowLogs", "ec2:DeleteFlowLogs", "ec2:DescribeFlowLogs", "ec2:DescribeTags",
        "autoscaling:DescribeTags", "logs:CreateLogDelivery", "logs:DeleteLogDelivery",
        "s3:GetBucketPolicy", "s3:PutBucketPolicy", *TAG_EC2,
    ),
    "AWS::ECR::Repository": (
        "ecr:CreateRepository", "ecr:DeleteRepository", "ecr:DescribeRepositories",
        "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability",
        "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:TagResource",
        "ecr:UntagResource", "ecr:ListTagsForResource",
    ),
    "AWS::CloudWatch::Alarm": (
        "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
        "cloudwatch:TagResource", "cloudwatch:UntagResource", "cloudwatch:ListTagsForResource",
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
        "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary",
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
    "AWS::Lambda::EventInvokeConfig": (
        "lambda:PutFunctionEventInvokeConfig", "lambda:UpdateFunctionEventInvokeConfig",
        "lambda:DeleteFunctionEventInvokeConfig", "lambda:GetFunctionEventInvokeConfig",
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
    "Custom::S3NetworkAclEntries": INVOKE_CUSTODIAN,
    "Custom::TrainingJobsLogGroup": INVOKE_CUSTODIAN,
    "Custom::VpcLockdown": INVOKE_CUSTODIAN,
    "Custom::NetworkInterfaceCleanup": INVOKE_CUSTODIAN,
    "Custom::EmptyBucket": INVOKE_CUSTODIAN,
    "Custom::RepositoryOnDelete": INVOKE_CUSTODIAN,
    "Custom::ZonePlan": INVOKE_CUSTODIAN,
}  # fmt: skip

# What CloudFormation calls to check the values of AWS-specific parameter types before it
# creates anything, with the credentials of whoever calls CreateStack or UpdateStack: under
# Service Catalog, the launch role.
PARAMETER_TYPE_ACTIONS = {
    "List<AWS::EC2::AvailabilityZone::Name>": ("ec2:DescribeAvailabilityZones",),
}

# Permissions the CloudFormation handlers of these types list that this product never needs,
# grouped by why.
_UNNEEDED = {
    "the VPC sets no encryption control": ("ec2:CreateVpcEncryptionControl",),
    "the VPC keeps default tenancy": ("ec2:ModifyVpcTenancy",),
    "subnets have no IPv6 CIDR": ("ec2:AssociateSubnetCidrBlock",
        "ec2:DisassociateSubnetCidrBlock"),
    "the jobs' security group has no ingress rules": ("ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress"),
    "no ingress rules": ("ec2:UpdateSecurityGroupRuleDescriptionsIngress",),
    "the S3 endpoint is in the stack's own region": ("vpce:AllowMultiRegion",),
    "a Gateway endpoint, no Lattice": ("vpc-lattice:CreateServiceNetworkVpcEndpointAssociation",
        "vpc-lattice:DescribeServiceNetworkVpcEndpointAssociation"),
    "flow logs to S3 use no service-linked role": ("iam:CreateServiceLinkedRole",),
    "denied: product roles keep the launch template's boundary": (
        "iam:DeleteRolePermissionsBoundary",),
    "the product attaches policies to roles only": ("iam:AttachGroupPolicy",
        "iam:DetachGroupPolicy", "iam:AttachUserPolicy", "iam:DetachUserPolicy"),
    "the only inline policy is on a role": ("iam:GetGroupPolicy", "iam:PutGroupPolicy",
        "iam:DeleteGroupPolicy", "iam:GetUserPolicy", "iam:PutUserPolicy", "iam:DeleteUserPolicy"),
    "repositories set no lifecycle policy": ("ecr:PutLifecyclePolicy", "ecr:DeleteLifecyclePolicy"),
    "repositories set no repository policy": ("ecr:SetRepositoryPolicy",
        "ecr:DeleteRepositoryPolicy"),
    "repositories and the function use no customer managed key": ("kms:CreateGrant",
        "kms:RetireGrant"),
    "the function uses no customer managed key": ("kms:Encrypt", "kms:Decrypt",
        "kms:GenerateDataKey"),
    "no runtime alias": ("lambda:AssociateRuntimeAlias",),
    "no code signing": ("lambda:GetCodeSigningConfig", "lambda:PutFunctionCodeSigningConfig",
        "lambda:DeleteFunctionCodeSigningConfig"),
    "the function uses no layers": ("lambda:GetLayerVersion",),
    "no capacity provider": ("lambda:PassCapacityProvider",),
    "no reserved concurrency": ("lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency"),
    "recursive-loop detection stays at its default": ("lambda:PutFunctionRecursionConfig",),
    "no scaling configuration": ("lambda:PutFunctionScalingConfig",),
    "runtime updates stay automatic": ("lambda:PutRuntimeManagementConfig",),
    "no versions are published": ("lambda:PublishVersion",),
    "the function's code is inline (ZipFile), not in S3": ("s3:GetObject", "s3:GetObjectVersion"),
    "no file system is mounted": ("s3files:ListMountTargets",
        "elasticfilesystem:DescribeMountTargets"),
    "log groups deliver to no Firehose stream": ("firehose:TagDeliveryStream",),
    "no bearer-token log ingestion": ("logs:PutBearerTokenAuthentication",),
    "log groups set no data protection policy": ("logs:PutDataProtectionPolicy",
        "logs:DeleteDataProtectionPolicy"),
    "log groups set no field index policy": ("logs:PutIndexPolicy", "logs:DeleteIndexPolicy"),
    "log groups set no deletion protection": ("logs:PutLogGroupDeletionProtection",),
    "not an IAM action": ("s3:REST.PUT.OBJECT",),
    "not an IAM action: s3:PutBucketTagging authorizes it": ("s3:DeleteBucketTagging",),
    "buckets are emptied by the custodian's role, not by CloudFormation": ("s3:DeleteObject",),
    "ownership is BucketOwnerEnforced: ACLs are off": ("s3:PutObjectAcl", "s3:PutBucketAcl"),
    "no attribute-based access control on buckets": ("s3:PutBucketAbac",),
    "buckets set no such configuration": ("s3:PutAnalyticsConfiguration", "s3:PutBucketCORS",
        "s3:PutBucketNotification", "s3:PutBucketObjectLockConfiguration",
        "s3:PutBucketReplication", "s3:PutBucketWebsite", "s3:PutIntelligentTieringConfiguration",
        "s3:PutInventoryConfiguration", "s3:PutMetricsConfiguration",
        "s3:PutObjectLockConfiguration", "s3:PutReplicationConfiguration",
        "s3:CreateBucketMetadataTableConfiguration",
        "s3:UpdateBucketMetadataAnnotationTableConfiguration",
        "s3:UpdateBucketMetadataInventoryTableConfiguration",
        "s3:UpdateBucketMetadataJournalTableConfiguration",
        "s3:DeleteBucketMetadataTableConfiguration", "s3:DeleteBucketAnalyticsConfiguration",
        "s3:DeleteBucketCors", "s3:DeleteBucketMetricsConfiguration", "s3:DeleteBucketReplication",
        "s3:DeleteBucketWebsite"),
    "encryption is always on": ("s3:DeleteBucketEncryption",),
    "the lifecycle rules are always set": ("s3:DeleteBucketLifecycle",),
    "no S3 table buckets": ("s3tables:CreateNamespace", "s3tables:CreateTable",
        "s3tables:CreateTableBucket", "s3tables:GetTable", "s3tables:GetTableMetadataLocation",
        "s3tables:PutTableBucketPolicy", "s3tables:PutTableEncryption", "s3tables:PutTablePolicy",
        "s3tables:UpdateTableMetadataLocation"),
}  # fmt: skip
UNNEEDED_HANDLER_PERMISSIONS = {a: why for why, actions in _UNNEEDED.items() for a in actions}
