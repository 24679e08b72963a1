"""Custom resources: small Lambda functions that do what CloudFormation cannot.

Each function's code is a plain module under templates/functions, inlined at build time
(``Code.ZipFile``) so the template stays self-contained for Service Catalog in any region.
The functions run outside the VPC: they must reach CloudFormation's pre-signed ResponseURL,
and the VPC routes nowhere but S3.
"""

from awacs.aws import Action, Allow, ArnEquals, Condition, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Output, Ref, awslambda, cloudformation, iam, logs, sqs

from .alarms import add_alarm
from .inline import inline_source
from .stack import Stack, deleted_with_the_stack, permissions_boundary, trusted_by

RUNTIME = "python3.12"
FUNCTION_LOG_RETENTION_DAYS = 90
FUNCTION_SKIPS = [
    {
        "id": "CKV_AWS_117",
        "comment": "Must reach the CloudFormation ResponseURL; VPC only reaches S3",
    },
    {
        "id": "CKV_AWS_116",
        "comment": "Async failures go to the OnFailure destination (CustodianFailuresQueue), "
        "which records the error too; a DLQ would duplicate it",
    },
    {
        "id": "CKV_AWS_115",
        "comment": "Runs for stack operations (12 handlers at once, plus hand-offs) and a "
        "daily sync; a cap could only throttle a stack operation",
    },
]
SSE_SQS_SKIP = {
    "checkov": {
        "skip": [
            {
                "id": "CKV_AWS_27",
                "comment": "Encrypted with SSE-SQS: EventBridge cannot send under the AWS-managed KMS key",
            }
        ]
    }
}
FOURTEEN_DAYS = 1_209_600  # SQS maximum retention
ASYNC_RETRIES = 2  # Lambda's own retries of a failed asynchronous invocation, then the queue


CUSTODIAN = "Custodian"
# Asynchronous invocations that failed (the daily S3-ACL sync, the emptier's own hand-offs)
# and schedule events EventBridge could not deliver.
FAILURES_QUEUE = f"{CUSTODIAN}FailuresQueue"


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


# One full vCPU: the emptier spends ~0.05 CPU-seconds per 1,000 versions, so 512 MB (~0.3 vCPU)
# would cap it near 6,000 versions/s, below what a bucket S3 has split allows.
CUSTODIAN_MEMORY_MB = 1769


def add_custodian(stack: Stack, timeout=900, memory=CUSTODIAN_MEMORY_MB):
    """The Lambda running ``templates/functions/custodian.py``, allowed exactly the statements
    the concerns asked for plus writing to its own log group (retention set, created first).

    Its policy is a separate resource so statements may name the function itself (the
    bucket emptier re-invokes it), and custom resources wait for that policy."""
    template = stack.template
    log_group = template.add_resource(
        logs.LogGroup(f"{CUSTODIAN}LogGroup", RetentionInDays=FUNCTION_LOG_RETENTION_DAYS)
    )
    deleted_with_the_stack(log_group)  # operational logs only
    log_group.Metadata = {
        "checkov": {"skip": [{"id": "CKV_AWS_158", "comment": "Operational logs, no job data"}]}
    }
    role = template.add_resource(
        iam.Role(
            f"{CUSTODIAN}Role",
            AssumeRolePolicyDocument=trusted_by("lambda.amazonaws.com"),
            PermissionsBoundary=permissions_boundary(stack),
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
    queue = _add_failure_destination(stack, function)
    policy = template.add_resource(
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
                    Statement(
                        Sid="ReportAsyncFailures",
                        Effect=Allow,
                        Action=[Action("sqs", "SendMessage")],
                        Resource=[GetAtt(queue, "Arn")],
                    ),
                    *stack.custodian_statements,
                ],
            ),
        )
    )
    stack.template.resources[f"{CUSTODIAN}InvokeConfig"].DependsOn = [policy.title]
    return function


def _add_failure_destination(stack: Stack, function):
    """Failed asynchronous invocations land in an encrypted queue kept 14 days, and two
    alarms (messages waiting in it, errors of the function) make them visible.

    Lambda checks at configuration time that the function's role may send to the queue,
    hence the invoke config waits for the policy (set by the caller)."""
    template = stack.template
    queue = template.add_resource(
        sqs.Queue(FAILURES_QUEUE, SqsManagedSseEnabled=True, MessageRetentionPeriod=FOURTEEN_DAYS)
    )
    queue.Metadata = SSE_SQS_SKIP
    deleted_with_the_stack(queue)  # failures are worth the stack's lifetime only
    template.add_resource(
        awslambda.EventInvokeConfig(
            f"{CUSTODIAN}InvokeConfig",
            FunctionName=Ref(function),
            Qualifier="$LATEST",
            MaximumRetryAttempts=ASYNC_RETRIES,
            DestinationConfig=awslambda.DestinationConfig(
                OnFailure=awslambda.OnFailure(Destination=GetAtt(queue, "Arn"))
            ),
        )
    )
    waiting = add_alarm(
        stack,
        f"{FAILURES_QUEUE}Alarm",
        "A custodian invocation failed: see CustodianFailuresQueueUrl",
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
        ("QueueName", GetAtt(queue, "QueueName")),
    )
    errors = add_alarm(
        stack,
        f"{CUSTODIAN}ErrorsAlarm",
        "The custodian raised: see its log group",
        ("AWS/Lambda", "Errors", "Sum"),
        ("FunctionName", Ref(function)),
    )
    for key, value, description in (
        ("CustodianFailuresQueueUrl", Ref(queue), "Failed custodian invocations (14 days)"),
        ("CustodianFailuresAlarmName", Ref(waiting), "Alarm: failures are waiting in the queue"),
        ("CustodianErrorsAlarmName", Ref(errors), "Alarm: the custodian function raised"),
    ):
        template.add_output(Output(key, Value=value, Description=description))
    return queue


def allow_to_dead_letter(stack: Stack, rule):
    """Let one EventBridge ``rule`` put the events it cannot deliver into the failures queue."""
    return stack.template.add_resource(
        sqs.QueuePolicy(
            f"{FAILURES_QUEUE}Policy",
            Queues=[Ref(FAILURES_QUEUE)],
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid=f"{rule.title}DeadLetters",
                        Effect=Allow,
                        Principal=Principal("Service", "events.amazonaws.com"),
                        Action=[Action("sqs", "SendMessage")],
                        Resource=[GetAtt(FAILURES_QUEUE, "Arn")],
                        Condition=Condition(ArnEquals("aws:SourceArn", GetAtt(rule, "Arn"))),
                    )
                ],
            ),
        )
    )
