"""network_interface_cleanup: events in, the response PUT and the VPC's interfaces out (moto EC2).

Waiting runs on a fake clock (the module's ``time`` is replaced), so bounded waits of
minutes take milliseconds; one test keeps real time with tiny limits.
"""

import time
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from templates.functions import network_interface_cleanup as cleanup
from templates.inline import inline_source
from tests.conftest import FakeContext, answer_of, make_event, spy_on_clients

MISSING_VPC = "vpc-0000000000000dead"
MISSING_GROUP = "sg-0000000000000dead"


@pytest.fixture(scope="module")
def ec2():
    """One in-process moto EC2 for the module; every test builds its own fresh VPCs in it."""
    with mock_aws():
        yield boto3.client("ec2", region_name="eu-central-1")


@pytest.fixture
def api(monkeypatch):
    """The handler's EC2 calls by operation name; ``api.faults[name]`` makes calls raise."""
    return spy_on_clients(monkeypatch, cleanup)


class FakeClock:
    """Stands in for the module's ``time``: sleeping advances the clock and runs a side effect."""

    def __init__(self, on_sleep=None):
        self.now = 1000.0
        self.sleeps = []
        self.on_sleep = on_sleep

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))

    @property
    def waited(self):
        return self.now - 1000.0


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(cleanup, "time", fake)
    return fake


def client_error(code, operation, message="simulated"):
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.fixture
def net(ec2):
    """The stack's VPC (two private subnets, one public) and a neighbouring VPC, with ENIs.

    ``ours`` are the leftovers the cleanup must delete; ``keep`` must survive it: another group
    in the same VPC, our group's id in no other VPC, and our group in a subnet not listed.
    """
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    private = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24")["Subnet"]["SubnetId"]
        for index in (1, 2)
    ]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.9.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="training", Description="x", VpcId=vpc)["GroupId"]
    other = ec2.create_security_group(GroupName="endpoints", Description="x", VpcId=vpc)["GroupId"]
    vpc_b = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet_b = ec2.create_subnet(VpcId=vpc_b, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    group_b = ec2.create_security_group(GroupName="training", Description="x", VpcId=vpc_b)[
        "GroupId"
    ]

    def eni(subnet, groups, description="[DO NOT DELETE] ENI managed by SageMaker"):
        return ec2.create_network_interface(
            SubnetId=subnet, Groups=groups, Description=description
        )["NetworkInterface"]["NetworkInterfaceId"]

    ours = [eni(private[0], [group]), eni(private[1], [group]), eni(private[0], [group, other])]
    keep = {
        "other group": eni(private[0], [other]),
        "other vpc": eni(subnet_b, [group_b]),
        "public subnet": eni(public, [group]),
    }
    return SimpleNamespace(
        vpc=vpc,
        group=group,
        other=other,
        subnets=private,
        public=public,
        ours=ours,
        keep=keep,
        props={"VpcId": vpc, "SecurityGroupId": group, "SubnetIds": private},
        physical_id=f"{vpc}-{group}-eni-cleanup",
    )


def existing(ec2, eni_ids):
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": list(eni_ids)}]
    )["NetworkInterfaces"]
    return {eni["NetworkInterfaceId"]: eni["Status"] for eni in found}


def attach(ec2, net, eni_id):
    """Attach to an instance (status in-use); returns the attachment id."""
    instance = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        SubnetId=net.public,
        SecurityGroupIds=[net.other],  # its primary interface is none of ours
    )["Instances"][0]["InstanceId"]
    attachment = ec2.attach_network_interface(
        NetworkInterfaceId=eni_id, InstanceId=instance, DeviceIndex=1
    )["AttachmentId"]
    assert existing(ec2, [eni_id]) == {eni_id: "in-use"}
    return attachment


def invoke(cfn_responses, request_type, properties, context=None, **overrides):
    return answer_of(cleanup.handler, cfn_responses, request_type, properties, context, **overrides)


def delete(cfn_responses, net, properties=None, context=None):
    return invoke(
        cfn_responses,
        "Delete",
        net.props if properties is None else properties,
        context,
        PhysicalResourceId=net.physical_id,
    )


