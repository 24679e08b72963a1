"""Beyond the Terraform module, checked on the rendered template: the stack stands alone
(queue and logs bucket created when not given), every bucket it owns is emptied on delete,
the full instance list, the adopted log group, the VPC defaults locked down, SageMaker's
leftover network interfaces cleaned up, and every custom resource bounded in time."""

import json

from templates.iam import DEFAULT_INSTANCE_TYPES
from templates.storage import EMPTY_ON_DELETE_TAG
from tests.helpers import rendered

TEMPLATE = rendered()
RESOURCES = TEMPLATE["Resources"]


def custodian_statements():
    return {
        s["Sid"]: s
        for s in RESOURCES["CustodianPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    }


def test_queue_is_created_only_when_none_is_given():
    assert TEMPLATE["Conditions"]["CreateQueue"] == {
        "Fn::Equals": [{"Ref": "StoppedEventsQueueArn"}, ""]
    }
    assert TEMPLATE["Conditions"]["UseGivenQueue"] == {"Fn::Not": [{"Condition": "CreateQueue"}]}
    for logical_id in ("StoppedJobsQueue", "StoppedJobsDeadLetterQueue", "StoppedJobsQueuePolicy"):
        assert RESOURCES[logical_id]["Condition"] == "CreateQueue"
    target = next(
        t
        for t in RESOURCES["StoppedTrainingJobsRule"]["Properties"]["Targets"]
        if t["Id"] == "grand-challenge-queue"
    )
    assert target["Arn"] == {
        "Fn::If": [
            "CreateQueue",
            {"Fn::GetAtt": ["StoppedJobsQueue", "Arn"]},
            {"Ref": "StoppedEventsQueueArn"},
        ]
    }


def test_created_queue_is_encrypted_has_a_dead_letter_queue_and_takes_only_our_rule():
    queue = RESOURCES["StoppedJobsQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["StoppedJobsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["MessageRetentionPeriod"] == 1_209_600
    assert queue["VisibilityTimeout"] >= 900
    [statement] = RESOURCES["StoppedJobsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["StoppedTrainingJobsRule", "Arn"]}}
    }


def test_a_given_queue_gets_the_statement_its_owner_must_add():
    output = TEMPLATE["Outputs"]["QueuePolicyStatementToAdd"]
    assert output["Condition"] == "UseGivenQueue"
    text, variables = output["Value"]["Fn::Sub"]
    statement = json.loads(text)
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == "${QueueArn}"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "${Rule}"}}
    assert variables == {
        "QueueArn": {"Ref": "StoppedEventsQueueArn"},
        "Rule": {"Fn::GetAtt": ["StoppedTrainingJobsRule", "Arn"]},
    }


def test_logs_bucket_is_created_only_when_none_is_given_and_lets_only_our_logs_in():
    assert TEMPLATE["Conditions"]["CreateLogsBucket"] == {
        "Fn::Equals": [{"Ref": "LogsBucketName"}, ""]
    }
    bucket = RESOURCES["LogsBucket"]
    assert bucket["Condition"] == "CreateLogsBucket"
    properties = bucket["Properties"]
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert all(properties["PublicAccessBlockConfiguration"].values())
    [expiry] = properties["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == {"Ref": "LogsExpirationDays"}
    policy = RESOURCES["LogsBucketPolicy"]
    assert policy["Condition"] == "CreateLogsBucket"
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["S3ServerAccessLogs"]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    for sid in ("S3ServerAccessLogs", "VpcFlowLogsWrite", "VpcFlowLogsAclCheck"):
        conditions = statements[sid]["Condition"]
        assert conditions["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    sources = statements["S3ServerAccessLogs"]["Condition"]["ArnLike"]["aws:SourceArn"]
    # The ARNs of exactly the stack's I/O bucket names (whichever NameStyle), no reference.
    assert [source["Fn::Sub"][1]["Bucket"] for source in sources] == [
        RESOURCES[bucket]["Properties"]["BucketName"]
        for bucket in ("InputsBucket", "OutputsBucket")
    ]
    for sid in ("VpcFlowLogsWrite", "VpcFlowLogsAclCheck"):
        assert statements[sid]["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
        assert "aws:SourceArn" in statements[sid]["Condition"]["ArnLike"]
    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"


def test_every_bucket_the_stack_owns_is_tagged_and_emptied_before_it_is_deleted():
    resources = RESOURCES
    buckets = {k for k, v in resources.items() if v["Type"] == "AWS::S3::Bucket"}
    emptied = {
        v["Properties"]["BucketName"]["Ref"]: v
        for v in resources.values()
        if v["Type"] == "Custom::EmptyBucket"
    }
    assert set(emptied) == buckets == {"InputsBucket", "OutputsBucket", "LogsBucket"}
    for bucket, emptier in emptied.items():
        tags = resources[bucket]["Properties"]["Tags"]
        assert {"Key": EMPTY_ON_DELETE_TAG, "Value": {"Ref": "AWS::StackId"}} in tags
        assert emptier.get("Condition") == resources[bucket].get("Condition")
        assert emptier["Properties"]["ServiceTimeout"] == 3600


def test_the_custodian_may_empty_only_the_stacks_buckets_and_invoke_only_itself():
    statements = custodian_statements()
    for bucket, suffix in (("Inputs", "inputs"), ("Outputs", "outputs"), ("Logs", "logs")):
        resources = statements[f"Empty{bucket}Bucket"]["Resource"]
        name = RESOURCES[f"{bucket}Bucket"]["Properties"]["BucketName"]
        assert suffix in json.dumps(name)
        arn = "arn:${AWS::Partition}:s3:::${Bucket}"
        assert resources == [
            {"Fn::Sub": [arn, {"Bucket": name}]},
            {"Fn::Sub": [arn + "/*", {"Bucket": name}]},
        ]
    assert statements["EmptyInNewInvocation"]["Resource"] == [{"Fn::GetAtt": ["Custodian", "Arn"]}]


def test_default_instance_types_cover_everything_grand_challenge_may_request():
    requested_by_grand_challenge = {
        "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g4dn.4xlarge", "ml.g4dn.8xlarge",
        "ml.g4dn.12xlarge", "ml.g4dn.16xlarge",
        "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.8xlarge", "ml.g5.12xlarge",
        "ml.g5.16xlarge", "ml.g5.24xlarge", "ml.g5.48xlarge",
        "ml.p2.xlarge", "ml.p2.8xlarge", "ml.p2.16xlarge",
        "ml.p3.2xlarge", "ml.p3.8xlarge", "ml.p3.16xlarge", "ml.p3dn.24xlarge",
        "ml.p4d.24xlarge",
        "ml.m7i.large",
        "ml.r7i.large", "ml.r7i.xlarge", "ml.r7i.2xlarge", "ml.r7i.4xlarge", "ml.r7i.8xlarge",
        "ml.r7i.12xlarge", "ml.r7i.16xlarge", "ml.r7i.24xlarge", "ml.r7i.48xlarge",
    }  # fmt: skip
    assert len(requested_by_grand_challenge) == 32
    default = TEMPLATE["Parameters"]["AllowedInstanceTypes"]["Default"].split(",")
    assert sorted(default) == sorted(requested_by_grand_challenge) == sorted(DEFAULT_INSTANCE_TYPES)


def test_training_jobs_log_group_is_adopted_or_created_with_retention_and_key():
    groups = [
        v
        for v in RESOURCES.values()
        if v["Type"] == "AWS::Logs::LogGroup"
        and v["Properties"].get("LogGroupName") == "/aws/sagemaker/TrainingJobs"
    ]
    assert groups == []  # a plain LogGroup would fail where SageMaker already made it
    custom = RESOURCES["TrainingJobsLogGroup"]
    assert custom["Type"] == "Custom::TrainingJobsLogGroup"
    assert custom["Properties"]["LogGroupName"] == "/aws/sagemaker/TrainingJobs"
    assert custom["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert custom["Properties"]["KmsKeyArn"] == {"Fn::GetAtt": ["LogsKey", "Arn"]}
    owned = custodian_statements()["OwnTrainingJobsLogGroup"]["Resource"]
    assert all("log-group:/aws/sagemaker/TrainingJobs" in json.dumps(r) for r in owned)


def test_vpc_defaults_are_locked_down_by_a_custom_resource_scoped_to_them():
    assert RESOURCES["VpcLockdown"]["Properties"]["VpcId"] == {"Ref": "Vpc"}
    resources = custodian_statements()["LockDownVpcDefaults"]["Resource"]
    assert [r["Fn::Sub"][1]["Id"] for r in resources] == [
        {"Fn::GetAtt": ["Vpc", "DefaultSecurityGroup"]},
        {"Fn::GetAtt": ["Vpc", "DefaultNetworkAcl"]},
    ]
    # The default ACL then denies everything, so every subnet must have its own association.
    subnets = {k for k, v in RESOURCES.items() if v["Type"] == "AWS::EC2::Subnet"}
    associated = {
        v["Properties"]["SubnetId"]["Ref"]
        for v in RESOURCES.values()
        if v["Type"] == "AWS::EC2::SubnetNetworkAclAssociation"
    }
    assert associated == subnets


def test_leftover_network_interfaces_are_cleaned_before_subnets_and_group_go():
    cleanup = RESOURCES["NetworkInterfaceCleanup"]["Properties"]
    # Referring to the subnets and the group makes CloudFormation delete the cleanup first.
    assert cleanup["SecurityGroupId"] == {"Fn::GetAtt": ["ExecutionSecurityGroup", "GroupId"]}
    referenced = [entry["Fn::If"][1]["Ref"] for entry in cleanup["SubnetIds"]]
    assert sorted(referenced) == sorted(
        k for k, v in RESOURCES.items() if v["Type"] == "AWS::EC2::Subnet"
    )
    delete = custodian_statements()["DeleteJobNetworkInterfacesInOurVpc"]
    assert delete["Action"] == ["ec2:DeleteNetworkInterface"]
    assert list(delete["Condition"]["ArnEquals"]) == ["ec2:Vpc"]


def test_every_custom_resource_fails_within_an_hour_not_cloudformations_default():
    customs = [v for v in RESOURCES.values() if v["Type"].startswith("Custom::")]
    assert len(customs) >= 8
    for custom in customs:
        assert 60 <= custom["Properties"]["ServiceTimeout"] <= 3600
        assert custom["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["Custodian", "Arn"]}


def test_custodian_runs_outside_the_vpc_with_its_own_log_group():
    function = RESOURCES["Custodian"]["Properties"]
    assert "VpcConfig" not in function
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "CustodianLogGroup"}}
    assert RESOURCES["CustodianLogGroup"]["Properties"]["RetentionInDays"] > 0
    assert function["Timeout"] == 900


def test_every_repository_is_retained_and_deleted_by_its_own_custom_resource_unless_kept():
    repositories = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::ECR::Repository"}
    on_delete = {
        v["Properties"]["RepositoryName"]["Ref"]: v
        for v in RESOURCES.values()
        if v["Type"] == "Custom::RepositoryOnDelete"
    }
    assert set(on_delete) == set(repositories) and len(repositories) == 4
    for logical_id, repository in repositories.items():
        # CloudFormation would fail on images; the custom resource deletes or keeps instead.
        assert repository["DeletionPolicy"] == repository["UpdateReplacePolicy"] == "Retain"
        tags = repository["Properties"]["Tags"]
        assert {"Key": EMPTY_ON_DELETE_TAG, "Value": {"Ref": "AWS::StackId"}} in tags
        custom = on_delete[logical_id]
        assert custom["Condition"] == repository["Condition"]
        assert custom["Properties"]["KeepImages"] == {"Ref": "KeepImagesOnDelete"}
        assert custom["Properties"]["ServiceTimeout"] == 300
        assert "DeletionPolicy" not in custom


def test_the_custodian_may_delete_only_repositories_tagged_as_this_stacks():
    statements = custodian_statements()
    repositories = [
        {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"}
    ]
    delete = statements["DeleteOwnRepositories"]
    assert delete["Action"] == ["ecr:DeleteRepository"]
    assert delete["Resource"] == repositories
    assert delete["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/{EMPTY_ON_DELETE_TAG}": {"Ref": "AWS::StackId"}}
    }
    assert statements["ReadRepositoryTags"]["Action"] == ["ecr:ListTagsForResource"]
    assert statements["ReadRepositoryTags"]["Resource"] == repositories
    ecr_actions = [
        action
        for statement in statements.values()
        for action in statement["Action"]
        if action.startswith("ecr:")
    ]
    assert sorted(ecr_actions) == ["ecr:DeleteRepository", "ecr:ListTagsForResource"]


def test_the_ecr_policy_grants_no_bearer_token():
    document = RESOURCES["EcrReadWriteDeletePolicy"]["Properties"]["PolicyDocument"]
    assert "sts:GetServiceBearerToken" not in json.dumps(document)


def test_prefix_list_entries_are_readable_only_from_aws_managed_lists():
    statements = custodian_statements()
    read = statements["ReadAwsManagedPrefixLists"]
    assert read["Action"] == ["ec2:GetManagedPrefixListEntries"]
    assert read["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:aws:prefix-list/*"}
    ]
    stars = [s for s in statements.values() if "*" in s["Resource"]]
    assert "ec2:GetManagedPrefixListEntries" not in [a for s in stars for a in s["Action"]]


def test_the_logs_key_outlives_the_stack_but_its_alias_does_not():
    key = RESOURCES["LogsKey"]
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    assert "DeletionPolicy" not in RESOURCES["LogsKeyAlias"]  # a new stack may take the name


def test_eventbridge_may_write_only_to_the_stopped_jobs_log_group():
    text = RESOURCES["StoppedJobsPutLogsPolicy"]["Properties"]["PolicyDocument"]["Fn::Sub"]
    [statement] = json.loads(text)["Statement"]
    assert statement["Resource"].endswith(
        ":log-group:/aws/events/${NamePrefix}-components-stopped-jobs:*"
    )
    assert "/aws/events/*" not in text


def test_failed_async_invocations_land_in_a_queue_with_alarms():
    config = RESOURCES["CustodianInvokeConfig"]
    assert config["Properties"]["FunctionName"] == {"Ref": "Custodian"}
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["CustodianFailuresQueue", "Arn"]}
    assert config["DependsOn"] == ["CustodianPolicy"]  # Lambda checks the role may send
    queue = RESOURCES["CustodianFailuresQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 1_209_600
    send = custodian_statements()["ReportAsyncFailures"]
    assert send["Action"] == ["sqs:SendMessage"]
    assert send["Resource"] == [destination]
    alarms = {
        k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"
    }
    queue_alarm = alarms["CustodianFailuresQueueAlarm"]
    assert queue_alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert queue_alarm["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["CustodianFailuresQueue", "QueueName"]
    }
    errors_alarm = alarms["CustodianErrorsAlarm"]
    assert (errors_alarm["Namespace"], errors_alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    for alarm in alarms.values():
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    outputs = TEMPLATE["Outputs"]
    assert outputs["CustodianFailuresQueueUrl"]["Value"] == {"Ref": "CustodianFailuresQueue"}
    assert outputs["CustodianFailuresAlarmName"]["Value"] == {"Ref": "CustodianFailuresQueueAlarm"}


def test_the_daily_sync_rule_dead_letters_into_the_failures_queue():
    [target] = RESOURCES["S3NetworkAclDailySync"]["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["CustodianFailuresQueue", "Arn"]}}
    policy = RESOURCES["CustodianFailuresQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "CustodianFailuresQueue"}]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["S3NetworkAclDailySync", "Arn"]}}
    }


def test_only_the_logs_bucket_is_deleted_by_its_emptier():
    """Late access-log deliveries land only in the logs bucket: its emptier deletes it right
    after emptying; the I/O buckets are left to CloudFormation."""
    assert RESOURCES["EmptyLogsBucket"]["Properties"]["DeleteBucket"] == "true"
    for logical_id in ("EmptyInputsBucket", "EmptyOutputsBucket"):
        assert "DeleteBucket" not in RESOURCES[logical_id]["Properties"]
    statements = custodian_statements()
    may_delete_buckets = [
        sid for sid, s in statements.items() if "s3:DeleteBucket" in json.dumps(s["Action"])
    ]
    assert may_delete_buckets == ["EmptyLogsBucket"]


def test_every_alarm_notifies_the_operators_topic_when_one_is_given():
    alarms = {k: r for k, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) == 4
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [
            {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]}
        ], logical_id
    assert TEMPLATE["Parameters"]["AlarmTopicArn"]["Default"] == ""
