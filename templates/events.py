"""Events: the rule that reports this stack's stopped training jobs to Grand Challenge's queue."""

import json

from troposphere import (
    Condition,
    Equals,
    GetAtt,
    If,
    Join,
    Not,
    Output,
    Ref,
    Select,
    Split,
    Sub,
    events,
    iam,
    sqs,
)

from .alarms import add_alarm
from .logs import Logs
from .names import name, training_job_event_prefixes
from .stack import Stack, deleted_with_the_stack

GROUP = "Grand Challenge"
QUEUE_ARN_PATTERN = r"^$|^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$"
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
FOURTEEN_DAYS = 1_209_600  # SQS maximum retention: survive a long consumer outage
TASK_NAME = "grandchallenge.components.tasks.handle_event"
BACKEND = (
    "grandchallenge.components.backends.amazon_sagemaker_training.AmazonSageMakerTrainingExecutor"
)
STOPPED_STATUSES = ["Completed", "Failed", "Stopped"]
CONSUMER_ACTIONS = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]
# The consumer rejects any top-level key besides these two; <event> is EventBridge's
# placeholder for $.detail, inserted as JSON.
MESSAGE_TEMPLATE = json.dumps(
    {"task_name": TASK_NAME, "kwargs": {"event": "<event>", "backend": BACKEND}}
).replace('"<event>"', "<event>")


def add_stopped_jobs_rule(stack: Stack, logs: Logs):
    """The rule, and the queue it feeds: Grand Challenge's own, or one the stack creates."""
    _add_queue_parameter(stack)
    queue, dead_letters = _add_queue(stack)
    undeliverable = _add_undeliverable_events_queue(stack)
    queue_arn = If("CreateQueue", GetAtt(queue, "Arn"), Ref("StoppedEventsQueueArn"))
    rule = _add_rule(stack, logs, queue_arn, GetAtt(undeliverable, "Arn"))
    _allow_rule_to_send(stack, "StoppedJobsQueuePolicy", queue, rule, Condition="CreateQueue")
    _allow_rule_to_send(stack, "UndeliverableEventsQueuePolicy", undeliverable, rule)
    _add_consumer_policy(stack, queue, dead_letters)
    _add_alarms(stack, dead_letters, undeliverable)
    _add_queue_outputs(stack, queue, queue_arn, dead_letters)
    _add_given_queue_statement_output(stack, rule)
    return rule


def _add_queue_parameter(stack: Stack):
    template = stack.template
    stack.add_parameter(
        "StoppedEventsQueueArn",
        GROUP,
        "Stopped-jobs SQS queue ARN (empty: create one)",
        Type="String",
        Default="",
        AllowedPattern=QUEUE_ARN_PATTERN,
        ConstraintDescription="must be empty or an SQS queue ARN: arn:<partition>:sqs:<region>:<account>:<name>",
        Description="Queue the Grand Challenge workers consume. Leave empty to create one.",
    )
    template.add_condition("CreateQueue", Equals(Ref("StoppedEventsQueueArn"), ""))
    template.add_condition("UseGivenQueue", Not(Condition("CreateQueue")))


