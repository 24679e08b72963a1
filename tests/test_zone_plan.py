"""zone_plan: each picked zone's subnet gets the VPC slice of its zone id.

The pure ``plan`` is checked against plain integer arithmetic and against the per-region
templates it replaces (read from git history); the handler runs end to end through the
custodian against moto's DescribeAvailabilityZones, with faults and interleavings forced by
botocore hooks.
"""

import ipaddress
import json
import random
import subprocess
import threading
from functools import cache
from types import SimpleNamespace

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from templates.functions import custodian, zone_plan
from templates.functions.zone_plan import plan
from tests.cfn_resolve import Deployment
from tests.conftest import FakeContext, answer_of, make_event, spy_on_clients
from tests.helpers import ROOT, rendered

OLD_REVISION = "f1cf291"  # the last commit with one template per region
OLD_REGIONS = ("eu-central-1", "eu-west-1", "us-east-1", "us-west-2")
VPC_CIDRS = ("10.0.0.0/16", "10.128.0.0/17", "172.16.32.0/20", "192.168.4.0/22", "10.9.8.0/24")
ZONE_PLAN = "Custom::ZonePlan"


def zone(name, zone_id, zone_type="availability-zone"):
    """One AvailabilityZones entry as DescribeAvailabilityZones returns it (the fields read)."""
    return {"ZoneName": name, "ZoneId": zone_id, "ZoneType": zone_type}


def slice_of(vpc_cidr, number):
    """Slice ``number - 1`` of 16 equal slices, by integer arithmetic (not ``subnets()``)."""
    vpc = ipaddress.ip_network(vpc_cidr)
    prefix = vpc.prefixlen + 4
    start = int(vpc.network_address) + (number - 1) * 2 ** (32 - prefix)
    return f"{ipaddress.ip_address(start)}/{prefix}"


# The pure plan -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", range(16, 25))
def test_zone_id_az_n_gets_slice_n_minus_1_for_every_vpc_size(prefix):
    vpc_cidr = str(ipaddress.ip_network(f"10.77.255.0/{prefix}", strict=False))
    answers = {
        number: plan([zone("eu-central-1b", f"euc1-az{number}")], vpc_cidr, "eu-central-1")
        for number in range(1, 17)
    }
    assert answers == {number: {"CidrB": slice_of(vpc_cidr, number)} for number in answers}
    cidrs = [ipaddress.ip_network(answer["CidrB"]) for answer in answers.values()]
    assert all(cidr.subnet_of(ipaddress.ip_network(vpc_cidr)) for cidr in cidrs)
    assert sum(cidr.num_addresses for cidr in cidrs) == 2 ** (32 - prefix)  # 16 disjoint slices


def test_literal_slices():
    zones = [zone("us-east-1a", "use1-az6"), zone("us-east-1b", "use1-az1")]
    assert plan(zones, "10.0.0.0/16", "us-east-1") == {
        "CidrA": "10.0.80.0/20",
        "CidrB": "10.0.0.0/20",
    }
    assert plan(zones, "192.168.1.0/24", "us-east-1") == {
        "CidrA": "192.168.1.80/28",
        "CidrB": "192.168.1.0/28",
    }


class OldDeployment(Deployment):
    """The old per-region templates also used Fn::Cidr, which cfn_resolve leaves out."""

    def _function(self, key, argument):
        if key != "Fn::Cidr":
            return super()._function(key, argument)
        block, count, host_bits = self.resolve(argument)
        network = ipaddress.ip_network(block)
        size = 2 ** int(host_bits)
        start = int(network.network_address)
        return [
            f"{ipaddress.ip_address(start + i * size)}/{32 - int(host_bits)}" for i in range(count)
        ]


