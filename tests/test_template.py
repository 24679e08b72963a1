"""The rendered template, checked statically against the reference (components-runtime.md).

One template serves every region; tests/test_zone_conditions.py resolves its zone slots."""

import ipaddress
import json
from collections import Counter
from resource import RUSAGE_CHILDREN, RUSAGE_SELF, getrusage

import pytest

import build
from build import (
    MAX_TEMPLATE_BODY_BYTES,
    PRODUCT_FILE,
    commercial_regions,
    render,
    render_all,
)
from templates.functions.zone_plan import plan
from templates.launch_role import FILE_NAME as LAUNCH_ROLE
from templates.network import VPC_PREFIX_LENGTHS
from templates.outputs import GRAND_CHALLENGE_SETTINGS
from tests.helpers import ROOT, SETTINGS, rendered


def resources_of_type(template, resource_type):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def statements(template, logical_id):
    resource = template["Resources"][logical_id]["Properties"]
    document = resource.get("PolicyDocument") or resource.get("KeyPolicy")
    return {statement.get("Sid"): statement for statement in document["Statement"]}


# Regions opened lately: cfn-lint knows which resource types and attributes each region has, and
# the template, the same bytes everywhere, must hold in every one of them.
NEWER_REGIONS = {"ap-southeast-5", "mx-central-1", "il-central-1", "ca-west-1"}


def test_cfn_lint_passes_both_templates_in_every_commercial_region():
    """Linted in chunks of regions by forked workers. The bound is on CPU time, which a shared
    machine does not stretch: 60 CPU seconds is 30 s of wall time on 2 idle cores (measured:
    ~27 CPU seconds for 34 regions)."""
    regions = commercial_regions()
    assert len(regions) >= 30 and set(regions) >= NEWER_REGIONS
    before = cpu_seconds()
    results = render_all(SETTINGS, regions)
    spent = cpu_seconds() - before
    assert {name: findings for name, (_, findings) in results.items()} == {
        PRODUCT_FILE: [],
        LAUNCH_ROLE: [],
    }
    assert spent < 60, f"linting {len(regions)} regions took {spent:.0f} CPU seconds"


