"""Custom resources: small Lambda functions that do what CloudFormation cannot.

Each function's code is a plain module under templates/functions, inlined at build time
(``Code.ZipFile``) so the template stays self-contained for Service Catalog in any region.
The functions run outside the VPC: they must reach CloudFormation's pre-signed ResponseURL,
and the VPC routes nowhere but S3.
"""

from awacs.aws import Action, Allow, PolicyDocument, Statement
from troposphere import GetAtt, Ref, awslambda, cloudformation, iam, logs

from .inline import inline_source
from .stack import Stack, trusted_by

RUNTIME = "python3.12"
FUNCTION_LOG_RETENTION_DAYS = 90
FUNCTION_SKIPS = [
    {
        "id": "CKV_AWS_117",
        "comment": "Must reach the CloudFormation ResponseURL; VPC only reaches S3",
    },
    {
        "id": "CKV_AWS_116",
        "comment": "Invoked by CloudFormation, which records each failure itself",
    },
    {
        "id": "CKV_AWS_115",
        "comment": "Runs only on stack changes; a concurrency cap could stall them",
    },
    {"id": "CKV_AWS_173", "comment": "The function has no environment variables to encrypt"},
    {
        "id": "CKV_AWS_272",
        "comment": "Code is inlined from this template, which is what gets reviewed",
    },
]


CUSTODIAN = "Custodian"


def allow_custodian(stack: Stack, statement):
    """Grant the custodian function one more statement (each concern adds what it needs)."""
    stack.custodian_statements.append(statement)


def add_custom_resource(stack: Stack, logical_id, type_name, timeout, condition=None, **properties):
    """A ``Custom::<type_name>`` served by the custodian function. ``timeout`` (ServiceTimeout,
    seconds) fails a broken handler in minutes instead of CloudFormation's default hour."""
    resource_class = type(
        type_name,
        (cloudformation.CustomResource,),
        {
            "resource_type": f"Custom::{type_name}",
            "props": {
                **cloudformation.CustomResource.props,
                **{name: (object, True) for name in properties},
            },
        },
    )
    resource = resource_class(
        logical_id,
        ServiceToken=GetAtt(CUSTODIAN, "Arn"),
        ServiceTimeout=timeout,
        DependsOn=[f"{CUSTODIAN}Policy"],
        **properties,
    )
    if condition:
        resource.Condition = condition
    return stack.template.add_resource(resource)


def add_custodian(stack: Stack, timeout=900, memory=512):
    """The Lambda running ``templates/functions/custodian.py``, allowed exactly the statements
    the concerns asked for plus writing to its own log group (retention set, created first).

    Its policy is a separate resource so statements may name the function itself (the
    bucket emptier re-invokes it), and custom resources wait for that policy."""
    template = stack.template
    log_group = template.add_resource(
        logs.LogGroup(f"{CUSTODIAN}LogGroup", RetentionInDays=FUNCTION_LOG_RETENTION_DAYS)
    )
    log_group.Metadata = {
        "checkov": {"skip": [{"id": "CKV_AWS_158", "comment": "Operational logs, no job data"}]}
    }
    role = template.add_resource(
        iam.Role(
            f"{CUSTODIAN}Role",
            AssumeRolePolicyDocument=trusted_by("lambda.amazonaws.com"),
        )
    )
    function = template.add_resource(
        awslambda.Function(
            CUSTODIAN,
            Description="Custom resources of the Grand Challenge components stack; readable source: templates/functions/ in the product repository",
            Runtime=RUNTIME,
            Handler="index.handler",
            Code=awslambda.Code(ZipFile=inline_source("custodian")),
            Role=GetAtt(role, "Arn"),
            Timeout=timeout,
            MemorySize=memory,
            LoggingConfig=awslambda.LoggingConfig(LogGroup=Ref(log_group)),
        )
    )
    function.Metadata = {"checkov": {"skip": FUNCTION_SKIPS}}
    template.add_resource(
        iam.PolicyType(
            f"{CUSTODIAN}Policy",
            PolicyName="custodian",
            Roles=[Ref(role)],
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="WriteOwnLogs",
                        Effect=Allow,
                        Action=[Action("logs", "CreateLogStream"), Action("logs", "PutLogEvents")],
                        Resource=[GetAtt(log_group, "Arn")],
                    ),
                    *stack.custodian_statements,
                ],
            ),
        )
    )
    return function