@cache
def old_template(region):
    shown = subprocess.run(
        ["git", "show", f"{OLD_REVISION}:dist/{region}.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if shown.returncode != 0:
        pytest.fail(
            f"git show {OLD_REVISION}:dist/{region}.json failed ({shown.stderr.strip()}): "
            "this test compares with the per-region templates and needs the full history"
        )
    return json.loads(shown.stdout)


def old_subnets(region, vpc_cidr):
    """``{zone id: CIDR}`` of every subnet the old template of ``region`` deployed."""
    template = old_template(region)
    deployment = OldDeployment(template, region, {"VpcCidr": vpc_cidr})
    return {
        resource["Properties"]["AvailabilityZoneId"]: deployment.resolve(
            resource["Properties"]["CidrBlock"]
        )
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::EC2::Subnet" and deployment.exists(logical_id)
    }


@pytest.mark.parametrize("region", OLD_REGIONS)  # each region has its own zone ids
def test_same_cidrs_as_the_old_per_region_templates(region):
    shuffle = random.Random(region).shuffle
    for vpc_cidr in VPC_CIDRS:
        old = old_subnets(region, vpc_cidr)
        assert len(old) >= 3, f"the old {region} template had no subnets to compare"
        letters = list("abcdef"[: len(old)])
        shuffle(letters)  # an account maps names to ids in its own order
        zones = [
            zone(f"{region}{letter}", zone_id) for letter, zone_id in zip(letters, old, strict=True)
        ]
        planned = plan(zones, vpc_cidr, region)
        assert {
            zone_id: planned[f"Cidr{letter.upper()}"]
            for letter, zone_id in zip(letters, old, strict=True)
        } == old


# Property: zones never move --------------------------------------------------------------

REGION_ZONE_IDS = {"eu-central-1": "euc1", "us-east-1": "use1", "ap-south-2": "aps2"}


def random_account(rng):
    """A region and that account's own mapping of zone names to zone ids."""
    region = rng.choice(sorted(REGION_ZONE_IDS))
    count = rng.randint(1, 6)
    numbers = rng.sample(range(1, 17), count)  # ids need not be az1..azN in order
    return region, {
        f"{region}{letter}": f"{REGION_ZONE_IDS[region]}-az{number}"
        for letter, number in zip("abcdef", numbers, strict=False)
    }


def cidr_by_zone_id(account, names, vpc_cidr, region):
    planned = plan([zone(name, account[name]) for name in names], vpc_cidr, region)
    assert len(planned) == len(names)
    assert len(set(planned.values())) == len(names), "two zones share a slice"
    return {account[name]: planned[f"Cidr{name[-1].upper()}"] for name in names}


def test_adding_or_dropping_zones_never_moves_another_zone():
    rng = random.Random(20261202)
    for _ in range(500):
        region, account = random_account(rng)
        vpc_cidr = rng.choice(VPC_CIDRS)
        names = sorted(account)
        before = rng.sample(names, rng.randint(1, len(names)))
        after = rng.sample(names, rng.randint(1, len(names)))
        old = cidr_by_zone_id(account, before, vpc_cidr, region)
        new = cidr_by_zone_id(account, after, vpc_cidr, region)
        kept = set(old) & set(new)
        assert {i: old[i] for i in kept} == {i: new[i] for i in kept}, (account, before, after)


def test_a_zone_id_has_the_same_slice_in_every_account():
    rng = random.Random(7)
    for _ in range(200):
        region, account = random_account(rng)
        other = dict(zip(rng.sample(sorted(account), len(account)), account.values(), strict=True))
        vpc_cidr = rng.choice(VPC_CIDRS)
        assert cidr_by_zone_id(account, sorted(account), vpc_cidr, region) == cidr_by_zone_id(
            other, sorted(other), vpc_cidr, region
        )


# Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region, refused, reason",
    [
        (
            "us-west-2",
            zone("us-west-2-lax-1a", "usw2-lax1-az1", "local-zone"),
            "us-west-2-lax-1a is a local-zone: pick availability zones only",
        ),
        (
            "us-east-1",
            zone("us-east-1-wl1-bos-wlz-1", "use1-wl1-bos-wlz1", "wavelength-zone"),
            "us-east-1-wl1-bos-wlz-1 is a wavelength-zone: pick availability zones only",
        ),
        (
            "us-west-2",
            zone("eu-west-1a", "euw1-az1"),
            "eu-west-1a is not an availability zone of us-west-2",
        ),
        (
            "us-west-2",
            zone("us-west-2g", "usw2-az7"),
            "us-west-2g: the template has subnets for zones a to f only",
        ),
        (
            "us-west-2",
            zone("us-west-2b", "usw2-az17"),
            "us-west-2b has zone id usw2-az17, which has no VPC slice",
        ),
        *[
            ("us-west-2", zone("us-west-2b", bad), f"us-west-2b has zone id {bad}, which has")
            for bad in ("usw2-az0", "usw2-az01", "usw2az1", "usw2-az", "usw2-lax1-az1", "")
        ],
    ],
)
def test_refuses_with_one_line_naming_the_zone(region, refused, reason):
    beside_a_good_zone = [zone(f"{region}c", "any-az3"), refused]
    for zones in ([refused], beside_a_good_zone):
        with pytest.raises(ValueError) as raised:
            plan(zones, "10.0.0.0/16", region)
        message = str(raised.value)
        assert message.startswith(reason)
        assert refused["ZoneName"] in message and "\n" not in message


def test_zone_types_are_the_ones_the_ec2_api_documents():
    """``ZoneType`` is a plain string in the service model: the accepted value must be one
    its documentation lists, or every zone would be refused."""
    shape = botocore.session.get_session().get_service_model("ec2").shape_for("AvailabilityZone")
    documented = shape.members["ZoneType"].documentation
    for zone_type in ("availability-zone", "local-zone", "wavelength-zone"):
        assert f"<code>{zone_type}</code>" in documented


# The handler, end to end through the custodian -------------------------------------------

MOTO_ZONES = {  # moto 5's names and ids (us-east-1's are not in id order, as in accounts)
    "eu-central-1": {"a": 1, "b": 2, "c": 3},
    "us-east-1": {"a": 6, "b": 1, "c": 2, "d": 4, "e": 3, "f": 5},
}


@pytest.fixture
def moto_in(monkeypatch):
    """``moto_in(region)``: moto answering, the code under test in ``region``, its AWS calls
    recorded (``spy.calls``) and faults injectable (``spy.faults``)."""
    with mock_aws():

        def start(region):
            monkeypatch.setenv("AWS_DEFAULT_REGION", region)
            monkeypatch.setenv("AWS_REGION", region)
            return spy_on_clients(monkeypatch, zone_plan)

        yield start


def send(cfn_responses, request_type, zones, region="eu-central-1", **overrides):
    properties = {"Zones": zones, "VpcCidr": "10.0.0.0/16"}
    stack = f"arn:aws:cloudformation:{region}:123456789012:stack/gc/1a2b3c4d"
    return answer_of(
        custodian.handler,
        cfn_responses,
        request_type,
        properties,
        ResourceType=ZONE_PLAN,
        LogicalResourceId="ZonePlan",
        StackId=stack,
        **overrides,
    )


def expected_data(region, letters, vpc_cidr="10.0.0.0/16"):
    return {
        f"Cidr{letter.upper()}": slice_of(vpc_cidr, MOTO_ZONES[region][letter])
        for letter in letters
    }


@pytest.mark.parametrize(
    "region, created, updated",
    [("eu-central-1", "ab", "bc"), ("us-east-1", "adf", "abcdef"), ("us-east-1", "abcdef", "e")],
)
def test_create_then_update_answer_the_picked_zones_slices(
    moto_in, cfn_responses, region, created, updated
):
    spy = moto_in(region)
    body = send(cfn_responses, "Create", [f"{region}{x}" for x in created], region)
    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", f"{region}-zone-plan")
    assert body["Data"] == expected_data(region, created)

    update = send(
        cfn_responses,
        "Update",
        [f"{region}{x}" for x in updated],
        region,
        PhysicalResourceId=body["PhysicalResourceId"],
        OldResourceProperties={"Zones": [f"{region}{x}" for x in created]},
    )
    assert (update["Status"], update["PhysicalResourceId"]) == ("SUCCESS", f"{region}-zone-plan")
    assert update["Data"] == expected_data(region, updated)
    kept = {f"Cidr{x.upper()}" for x in set(created) & set(updated)}
    assert {k: body["Data"][k] for k in kept} == {k: update["Data"][k] for k in kept}
    assert spy.calls == ["DescribeAvailabilityZones"] * 2


def test_literal_answer_for_us_east_1(moto_in, cfn_responses):
    moto_in("us-east-1")
    body = send(cfn_responses, "Create", ["us-east-1f", "us-east-1a", "us-east-1d"], "us-east-1")
    assert body["Data"] == {
        "CidrA": "10.0.80.0/20",  # use1-az6
        "CidrD": "10.0.48.0/20",  # use1-az4
        "CidrF": "10.0.64.0/20",  # use1-az5
    }


def test_zones_joined_into_one_string_are_read_as_the_list(moto_in, cfn_responses):
    """CloudFormation passes a List parameter's Ref as a JSON list; a joined string (as a
    hand-written template or a Join would give) means the same zones."""
    moto_in("us-east-1")
    joined = send(cfn_responses, "Create", "us-east-1c,us-east-1a,", "us-east-1")
    listed = send(cfn_responses, "Create", ["us-east-1c", "us-east-1a"], "us-east-1")
    assert joined["Status"] == listed["Status"] == "SUCCESS"
    assert joined["Data"] == listed["Data"] == expected_data("us-east-1", "ac")


@pytest.mark.parametrize("zones", [["eu-central-1a"], ["us-west-2-lax-1a"], None])
def test_delete_answers_success_without_any_aws_call(moto_in, cfn_responses, zones):
    spy = moto_in("eu-central-1")
    body = send(cfn_responses, "Delete", zones, PhysicalResourceId="eu-central-1-zone-plan")
    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", "eu-central-1-zone-plan")
    assert body["Data"] == {}
    assert spy.calls == []


def test_a_name_the_account_does_not_have_fails_naming_it(moto_in, cfn_responses):
    moto_in("eu-central-1")
    body = send(cfn_responses, "Create", ["eu-central-1a", "eu-central-1d"])
    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        "ValueError: eu-central-1d is not a zone of this account in eu-central-1"
    )


