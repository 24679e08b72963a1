"""Events: the rule that reports this stack's stopped training jobs to Grand Challenge's queue."""

import json

from troposphere import Ref, Sub, events

from .logs import Logs
from .names import name
from .stack import Stack

GROUP = "Grand Challenge"
QUEUE_ARN_PATTERN = r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$"
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
    template = stack.template
    stack.add_parameter(
        "StoppedEventsQueueArn",
        GROUP,
        "Stopped-jobs SQS queue ARN",
        Type="String",
        AllowedPattern=QUEUE_ARN_PATTERN,
        ConstraintDescription="must be an SQS queue ARN: arn:<partition>:sqs:<region>:<account>:<name>",
        Description="Queue the Grand Challenge workers consume; EventBridge needs SendMessage on it.",
    )
    return template.add_resource(
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
                    Arn=Ref("StoppedEventsQueueArn"),
                    InputTransformer=events.InputTransformer(
                        InputPathsMap={"event": "$.detail"},
                        InputTemplate=MESSAGE_TEMPLATE,
                    ),
                ),
            ],
            DependsOn=[logs.stopped_jobs.title, "StoppedJobsPutLogsPolicy"],
        )
    )
