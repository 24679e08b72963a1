"""The stopped-jobs queue can be consumed and watched: the consumer policy (only when the stack
creates the queue), the rule targets' dead-letter queue and its policy (always), the alarms,
and the outputs naming them, resolved for concrete deployments and, for IAM, put through the
policy simulator (one Node run for this module)."""

import re

import pytest

from templates.events import CONSUMER_ACTIONS
from templates.names import PATTERNS
from templates.runtime import MAX_PREFIX_LENGTH
from tests.cfn_resolve import ACCOUNT, Deployment
from tests.helpers import rendered
from tests.iam_simulator import request, simulate

REGION = "eu-central-1"
WORKERS = f"arn:aws:iam::{ACCOUNT}:role/grand-challenge-workers"
GIVEN_QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:grand-challenge-acks-late-micro-short"
ALLOWED, DENIED = "Allowed", "ImplicitlyDenied"


def deploy(prefix, region=REGION, **parameters):
    """The one product template as a stack in ``region`` (two of its zones picked)."""
    zones = f"{region}a,{region}b"
    return Deployment(
        rendered(), region, {"NamePrefix": prefix, "AvailabilityZones": zones, **parameters}
    )


CREATED = deploy("gc")
SIBLING = deploy("gc-prod")
GIVEN = deploy("gc", StoppedEventsQueueArn=GIVEN_QUEUE)


def properties(deployment, logical_id):
    return deployment.resolve(deployment.template["Resources"][logical_id]["Properties"])


def outputs(deployment):
    return {
        key: deployment.resolve(output["Value"])
        for key, output in deployment.template["Outputs"].items()
        if "Condition" not in output or deployment.condition(output["Condition"])
    }


def consume(deployment, action, queue_arn):
    identity = [properties(deployment, "ConsumeStoppedJobsPolicy")["PolicyDocument"]]
    return request(WORKERS, action, queue_arn, identity)


def events_send(deployment, queue_id, rule_arn):
    queue_policy = {
        "StoppedJobsQueue": "StoppedJobsQueuePolicy",
        "UndeliverableEventsQueue": "UndeliverableEventsQueuePolicy",
    }[queue_id]
    return request(
        "events.amazonaws.com",
        "sqs:SendMessage",
        deployment.get_att(queue_id, "Arn"),
        (),
        properties(deployment, queue_policy)["PolicyDocument"],
        {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT},
    )


def iam_cases():
    queue, dlq = (
        CREATED.get_att(q, "Arn") for q in ("StoppedJobsQueue", "StoppedJobsDeadLetterQueue")
    )
    cases = {}
    for action in CONSUMER_ACTIONS:
        cases[f"consumer {action} on the queue"] = (ALLOWED, consume(CREATED, action, queue))
        cases[f"consumer {action} on its dead-letter queue"] = (
            ALLOWED,
            consume(CREATED, action, dlq),
        )
        cases[f"consumer {action} on a neighbour's queue"] = (
            DENIED,
            consume(CREATED, action, SIBLING.get_att("StoppedJobsQueue", "Arn")),
        )
    for action in (
        "sqs:SendMessage",
        "sqs:PurgeQueue",
        "sqs:SetQueueAttributes",
        "sqs:DeleteQueue",
    ):
        cases[f"consumer {action} on the queue"] = (DENIED, consume(CREATED, action, queue))
    ours, theirs = (d.get_att("StoppedTrainingJobsRule", "Arn") for d in (CREATED, SIBLING))
    for queue_id in ("StoppedJobsQueue", "UndeliverableEventsQueue"):
        cases[f"our rule sends to {queue_id}"] = (ALLOWED, events_send(CREATED, queue_id, ours))
        cases[f"a neighbour's rule sends to {queue_id}"] = (
            DENIED,
            events_send(CREATED, queue_id, theirs),
        )
    cases["our rule sends to the dead-letter queue beside a given queue"] = (
        ALLOWED,
        events_send(GIVEN, "UndeliverableEventsQueue", ours),
    )
    return cases


CASES = iam_cases()


@pytest.fixture(scope="module")
def results():
    return simulate({key: case for key, (_, case) in CASES.items()})


@pytest.mark.parametrize("key", sorted(CASES))
def test_iam_decision(results, key):
    expected, _ = CASES[key]
    assert results[key] == expected


def test_consumer_policy_exists_only_with_the_created_queue():
    assert CREATED.exists("ConsumeStoppedJobsPolicy")
    assert not GIVEN.exists("ConsumeStoppedJobsPolicy")
    [statement] = properties(CREATED, "ConsumeStoppedJobsPolicy")["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == sorted(
        [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        ]
    )
    name = properties(CREATED, "ConsumeStoppedJobsPolicy")["ManagedPolicyName"]
    assert name == "SQS_gc-eu-central-1_CONSUME_STOPPED_JOBS"
    other_region = properties(deploy("gc", "us-east-1"), "ConsumeStoppedJobsPolicy")
    assert other_region["ManagedPolicyName"] == "SQS_gc-us-east-1_CONSUME_STOPPED_JOBS"


