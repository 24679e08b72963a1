"""Events: the rule that reports this stack's stopped training jobs to Grand Challenge's queue."""

import json

from troposphere import Condition, Equals, GetAtt, If, Not, Output, Ref, Sub, events, sqs

from .logs import Logs
from .names import name
from .stack import Stack

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
# The consumer rejects any top-level key besides these two; <event> is EventBridge's
# placeholder for $.detail, inserted as JSON.
MESSAGE_TEMPLATE = json.dumps(
    {"task_name": TASK_NAME, "kwargs": {"event": "<event>", "backend": BACKEND}}
).replace('"<event>"', "<event>")


def add_stopped_jobs_rule(stack: Stack, logs: Logs):
    """The rule, and the queue it feeds: Grand Challenge's own, or one the stack creates."""
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
    queue = _add_queue(stack)
    queue_arn = If("CreateQueue", GetAtt(queue, "Arn"), Ref("StoppedEventsQueueArn"))
    rule = template.add_resource(
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
                    # Only this stack's jobs, so deployments sharing an account stay apart.
                    "TrainingJobName": [{"prefix": Sub("${NamePrefix}-")}],
                },
            },
            Targets=[
                events.Target(
                    Id="stopped-jobs-log-group",
                    Arn=Logs.log_group_arn("stopped_jobs_log_group"),
                ),
                events.Target(
                    Id="grand-challenge-queue",
                    Arn=queue_arn,
                    InputTransformer=events.InputTransformer(
                        InputPathsMap={"event": "$.detail"},
                        InputTemplate=MESSAGE_TEMPLATE,
                    ),
                ),
            ],
            DependsOn=[logs.stopped_jobs.title, "StoppedJobsPutLogsPolicy"],
        )
    )
    send_from_rule = {
        "Sid": "StoppedTrainingJobsRuleSends",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": "${QueueArn}",
        "Condition": {"ArnEquals": {"aws:SourceArn": "${Rule}"}},
    }
    template.add_resource(
        sqs.QueuePolicy(
            "StoppedJobsQueuePolicy",
            Condition="CreateQueue",
            Queues=[Ref(queue)],
            PolicyDocument={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        **send_from_rule,
                        "Resource": GetAtt(queue, "Arn"),
                        "Condition": {"ArnEquals": {"aws:SourceArn": GetAtt(rule, "Arn")}},
                    }
                ],
            },
        )
    )
    template.add_output(
        Output(
            "StoppedEventsQueueArn",
            Description="Queue receiving the stopped-job messages",
            Value=queue_arn,
        )
    )
    template.add_output(
        Output(
            "QueuePolicyStatementToAdd",
            Condition="UseGivenQueue",
            Description="Add this statement to the given queue's policy so EventBridge may send",
            Value=Sub(
                json.dumps(send_from_rule, separators=(",", ":")),
                QueueArn=Ref("StoppedEventsQueueArn"),
                Rule=GetAtt(rule, "Arn"),
            ),
        )
    )
    return rule


def _add_queue(stack: Stack):
    """SSE queue with a dead-letter queue for messages the consumer keeps failing on."""
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
    return queue
