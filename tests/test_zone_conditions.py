"""The subnet slots are exactly the picked zones: the template's conditions, resolved by
tests/cfn_resolve.py for many picks in every commercial region, turn on the slot of each picked
zone and no other, and each slot's resources carry its condition and land in its zone.

Conditions can only compare text, so a slot is on when some picked name ends in its letter.
That is exact for the region's own zones (the AvailabilityZones parameter type lets only
names of this region's zones through); a Local Zone's name can end in a letter too, and the
zone plan refuses it before any subnet exists. The last tests pin that pair down."""

import itertools

import pytest

from build import commercial_regions
from templates.functions.zone_plan import plan
from tests.cfn_resolve import Deployment
from tests.helpers import rendered

LETTERS = "abcdef"
SLOT_RESOURCES = {
    "PrivateSubnet": "AWS::EC2::Subnet",
    "PrivateRouteTable": "AWS::EC2::RouteTable",
    "PrivateRouteTableAssociation": "AWS::EC2::SubnetRouteTableAssociation",
    "PrivateNetworkAclAssociation": "AWS::EC2::SubnetNetworkAclAssociation",
}
PICKS = [
    *([letter] for letter in LETTERS),
    *(list(pair) for pair in itertools.combinations(LETTERS, 2)),
    list(LETTERS),
    list("fca"),  # not in order
    list("fedcba"),
    list("bb"),  # the same zone twice
    list("eaec"),
]


def deploy(region, names):
    """The template as a stack in ``region`` with the zones ``names`` picked."""
    return Deployment(rendered(), region, {"NamePrefix": "gc", "AvailabilityZones": list(names)})


def slots_on(stack):
    return {letter for letter in LETTERS if stack.condition(f"UseZone{letter.upper()}")}


@pytest.mark.parametrize("region", commercial_regions())
def test_the_subnets_are_exactly_the_picked_zones(region):
    for letters in PICKS:
        picked = sorted({f"{region}{letter}" for letter in letters})
        stack = deploy(region, [f"{region}{letter}" for letter in letters])
        assert slots_on(stack) == set(letters), letters
        subnets = stack.resources("AWS::EC2::Subnet")
        assert sorted(subnet["AvailabilityZone"] for subnet in subnets.values()) == picked
        for logical_id, subnet in subnets.items():
            slot = logical_id.removeprefix("PrivateSubnet")
            assert subnet["AvailabilityZone"] == f"{region}{slot.lower()}"
            assert subnet["CidrBlock"] == f"ZonePlan.Cidr{slot}"  # GetAtt ZonePlan.Cidr<X>
        for prefix, kind in SLOT_RESOURCES.items():
            assert len(stack.resources(kind)) == len(picked), (letters, prefix)
        # What lists the subnets lists the picked ones: the backend's setting, the endpoint.
        subnet_ids = stack.resolve(rendered()["Outputs"]["PrivateSubnetIds"]["Value"])
        assert len(subnet_ids.split(",")) == len(picked)
        endpoint = stack.resources("AWS::EC2::VPCEndpoint")["S3GatewayEndpoint"]
        assert len(endpoint["RouteTableIds"]) == len(picked)


def test_each_slot_has_its_own_resources_behind_its_own_condition():
    resources = rendered()["Resources"]
    slots = {
        letter: {f"{prefix}{letter.upper()}": kind for prefix, kind in SLOT_RESOURCES.items()}
        for letter in LETTERS
    }
    all_ids = [logical_id for slot in slots.values() for logical_id in slot]
    assert len(all_ids) == len(set(all_ids)) == 4 * len(LETTERS)
    for letter, slot in slots.items():
        suffix = letter.upper()
        for logical_id, kind in slot.items():
            assert resources[logical_id]["Type"] == kind
            assert resources[logical_id]["Condition"] == f"UseZone{suffix}", logical_id
        subnet = resources[f"PrivateSubnet{suffix}"]["Properties"]
        assert subnet["AvailabilityZone"] == {"Fn::Sub": f"${{AWS::Region}}{letter}"}
        assert subnet["CidrBlock"] == {"Fn::GetAtt": ["ZonePlan", f"Cidr{suffix}"]}
        assert subnet["MapPublicIpOnLaunch"] is False
        routes = resources[f"PrivateRouteTableAssociation{suffix}"]["Properties"]
        assert routes["SubnetId"] == {"Ref": f"PrivateSubnet{suffix}"}
        assert routes["RouteTableId"] == {"Ref": f"PrivateRouteTable{suffix}"}
        acl = resources[f"PrivateNetworkAclAssociation{suffix}"]["Properties"]
        assert acl["SubnetId"] == {"Ref": f"PrivateSubnet{suffix}"}
    conditional = {
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Condition", "").startswith("UseZone")
    }
    assert conditional == set(all_ids)


def test_the_console_refuses_an_empty_pick():
    [assertion] = rendered()["Rules"]["AtLeastOneZone"]["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": "AvailabilityZones"}, ""]}]
    }
    assert "zone" in assertion["AssertDescription"]
    assert "RuleCondition" not in rendered()["Rules"]["AtLeastOneZone"]


# (region, picked names, slots on, the zone as DescribeAvailabilityZones describes it)
MISREAD = [
    (
        "us-west-2",
        ["us-west-2-lax-1a"],
        {"a"},
        {"ZoneName": "us-west-2-lax-1a", "ZoneId": "usw2-lax1-az1", "ZoneType": "local-zone"},
    ),
    (
        "us-east-1",
        ["us-east-1b", "us-east-1-wl1-bos-wlz-1"],
        {"b"},
        {
            "ZoneName": "us-east-1-wl1-bos-wlz-1",
            "ZoneId": "use1-wl1-bos-wlz1",
            "ZoneType": "wavelength-zone",
        },
    ),
]


@pytest.mark.parametrize("region, names, on, zone", MISREAD, ids=["local", "wavelength"])
def test_a_name_ending_in_a_letter_turns_its_slot_on_and_the_zone_plan_refuses_it(
    region, names, on, zone
):
    """The documented imprecision: the conditions see only the last letter. A Local Zone
    (us-west-2-lax-1a) turns slot a on; a Wavelength Zone (ending in a digit) turns none on.
    The zone plan, which every subnet's CIDR waits for, stops both."""
    assert slots_on(deploy(region, names)) == on
    with pytest.raises(ValueError, match=zone["ZoneName"]):
        plan([zone], "10.0.0.0/16", region)
