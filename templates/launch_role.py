"""The Service Catalog launch role: the IAM role Service Catalog assumes to create, update and
delete this product's stacks (its LAUNCH constraint names it by local role name).

One region-independent template per account (IAM is global). Four limits keep the role narrow:

* only Service Catalog may assume it, and it drives CloudFormation only on Service Catalog's
  stacks (``SC-<account>-pp-<id>``), reading templates only from Service Catalog's copies and
  the publisher's artifact buckets;
* every permission on the product's resources holds only in requests CloudFormation makes
  for a stack (``aws:CalledVia``), never in direct API calls with the role;
* resources are scoped by the product's own names (``templates/names.py``), by the
  ``SC-*-<logical id>-*`` names CloudFormation generates for unnamed resources, or at least to
  this account;
* every role it creates or changes must carry the permissions boundary this template creates
  (``<RoleName>-Boundary``; the product's ``PermissionsBoundaryArn`` parameter), so even a
  template it was never meant to run cannot make a role that does more than the product's roles
  (no IAM, no other services). It can never remove that boundary, nor change the boundary policy.

Residual risk: CloudFormation updates managed policies with CreatePolicyVersion, so the role may
rewrite the product's SAGEMAKER_*_SCHEDULE/_LOGS and ECR_*_READ_WRITE_DELETE policies, which
Grand Challenge's workers hold outside the stack (no boundary there). Only principals allowed to
launch the product (the portfolio's principals) and only through CloudFormation (CalledVia)
can use that; keep both lists short, and give the workers' roles a boundary of their own.

``REQUIRED_ACTIONS`` (templates/launch_role_actions.py) maps every resource type of the product
to the actions CloudFormation needs for it; tests/test_launch_role.py checks it against each type
of the product template, against the handler permissions cfn-lint ships for each type, and against the
statements below.
"""

import re

from awacs.aws import (
    Action,
    Allow,
    ArnLike,
    Condition,
    Deny,
    ForAnyValueStringEquals,
    PolicyDocument,
    Statement,
    StringEquals,
    StringNotEquals,
)
from troposphere import GetAtt, Output, Parameter, Ref, Sub, Template, iam

from .launch_role_actions import (
    BOUNDARY_ACTIONS,
    BOUNDARY_PREFIX_LIST_ACTIONS,
    BOUNDARY_S3_ACTIONS,
    BOUNDARY_SERVICES,
    BOUNDARY_UNSCOPED_ACTIONS,
    INVOKE_CUSTODIAN,
    PARAMETER_TYPE_ACTIONS,
    REQUIRED_ACTIONS,
    TAG_EC2,
)
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


# CloudFormation names unnamed resources <stack>-<logical id>-<suffix>; when that exceeds the
# service's limit it shortens the parts, so patterns keep only a logical id's first letters.
def _generated(logical_id, keep=None):
    return f"SC-*-{logical_id[:keep]}*" if keep else f"SC-*-{logical_id}-*"


# The product's unnamed resources (logical ids in templates/custom_resources.py and network.py).
CUSTODIAN_ROLE = _generated("CustodianRole")
CUSTODIAN_FUNCTION = _generated("Custodian")
CUSTODIAN_LOG_GROUP = _generated("CustodianLogGroup")
CUSTODIAN_FAILURES_QUEUE = _generated("CustodianFailuresQueue")
ACL_SYNC_RULE = _generated("S3NetworkAclDailySync", keep=6)  # 32 + 21 + 14 > 64: cut
# Every role the product creates must carry this boundary (the product's PermissionsBoundaryArn).
BOUNDARY_NAME = "${RoleName}-Boundary"
BOUNDARY_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/" + BOUNDARY_NAME
# Role changes that must name the boundary (all take the iam:PermissionsBoundary key).
BOUNDED_ROLE_WRITES = (
    "iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
    "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole", "iam:DeleteRole",
)  # fmt: skip
VIA_CLOUDFORMATION = ForAnyValueStringEquals("aws:CalledVia", "cloudformation.amazonaws.com")

