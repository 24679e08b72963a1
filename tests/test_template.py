"""The rendered templates, checked statically against the reference (components-runtime.md)."""

import json
from collections import Counter

import pytest

from build import MAX_TEMPLATE_BODY_BYTES, lint, render
from templates.outputs import GRAND_CHALLENGE_SETTINGS
from tests.helpers import REGIONS, ROOT, SETTINGS, rendered


def resources_of_type(template, resource_type):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def statements(template, logical_id):
    resource = template["Resources"][logical_id]["Properties"]
    document = resource.get("PolicyDocument") or resource.get("KeyPolicy")
    return {statement.get("Sid"): statement for statement in document["Statement"]}


@pytest.mark.parametrize("region", REGIONS)
def test_cfn_lint_has_no_errors_or_warnings(region):
    assert lint(region, render(region, SETTINGS["regions"][region])) == []


# The inlined custom-resource code (about 35 KB as a JSON string) takes the templates past the
# 51,200 bytes `deploy` accepts without a bucket, and the resources alone come to about 58 KB;
# this budget keeps growth deliberate (CloudFormation's own limit is 1 MB).
TEMPLATE_BUDGET_BYTES = 105_000


@pytest.mark.parametrize("region", REGIONS)
def test_template_size_is_within_budget_and_the_readme_says_how_to_deploy(region):
    size = len(render(region, SETTINGS["regions"][region]))
    assert size < TEMPLATE_BUDGET_BYTES
    if size > MAX_TEMPLATE_BODY_BYTES:
        readme = (ROOT / "README.md").read_text()
        assert "--s3-bucket" in readme


@pytest.mark.parametrize("region", REGIONS)
def test_no_hard_coded_partition(region):
    assert "arn:aws:" not in render(region, SETTINGS["regions"][region]).decode()


def expected_inventory(zones):
    """Resource counts by type for a region with ``zones`` availability zones.

    The reference's resources, plus: one custodian function (role, policy, log group) behind
    the custom resources, a daily schedule that re-syncs the S3 network ACL, TLS-only bucket
    policies, the stand-alone queue and logs bucket (conditional), one emptier per bucket.
    The training-jobs log group is a custom resource (created or adopted).
    Deviation: one network ACL shared by the private subnets (identical rules)."""
    return Counter(
        {
            "AWS::EC2::VPC": 1,
            "AWS::EC2::Subnet": zones,
            "AWS::EC2::RouteTable": zones,
            "AWS::EC2::SubnetRouteTableAssociation": zones,
            "AWS::EC2::NetworkAcl": 1,
            "AWS::EC2::SubnetNetworkAclAssociation": zones,
            "AWS::EC2::VPCEndpoint": 1,
            "AWS::EC2::FlowLog": 1,
            "AWS::EC2::SecurityGroup": 1,
            "AWS::S3::Bucket": 3,
            "AWS::S3::BucketPolicy": 3,
            # + the rule targets' dead-letter queue, the custodian's failure destination
            "AWS::SQS::Queue": 4,
            "AWS::SQS::QueuePolicy": 3,
            "AWS::ECR::Repository": 4,
            "AWS::IAM::ManagedPolicy": 5,  # + the stand-alone queue's consumer policy
            "AWS::IAM::Role": 2,
            "AWS::IAM::Policy": 1,
            "AWS::KMS::Key": 1,
            "AWS::KMS::Alias": 1,
            "AWS::Logs::LogGroup": 2,
            "AWS::Logs::ResourcePolicy": 1,
            "AWS::Events::Rule": 2,
            "AWS::CloudWatch::Alarm": 4,  # one per dead-letter queue, custodian errors
            "AWS::Lambda::EventInvokeConfig": 1,
            "AWS::Lambda::Function": 1,
            "AWS::Lambda::Permission": 1,
            "Custom::S3NetworkAclEntries": 1,
            "Custom::TrainingJobsLogGroup": 1,
            "Custom::EmptyBucket": 3,
            "Custom::VpcLockdown": 1,
            "Custom::NetworkInterfaceCleanup": 1,
            "Custom::RepositoryOnDelete": 4,
        }
    )


