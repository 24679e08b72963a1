"""Custom resource: make a VPC's default security group and default network ACL deny everything.

ResourceProperties: ``VpcId``. Create and Update revoke every ingress and egress rule of
the VPC's default security group and delete every entry of its default network ACL except
the fixed catch-all deny entries (rule 32767, and 32768 for IPv6), which AWS keeps. Both
are idempotent: a second run finds nothing to remove and makes no mutating call. Delete
restores nothing (the VPC is going away) and calls no AWS API, so it also succeeds when
the VPC is already gone. Physical id: ``<VpcId>-lockdown``.
"""

import boto3

from .custom_resource import run

# AWS's own catch-all deny entries (32767 IPv4, 32768 IPv6) cannot be deleted.
FIRST_FIXED_RULE_NUMBER = 32767


def _only(items, what, vpc_id):
    if len(items) != 1:
        raise RuntimeError(f"{vpc_id} has {len(items)} {what}; does the VPC exist?")
    return items[0]


def lock_down(event, _context):
    vpc_id = (event.get("ResourceProperties") or {}).get("VpcId")
    if not (isinstance(vpc_id, str) and vpc_id.startswith("vpc-")):
        raise ValueError(f"VpcId must be a VPC id, got {vpc_id!r}")
    ec2 = boto3.client("ec2")
    in_vpc = {"Name": "vpc-id", "Values": [vpc_id]}
    group = _only(
        ec2.describe_security_groups(
            Filters=[in_vpc, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"],
        "default security groups",
        vpc_id,
    )
    if group["IpPermissions"]:
        ec2.revoke_security_group_ingress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
        )
    if group["IpPermissionsEgress"]:
        ec2.revoke_security_group_egress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
        )
    acl = _only(
        ec2.describe_network_acls(Filters=[in_vpc, {"Name": "default", "Values": ["true"]}])[
            "NetworkAcls"
        ],
        "default network ACLs",
        vpc_id,
    )
    for entry in acl["Entries"]:
        if entry["RuleNumber"] < FIRST_FIXED_RULE_NUMBER:
            ec2.delete_network_acl_entry(
                NetworkAclId=acl["NetworkAclId"],
                RuleNumber=entry["RuleNumber"],
                Egress=entry["Egress"],
            )
    return f"{vpc_id}-lockdown", {
        "SecurityGroupId": group["GroupId"],
        "NetworkAclId": acl["NetworkAclId"],
    }


def handler(event, context):
    run(
        event,
        context,
        {
            "Create": lock_down,
            "Update": lock_down,
            "Delete": lambda event, _context: (event.get("PhysicalResourceId"), {}),
        },
    )