@pytest.mark.parametrize(
    "zones, named",
    [("", "''"), ([], "[]"), (None, "None"), ([1], "[1]"), (",", "''")],
)
def test_no_zone_names_fails_before_any_aws_call(moto_in, cfn_responses, zones, named):
    spy = moto_in("eu-central-1")
    body = send(cfn_responses, "Create", zones)
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("ValueError: Zones must be a list of zone names")
    assert spy.calls == []


def test_a_subnet_exists_exactly_where_the_plan_answers_its_cidr():
    """The template's UseZone<L> conditions and the plan's Cidr<L> keys must agree: a subnet
    without its key fails the stack on GetAtt, a key without a subnet is a zone silently
    left out. (The wiring itself, Zones/VpcCidr in and GetAtt Cidr<L> out, is pinned in
    test_template.py and test_zone_conditions.py.)"""
    template = rendered()
    rng = random.Random(3)
    for _ in range(100):
        region, account = random_account(rng)
        picked = rng.sample(sorted(account), rng.randint(1, len(account)))
        deployment = Deployment(template, region, {"AvailabilityZones": picked})
        with_subnet = {
            logical_id.removeprefix("PrivateSubnet")
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::EC2::Subnet" and deployment.exists(logical_id)
        }
        planned = plan([zone(name, account[name]) for name in picked], "10.0.0.0/16", region)
        assert {key.removeprefix("Cidr") for key in planned} == with_subnet, picked


