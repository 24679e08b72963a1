"""Custom resource: where each picked availability zone's subnet goes.

ResourceProperties: ``Zones`` (the picked zone names) and ``VpcCidr``. Create and Update
look the names up (DescribeAvailabilityZones) and answer ``Cidr<LETTER>`` for each: the VPC
CIDR cut into 16 slices, slice N-1 for zone id ``<region>-az<N>``. Zone ids name the same
zone in every account and never change, so a zone keeps its slice when others are added or
dropped, and the slices are those of the per-region templates and of the Terraform module
(``cidrsubnet(cidr, 4, i)`` over the sorted ids, where a region's ids are az1, az2, ...).

Refused with a reason naming the zone: a Local or Wavelength Zone, a zone of another
region, a letter past ``f`` (the template has six subnet slots) and an id past az16. The
template's conditions can only tell zones apart by their last letter, so a refused zone
must stop the stack here, before any subnet exists. Delete calls no AWS API. A throttled
DescribeAvailabilityZones is retried by botocore's own retry handler; once that gives up the
answer is FAILED with EC2's error (one read: no retry loop of its own is worth its bytes).
Physical id: ``<region>-zone-plan``.
"""

import ipaddress
import re

import boto3

from .custom_resource import run

ZONE_LETTERS = "abcdef"
SLICES = 16
ZONE_ID = re.compile(r"^[a-z0-9]+-az([1-9][0-9]*)$")


def plan(zones, vpc_cidr, region):
    """``{"Cidr<LETTER>": cidr}`` for ``zones``: dicts with ZoneName, ZoneId and ZoneType as
    DescribeAvailabilityZones returns them. Raises ValueError naming the first bad zone."""
    network = ipaddress.ip_network(vpc_cidr)
    slices = list(network.subnets(prefixlen_diff=4))
    cidrs = {}
    for zone in sorted(zones, key=lambda zone: zone["ZoneName"]):
        name = zone["ZoneName"]
        if zone.get("ZoneType", "availability-zone") != "availability-zone":
            raise ValueError(f"{name} is a {zone['ZoneType']}: pick availability zones only")
        letter = name.removeprefix(region)
        if not name.startswith(region) or len(letter) != 1:
            raise ValueError(f"{name} is not an availability zone of {region}")
        if letter not in ZONE_LETTERS:
            raise ValueError(f"{name}: the template has subnets for zones a to f only")
        match = ZONE_ID.match(zone["ZoneId"])
        if not match or int(match.group(1)) > SLICES:
            raise ValueError(f"{name} has zone id {zone['ZoneId']}, which has no VPC slice")
        cidrs[f"Cidr{letter.upper()}"] = str(slices[int(match.group(1)) - 1])
    return cidrs


def _names(event):
    properties = event.get("ResourceProperties") or {}
    zones = properties.get("Zones")
    if isinstance(zones, str):  # a list parameter may arrive joined
        zones = [zone for zone in zones.split(",") if zone]
    if not zones or not all(isinstance(zone, str) for zone in zones):
        raise ValueError(f"Zones must be a list of zone names, got {zones!r}")
    return sorted(set(zones)), properties.get("VpcCidr")


def place(event, _context):
    names, vpc_cidr = _names(event)
    ec2 = boto3.client("ec2")
    region = ec2.meta.region_name  # the zones' region is the one the names were looked up in
    zones = ec2.describe_availability_zones(ZoneNames=names)["AvailabilityZones"]
    missing = sorted(set(names) - {zone["ZoneName"] for zone in zones})
    if missing:
        raise ValueError(f"{missing[0]} is not a zone of this account in {region}")
    return f"{region}-zone-plan", plan(zones, vpc_cidr, region)


def handler(event, context):
    run(
        event,
        context,
        {
            "Create": place,
            "Update": place,
            "Delete": lambda event, _context: (event.get("PhysicalResourceId"), {}),
        },
    )
