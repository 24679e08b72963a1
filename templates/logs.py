"""Logs and encryption: the KMS key for the log groups, the SageMaker training-jobs log group,
the stopped-jobs log group EventBridge writes to, and the resource policy that lets it."""

import json
from dataclasses import dataclass

from awacs import kms as kms_actions
from awacs.aws import Action, Allow, ArnEquals, Condition, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Ref, Sub, kms, logs

from .custom_resources import add_custom_resource, allow_custodian
from .names import PATTERNS, name
from .stack import Stack, arn

GROUP = "Logging"
# One year, like the created logs bucket's default expiry: long enough to look into a
# challenge's results after it closes; CIS-style benchmarks ask for at least a year too.
DEFAULT_RETENTION_DAYS = 365
RETENTION_DAYS = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545,
    731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
]  # fmt: skip


@dataclass
class Logs:
    key: kms.Key
    training_jobs: object  # Custom::TrainingJobsLogGroup
    stopped_jobs: logs.LogGroup

    @staticmethod
    def log_group_arn(name_key):
        """ARN of a log group without the ``:*`` suffix ``GetAtt Arn`` adds."""
        return arn("logs", f"log-group:{PATTERNS[name_key]}")


def add_logs(stack: Stack) -> Logs:
    template = stack.template
    stack.add_parameter(
        "LogRetentionDays",
        GROUP,
        "Log retention (days)",
        Type="Number",
        Default=str(DEFAULT_RETENTION_DAYS),
        AllowedValues=[str(days) for days in RETENTION_DAYS],
        ConstraintDescription="must be a retention period CloudWatch Logs accepts",
        Description=(
            "How long CloudWatch keeps training-job and stopped-job logs. If "
            "/aws/sagemaker/TrainingJobs existed before this stack, it keeps its own retention "
            "when that is longer (never expiring counts as longest) and gets its retention and "
            "key back when the stack is deleted."
        ),
    )
    key = _add_key(stack)
    # Created, or adopted when SageMaker already made it (see training_jobs_log_group.py).
    training_jobs = add_custom_resource(
        stack,
        "TrainingJobsLogGroup",
        "TrainingJobsLogGroup",
        300,
        LogGroupName=name("training_jobs_log_group"),
        RetentionInDays=Ref("LogRetentionDays"),
        KmsKeyArn=GetAtt(key, "Arn"),
    )
    _allow_owning_training_jobs_group(stack)
    stopped_jobs = template.add_resource(
        logs.LogGroup(
            "StoppedJobsLogGroup",
            LogGroupName=name("stopped_jobs_log_group"),
            RetentionInDays=Ref("LogRetentionDays"),
            KmsKeyId=GetAtt(key, "Arn"),
            # Goes with the stack (a copy of what the queue got); a retained group would
            # block a new stack with the same prefix. Its events stay readable: the key stays.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    _add_put_logs_policy(stack)
    return Logs(key, training_jobs, stopped_jobs)


def _add_key(stack: Stack):
    """The KMS key of both log groups: the account administers it, CloudWatch Logs may use it
    for our two groups only. Kept when the stack goes (see below)."""
    template = stack.template
    key = template.add_resource(
        kms.Key(
            "LogsKey",
            Description=Sub("Encrypts the ${NamePrefix} Grand Challenge components log groups"),
            EnableKeyRotation=True,
            KeyPolicy=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="AccountAdministers",
                        Effect=Allow,
                        Principal=Principal("AWS", arn("iam", "root", region="")),
                        Action=[kms_actions.Action("*")],
                        Resource=["*"],
                    ),
                    Statement(
                        Sid="CloudWatchLogsUsesForOurGroups",
                        Effect=Allow,
                        Principal=Principal(
                            "Service", Sub("logs.${AWS::Region}.${AWS::URLSuffix}")
                        ),
                        Action=[
                            kms_actions.Action("Encrypt*"),
                            kms_actions.Action("Decrypt*"),
                            kms_actions.Action("ReEncrypt*"),
                            kms_actions.Action("GenerateDataKey*"),
                            kms_actions.Action("Describe*"),
                        ],
                        Resource=["*"],
                        Condition=Condition(
                            ArnEquals(
                                "kms:EncryptionContext:aws:logs:arn",
                                [
                                    Logs.log_group_arn("training_jobs_log_group"),
                                    Logs.log_group_arn("stopped_jobs_log_group"),
                                ],
                            )
                        ),
                    ),
                ],
            ),
        )
    )
    # Kept when the stack goes: the adopted TrainingJobs group outlives the stack, and every
    # event written while the key was attached stays encrypted under it, unreadable without it.
    key.DeletionPolicy = "Retain"
    key.UpdateReplacePolicy = "Retain"
    # The alias is not kept: a new stack with the same prefix must be able to create it.
    # The retained key is found by its description, which names the prefix.
    template.add_resource(
        kms.Alias("LogsKeyAlias", AliasName=name("kms_alias"), TargetKeyId=Ref(key))
    )
    return key


def _add_put_logs_policy(stack: Stack):
    """The account's CloudWatch Logs resource policy letting EventBridge write our events."""
    # The policy is a JSON string, so it is written with ${} placeholders inside one Fn::Sub.
    # Finding: the Terraform module (and the EventBridge console) grant /aws/events/*:*, i.e.
    # any rule of anyone in the account may write into every event log group. CloudWatch Logs
    # resource policies take log-group ARNs (PutResourcePolicy docs; CDK's log-group target
    # grants exactly its group), so only our stopped-jobs group is granted here.
    put_logs_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeWritesEventLogs",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
                f":log-group:{PATTERNS['stopped_jobs_log_group']}:*",
            }
        ],
    }
    stack.template.add_resource(
        logs.ResourcePolicy(
            "StoppedJobsPutLogsPolicy",
            PolicyName=name("logs_resource_policy"),
            PolicyDocument=Sub(json.dumps(put_logs_policy, separators=(",", ":"))),
        )
    )


def _allow_owning_training_jobs_group(stack: Stack):
    """What the custodian needs to create or adopt /aws/sagemaker/TrainingJobs."""
    group_arn = Logs.log_group_arn("training_jobs_log_group")
    allow_custodian(
        stack,
        Statement(
            Sid="FindLogGroups",
            Effect=Allow,
            Action=[Action("logs", "DescribeLogGroups")],
            # The service authorization reference lists DescribeLogGroups with no resource type.
            Resource=["*"],
        ),
    )
    allow_custodian(
        stack,
        Statement(
            Sid="OwnTrainingJobsLogGroup",
            Effect=Allow,
            Action=[
                Action("logs", "CreateLogGroup"),
                Action("logs", "AssociateKmsKey"),
                Action("logs", "DisassociateKmsKey"),
                Action("logs", "PutRetentionPolicy"),
                Action("logs", "DeleteRetentionPolicy"),  # gives "never expire" back on delete
                Action("logs", "DeleteLogGroup"),
            ],
            Resource=[group_arn, arn("logs", f"log-group:{PATTERNS['training_jobs_log_group']}:*")],
        ),
    )
