"""The zones of a per-region stack: which are on, their letter in this account, their CIDR.

Refuses what the move cannot carry over unchanged: a template that is not a per-region
release, a zone id the account does not list, a CIDR the product's zone plan would not give.
"""

import ipaddress
import re
from dataclasses import dataclass

from templates.functions import zone_plan

from . import MigrationError

RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
# The four resources of one zone: logical id prefix -> (type, its primary identifier, which is
# also the attribute whose value is the physical id).
ZONE_KINDS = {
    "PrivateSubnet": ("AWS::EC2::Subnet", "SubnetId"),
    "PrivateRouteTable": ("AWS::EC2::RouteTable", "RouteTableId"),
    "PrivateRouteTableAssociation": ("AWS::EC2::SubnetRouteTableAssociation", "Id"),
    "PrivateNetworkAclAssociation": ("AWS::EC2::SubnetNetworkAclAssociation", "AssociationId"),
}
SLICES = 16
OLD_SUFFIX = re.compile(r"^[A-Z][a-z]*[0-9]*Az[0-9]+$")  # Euc1Az1, Use1Az4


@dataclass(frozen=True)
class OldZone:
    """One zone slot of a per-region template."""

    suffix: str  # Euc1Az1: ends each of its logical ids
    zone_id: str  # euc1-az1
    slice_index: int  # i of Fn::Select(i, Fn::Cidr(VpcCidr, 16, bits))

    @property
    def parameter(self):
        return "Zone" + self.suffix

    def logical_id(self, kind):
        return kind + self.suffix


@dataclass(frozen=True)
class MovingZone:
    """A zone that is on: its resources' old ids, physical ids, and new slot."""

    old: OldZone
    name: str  # eu-central-1c in this account
    letter: str  # c
    cidr: str  # the subnet's CIDR, the zone plan's answer for it
    physical_ids: dict  # {kind: physical id}

    def new_id(self, kind):
        return kind + self.letter.upper()


def old_zones(template):
    """The zone slots of a per-region template; refuses any other template."""
    resources = template["Resources"]
    if "AvailabilityZones" in template.get("Parameters", {}) or "PrivateSubnetA" in resources:
        raise MigrationError("the stack already runs the one template: nothing to do")
    zones = []
    for logical_id, resource in sorted(resources.items()):
        suffix = logical_id.removeprefix("PrivateSubnet")
        if resource.get("Type") != "AWS::EC2::Subnet" or not OLD_SUFFIX.match(suffix):
            continue
        properties = resource.get("Properties", {})
        zone = OldZone(suffix, properties.get("AvailabilityZoneId"), _slice_index(properties))
        missing = [
            zone.logical_id(kind) for kind in ZONE_KINDS if zone.logical_id(kind) not in resources
        ]
        if zone.parameter not in template.get("Parameters", {}) or missing:
            raise MigrationError(
                f"{logical_id}: not a zone of a per-region release ({zone.parameter} "
                f"or {', '.join(missing) or 'its resources'} missing)"
            )
        zones.append(zone)
    if not zones:
        raise MigrationError(
            "not a per-region release of this product: no Zone<Id> parameters "
            "and no zone subnets (PrivateSubnet<ZoneId>)"
        )
    return zones


def _slice_index(properties):
    """i of the old CidrBlock Fn::Select(i, Fn::Cidr(VpcCidr, 16, bits))."""
    try:
        index, cidr = properties["CidrBlock"]["Fn::Select"]
        arguments = cidr["Fn::Cidr"]
        if arguments[0] != {"Ref": "VpcCidr"} or int(arguments[1]) != SLICES:
            raise ValueError
        if not 0 <= int(index) < SLICES:
            raise ValueError
        return int(index)
    except (KeyError, IndexError, TypeError, ValueError):
        raise MigrationError(
            f"a zone subnet's CidrBlock is not Fn::Select(i, Fn::Cidr(VpcCidr, {SLICES}, bits)): "
            "not a per-region release of this product"
        ) from None


def moving_zones(inputs, zones):
    """The zones that are on, each with its name and letter in this account and its CIDR;
    refuses a zone id the account does not list and a CIDR the zone plan would not give."""
    defaults = inputs.template.get("Parameters", {})
    values = {key: d.get("Default") for key, d in defaults.items()} | inputs.parameters
    vpc_cidr = values.get("VpcCidr")
    on = [zone for zone in zones if values.get(zone.parameter) == "true"]
    if not on:
        raise MigrationError("no zone is on (every Zone<Id> parameter is false): nothing to move")
    described = []
    for zone in on:
        if zone.zone_id not in inputs.zones:
            raise MigrationError(
                f"zone id {zone.zone_id} ({zone.logical_id('PrivateSubnet')}) is not in "
                f"zones.json: write it with `aws ec2 describe-availability-zones --region "
                f"{inputs.region} > zones.json` in the stack's account"
            )
        described.append(inputs.zones[zone.zone_id])
    try:
        planned = zone_plan.plan(described, vpc_cidr, inputs.region)
    except ValueError as error:
        raise MigrationError(f"{error}: the one template has no subnet slot for it") from None
    return [_moving(inputs, zone, vpc_cidr, planned) for zone in on]


def _moving(inputs, zone, vpc_cidr, planned):
    name = inputs.zones[zone.zone_id]["ZoneName"]
    letter = name.removeprefix(inputs.region)
    cidr = str(list(ipaddress.ip_network(vpc_cidr).subnets(prefixlen_diff=4))[zone.slice_index])
    if planned[f"Cidr{letter.upper()}"] != cidr:
        raise MigrationError(
            f"{zone.logical_id('PrivateSubnet')} is {cidr} (slice {zone.slice_index}), the zone "
            f"plan gives {zone.zone_id} {planned[f'Cidr{letter.upper()}']}: the update would "
            "replace the subnet"
        )
    ids = {}
    for kind in ZONE_KINDS:
        logical_id = zone.logical_id(kind)
        if logical_id not in inputs.physical_ids:
            raise MigrationError(
                f"{logical_id} is not in resources.json though {zone.parameter} is true: "
                "write resources.json again after the stack's last update"
            )
        ids[kind] = inputs.physical_ids[logical_id]
    return MovingZone(zone, name, letter, cidr, ids)


def physical_of(moving):
    """{old logical id: (physical id, type)} of every resource that moves."""
    return {
        zone.old.logical_id(kind): (zone.physical_ids[kind], type_)
        for zone in moving
        for kind, (type_, _) in ZONE_KINDS.items()
    }