def _add_rule(stack: Stack, logs: Logs, queue_arn, undeliverable_arn):
    # Events a target refuses (queue deleted, its policy or KMS key wrong) land here after
    # EventBridge's retries instead of vanishing: a lost message is a job Grand Challenge
    # never finishes.
    dead_letters = events.DeadLetterConfig(Arn=undeliverable_arn)
    return stack.template.add_resource(
        events.Rule(
            "StoppedTrainingJobsRule",
            Name=name("stopped_jobs_rule"),
            Description="Tell Grand Challenge when one of its SageMaker training jobs stops",
            State="ENABLED",
            EventPattern={
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Training Job State Change"],
                "detail": {
                    "TrainingJobStatus": STOPPED_STATUSES,
                    # Exactly this deployment's job names, never a sibling prefix's (names.py).
                    "TrainingJobName": [
                        {"prefix": Sub(prefix)} for prefix in training_job_event_prefixes()
                    ],
                },
            },
            Targets=[
                events.Target(
                    Id="stopped-jobs-log-group",
                    Arn=Logs.log_group_arn("stopped_jobs_log_group"),
                    DeadLetterConfig=dead_letters,
                ),
                events.Target(
                    Id="grand-challenge-queue",
                    Arn=queue_arn,
                    InputTransformer=events.InputTransformer(
                        InputPathsMap={"event": "$.detail"},
                        InputTemplate=MESSAGE_TEMPLATE,
                    ),
                    DeadLetterConfig=dead_letters,
                ),
            ],
            DependsOn=[logs.stopped_jobs.title, "StoppedJobsPutLogsPolicy"],
        )
    )


def _send_from_rule(queue_arn, rule_arn):
    """The statement letting this rule, and only it, send to a queue."""
    return {
        "Sid": "StoppedTrainingJobsRuleSends",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }


def _allow_rule_to_send(stack: Stack, logical_id, queue, rule, **properties):
    stack.template.add_resource(
        sqs.QueuePolicy(
            logical_id,
            Queues=[Ref(queue)],
            PolicyDocument={
                "Version": "2012-10-17",
                "Statement": [_send_from_rule(GetAtt(queue, "Arn"), GetAtt(rule, "Arn"))],
            },
            **properties,
        )
    )


def _add_consumer_policy(stack: Stack, queue, dead_letters):
    """What Grand Challenge's consumer needs on the queue this stack creates (and its DLQ, to
    inspect or redrive what it kept failing on); a given queue's owner grants that already."""
    stack.template.add_resource(
        iam.ManagedPolicy(
            "ConsumeStoppedJobsPolicy",
            Condition="CreateQueue",
            ManagedPolicyName=name("consume_stopped_jobs_policy"),
            Description="For Grand Challenge workers: consume the stopped-jobs queue",
            PolicyDocument={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ConsumeStoppedJobs",
                        "Effect": "Allow",
                        "Action": CONSUMER_ACTIONS,
                        "Resource": [GetAtt(queue, "Arn"), GetAtt(dead_letters, "Arn")],
                    }
                ],
            },
        )
    )


def _add_alarms(stack: Stack, dead_letters, undeliverable):
    """An alarm per dead-letter queue, in ALARM while it holds anything.

    No actions: who to tell is the operator's choice, and a stack parameter for it would be
    one more thing to get wrong. The state shows in the CloudWatch console, and every change
    is an EventBridge "CloudWatch Alarm State Change" event the operator can route anywhere
    without touching this stack."""
    for logical_id, name_key, watched, description, condition in (
        (
            "UndeliverableEventsAlarm",
            "undeliverable_events_alarm",
            undeliverable,
            "Stopped-job events not delivered",
            None,
        ),
        (
            "UnprocessedStoppedJobsAlarm",
            "unprocessed_messages_alarm",
            dead_letters,
            "Stopped-job messages the consumer kept failing on",
            "CreateQueue",
        ),
    ):
        add_alarm(
            stack,
            logical_id,
            description,
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
            ("QueueName", GetAtt(watched, "QueueName")),
            AlarmName=name(name_key),
            **({"Condition": condition} if condition else {}),
        )


def _given_queue_url():
    """https://sqs.<region>.<url suffix>/<account>/<name> from the given queue's ARN."""
    region, account, queue_name = (
        Select(i, Split(":", Ref("StoppedEventsQueueArn"))) for i in (3, 4, 5)
    )
    return Join(
        "", ["https://sqs.", region, ".", Ref("AWS::URLSuffix"), "/", account, "/", queue_name]
    )