@pytest.mark.parametrize("region, zones", [("eu-central-1", 3), ("us-east-1", 6)])
def test_resource_inventory_matches_the_reference(region, zones):
    template = rendered(region)
    assert Counter(r["Type"] for r in template["Resources"].values()) == expected_inventory(zones)


def test_one_subnet_per_zone_pinned_by_zone_id_with_fixed_slices():
    template = rendered("us-east-1")
    subnets = resources_of_type(template, "AWS::EC2::Subnet")
    zone_ids = SETTINGS["regions"]["us-east-1"]
    assert sorted(s["Properties"]["AvailabilityZoneId"] for s in subnets.values()) == zone_ids
    for subnet in subnets.values():
        properties = subnet["Properties"]
        index = zone_ids.index(properties["AvailabilityZoneId"])
        select = properties["CidrBlock"]["Fn::Select"]
        assert select[0] == index  # slice = zone index, so dropping a zone renumbers nothing
        assert select[1]["Fn::Cidr"][0] == {"Ref": "VpcCidr"}
        assert select[1]["Fn::Cidr"][1] == 16
        assert (
            subnet["Condition"]
            == f"UseZone{properties['AvailabilityZoneId'].title().replace('-', '')}"
        )
        assert properties["MapPublicIpOnLaunch"] is False


def evaluate_host_bits(expression, prefix_length):
    """Evaluate the nested Fn::If that picks the slice size for a VPC prefix length."""
    while isinstance(expression, dict):
        condition, when_true, when_false = expression["Fn::If"]
        expression = when_true if condition == f"VpcPrefix{prefix_length}" else when_false
    return int(expression)


@pytest.mark.parametrize("prefix_length", range(16, 25))
def test_subnets_are_one_sixteenth_of_the_vpc_whatever_its_size(prefix_length):
    template = rendered("eu-west-1")
    subnet = next(iter(resources_of_type(template, "AWS::EC2::Subnet").values()))
    host_bits = subnet["Properties"]["CidrBlock"]["Fn::Select"][1]["Fn::Cidr"][2]
    assert 32 - evaluate_host_bits(host_bits, prefix_length) == prefix_length + 4
    if prefix_length < 24:
        condition = template["Conditions"][f"VpcPrefix{prefix_length}"]["Fn::Equals"]
        assert condition[1] == str(prefix_length)


