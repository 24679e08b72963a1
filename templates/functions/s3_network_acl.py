"""Keep the private subnets' network ACL equal to the region's S3 prefix list.

A network ACL cannot reference a prefix list, and AWS changes the S3 ranges over time, so the
entries are written from the live ``com.amazonaws.<region>.s3`` list: on stack create and
update (as a custom resource, returning the list id for the security group) and daily (as a
scheduled event carrying ``NetworkAclId``). Only S3's CIDRs get in: inbound TCP 1024-65535,
outbound TCP 443, one rule pair per CIDR. A change is written as a whole new set in the free
rule range (100+ or 200+) before the old set is deleted, so S3 is never briefly cut off.
"""

import os

import boto3

from .custom_resource import run

RULE_RANGES = (100, 200)  # the set in use sits in one range, a replacement goes to the other
FIXED_RULES = 32767  # AWS's own final deny rules (32767, and 32768 for IPv6); never touched
TCP = "6"
EPHEMERAL_PORTS = {"From": 1024, "To": 65535}
HTTPS_PORT = {"From": 443, "To": 443}


def s3_prefix_list(ec2, region):
    """(prefix list id, sorted CIDRs) of the region's S3 gateway prefix list."""
    name = f"com.amazonaws.{region}.s3"
    found = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [name]}]
    )["PrefixLists"]
    if not found:
        raise LookupError(f"no prefix list {name}")
    prefix_list_id = found[0]["PrefixListId"]
    pages = ec2.get_paginator("get_managed_prefix_list_entries").paginate(
        PrefixListId=prefix_list_id
    )
    cidrs = sorted({entry["Cidr"] for page in pages for entry in page["Entries"]})
    if not cidrs:
        raise LookupError(f"prefix list {name} has no entries")
    return prefix_list_id, cidrs


def wanted_entries(cidrs, first_rule):
    """{(egress, rule number): entry} for every S3 CIDR, numbered from ``first_rule``."""
    entries = {}
    for offset, cidr in enumerate(cidrs):
        for egress, ports in ((False, EPHEMERAL_PORTS), (True, HTTPS_PORT)):
            entries[(egress, first_rule + offset)] = {
                "Egress": egress,
                "RuleNumber": first_rule + offset,
                "Protocol": TCP,
                "RuleAction": "allow",
                "CidrBlock": cidr,
                "PortRange": ports,
            }
    return entries


def _content(entry):
    ports = tuple(sorted(entry.get("PortRange", {}).items()))
    return (*(entry.get(key) for key in ("Egress", "Protocol", "RuleAction", "CidrBlock")), ports)


def sync(ec2, network_acl_id, cidrs):
    """Make the ACL's entries exactly one rule pair per CIDR; returns the number of writes."""
    acl = ec2.describe_network_acls(NetworkAclIds=[network_acl_id])["NetworkAcls"][0]
    current = {
        (entry["Egress"], entry["RuleNumber"]): entry
        for entry in acl["Entries"]
        if entry["RuleNumber"] < FIXED_RULES
    }
    have = sorted(_content(entry) for entry in current.values())
    if have == sorted(_content(e) for e in wanted_entries(cidrs, 0).values()):
        return 0
    free = [
        first
        for first in RULE_RANGES
        if not any(first <= number < first + 100 for _, number in current)
    ]
    wanted = wanted_entries(cidrs, (free or RULE_RANGES)[0])
    for key, entry in sorted(wanted.items()):
        write = ec2.replace_network_acl_entry if key in current else ec2.create_network_acl_entry
        write(NetworkAclId=network_acl_id, **entry)
    stale = sorted(current.keys() - wanted.keys())
    for egress, rule_number in stale:
        ec2.delete_network_acl_entry(
            NetworkAclId=network_acl_id, Egress=egress, RuleNumber=rule_number
        )
    return len(wanted) + len(stale)


def apply(network_acl_id):
    ec2 = boto3.client("ec2")
    prefix_list_id, cidrs = s3_prefix_list(ec2, os.environ["AWS_REGION"])
    changes = sync(ec2, network_acl_id, cidrs)
    print(f"{network_acl_id}: {len(cidrs)} S3 CIDRs, {changes} entries changed")
    return prefix_list_id, cidrs


def create_or_update(event, context):
    network_acl_id = event["ResourceProperties"]["NetworkAclId"]
    prefix_list_id, cidrs = apply(network_acl_id)
    return network_acl_id, {"PrefixListId": prefix_list_id, "Cidrs": ",".join(cidrs)}


def handler(event, context):
    if isinstance(event, dict) and "RequestType" not in event and "NetworkAclId" in event:
        apply(event["NetworkAclId"])  # the daily schedule; an error shows in Lambda metrics
        return
    run(
        event,
        context,
        {
            "Create": create_or_update,
            "Update": create_or_update,
            # The ACL and its entries go with the stack; nothing to undo.
            "Delete": lambda event, context: (event["PhysicalResourceId"], {}),
        },
    )