def _add_queue_outputs(stack: Stack, queue, queue_arn, dead_letters):
    outputs = [
        ("StoppedEventsQueueArn", queue_arn, "Queue receiving the stopped-job messages", None),
        (
            "StoppedEventsQueueUrl",
            If("CreateQueue", Ref(queue), _given_queue_url()),
            "Queue URL (Grand Challenge's consumer reads it)",
            None,
        ),
        (
            "ConsumeStoppedJobsPolicyArn",
            Ref("ConsumeStoppedJobsPolicy"),
            "Managed policy: consume the created queue",
            "CreateQueue",
        ),
        (
            "StoppedJobsDeadLetterQueueUrl",
            Ref(dead_letters),
            "Messages the consumer kept failing on",
            "CreateQueue",
        ),
        (
            "UnprocessedStoppedJobsAlarmName",
            Ref("UnprocessedStoppedJobsAlarm"),
            "Alarm: StoppedJobsDeadLetterQueueUrl not empty",
            "CreateQueue",
        ),
        (
            "UndeliverableEventsQueueUrl",
            Ref("UndeliverableEventsQueue"),
            "Events the rule could not deliver",
            None,
        ),
        (
            "UndeliverableEventsAlarmName",
            Ref("UndeliverableEventsAlarm"),
            "Alarm: UndeliverableEventsQueueUrl not empty",
            None,
        ),
    ]
    for key, value, description, condition in outputs:
        output = Output(key, Value=value, Description=description)
        if condition:
            output.Condition = condition
        stack.template.add_output(output)


def _add_given_queue_statement_output(stack: Stack, rule):
    stack.template.add_output(
        Output(
            "QueuePolicyStatementToAdd",
            Condition="UseGivenQueue",
            Description="Add this statement to the given queue's policy so EventBridge may send",
            Value=Sub(
                json.dumps(_send_from_rule("${QueueArn}", "${Rule}"), separators=(",", ":")),
                QueueArn=Ref("StoppedEventsQueueArn"),
                Rule=GetAtt(rule, "Arn"),
            ),
        )
    )


def _add_undeliverable_events_queue(stack: Stack):
    """The rule targets' dead-letter queue, whichever queue Grand Challenge consumes."""
    queue = stack.template.add_resource(
        sqs.Queue(
            "UndeliverableEventsQueue",
            QueueName=name("undeliverable_events_queue"),
            SqsManagedSseEnabled=True,
            MessageRetentionPeriod=FOURTEEN_DAYS,
        )
    )
    queue.Metadata = SSE_SQS_SKIP
    # Undelivered events are worth the stack's lifetime only.
    return deleted_with_the_stack(queue)


def _add_queue(stack: Stack):
    """SSE queue, and its dead-letter queue for messages the consumer keeps failing on."""
    dead_letters = stack.template.add_resource(
        sqs.Queue(
            "StoppedJobsDeadLetterQueue",
            Condition="CreateQueue",
            QueueName=name("stopped_jobs_dead_letter_queue"),
            SqsManagedSseEnabled=True,
            MessageRetentionPeriod=FOURTEEN_DAYS,
        )
    )
    dead_letters.Metadata = SSE_SQS_SKIP
    # Both go with the stack; its delete is the operator's decision (on update their names
    # only change with NamePrefix, which replaces every name: `build.py diff` flags it).
    deleted_with_the_stack(dead_letters)
    queue = stack.template.add_resource(
        sqs.Queue(
            "StoppedJobsQueue",
            Condition="CreateQueue",
            QueueName=name("stopped_jobs_queue"),
            SqsManagedSseEnabled=True,
            MessageRetentionPeriod=FOURTEEN_DAYS,
            # Above the longest a consumer may hold a message (a Lambda consumer's 15 minutes).
            VisibilityTimeout=900,
            RedrivePolicy=sqs.RedrivePolicy(
                deadLetterTargetArn=GetAtt(dead_letters, "Arn"), maxReceiveCount=5
            ),
        )
    )
    queue.Metadata = SSE_SQS_SKIP
    return deleted_with_the_stack(queue), dead_letters