# Names in templates/names.py that no IAM resource ARN contains, and why.
NAMES_NOT_IN_ARNS = {
    "stopped_jobs_dead_letter_queue": "under the stopped_jobs_queue pattern's trailing *",
    "undeliverable_events_queue": "under the stopped_jobs_queue pattern's trailing *",
    "security_group": "EC2 ARNs carry the group id, not its name",
    "vpc_tag": "a tag value",
    "training_jobs_log_group": "Custom::TrainingJobsLogGroup: the custodian's role manages it",
    "logs_resource_policy": "CloudWatch Logs resource policies have no ARN",
    "training_job": "Grand Challenge starts training jobs, the stack does not",
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
            "ValidateParameterValues",
            sorted({action for actions in PARAMETER_TYPE_ACTIONS.values() for action in actions}),
            # Describe* take no resource ARN. CloudFormation checks the picked zones with the
            # caller's credentials; whether that call carries aws:CalledVia is undocumented,
            # and the answer (the region's zones, their ids, opt-in states) is no secret.
            ["*"],
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
            # Bucket names are global: the name and s3:ResourceAccount both pin this account.
            [Sub("arn:${AWS::Partition}:s3:::${ArtifactBucketPrefix}-${AWS::AccountId}-*/*")],
            StringEquals("s3:ResourceAccount", Sub("${AWS::AccountId}")),
            via_cloudformation=False,
        ),
    ]  # fmt: skip


def _identity_statements():
    execution_role = _role_arn(_pattern("execution_role"))
    custodian_role = _role_arn(CUSTODIAN_ROLE)
    product_policies = [
        _policy_arn(_pattern(key))
        for key in (
            "execution_policy", "schedule_policy", "logs_policy", "ecr_policy",
            "consume_stopped_jobs_policy",
        )
    ]  # fmt: skip
    bounded = StringEquals("iam:PermissionsBoundary", Sub(BOUNDARY_ARN))
    return [
        _statement(
            "ReadAndTagProductRoles",  # these actions take no iam:PermissionsBoundary key
            [
                "iam:GetRole", "iam:UpdateRoleDescription", "iam:TagRole", "iam:UntagRole",
                "iam:ListRoleTags", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
                "iam:GetRolePolicy",
            ],
            [execution_role, custodian_role],
        ),
        _statement(
            "ChangeOnlyBoundedProductRoles",
            [
                "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary",
            ],
            [execution_role, custodian_role],
            bounded,
        ),
        _statement(
            "WriteCustodianInlinePolicy",
            ["iam:PutRolePolicy", "iam:DeleteRolePolicy"],
            [custodian_role],
            bounded,
        ),
        _statement(
            "AttachOnlyTheExecutionPolicy",  # the other policies are for Grand Challenge's workers
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [execution_role],
            ArnLike("iam:PolicyARN", _policy_arn(_pattern("execution_policy"))),
            bounded,
        ),
        _statement(
            "ManageProductPolicies",  # CreatePolicyVersion: see the residual risk above
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


def _boundary_guards():
    """Explicit denies: they hold even if someone attaches a broader policy to the role later."""
    return [
        Statement(
            Sid="DenyRoleChangesWithoutTheBoundary",
            Effect=Deny,
            Action=_actions(BOUNDED_ROLE_WRITES),
            Resource=["*"],
            Condition=Condition(StringNotEquals("iam:PermissionsBoundary", Sub(BOUNDARY_ARN))),
        ),
        Statement(
            Sid="DenyDroppingBoundaries",
            Effect=Deny,
            Action=_actions(["iam:DeleteRolePermissionsBoundary"]),
            Resource=["*"],
        ),
        Statement(
            Sid="DenyChangingTheBoundary",
            Effect=Deny,
            Action=_actions(
                ["iam:CreatePolicyVersion", "iam:DeletePolicyVersion",
                 "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"]
            ),
            Resource=[Sub(BOUNDARY_ARN)],
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
                "ec2:DeleteFlowLogs", *TAG_EC2,
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
            # The stopped-jobs queue with its -dlq and -undeliverable; the custodian's failures.
            [
                _arn("sqs", f"{_pattern('stopped_jobs_queue')}*"),
                _arn("sqs", CUSTODIAN_FAILURES_QUEUE),
            ],
        ),
    ]


def _key_statements():
    keys = _arn("kms", "key/*")
    return [
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
    ]  # fmt: skip


def _operations_statements():
    log_groups = [
        _arn("logs", f"log-group:{name}{suffix}")
        for name in (_pattern("stopped_jobs_log_group"), CUSTODIAN_LOG_GROUP)
        for suffix in ("", ":*")
    ]
    rules = [
        _arn("events", f"rule/{name}") for name in (_pattern("stopped_jobs_rule"), ACL_SYNC_RULE)
    ]
    functions = [_arn("lambda", f"function:{CUSTODIAN_FUNCTION}")]
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
            "ManageProductAlarms",
            REQUIRED_ACTIONS["AWS::CloudWatch::Alarm"],
            [
                _arn("cloudwatch", f"alarm:{_pattern(key)}")
                for key in ("undeliverable_events_alarm", "unprocessed_messages_alarm")
            ],
        ),
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
                *REQUIRED_ACTIONS["AWS::Lambda::EventInvokeConfig"],
                *INVOKE_CUSTODIAN,
            ],
            functions,
        ),
    ]  # fmt: skip


