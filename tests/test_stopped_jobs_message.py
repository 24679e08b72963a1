"""The EventBridge -> SQS contract: a real "SageMaker Training Job State Change" event goes
through the template's own rule pattern and input transformer (moto EventBridge delivering to
a moto SQS queue) and arrives as exactly the message Grand Challenge's consumer accepts."""

import json

import boto3
import pytest
from moto import mock_aws

from templates.events import BACKEND, TASK_NAME
from tests.helpers import rendered

PREFIX = "gc"
REGION = "eu-central-1"
UUID = "2d9a6c1e-5b7f-4e11-9a3c-0b1d2e3f4a5b"


def sagemaker_event_detail(job_name, status):
    """The detail of a training-job state change as SageMaker emits it."""
    return {
        "TrainingJobName": job_name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{job_name.lower()}",
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "HyperParameters": {},
        "AlgorithmSpecification": {
            "TrainingImage": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{PREFIX}/algorithms/algorithmimage:1",
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": False,
        },
        "RoleArn": f"arn:aws:iam::123456789012:role/SAGEMAKER_{PREFIX}-{REGION}_EXECUTION",
        "ResourceConfig": {
            "InstanceType": "ml.g4dn.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "VpcConfig": {"SecurityGroupIds": ["sg-0123"], "Subnets": ["subnet-0a", "subnet-0b"]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": 1732435200000,
        "TrainingStartTime": 1732435260000,
        "TrainingEndTime": 1732435500000,
        "LastModifiedTime": 1732435500000,
        "SecondaryStatusTransitions": [
            {"Status": "Starting", "StartTime": 1732435200000, "EndTime": 1732435260000},
            {"Status": status, "StartTime": 1732435500000, "StatusMessage": "Training job done"},
        ],
        "Environment": {},
        "Tags": {},
    }


def substitute_prefix(value):
    """Resolve the template's ``Fn::Sub`` of ``${NamePrefix}`` as CloudFormation would."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return value["Fn::Sub"].replace("${NamePrefix}", PREFIX)
    if isinstance(value, dict):
        return {key: substitute_prefix(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [substitute_prefix(inner) for inner in value]
    return value


@pytest.fixture
def delivered():
    """Put events through the template's rule; returns the SQS bodies that arrived."""
    rule = rendered()["Resources"]["StoppedTrainingJobsRule"]["Properties"]
    queue_target = next(t for t in rule["Targets"] if t["Id"] == "grand-challenge-queue")
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="gc-stopped-jobs")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="stopped", EventPattern=json.dumps(substitute_prefix(rule["EventPattern"]))
        )
        events.put_targets(
            Rule="stopped",
            Targets=[
                {
                    "Id": "queue",
                    "Arn": queue_arn,
                    "InputTransformer": queue_target["InputTransformer"],
                }
            ],
        )

        def deliver(*details):
            for detail in details:
                events.put_events(
                    Entries=[
                        {
                            "Source": "aws.sagemaker",
                            "DetailType": "SageMaker Training Job State Change",
                            "Detail": json.dumps(detail),
                        }
                    ]
                )
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            return [m["Body"] for m in messages.get("Messages", [])]

        yield deliver


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_stopped_job_arrives_as_exactly_the_consumer_message(delivered, status):
    detail = sagemaker_event_detail(f"{PREFIX}-A-{UUID}-00", status)
    [body] = delivered(detail)
    message = json.loads(body)
    assert message == {"task_name": TASK_NAME, "kwargs": {"event": detail, "backend": BACKEND}}
    assert list(message) == ["task_name", "kwargs"]  # the consumer rejects any other key


def test_running_jobs_and_other_deployments_jobs_are_not_delivered(delivered):
    """Prefixes "gc-prod", "gc-a" and "gcx" all start with "gc": none of their jobs (nor a
    name Grand Challenge never produces, nor a job still running) reaches gc's queue."""
    algorithm = sagemaker_event_detail(f"{PREFIX}-A-{UUID}-00", "Completed")
    evaluation = sagemaker_event_detail(f"{PREFIX}-E-{UUID}-01", "Failed")
    bodies = delivered(
        sagemaker_event_detail(f"{PREFIX}-A-{UUID}-02", "InProgress"),
        sagemaker_event_detail(f"gc-prod-A-{UUID}-00", "Completed"),
        sagemaker_event_detail(f"gc-prod-E-{UUID}-00", "Stopped"),
        sagemaker_event_detail(f"gc-a-A-{UUID}-00", "Completed"),
        sagemaker_event_detail(f"gcx-A-{UUID}-00", "Completed"),
        sagemaker_event_detail(f"{PREFIX}-X-{UUID}-00", "Completed"),
        sagemaker_event_detail(f"{PREFIX}-a-{UUID}-00", "Completed"),
        algorithm,
        evaluation,
    )
    assert [json.loads(body)["kwargs"]["event"] for body in bodies] == [algorithm, evaluation]


def test_the_rule_filters_on_exactly_this_deployments_job_names():
    pattern = substitute_prefix(
        rendered()["Resources"]["StoppedTrainingJobsRule"]["Properties"]["EventPattern"]
    )
    assert pattern["detail"]["TrainingJobName"] == [{"prefix": "gc-A-"}, {"prefix": "gc-E-"}]
