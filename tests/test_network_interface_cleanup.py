"""network_interface_cleanup: events in, the response PUT and the VPC's interfaces out (moto EC2).

Waiting runs on a fake clock (the module's ``time`` is replaced), so bounded waits of
minutes take milliseconds; one test keeps real time with tiny limits.
"""

import re
import threading
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

    ``ours`` are the leftovers a Delete must delete, ``stray`` too (our group in a subnet not
    listed, e.g. of a zone dropped earlier); ``keep`` must survive it: another group in the
    same VPC, and our group's namesake in another VPC.
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
    keep = {"other group": eni(private[0], [other]), "other vpc": eni(subnet_b, [group_b])}
    return SimpleNamespace(
        vpc=vpc,
        group=group,
        other=other,
        subnets=private,
        public=public,
        ours=ours,
        stray=eni(public, [group]),
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
    if request_type == "Update":
        overrides["OldResourceProperties"] = net.props
    props = net.props if properties is None else properties(net)

    body = invoke(cfn_responses, request_type, props, **overrides)

    assert body["Status"] == status, body["Reason"]
    assert reason in body["Reason"]
    if status == "SUCCESS" or overrides:
        assert body["PhysicalResourceId"] == net.physical_id
    else:
        assert body["PhysicalResourceId"].startswith("failed-create-")
    assert existing(ec2, net.keep.values()) == dict.fromkeys(net.keep.values(), "available")
    ours = [*net.ours, net.stray]
    assert existing(ec2, ours) == ({} if cleaned else dict.fromkeys(ours, "available"))
    if not cleaned:
        assert "DeleteNetworkInterface" not in api.calls
    assert clock.sleeps == []


@pytest.mark.parametrize("subnets", [None, "listed"])
def test_delete_takes_our_interfaces_in_any_subnet_of_the_vpc(
    ec2, net, api, clock, cfn_responses, subnets
):
    # Any of them would block deleting the security group, listed subnet or not.
    properties = {"VpcId": net.vpc, "SecurityGroupId": net.group}
    body = delete(
        cfn_responses, net, {**properties, "SubnetIds": net.subnets} if subnets else properties
    )

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert existing(ec2, [*net.ours, net.stray]) == {}
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
    assert api.calls.count("DeleteNetworkInterface") == len(net.ours) + 1
    # the "already gone" one was left to its fate
    assert len(existing(ec2, [*net.ours, net.stray])) == 1
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
    # The deadline may count down in real time too (the protocol's invocation clock).
    assert clock.waited == pytest.approx(45 - cleanup.DEADLINE_MARGIN_SECONDS, abs=1)
    assert re.search(r"after 1[45]s", body["Reason"])


def test_too_little_time_left_fails_without_waiting(ec2, net, api, clock, cfn_responses):
    attach(ec2, net, net.ours[0])

    body = delete(cfn_responses, net, context=FakeContext(remaining_ms=10_000))

    assert body["Status"] == "FAILED"
    assert clock.sleeps == []
    # At most one sweep: none once the protocol's watchdog has answered (it is due at once).
    assert api.calls.count("DescribeNetworkInterfaces") <= 1


class Cancelled:
    """A context whose watchdog has answered, as the protocol's invocation reports it."""

    def __init__(self):
        self.cancelled = threading.Event()
        self.cancelled.set()

    def get_remaining_time_in_millis(self):
        return 900_000


def test_nothing_is_deleted_once_the_watchdog_has_answered(ec2, net, api, clock):
    event = make_event("Delete", "http://127.0.0.1:9/unused", net.props)

    with pytest.raises(RuntimeError, match="watchdog has answered"):
        cleanup.delete(event, Cancelled())

    assert api.calls == []
    assert existing(ec2, net.ours) == dict.fromkeys(net.ours, "available")


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


def update(cfn_responses, net, new_properties, old_properties=None, context=None):
    return invoke(
        cfn_responses,
        "Update",
        new_properties,
        context,
        PhysicalResourceId=net.physical_id,
        OldResourceProperties=old_properties or net.props,
    )


def test_update_dropping_a_zone_cleans_that_subnet_only(ec2, net, api, clock, cfn_responses):
    in_dropped = [eni for eni in net.ours if eni in subnet_enis(ec2, net.subnets[1])]
    assert in_dropped

    body = update(cfn_responses, net, {**net.props, "SubnetIds": [net.subnets[0]]})

    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", net.physical_id)
    assert existing(ec2, in_dropped) == {}
    kept = [eni for eni in [*net.ours, net.stray] if eni not in in_dropped]
    assert existing(ec2, [*kept, *net.keep.values()]) == dict.fromkeys(
        [*kept, *net.keep.values()], "available"
    )
    assert clock.sleeps == []


def subnet_enis(ec2, subnet):
    found = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])
    return {eni["NetworkInterfaceId"] for eni in found["NetworkInterfaces"]}


def test_update_dropping_a_zone_with_a_job_still_there_fails_naming_it(
    ec2, net, api, clock, cfn_responses
):
    busy = next(eni for eni in net.ours if eni in subnet_enis(ec2, net.subnets[1]))
    attach(ec2, net, busy)

    body = update(
        cfn_responses,
        net,
        {**net.props, "SubnetIds": [net.subnets[0]]},
        context=FakeContext(remaining_ms=900_000),
    )

    assert body["Status"] == "FAILED"
    assert f"{busy} (in-use)" in body["Reason"]
    assert body["PhysicalResourceId"] == net.physical_id
    assert clock.waited == pytest.approx(cleanup.MAX_WAIT_SECONDS, abs=1)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda net: {**net.props, "SubnetIds": [*net.subnets, net.public]}, id="zone-added"
        ),
        pytest.param(lambda net: {**net.props, "SubnetIds": net.subnets[::-1]}, id="reordered"),
        pytest.param(lambda net: net.props, id="same"),
    ],
)
def test_update_dropping_no_subnet_touches_nothing(ec2, net, api, clock, cfn_responses, change):
    body = update(cfn_responses, net, change(net))

    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", net.physical_id)
    assert api.calls == []


def test_update_to_another_group_is_a_new_resource_the_old_ones_delete_cleans(
    ec2, net, api, clock, cfn_responses
):
    new_props = {**net.props, "SecurityGroupId": net.other, "SubnetIds": [net.subnets[0]]}

    body = update(cfn_responses, net, new_props)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == f"{net.vpc}-{net.other}-eni-cleanup"
    assert api.calls == []  # CloudFormation now deletes the old id, with the old properties
    assert delete(cfn_responses, net)["Status"] == "SUCCESS"
    assert existing(ec2, [*net.ours, net.stray]) == {}


def test_update_keeps_the_physical_id_it_is_given(ec2, net, api, clock, cfn_responses):
    body = invoke(
        cfn_responses,
        "Update",
        net.props,
        PhysicalResourceId="id-of-an-earlier-release",
        OldResourceProperties=net.props,
    )

    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", "id-of-an-earlier-release")