# Throttling: botocore retries it; the handler answers FAILED once botocore gives up -----

THROTTLED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
    b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
    b"</Error></Errors><RequestID>5f7a9c1e</RequestID></Response>"
)


def throttle_first_sends(monkeypatch, times):
    """EC2 answers the first ``times`` DescribeAvailabilityZones requests with HTTP 503
    RequestLimitExceeded, as the service throttles; counts every request sent."""
    sent = []

    def before_send(request, **_):
        sent.append(request.url)
        if len(sent) <= times:
            raw = SimpleNamespace(stream=lambda **_: iter([THROTTLED]))
            return AWSResponse(request.url, 503, {}, raw)
        return None  # moto answers

    def client(*args, **kwargs):
        made = boto3.client(*args, **kwargs)
        # first: before moto's own before-send handler, which would answer otherwise
        made.meta.events.register_first("before-send.ec2.DescribeAvailabilityZones", before_send)
        return made

    monkeypatch.setattr(zone_plan, "boto3", SimpleNamespace(client=client))
    return sent


def test_one_throttled_request_is_retried_by_botocore(moto_in, cfn_responses, monkeypatch):
    moto_in("eu-central-1")
    sent = throttle_first_sends(monkeypatch, 1)
    body = send(cfn_responses, "Create", ["eu-central-1c"])
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"CidrC": "10.0.32.0/20"})
    assert len(sent) == 2


