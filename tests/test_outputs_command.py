"""`build.py outputs`: the Grand Challenge settings, then the queue, policies and alarms an
operator needs, as comment lines (an env file ignores them). CloudFormation's DescribeStacks
is stubbed with the response shape the service returns (botocore Stubber checks it)."""

import datetime

import boto3
import pytest
from botocore.stub import Stubber

import build
from templates.outputs import GRAND_CHALLENGE_SETTINGS, env_block
from tests.cfn_resolve import ACCOUNT
from tests.helpers import rendered

REGION = "eu-central-1"
STACK_ID = (
    f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/gc/0a1b2c3d-4e5f-11ef-8a9b-0a1b2c3d4e5f"
)
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/gc-components-stopped-jobs"
SETTINGS_VALUES = {
    "Region": REGION,
    "RegistryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
    "RegistryPrefix": "gc",
    "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/SAGEMAKER_gc-{REGION}_EXECUTION",
    "SecurityGroupId": "sg-0123456789abcdef0",
    "PrivateSubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0b1c2d3e4f5a60718",
    "InputsBucketName": f"gc-{ACCOUNT}-{REGION}-inputs",
    "OutputsBucketName": f"gc-{ACCOUNT}-{REGION}-outputs",
}
QUEUE_VALUES = {
    "StoppedEventsQueueUrl": QUEUE_URL,
    "StoppedEventsQueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:gc-components-stopped-jobs",
    "SchedulePolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/SAGEMAKER_gc-{REGION}_SCHEDULE",
    "EcrPolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/ECR_gc-{REGION}_READ_WRITE_DELETE",
    "ConsumeStoppedJobsPolicyArn": (
        f"arn:aws:iam::{ACCOUNT}:policy/SQS_gc-{REGION}_CONSUME_STOPPED_JOBS"
    ),
    "UndeliverableEventsAlarmName": "gc-components-stopped-jobs-undeliverable",
    "UndeliverableEventsQueueUrl": QUEUE_URL + "-undeliverable",
    "UnprocessedStoppedJobsAlarmName": "gc-components-stopped-jobs-dlq-not-empty",
    "StoppedJobsDeadLetterQueueUrl": QUEUE_URL + "-dlq",
}


def describe_stacks_response(values):
    return {
        "Stacks": [
            {
                "StackId": STACK_ID,
                "StackName": "gc",
                "CreationTime": datetime.datetime(2026, 11, 2, 9, 30, tzinfo=datetime.UTC),
                "StackStatus": "CREATE_COMPLETE",
                "Capabilities": ["CAPABILITY_NAMED_IAM"],
                "DisableRollback": False,
                "Outputs": [
                    {"OutputKey": key, "OutputValue": value, "Description": f"about {key}"}
                    for key, value in values.items()
                ],
            }
        ]
    }


@pytest.fixture
def stack_outputs(monkeypatch):
    """Makes build.py's CloudFormation client answer DescribeStacks with given outputs."""
    client = boto3.client(
        "cloudformation",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    monkeypatch.setattr(boto3.Session, "client", lambda self, *args, **kwargs: client)

    def answer(values):
        stubber.add_response(
            "describe_stacks", describe_stacks_response(values), {"StackName": "gc"}
        )
        stubber.activate()

    yield answer
    stubber.assert_no_pending_responses()


def test_prints_the_settings_then_the_queue_policies_and_alarms_as_comments(stack_outputs, capsys):
    stack_outputs(SETTINGS_VALUES | QUEUE_VALUES)
    assert build.main(["outputs", "--stack", "gc", "--region", REGION]) == 0
    lines = capsys.readouterr().out.splitlines()
    settings = [f"{s}={SETTINGS_VALUES[k]}" for s, k in GRAND_CHALLENGE_SETTINGS.items()]
    assert lines[: len(settings)] == settings
    notes = lines[len(settings) :]
    assert all(line.startswith("#") for line in notes)
    assert notes == [
        "# Grand Challenge's consumer reads the stopped-job messages from:",
        f"#   StoppedEventsQueueUrl={QUEUE_URL}",
        "# Attach to the Grand Challenge workers' IAM role:",
        f"#   SchedulePolicyArn={QUEUE_VALUES['SchedulePolicyArn']}",
        f"#   EcrPolicyArn={QUEUE_VALUES['EcrPolicyArn']}",
        f"#   ConsumeStoppedJobsPolicyArn={QUEUE_VALUES['ConsumeStoppedJobsPolicyArn']}",
        "# Watch: each alarm is in ALARM while the dead-letter queue after it holds messages:",
        "#   UndeliverableEventsAlarmName=gc-components-stopped-jobs-undeliverable",
        f"#   UndeliverableEventsQueueUrl={QUEUE_URL}-undeliverable",
        "#   UnprocessedStoppedJobsAlarmName=gc-components-stopped-jobs-dlq-not-empty",
        f"#   StoppedJobsDeadLetterQueueUrl={QUEUE_URL}-dlq",
    ]


def test_a_given_queue_prints_no_consumer_policy_or_its_alarm(stack_outputs, capsys):
    given = {
        key: value
        for key, value in QUEUE_VALUES.items()
        if key
        not in {
            "ConsumeStoppedJobsPolicyArn",
            "UnprocessedStoppedJobsAlarmName",
            "StoppedJobsDeadLetterQueueUrl",
        }
    }
    stack_outputs(SETTINGS_VALUES | given)
    assert build.main(["outputs", "--stack", "gc", "--region", REGION]) == 0
    out = capsys.readouterr().out
    assert "ConsumeStoppedJobsPolicyArn" not in out
    assert "UnprocessedStoppedJobsAlarmName" not in out
    assert "#   UndeliverableEventsAlarmName=" in out


def test_a_stack_without_the_settings_is_one_clear_line(stack_outputs, capsys):
    stack_outputs(QUEUE_VALUES)
    assert build.main(["outputs", "--stack", "gc", "--region", REGION]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "lacks outputs" in line and "is it this product?" in line


def test_every_key_printed_is_an_output_of_the_template():
    """The notes name outputs the template really has (a renamed output would vanish)."""
    outputs = rendered()["Outputs"]
    everything = {key: "x" for key in outputs}
    printed = {line.split("=", 1)[0].strip("# ") for line in env_block(everything) if "=" in line}
    notes = printed - set(GRAND_CHALLENGE_SETTINGS)
    assert notes <= set(outputs)
    assert notes >= set(QUEUE_VALUES) - {"StoppedEventsQueueArn"}