@pytest.mark.parametrize("deployment", [CREATED, GIVEN], ids=["created queue", "given queue"])
def test_both_rule_targets_dead_letter_to_the_undeliverable_events_queue(deployment):
    rule = properties(deployment, "StoppedTrainingJobsRule")
    dead_letters = deployment.get_att("UndeliverableEventsQueue", "Arn")
    assert [t["DeadLetterConfig"]["Arn"] for t in rule["Targets"]] == [dead_letters] * 2
    queue = properties(deployment, "UndeliverableEventsQueue")
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    [statement] = properties(deployment, "UndeliverableEventsQueuePolicy")["PolicyDocument"][
        "Statement"
    ]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": deployment.get_att("StoppedTrainingJobsRule", "Arn")}
    }


@pytest.mark.parametrize(
    "deployment, alarm, queue",
    [
        (CREATED, "UndeliverableEventsAlarm", "UndeliverableEventsQueue"),
        (GIVEN, "UndeliverableEventsAlarm", "UndeliverableEventsQueue"),
        (CREATED, "UnprocessedStoppedJobsAlarm", "StoppedJobsDeadLetterQueue"),
    ],
)
def test_an_alarm_fires_while_a_dead_letter_queue_holds_anything(deployment, alarm, queue):
    alarm_properties = properties(deployment, alarm)
    assert alarm_properties["Namespace"] == "AWS/SQS"
    assert alarm_properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm_properties["Dimensions"] == [
        {"Name": "QueueName", "Value": deployment.get_att(queue, "QueueName")}
    ]
    assert alarm_properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm_properties["Threshold"] == 0
    assert alarm_properties["TreatMissingData"] == "notBreaching"


def test_no_unprocessed_alarm_for_a_given_queue():
    assert not GIVEN.exists("UnprocessedStoppedJobsAlarm")


@pytest.mark.parametrize("region", [REGION, "us-east-1"])
def test_outputs_name_the_created_queue_its_policy_and_what_to_watch(region):
    """The same template in two regions: each stack's outputs name its own region's queue."""
    created = deploy("gc", region)
    values = outputs(created)
    url = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/gc-components-stopped-jobs"
    assert values["StoppedEventsQueueUrl"] == url
    assert values["StoppedEventsQueueArn"] == (
        f"arn:aws:sqs:{region}:{ACCOUNT}:gc-components-stopped-jobs"
    )
    assert values["ConsumeStoppedJobsPolicyArn"] == (
        f"arn:aws:iam::{ACCOUNT}:policy/SQS_gc-{region}_CONSUME_STOPPED_JOBS"
    )
    assert values["StoppedJobsDeadLetterQueueUrl"] == url + "-dlq"
    assert values["UnprocessedStoppedJobsAlarmName"] == "gc-components-stopped-jobs-dlq-not-empty"
    assert values["UndeliverableEventsQueueUrl"] == url + "-undeliverable"
    assert values["UndeliverableEventsAlarmName"] == "gc-components-stopped-jobs-undeliverable"


def test_outputs_derive_a_given_queue_url_from_its_arn():
    values = outputs(GIVEN)
    assert values["StoppedEventsQueueArn"] == GIVEN_QUEUE
    assert values["StoppedEventsQueueUrl"] == (
        f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/grand-challenge-acks-late-micro-short"
    )
    assert "ConsumeStoppedJobsPolicyArn" not in values
    assert "StoppedJobsDeadLetterQueueUrl" not in values
    assert "UnprocessedStoppedJobsAlarmName" not in values
    assert values["UndeliverableEventsAlarmName"] == "gc-components-stopped-jobs-undeliverable"


# In tests/test_names.py's style (its LIMITS table belongs to another file): the worst case
# (a 21-character prefix, the longest region botocore knows) fits each service's limit.
NEW_NAME_LIMITS = {
    "consume_stopped_jobs_policy": (128, r"[\w+=,.@-]+"),
    "undeliverable_events_queue": (80, r"[A-Za-z0-9_-]+"),
    "undeliverable_events_alarm": (255, r"[^\x00-\x1f]+"),
    "unprocessed_messages_alarm": (255, r"[^\x00-\x1f]+"),
}


@pytest.mark.parametrize("key", sorted(NEW_NAME_LIMITS))
def test_worst_case_new_name_fits_its_service_limit(key):
    from tests.test_names import LONGEST_REGION, resolve

    assert len(resolve("${NamePrefix}", prefix="g" * MAX_PREFIX_LENGTH)) == 21
    limit, characters = NEW_NAME_LIMITS[key]
    name = resolve(PATTERNS[key], region=LONGEST_REGION)
    assert len(name) <= limit and re.fullmatch(characters, name), name
    if key.endswith("_policy"):  # IAM names are global per account: they carry the region
        assert "${AWS::Region}" in PATTERNS[key]
