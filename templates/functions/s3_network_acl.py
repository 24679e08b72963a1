"""Keep the private subnets' network ACL equal to the region's S3 prefix list.

A network ACL cannot reference a prefix list, and AWS changes the S3 ranges over time, so the
entries are written from the live ``com.amazonaws.<region>.s3`` list: on stack create and
update (as a custom resource, returning the list id for the security group) and daily (as a
scheduled event carrying ``NetworkAclId``). Only S3's CIDRs get in: inbound TCP 1024-65535,
outbound TCP 443, one rule pair per CIDR from rule 100; stale entries are removed last.
"""

import os

import boto3

from .custom_resource import run

FIRST_RULE = 100
DEFAULT_RULE = 32767  # AWS's own final deny; never touched
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


def wanted_entries(cidrs):
    """{(egress, rule number): entry} for every S3 CIDR."""
    entries = {}
    for offset, cidr in enumerate(cidrs):
        for egress, ports in ((False, EPHEMERAL_PORTS), (True, HTTPS_PORT)):
            entries[(egress, FIRST_RULE + offset)] = {
                "Egress": egress,
                "RuleNumber": FIRST_RULE + offset,
                "Protocol": TCP,
                "RuleAction": "allow",
                "CidrBlock": cidr,
                "PortRange": ports,
            }
    return entries


def _same(current, wanted):
    return all(current.get(key) == value for key, value in wanted.items())


def sync(ec2, network_acl_id, cidrs):
    """Make the ACL's entries exactly ``wanted_entries(cidrs)``; returns the calls made."""
    acl = ec2.describe_network_acls(NetworkAclIds=[network_acl_id])["NetworkAcls"][0]
    current = {
        (entry["Egress"], entry["RuleNumber"]): entry
        for entry in acl["Entries"]
        if entry["RuleNumber"] != DEFAULT_RULE
    }
    wanted = wanted_entries(cidrs)
    changes = 0
    for key, entry in sorted(wanted.items()):
        if key not in current:
            ec2.create_network_acl_entry(NetworkAclId=network_acl_id, **entry)
        elif not _same(current[key], entry):
            ec2.replace_network_acl_entry(NetworkAclId=network_acl_id, **entry)
        else:
            continue
        changes += 1
    for egress, rule_number in sorted(current.keys() - wanted.keys()):
        ec2.delete_network_acl_entry(
            NetworkAclId=network_acl_id, Egress=egress, RuleNumber=rule_number
        )
        changes += 1
    return changes


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