def test_security_group_allows_only_https_to_the_s3_prefix_list():
    template = rendered("eu-central-1")
    group = template["Resources"]["ExecutionSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    assert group["SecurityGroupEgress"] == [
        {
            "Description": "To S3 gateway",
            "DestinationPrefixListId": {"Fn::GetAtt": ["S3NetworkAclEntries", "PrefixListId"]},
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]


def test_s3_endpoint_only_serves_the_execution_role_on_job_io():
    template = rendered("eu-central-1")
    endpoint = template["Resources"]["S3GatewayEndpoint"]["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert len(endpoint["RouteTableIds"]) == 3
    policy = {s["Sid"]: s for s in endpoint["PolicyDocument"]["Statement"]}
    assert set(policy) == {"ReadInputs", "WriteOutputs"}
    assert policy["ReadInputs"]["Action"] == ["s3:GetObject"]
    assert policy["WriteOutputs"]["Action"] == ["s3:PutObject"]
    for statement in policy.values():
        assert statement["Condition"] == {
            "StringEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["ExecutionRole", "Arn"]}}
        }


def test_flow_log_writes_hourly_hive_parquet_under_vpc_prefix():
    flow_log = rendered("eu-central-1")["Resources"]["VpcFlowLog"]["Properties"]
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["DestinationOptions"] == {
        "FileFormat": "parquet",
        "HiveCompatiblePartitions": True,
        "PerHourPartition": True,
    }
    assert flow_log["LogDestination"]["Fn::Sub"][0] == "${LogsBucketArn}/vpc/${Vpc}/"


@pytest.mark.parametrize("bucket", ["InputsBucket", "OutputsBucket"])
def test_io_buckets_are_private_encrypted_logged_and_expire(bucket):
    properties = rendered("eu-central-1")["Resources"][bucket]["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert properties["VersioningConfiguration"] == {"Status": "Suspended"}
    assert properties["AccelerateConfiguration"] == {"AccelerationStatus": "Suspended"}
    assert properties["LoggingConfiguration"]["DestinationBucketName"] == {
        "Fn::If": [
            "CreateLogsBucket",
            {"Fn::GetAtt": ["EmptyLogsBucket", "BucketName"]},
            {"Ref": "LogsBucketName"},
        ]
    }
    rules = properties["LifecycleConfiguration"]["Rules"]
    expiry = next(rule for rule in rules if "ExpirationInDays" in rule)
    assert expiry["ExpirationInDays"] == 7
    assert expiry["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    assert expiry["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert any(rule.get("ExpiredObjectDeleteMarker") for rule in rules)


def test_repositories_are_immutable_scanned_and_under_the_prefix():
    repositories = resources_of_type(rendered("eu-central-1"), "AWS::ECR::Repository")
    for repository in repositories.values():
        properties = repository["Properties"]
        assert properties["ImageTagMutability"] == "IMMUTABLE"
        assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert properties["RepositoryName"]["Fn::Sub"][0] == "${NamePrefix}/${RepositoryName}"


def test_kms_key_rotates_and_logs_may_use_it_only_for_our_two_groups():
    template = rendered("eu-central-1")
    assert template["Resources"]["LogsKey"]["Properties"]["EnableKeyRotation"] is True
    policy = statements(template, "LogsKey")
    logs_statement = policy["CloudWatchLogsUsesForOurGroups"]
    assert logs_statement["Principal"] == {
        "Service": {"Fn::Sub": "logs.${AWS::Region}.${AWS::URLSuffix}"}
    }
    groups = logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert [g["Fn::Sub"].rsplit(":", 1)[-1] for g in groups] == [
        "/aws/sagemaker/TrainingJobs",
        "/aws/events/${NamePrefix}-components-stopped-jobs",
    ]
    alias = template["Resources"]["LogsKeyAlias"]["Properties"]["AliasName"]
    assert alias == {"Fn::Sub": "alias/KMS_${NamePrefix}-/aws/sagemaker/TrainingJobs_ENCRYPT_LOGS"}


# Reference statements: (policy, Sid) -> actions, straight from components-runtime.md.
REFERENCE_STATEMENTS = {
    ("ExecutionPolicy", "GetAuthorizationToken"): ["ecr:GetAuthorizationToken"],
    ("ExecutionPolicy", "ReadInputs"): ["s3:GetObject"],
    ("ExecutionPolicy", "WriteOutputs"): ["s3:PutObject"],
    ("ExecutionPolicy", "GetRepositoryContents"): [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:DescribeImages",
        "ecr:GetDownloadUrlForLayer",
    ],
    # Split from the reference's one statement: writes only to this deployment's streams.
    ("ExecutionPolicy", "FindLogStreams"): ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
    ("ExecutionPolicy", "PutLogEvents"): ["logs:CreateLogStream", "logs:PutLogEvents"],
    ("ExecutionPolicy", "PutMetrics"): ["cloudwatch:PutMetricData"],
    ("ExecutionPolicy", "ViewVPCInfo"): [
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
    ],
    ("ExecutionPolicy", "AttachToVPC"): ["ec2:CreateNetworkInterface"],
    ("ExecutionPolicy", "DetachFromVPC"): ["ec2:DeleteNetworkInterface"],
    ("ExecutionPolicy", "ModifyInterfaces"): [
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterfacePermission",
    ],
    ("SchedulePolicy", "GetJobLogs"): ["logs:DescribeLogStreams", "logs:GetLogEvents"],
    ("SchedulePolicy", "PassExecutionRole"): ["iam:PassRole"],
    ("SchedulePolicy", "CreateSageMakerJobs"): ["sagemaker:CreateTrainingJob"],
    ("SchedulePolicy", "ReadStopSageMakerJobs"): [
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
    ],
    ("SchedulePolicy", "GetMetricData"): ["cloudwatch:GetMetricData"],
    ("SchedulePolicy", "ReadWriteDeleteInputs"): [
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    ],
    ("SchedulePolicy", "ReadDeleteOutputs"): [
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListMultipartUploadParts",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    ],
    ("LogsPolicy", "GetJobLogs"): ["logs:DescribeLogStreams", "logs:GetLogEvents"],
    ("LogsPolicy", "DescribeSageMakerJobs"): ["sagemaker:DescribeTrainingJob"],
    ("LogsPolicy", "GetMetricData"): ["cloudwatch:GetMetricData"],
    # sts:GetServiceBearerToken (in the module) serves only ECR Public and CodeArtifact.
    ("EcrReadWriteDeletePolicy", "GetAuthorizationToken"): ["ecr:GetAuthorizationToken"],
    ("EcrReadWriteDeletePolicy", "ReadWriteDeleteRepositories"): [
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetRepositoryPolicy",
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchDeleteImage",
    ],
}
# Where the reference itself grants "*": these actions have no resource-level permissions.
STAR_RESOURCES = {
    ("ExecutionPolicy", "GetAuthorizationToken"),
    ("ExecutionPolicy", "PutMetrics"),
    ("ExecutionPolicy", "ViewVPCInfo"),
    ("SchedulePolicy", "GetMetricData"),
    ("LogsPolicy", "GetMetricData"),
    ("EcrReadWriteDeletePolicy", "GetAuthorizationToken"),
    ("LogsKey", "AccountAdministers"),  # a key policy's Resource is always the key itself
    ("LogsKey", "CloudWatchLogsUsesForOurGroups"),
    ("CustodianPolicy", "ReadS3PrefixListAndAcls"),  # Describe* take no resource ARN
    ("CustodianPolicy", "FindLogGroups"),
    ("CustodianPolicy", "FindVpcDefaults"),
    ("CustodianPolicy", "FindJobNetworkInterfaces"),
}
POLICIES = ["ExecutionPolicy", "SchedulePolicy", "LogsPolicy", "EcrReadWriteDeletePolicy"]


@pytest.mark.parametrize("region", ["eu-central-1", "us-east-1"])
def test_every_reference_iam_statement_is_present_with_the_same_actions(region):
    template = rendered(region)
    found = {
        (policy, sid): statement["Action"]
        for policy in POLICIES
        for sid, statement in statements(template, policy).items()
    }
    assert found == REFERENCE_STATEMENTS
    for policy in POLICIES:
        for statement in statements(template, policy).values():
            assert statement["Effect"] == "Allow"


def test_no_star_resource_except_where_the_reference_has_it():
    template = rendered("us-east-1")
    stars = set()
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        document = properties.get("PolicyDocument") or properties.get("KeyPolicy")
        if not isinstance(document, dict):
            continue
        if "Fn::Sub" in document:  # a policy given as a JSON string
            document = json.loads(document["Fn::Sub"])
        for statement in document["Statement"]:
            resources = statement.get("Resource", [])
            if "*" in (resources if isinstance(resources, list) else [resources]):
                stars.add((logical_id, statement.get("Sid")))
    assert stars == STAR_RESOURCES


def test_create_training_job_carries_every_condition():
    template = rendered("us-east-1")
    statement = statements(template, "SchedulePolicy")["CreateSageMakerJobs"]
    jobs = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/"
    assert statement["Resource"] == [
        {"Fn::Sub": f"{jobs}${{NamePrefix}}-{model}-????????-????-????-????-????????????-??"}
        for model in ("a", "e")
    ]
    condition = statement["Condition"]
    assert condition["NumericLessThanEquals"] == {
        "sagemaker:MaxRuntimeInSeconds": {"Ref": "MaximumRuntimeSeconds"}
    }
    assert condition["Null"] == {
        "sagemaker:VpcSubnets": "false",
        "sagemaker:VpcSecurityGroupIds": "false",
        "sagemaker:InstanceTypes": "false",
    }
    all_values = condition["ForAllValues:StringEquals"]
    subnets = [entry["Fn::If"][1]["Ref"] for entry in all_values["sagemaker:VpcSubnets"]]
    assert subnets == sorted(resources_of_type(template, "AWS::EC2::Subnet"))
    assert all_values["sagemaker:VpcSecurityGroupIds"] == [
        {"Fn::GetAtt": ["ExecutionSecurityGroup", "GroupId"]}
    ]
    assert all_values["sagemaker:InstanceTypes"] == {"Ref": "AllowedInstanceTypes"}
    assert condition["Bool"] == {"sagemaker:EnableRemoteDebug": "false"}


def test_pass_role_only_on_the_execution_role_and_logs_scoped_to_our_streams():
    template = rendered("eu-central-1")
    schedule = statements(template, "SchedulePolicy")
    assert schedule["PassExecutionRole"]["Resource"] == [{"Fn::GetAtt": ["ExecutionRole", "Arn"]}]
    assert schedule["PassExecutionRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    streams = [r["Fn::Sub"].split(":log-group:")[1] for r in schedule["GetJobLogs"]["Resource"]]
    ours = [f"${{NamePrefix}}-{m}-????????-????-????-????-????????????-??/*" for m in "AE"]
    group = "/aws/sagemaker/TrainingJobs:log-stream:"
    assert streams == [group, *(group + stream for stream in ours)]
    assert statements(template, "LogsPolicy")["GetJobLogs"] == schedule["GetJobLogs"]
    put = statements(template, "ExecutionPolicy")["PutLogEvents"]["Resource"]
    assert [r["Fn::Sub"].split(":log-group:")[1] for r in put] == [group + s for s in ours]


def test_execution_role_attaches_to_our_subnets_and_sg_only_in_our_vpc():
    template = rendered("eu-central-1")
    execution = statements(template, "ExecutionPolicy")
    attach = execution["AttachToVPC"]["Resource"]
    assert len(attach) == 3 + 2  # three subnets, the security group, network interfaces
    for sid in ("ModifyInterfaces", "DetachFromVPC"):
        vpc = execution[sid]["Condition"]["ArnEquals"]["ec2:Vpc"]
        assert vpc["Fn::Sub"][0].endswith(":vpc/${Id}")
        assert vpc["Fn::Sub"][1] == {"Id": {"Ref": "Vpc"}}
    role = template["Resources"]["ExecutionRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(
        ":training-job/${NamePrefix}-?-????????-????-????-????-????????????-??"
    )
    assert template["Resources"]["ExecutionPolicy"]["Properties"]["Roles"] == [
        {"Ref": "ExecutionRole"}
    ]


@pytest.mark.parametrize("region", REGIONS)
def test_outputs_cover_the_module_and_every_grand_challenge_setting(region):
    outputs = rendered(region)["Outputs"]
    module_outputs = {
        "EcrRepositories",
        "RegistryUrl",
        "RegistryPrefix",
        "EcrPolicyArn",
        "LogsPolicyArn",
        "SchedulePolicyArn",
        "ExecutionRoleArn",
        "InputsBucketName",
        "OutputsBucketName",
        "PrivateSubnetIds",
        "SecurityGroupId",
        "StoppedTrainingJobsRuleArn",
    }
    assert module_outputs | set(GRAND_CHALLENGE_SETTINGS.values()) <= set(outputs)
    for setting, key in GRAND_CHALLENGE_SETTINGS.items():
        assert outputs[key]["Description"].startswith(setting)
    assert outputs["PrivateSubnetIds"]["Value"]["Fn::Join"][0] == ","  # no spaces
    assert outputs["RegistryUrl"]["Value"] == {
        "Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"
    }
    assert outputs["RegistryPrefix"]["Value"] == {"Ref": "NamePrefix"}


def test_console_groups_and_labels_cover_every_parameter():
    template = rendered("us-west-2")
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
    assert set(interface["ParameterLabels"]) == set(template["Parameters"])


def test_rendering_is_deterministic():
    region = "us-west-2"
    first = render(region, SETTINGS["regions"][region])
    assert render(region, SETTINGS["regions"][region]) == first
    assert json.loads(first) == rendered(region)
