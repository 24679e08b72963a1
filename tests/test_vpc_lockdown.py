"""vpc_lockdown: CloudFormation events in, the response PUT and the VPC's defaults out (moto EC2)."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from templates.functions import vpc_lockdown
from templates.inline import inline_source
from tests.conftest import FakeContext, answer_of, make_event, spy_on_clients

MISSING_VPC = "vpc-0000000000000dead"


@pytest.fixture(scope="module")
def ec2():
    """One in-process moto EC2 for the module; every test builds its own fresh VPC in it."""
    with mock_aws():
        yield boto3.client("ec2", region_name="eu-central-1")


@pytest.fixture
def api(monkeypatch):
    """The handler's EC2 calls by operation name; ``api.faults[name]`` makes calls raise."""
    return spy_on_clients(monkeypatch, vpc_lockdown)


def default_group(ec2, vpc_id):
    return ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"][0]


def default_acl(ec2, vpc_id):
    return ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"][0]


def acl_rules(ec2, vpc_id):
    return sorted(
        (entry["Egress"], entry["RuleNumber"], entry["RuleAction"])
        for entry in default_acl(ec2, vpc_id)["Entries"]
    )


@pytest.fixture
def vpc(ec2):
    """A VPC whose defaults allow traffic: AWS's default rules plus some added ones."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"][
        "VpcId"
    ]
    group_id = default_group(ec2, vpc_id)["GroupId"]
    other_group = ec2.create_security_group(GroupName="other", Description="x", VpcId=vpc_id)
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]},  # AWS's default
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "ssh"}],
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "UserIdGroupPairs": [{"GroupId": other_group["GroupId"]}],
            },
        ],
    )
    ec2.authorize_security_group_egress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "udp",
                "FromPort": 53,
                "ToPort": 53,
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            }
        ],
    )
    acl_id = default_acl(ec2, vpc_id)["NetworkAclId"]
    for number, egress, ipv6 in [(101, False, True), (101, True, True), (200, False, False)]:
        ec2.create_network_acl_entry(
            NetworkAclId=acl_id,
            RuleNumber=number,
            Protocol="6",
            PortRange={"From": 443, "To": 443},
            RuleAction="allow",
            Egress=egress,
            **({"Ipv6CidrBlock": "::/0"} if ipv6 else {"CidrBlock": "10.0.0.0/8"}),
        )
    # AWS's IPv6 catch-all deny, which a VPC with IPv6 has and which cannot be deleted.
    ec2.create_network_acl_entry(
        NetworkAclId=acl_id,
        RuleNumber=32768,
        Protocol="-1",
        RuleAction="deny",
        Egress=False,
        Ipv6CidrBlock="::/0",
    )
    group = default_group(ec2, vpc_id)
    assert len(group["IpPermissions"]) == 3 and len(group["IpPermissionsEgress"]) == 2
    assert (False, 100, "allow") in acl_rules(ec2, vpc_id)
    return vpc_id


LOCKED_ACL = [(False, 32767, "deny"), (False, 32768, "deny"), (True, 32767, "deny")]


def invoke(cfn_responses, request_type, properties, **overrides):
    return answer_of(vpc_lockdown.handler, cfn_responses, request_type, properties, **overrides)


def is_locked(ec2, vpc_id):
    group = default_group(ec2, vpc_id)
    return (
        group["IpPermissions"] == []
        and group["IpPermissionsEgress"] == []
        and acl_rules(ec2, vpc_id) == LOCKED_ACL
    )


# request type, properties ({vpc} is the fixture's VPC), event overrides,
# expected status, text the reason must contain, physical id, whether the VPC ends up locked.
EVENTS = [
    ("Create", {"VpcId": "{vpc}"}, {}, "SUCCESS", "", "{vpc}-lockdown", True),
    (
        "Update",
        {"VpcId": "{vpc}"},
        {"PhysicalResourceId": "{vpc}-lockdown", "OldResourceProperties": {"VpcId": "{vpc}"}},
        "SUCCESS",
        "",
        "{vpc}-lockdown",
        True,
    ),
    (
        "Delete",
        {"VpcId": "{vpc}"},
        {"PhysicalResourceId": "{vpc}-lockdown"},
        "SUCCESS",
        "",
        "{vpc}-lockdown",
        False,
    ),
    (
        "Delete",
        {"VpcId": MISSING_VPC},
        {"PhysicalResourceId": f"{MISSING_VPC}-lockdown"},
        "SUCCESS",
        "",
        f"{MISSING_VPC}-lockdown",
        False,
    ),
    ("Create", {"VpcId": MISSING_VPC}, {}, "FAILED", "0 default security groups", None, False),
    ("Create", {}, {}, "FAILED", "VpcId must be a VPC id, got None", None, False),
    ("Create", {"VpcId": ["{vpc}"]}, {}, "FAILED", "VpcId must be a VPC id", None, False),
    (
        "Update",
        {"VpcId": ""},
        {"PhysicalResourceId": "{vpc}-lockdown"},
        "FAILED",
        "VpcId",
        "{vpc}-lockdown",
        False,
    ),
    ("Bogus", {"VpcId": "{vpc}"}, {}, "FAILED", "Malformed event", None, False),
    ("Create", {"VpcId": "{vpc}"}, {"StackId": ""}, "FAILED", "Malformed event", None, False),
    (
        "Delete",
        {"VpcId": "{vpc}"},
        {"PhysicalResourceId": "failed-create-abc"},
        "SUCCESS",
        "Nothing was created",
        "failed-create-abc",
        False,
    ),
]


def fill(value, vpc_id):
    if isinstance(value, str):
        return value.replace("{vpc}", vpc_id)
    if isinstance(value, list):
        return [fill(item, vpc_id) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, vpc_id) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("request_type", "properties", "overrides", "status", "reason", "physical_id", "locked"),
    EVENTS,
    ids=[f"{row[0]}-{row[3]}-{index}" for index, row in enumerate(EVENTS)],
)
def test_event_table(
    ec2,
    vpc,
    api,
    cfn_responses,
    request_type,
    properties,
    overrides,
    status,
    reason,
    physical_id,
    locked,
):
    body = invoke(cfn_responses, request_type, fill(properties, vpc), **fill(overrides, vpc))

    assert body["Status"] == status, body["Reason"]
    assert reason in body["Reason"]
    if physical_id:
        assert body["PhysicalResourceId"] == fill(physical_id, vpc)
    else:
        assert body["PhysicalResourceId"].startswith("failed-create-")
    assert is_locked(ec2, vpc) is locked
    if request_type == "Delete":
        assert api.calls == [], "Delete restores nothing and calls no EC2 API"
    if status == "FAILED":
        assert not {"RevokeSecurityGroupIngress", "DeleteNetworkAclEntry"} & set(api.calls)


def test_create_reports_ids_and_strips_exactly_the_removable_rules(ec2, vpc, api, cfn_responses):
    body = invoke(cfn_responses, "Create", {"VpcId": vpc})

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"] == {
        "SecurityGroupId": default_group(ec2, vpc)["GroupId"],
        "NetworkAclId": default_acl(ec2, vpc)["NetworkAclId"],
    }
    assert api.calls.count("RevokeSecurityGroupIngress") == 1
    assert api.calls.count("RevokeSecurityGroupEgress") == 1
    assert api.calls.count("DeleteNetworkAclEntry") == 5  # 100 in/out, 101 in/out, 200 in
    assert is_locked(ec2, vpc)


def test_second_run_is_a_no_op(ec2, vpc, api, cfn_responses):
    first = invoke(cfn_responses, "Create", {"VpcId": vpc})
    api.calls.clear()

    second = invoke(
        cfn_responses, "Update", {"VpcId": vpc}, PhysicalResourceId=first["PhysicalResourceId"]
    )

    assert second["Status"] == "SUCCESS", second["Reason"]
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert second["Data"] == first["Data"]
    assert sorted(api.calls) == ["DescribeNetworkAcls", "DescribeSecurityGroups"]
    assert is_locked(ec2, vpc)


def test_only_the_given_vpc_is_touched(ec2, vpc, api, cfn_responses):
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    other_group, other_acl = default_group(ec2, other), acl_rules(ec2, other)

    assert invoke(cfn_responses, "Create", {"VpcId": vpc})["Status"] == "SUCCESS"

    assert is_locked(ec2, vpc)
    assert default_group(ec2, other) == other_group
    assert acl_rules(ec2, other) == other_acl


def test_ec2_error_mid_way_fails_with_reason_and_a_retry_finishes(ec2, vpc, api, cfn_responses):
    api.faults["DeleteNetworkAclEntry"] = ClientError(
        {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed on acl"}},
        "DeleteNetworkAclEntry",
    )

    failed = invoke(cfn_responses, "Create", {"VpcId": vpc})

    assert failed["Status"] == "FAILED"
    assert "UnauthorizedOperation" in failed["Reason"]
    assert "not allowed on acl" in failed["Reason"]
    assert failed["PhysicalResourceId"].startswith("failed-create-")
    assert default_group(ec2, vpc)["IpPermissions"] == []  # got that far
    assert (False, 100, "allow") in acl_rules(ec2, vpc)

    del api.faults["DeleteNetworkAclEntry"]
    retried = invoke(cfn_responses, "Create", {"VpcId": vpc})

    assert retried["Status"] == "SUCCESS", retried["Reason"]
    assert is_locked(ec2, vpc)


def test_describe_error_fails_without_changing_anything(ec2, vpc, api, cfn_responses):
    api.faults["DescribeSecurityGroups"] = ClientError(
        {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}},
        "DescribeSecurityGroups",
    )

    body = invoke(cfn_responses, "Create", {"VpcId": vpc})

    assert body["Status"] == "FAILED"
    assert "RequestLimitExceeded" in body["Reason"]
    assert api.calls == ["DescribeSecurityGroups"]
    assert len(default_group(ec2, vpc)["IpPermissions"]) == 3


def test_event_without_response_url_is_dropped_without_crashing(vpc, api, cfn_responses):
    event = make_event("Create", cfn_responses.url, {"VpcId": vpc})
    del event["ResponseURL"]

    assert vpc_lockdown.handler(event, FakeContext()) is None
    assert vpc_lockdown.handler("not an event", FakeContext()) is None
    assert cfn_responses.requests == []
    assert api.calls == []


def test_inlined_source_locks_down_too(ec2, vpc, cfn_responses):
    namespace = {}
    exec(compile(inline_source("vpc_lockdown"), "index.py", "exec"), namespace)

    namespace["handler"](make_event("Create", cfn_responses.url, {"VpcId": vpc}), FakeContext())

    assert cfn_responses.only_body()["Status"] == "SUCCESS"
    assert is_locked(ec2, vpc)