def cpu_seconds():
    """CPU time of this process and of its finished children (the lint workers)."""
    own, children = (getrusage(who) for who in (RUSAGE_SELF, RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def test_the_chunked_lint_reports_what_any_chunk_finds(monkeypatch):
    """The zero above can fail: a resource type no region has is reported for each region,
    from the workers of both chunks."""
    broken = json.loads(render())
    broken["Resources"]["Probe"] = {"Type": "AWS::Not::AType", "Properties": {}}
    monkeypatch.setattr(build, "render", lambda: json.dumps(broken).encode())
    regions = commercial_regions()[: build.LINT_CHUNK + 1]  # two chunks
    results = render_all(SETTINGS, regions)
    assert results[PRODUCT_FILE][1] == [
        f"E3006 Resource type 'AWS::Not::AType' does not exist in '{region}' (Resources/Probe/Type)"
        for region in regions
    ]
    assert results[LAUNCH_ROLE][1] == []


# The inlined custom-resource code (about 37 KB as a JSON string) takes the template past the
# 51,200 bytes `deploy` accepts without a bucket, and the rest comes to about 65 KB;
# this budget keeps growth deliberate (CloudFormation's own limit is 1 MB).
TEMPLATE_BUDGET_BYTES = 105_000


def test_template_size_is_within_budget_and_the_readme_says_how_to_deploy():
    size = len(render())
    assert size < TEMPLATE_BUDGET_BYTES
    if size > MAX_TEMPLATE_BODY_BYTES:
        readme = (ROOT / "README.md").read_text()
        assert "--s3-bucket" in readme


def test_no_hard_coded_partition_or_region():
    text = render().decode()
    assert "arn:aws:" not in text
    assert [region for region in commercial_regions() if region in text] == []


def expected_inventory(zones):
    """Resource counts by type of a template with ``zones`` subnet slots.

    The reference's resources, plus: one custodian function (role, policy, log group) behind
    the custom resources, a daily schedule that re-syncs the S3 network ACL, TLS-only bucket
    policies, the stand-alone queue and logs bucket (conditional), one emptier per bucket.
    The training-jobs log group is a custom resource (created or adopted); the zone plan
    gives each picked zone's subnet its CIDR.
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
            "Custom::ZonePlan": 1,
        }
    )


ZONE_SLOTS = 6  # one per zone letter a-f: no commercial region has a seventh zone


def test_resource_inventory_matches_the_reference():
    template = rendered()
    assert Counter(r["Type"] for r in template["Resources"].values()) == expected_inventory(
        ZONE_SLOTS
    )


def test_the_zone_plan_reads_the_picked_zones_and_the_vpc_cidr():
    plan_resource = rendered()["Resources"]["ZonePlan"]
    assert plan_resource["Type"] == "Custom::ZonePlan"
    properties = plan_resource["Properties"]
    assert properties["Zones"] == {"Ref": "AvailabilityZones"}
    assert properties["VpcCidr"] == {"Ref": "VpcCidr"}
    assert "Condition" not in plan_resource  # every stack has at least one zone
    read = statements(rendered(), "CustodianPolicy")["ReadZoneIds"]
    assert (read["Action"], read["Resource"]) == (["ec2:DescribeAvailabilityZones"], ["*"])


@pytest.mark.parametrize("prefix_length", VPC_PREFIX_LENGTHS)
def test_subnets_are_one_sixteenth_of_the_vpc_whatever_its_size(prefix_length):
    """Every VPC size the VpcCidr parameter takes has 16 slices; zone ids az1 and az16 get
    the first and the last."""
    vpc = ipaddress.ip_network(f"10.0.0.0/{prefix_length}")
    zones = [
        {"ZoneName": "eu-west-1a", "ZoneId": "euw1-az1", "ZoneType": "availability-zone"},
        {"ZoneName": "eu-west-1b", "ZoneId": "euw1-az16", "ZoneType": "availability-zone"},
    ]
    cidrs = plan(zones, str(vpc), "eu-west-1")
    first, last = (ipaddress.ip_network(cidrs[key]) for key in ("CidrA", "CidrB"))
    assert first.prefixlen == last.prefixlen == prefix_length + 4
    assert first.network_address == vpc.network_address
    assert last.broadcast_address == vpc.broadcast_address


def test_security_group_allows_only_https_to_the_s3_prefix_list():
    template = rendered()
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
    template = rendered()
    endpoint = template["Resources"]["S3GatewayEndpoint"]["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["RouteTableIds"] == [
        {"Fn::If": [f"UseZone{slot}", {"Ref": f"PrivateRouteTable{slot}"}, {"Ref": "AWS::NoValue"}]}
        for slot in "ABCDEF"
    ]  # every picked zone's route table, and only those
    policy = {s["Sid"]: s for s in endpoint["PolicyDocument"]["Statement"]}
    assert set(policy) == {"ReadInputs", "WriteOutputs"}
    assert policy["ReadInputs"]["Action"] == ["s3:GetObject"]
    assert policy["WriteOutputs"]["Action"] == ["s3:PutObject"]
    for statement in policy.values():
        assert statement["Condition"] == {
            "StringEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["ExecutionRole", "Arn"]}}
        }


def test_flow_log_writes_hourly_hive_parquet_under_vpc_prefix():
    flow_log = rendered()["Resources"]["VpcFlowLog"]["Properties"]
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["DestinationOptions"] == {
        "FileFormat": "parquet",
        "HiveCompatiblePartitions": True,
        "PerHourPartition": True,
    }
    assert flow_log["LogDestination"]["Fn::Sub"][0] == "${LogsBucketArn}/vpc/${Vpc}/"


@pytest.mark.parametrize("bucket", ["InputsBucket", "OutputsBucket"])
def test_io_buckets_are_private_encrypted_logged_and_expire(bucket):
    properties = rendered()["Resources"][bucket]["Properties"]
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
    repositories = resources_of_type(rendered(), "AWS::ECR::Repository")
    for repository in repositories.values():
        properties = repository["Properties"]
        assert properties["ImageTagMutability"] == "IMMUTABLE"
        assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert properties["RepositoryName"]["Fn::Sub"][0] == "${NamePrefix}/${RepositoryName}"


def test_kms_key_rotates_and_logs_may_use_it_only_for_our_two_groups():
    template = rendered()
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
    ("CustodianPolicy", "ReadZoneIds"),
}
POLICIES = ["ExecutionPolicy", "SchedulePolicy", "LogsPolicy", "EcrReadWriteDeletePolicy"]


def test_every_reference_iam_statement_is_present_with_the_same_actions():
    template = rendered()
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
    template = rendered()
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
    template = rendered()
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
    template = rendered()
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


def subnet_arn(slot):
    arn = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:subnet/${Id}"
    return {"Fn::Sub": [arn, {"Id": {"Ref": f"PrivateSubnet{slot}"}}]}


def test_execution_role_attaches_to_our_subnets_and_sg_only_in_our_vpc():
    template = rendered()
    execution = statements(template, "ExecutionPolicy")
    attach = execution["AttachToVPC"]["Resource"]
    assert len(attach) == ZONE_SLOTS + 2  # the subnets, the security group, network interfaces
    assert attach[:ZONE_SLOTS] == [
        {"Fn::If": [f"UseZone{slot}", subnet_arn(slot), {"Ref": "AWS::NoValue"}]}
        for slot in "ABCDEF"
    ]
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


def test_outputs_cover_the_module_and_every_grand_challenge_setting():
    outputs = rendered()["Outputs"]
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
    template = rendered()
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
    assert set(interface["ParameterLabels"]) == set(template["Parameters"])


def test_rendering_is_deterministic():
    first = render()
    assert render() == first
    assert json.loads(first) == rendered()
    assert first == json.dumps(rendered(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