def test_throttled_until_botocore_gives_up_fails_with_the_reason(
    moto_in, cfn_responses, monkeypatch
):
    moto_in("eu-central-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # botocore's default is 5: same path, slower
    sent = throttle_first_sends(monkeypatch, 99)
    body = send(cfn_responses, "Create", ["eu-central-1c"])
    assert body["Status"] == "FAILED"
    assert "RequestLimitExceeded" in body["Reason"]
    assert "DescribeAvailabilityZones" in body["Reason"]
    assert len(sent) == 2


# At least once, two at once ----------------------------------------------------------------


@pytest.mark.parametrize("second", ["Create", "Update"])
def test_two_events_at_once_get_the_same_answer(moto_in, cfn_responses, monkeypatch, second):
    """CloudFormation may deliver an event twice, or an Update may overlap a retried Create:
    the plan is a pure read, so both answers are the same. The barrier holds each request
    inside DescribeAvailabilityZones until the other one is there too."""
    moto_in("us-east-1")
    both_inside = threading.Barrier(2, timeout=10)

    def wait_for_the_other(**_):
        both_inside.wait()  # returns nothing: a value here would stand in for the response

    def client(*args, **kwargs):
        made = boto3.client(*args, **kwargs)
        made.meta.events.register("before-call.ec2.DescribeAvailabilityZones", wait_for_the_other)
        return made

    monkeypatch.setattr(zone_plan, "boto3", SimpleNamespace(client=client))
    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/gc/1a2b3c4d"
    properties = {"Zones": ["us-east-1b", "us-east-1e"], "VpcCidr": "10.0.0.0/16"}
    events = [
        make_event("Create", cfn_responses.url, properties, ResourceType=ZONE_PLAN, StackId=stack),
        make_event(
            second,
            cfn_responses.url,
            properties,
            ResourceType=ZONE_PLAN,
            StackId=stack,
            PhysicalResourceId="us-east-1-zone-plan",
        ),
    ]
    threads = [
        threading.Thread(target=custodian.handler, args=(event, FakeContext())) for event in events
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert not both_inside.broken
    bodies = {body["RequestId"]: body for body in cfn_responses.bodies}
    answers = [bodies[event["RequestId"]] for event in events]
    assert [answer["Status"] for answer in answers] == ["SUCCESS", "SUCCESS"]
    assert answers[0]["PhysicalResourceId"] == answers[1]["PhysicalResourceId"]
    assert answers[0]["Data"] == answers[1]["Data"] == expected_data("us-east-1", "be")
