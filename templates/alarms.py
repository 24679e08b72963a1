"""Alarms: "something failed unattended" alarms, and where they notify.

Every alarm turns on as soon as one datapoint is above zero (a message waiting in a
dead-letter queue, an error) and treats missing data as fine (idle queues report nothing).
They notify the SNS topic the operator names in ``AlarmTopicArn``; with none, they only change
state, which EventBridge reports as "CloudWatch Alarm State Change" events.
"""

from troposphere import Equals, If, Not, NoValue, Ref, cloudwatch

from .stack import Stack

GROUP = "Monitoring"
PERIOD_SECONDS = 300
TOPIC_ARN_PATTERN = r"^$|^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$"


def _topic(stack: Stack):
    """``[topic]`` when ``AlarmTopicArn`` is given, ``[]`` otherwise (the parameter once)."""
    if "AlarmTopicArn" not in stack.template.parameters:
        stack.add_parameter(
            "AlarmTopicArn",
            GROUP,
            "SNS topic for alarms (empty: none)",
            Type="String",
            Default="",
            AllowedPattern=TOPIC_ARN_PATTERN,
            ConstraintDescription="must be empty or an SNS topic ARN",
            Description="Notified when events, messages or custodian runs fail unattended.",
        )
        stack.template.add_condition("HasAlarmTopic", Not(Equals(Ref("AlarmTopicArn"), "")))
    return [If("HasAlarmTopic", Ref("AlarmTopicArn"), NoValue)]


def add_alarm(stack: Stack, logical_id, description, metric, dimension, **attributes):
    """``metric``: (namespace, name, statistic); ``dimension``: (name, value)."""
    namespace, metric_name, statistic = metric
    return stack.template.add_resource(
        cloudwatch.Alarm(
            logical_id,
            AlarmDescription=description,
            AlarmActions=_topic(stack),
            Namespace=namespace,
            MetricName=metric_name,
            Statistic=statistic,
            Dimensions=[cloudwatch.MetricDimension(Name=dimension[0], Value=dimension[1])],
            Period=PERIOD_SECONDS,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            **attributes,
        )
    )