# request type, properties (None: the stack's; else a function of net), expected status,
# text the reason must contain, whether our interfaces are deleted.
EVENTS = [
    pytest.param("Create", None, "SUCCESS", "", False, id="create-no-op"),
    pytest.param("Update", None, "SUCCESS", "", False, id="update-no-op"),
    pytest.param("Delete", None, "SUCCESS", "", True, id="delete-cleans"),
    pytest.param(
        "Delete",
        lambda net: {**net.props, "VpcId": MISSING_VPC},
        "SUCCESS",
        "",
        False,
        id="delete-vpc-gone",
    ),
    pytest.param(
        "Delete",
        lambda net: {**net.props, "SecurityGroupId": MISSING_GROUP},
        "SUCCESS",
        "",
        False,
        id="delete-group-gone",
    ),
    pytest.param(
        "Create",
        lambda net: {"VpcId": net.vpc, "SubnetIds": net.subnets},
        "FAILED",
        "SecurityGroupId",
        False,
        id="create-missing-group",
    ),
    pytest.param(
        "Update",
        lambda net: {**net.props, "SubnetIds": "subnet-1,subnet-2"},
        "FAILED",
        "SubnetIds (a list)",
        False,
        id="update-subnets-not-a-list",
    ),
    pytest.param("Delete", lambda net: {}, "FAILED", "Need VpcId", False, id="delete-malformed"),
    pytest.param(
        "Delete",
        lambda net: {**net.props, "SecurityGroupId": None},
        "FAILED",
        "SecurityGroupId",
        False,
        id="delete-null-group",
    ),
    pytest.param("Bogus", None, "FAILED", "Malformed event", False, id="unknown-request-type"),
]


@pytest.mark.parametrize(("request_type", "properties", "status", "reason", "cleaned"), EVENTS)
def test_event_table(
    ec2, net, api, clock, cfn_responses, request_type, properties, status, reason, cleaned
):
    overrides = (
        {} if request_type in ("Create", "Bogus") else {"PhysicalResourceId": net.physical_id}
    )
    props = net.props if properties is None else properties(net)

    body = invoke(cfn_responses, request_type, props, **overrides)

    assert body["Status"] == status, body["Reason"]
    assert reason in body["Reason"]
    if status == "SUCCESS" or overrides:
        assert body["PhysicalResourceId"] == net.physical_id
    else:
        assert body["PhysicalResourceId"].startswith("failed-create-")
    assert existing(ec2, net.keep.values()) == dict.fromkeys(net.keep.values(), "available")
    assert existing(ec2, net.ours) == ({} if cleaned else dict.fromkeys(net.ours, "available"))
    if not cleaned:
        assert "DeleteNetworkInterface" not in api.calls
    assert clock.sleeps == []


def test_delete_without_subnets_also_takes_our_interface_in_other_subnets(
    ec2, net, api, clock, cfn_responses
):
    body = delete(cfn_responses, net, {"VpcId": net.vpc, "SecurityGroupId": net.group})

    assert body["Status"] == "SUCCESS", body["Reason"]
    public = net.keep.pop("public subnet")
    assert existing(ec2, [*net.ours, public]) == {}
    assert existing(ec2, net.keep.values()) == dict.fromkeys(net.keep.values(), "available")


def test_duplicate_delete_deliveries_are_harmless(ec2, net, api, clock, cfn_responses):
    first = delete(cfn_responses, net)
    api.calls.clear()
    second = delete(cfn_responses, net)

    assert first["Status"] == second["Status"] == "SUCCESS"
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"] == net.physical_id
    assert api.calls == ["DescribeNetworkInterfaces"]
    assert existing(ec2, net.keep.values()) == dict.fromkeys(net.keep.values(), "available")


def test_interface_already_deleted_meanwhile_is_fine(ec2, net, api, clock, cfn_responses):
    api.faults["DeleteNetworkInterface"] = [
        client_error("InvalidNetworkInterfaceID.NotFound", "DeleteNetworkInterface")
    ]

    body = delete(cfn_responses, net)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert api.calls.count("DeleteNetworkInterface") == len(net.ours)
    assert len(existing(ec2, net.ours)) == 1  # the "already gone" one was left to its fate
    assert clock.sleeps == []


def test_in_use_interface_waits_with_backoff_then_fails_naming_it(
    ec2, net, api, clock, cfn_responses
):
    busy = net.ours[0]
    attach(ec2, net, busy)

    body = delete(cfn_responses, net, context=FakeContext(remaining_ms=900_000))

    assert body["Status"] == "FAILED"
    assert f"{busy} (in-use)" in body["Reason"]
    assert f"1 network interface(s) of {net.group} not available after" in body["Reason"]
    assert clock.waited == pytest.approx(cleanup.MAX_WAIT_SECONDS)
    assert clock.sleeps[:3] == [5, 10, 20]
    assert max(clock.sleeps) <= cleanup.MAX_POLL_SECONDS
    assert existing(ec2, net.ours) == {busy: "in-use"}  # the available ones went at once
    assert existing(ec2, net.keep.values()) == dict.fromkeys(net.keep.values(), "available")