POLICIES = {
    "StacksPolicy": ("Drive Service Catalog's stacks of this product", _stack_statements),
    "IdentityPolicy": ("The product's IAM roles and policies",
                       lambda: _identity_statements() + _boundary_guards()),
    "NetworkPolicy": ("The product's VPC and its parts", _network_statements),
    "DataPolicy": ("The product's buckets, repositories and queues", _data_statements),
    "OperationsPolicy": ("The product's log groups, key, alarms, rules and custodian function",
                         lambda: _operations_statements() + _key_statements()),
}  # fmt: skip


def _boundary_statements():
    """The most any role of the product may do, whatever its own policies say."""
    return [
        Statement(
            Sid="ReadsWithoutResourceTypes",
            Effect=Allow,
            Action=_actions(BOUNDARY_UNSCOPED_ACTIONS),
            Resource=["*"],
        ),
        Statement(
            Sid="AwsManagedPrefixLists",
            Effect=Allow,
            Action=_actions(BOUNDARY_PREFIX_LIST_ACTIONS),
            Resource=[Sub("arn:${AWS::Partition}:ec2:*:aws:prefix-list/*")],
        ),
        Statement(
            Sid="InThisAccountOnly",
            Effect=Allow,
            Action=_actions(BOUNDARY_ACTIONS),
            Resource=[Sub("arn:${AWS::Partition}:*:*:${AWS::AccountId}:*")],
        ),
        Statement(
            Sid="ObjectsInThisAccountOnly",
            Effect=Allow,
            Action=_actions(BOUNDARY_S3_ACTIONS),
            Resource=[Sub("arn:${AWS::Partition}:s3:::*")],
            Condition=Condition(StringEquals("s3:ResourceAccount", Sub("${AWS::AccountId}"))),
        ),
        Statement(
            Sid="DenyOtherServices",  # iam, sts, organizations, account, ...: never
            Effect=Deny,
            NotAction=_actions([f"{service}:*" for service in BOUNDARY_SERVICES]),
            Resource=["*"],
        ),
    ]


def _boundary(template):
    return template.add_resource(
        iam.ManagedPolicy(
            "PermissionsBoundary",
            ManagedPolicyName=Sub(BOUNDARY_NAME),
            Description="Permissions boundary of every role the product's stacks create",
            PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=_boundary_statements()),
        )
    )


def _add_outputs(template, role, boundary):
    template.add_output(
        Output("PermissionsBoundaryArn", Value=Ref(boundary),
               Description="The product's PermissionsBoundaryArn parameter under Service Catalog")
    )  # fmt: skip
    template.add_output(
        Output("LaunchRoleArn", Description="The launch role's ARN", Value=GetAtt(role, "Arn"))
    )
    template.add_output(
        Output("LaunchRoleName", Description="The LAUNCH constraint's local role name",
               Value=Ref(role))
    )  # fmt: skip


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
    _add_outputs(template, role, _boundary(template))
    return template