def test_wait_is_bounded_by_the_lambda_deadline(ec2, net, api, clock, cfn_responses):
    attach(ec2, net, net.ours[0])

    body = delete(cfn_responses, net, context=FakeContext(remaining_ms=45_000))

    assert body["Status"] == "FAILED"
    assert clock.waited == pytest.approx(45 - cleanup.DEADLINE_MARGIN_SECONDS)
    assert "after 15s" in body["Reason"]


def test_too_little_time_left_fails_after_one_sweep(ec2, net, api, clock, cfn_responses):
    attach(ec2, net, net.ours[0])

    body = delete(cfn_responses, net, context=FakeContext(remaining_ms=10_000))

    assert body["Status"] == "FAILED"
    assert clock.sleeps == []
    assert api.calls.count("DescribeNetworkInterfaces") == 1


def test_reason_lists_the_first_interfaces_only(ec2, net, api, clock, cfn_responses):
    extra = [
        ec2.create_network_interface(SubnetId=net.subnets[1], Groups=[net.group])[
            "NetworkInterface"
        ]["NetworkInterfaceId"]
        for _ in range(5)
    ]
    for eni_id in [*net.ours, *extra]:
        attach(ec2, net, eni_id)

    body = delete(cfn_responses, net)

    assert body["Status"] == "FAILED"
    assert body["Reason"].count("(in-use)") == 5
    assert "8 network interface(s)" in body["Reason"]


def test_interface_released_during_the_wait_is_deleted(ec2, net, api, monkeypatch, cfn_responses):
    busy = net.ours[0]
    attachment = attach(ec2, net, busy)

    def sagemaker_lets_go(sleeps):
        if sleeps == 2:
            ec2.detach_network_interface(AttachmentId=attachment)

    clock = FakeClock(on_sleep=sagemaker_lets_go)
    monkeypatch.setattr(cleanup, "time", clock)

    body = delete(cfn_responses, net)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert clock.sleeps == [5, 10]
    assert existing(ec2, net.ours) == {}
    assert existing(ec2, net.keep.values()) == dict.fromkeys(net.keep.values(), "available")


def test_in_use_race_on_delete_is_waited_for(ec2, net, api, clock, cfn_responses):
    api.faults["DeleteNetworkInterface"] = [
        client_error("InvalidNetworkInterface.InUse", "DeleteNetworkInterface")
    ]

    body = delete(cfn_responses, net)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert clock.sleeps == [5]
    assert existing(ec2, net.ours) == {}


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("DescribeNetworkInterfaces", "UnauthorizedOperation"),
        ("DeleteNetworkInterface", "UnauthorizedOperation"),
    ],
)
def test_ec2_errors_fail_with_reason(ec2, net, api, clock, cfn_responses, operation, code):
    api.faults[operation] = [client_error(code, operation, "not authorized to do that")]

    body = delete(cfn_responses, net)

    assert body["Status"] == "FAILED"
    assert code in body["Reason"] and "not authorized to do that" in body["Reason"]
    assert body["PhysicalResourceId"] == net.physical_id
    assert clock.sleeps == []


def test_real_time_wait_ends_within_its_bound(ec2, net, api, monkeypatch, cfn_responses):
    monkeypatch.setattr(cleanup, "MAX_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(cleanup, "FIRST_POLL_SECONDS", 0.05)
    attach(ec2, net, net.ours[0])
    started = time.monotonic()

    body = delete(cfn_responses, net)

    assert body["Status"] == "FAILED"
    assert 0.3 <= time.monotonic() - started < 3
    assert api.calls.count("DescribeNetworkInterfaces") >= 2  # it polled again before giving up


def test_inlined_source_cleans_up_too(ec2, net, cfn_responses):
    namespace = {}
    exec(compile(inline_source("network_interface_cleanup"), "index.py", "exec"), namespace)
    event = make_event("Delete", cfn_responses.url, net.props, PhysicalResourceId=net.physical_id)

    namespace["handler"](event, FakeContext())

    assert cfn_responses.only_body()["Status"] == "SUCCESS"
    assert existing(ec2, net.ours) == {}
    assert existing(ec2, net.keep.values()) == dict.fromkeys(net.keep.values(), "available")
