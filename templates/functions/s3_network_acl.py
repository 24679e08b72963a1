"""Keep the private subnets' network ACL equal to the region's S3 prefix list.

A network ACL cannot reference a prefix list, and AWS changes the S3 ranges over time, so the
entries are written from the live ``com.amazonaws.<region>.s3`` list: on stack create and
update (as a custom resource, returning the list id for the security group) and daily (as a
scheduled event carrying ``NetworkAclId``). Only S3's CIDRs get in: inbound TCP 1024-65535,
outbound TCP 443, one rule pair per CIDR.

Several syncs may run at once (the daily run during a stack update, Lambda's at-least-once
delivery, a rollback while the first call still runs), so the sync converges by content and
is safe under any interleaving of syncs that read the same prefix list:

- A rule is present when some entry has its exact content, whatever its number. Missing rules
  are created, never written over an existing entry, so no copy of a wanted rule is replaced.
- The CIDR at sorted position i only ever goes to rule 100+i, or 200+i, 300+i... when that is
  taken. A number thus holds one wanted content whoever writes it, so deleting by number after
  a re-read cannot hit a different wanted rule that another sync wrote there in between.
- Nothing is deleted until every wanted rule is present (S3 is never cut off), and then only
  one entry per step, after a fresh read: an entry whose content is unwanted, or a duplicate of
  a wanted rule kept at a lower number. Every sync keeps the same (lowest) copy.
- "Already exists" / "not found" mean another sync got there first: re-read and re-plan.

The ACL quota ("network ACL rules per ACL", 20 per direction by default counting the deny-all
rule, adjustable up to 40) is checked before writing, old and new rules together.
"""

import os

import boto3

from .custom_resource import run

FIRST_RULE = 100
SLOT_STRIDE = 100  # CIDR i's rule numbers: 100+i, 200+i, ...
FIXED_RULES = 32767  # AWS's own final deny rules (32767, and 32768 for IPv6); never touched
RULE_QUOTA = 20  # default "network ACL rules per ACL" per direction (Service Quotas L-2AEEBF1A)
MAX_RULE_QUOTA = 40  # the most AWS grants
QUOTA_HINT = (
    "the quota 'network ACL rules per ACL' ({} per direction) is too low: raise it in Service "
    f"Quotas (Amazon VPC, L-2AEEBF1A, up to {MAX_RULE_QUOTA}) and set NetworkAclRuleQuota to match"
)
MAX_STEPS = 4 * MAX_RULE_QUOTA  # reads, each followed by a batch of creates or one delete
TCP = "6"
DIRECTIONS = ((False, (1024, 65535)), (True, (443, 443)))  # inbound replies, outbound HTTPS
RACED = ("NetworkAclEntryAlreadyExists", "InvalidNetworkAclEntry.NotFound")


class QuotaError(Exception):
    pass


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


def wanted_rules(cidrs):
    """{rule content: slot index}; a content is (egress, protocol, action, cidr, ports)."""
    return {
        (egress, TCP, "allow", cidr, ports): index
        for index, cidr in enumerate(sorted(cidrs))
        for egress, ports in DIRECTIONS
    }


def content(entry):
    ports = entry.get("PortRange")
    ports = ports and (ports.get("From"), ports.get("To"))
    return (entry["Egress"], entry.get("Protocol"), entry.get("RuleAction"),
            entry.get("CidrBlock"), ports)  # fmt: skip


def read_rules(ec2, network_acl_id):
    """{(egress, rule number): content} of every entry, the deny-all rules included."""
    acl = ec2.describe_network_acls(NetworkAclIds=[network_acl_id])["NetworkAcls"][0]
    return {(e["Egress"], e["RuleNumber"]): content(e) for e in acl["Entries"]}


def plan_creates(rules, wanted):
    """[(rule number, content)] for each wanted content no entry has, in its first free slot."""
    present, creates = set(rules.values()), []
    for rule, index in sorted(wanted.items()):
        if rule not in present:
            slots = range(FIRST_RULE + index, FIXED_RULES, SLOT_STRIDE)
            creates.append((next(n for n in slots if (rule[0], n) not in rules), rule))
    return creates


def plan_deletes(rules, wanted):
    """[(egress, number)] of entries unwanted or duplicating a lower one; none while a wanted
    rule is missing, so the new set is always complete before the old goes."""
    if not set(wanted) <= set(rules.values()):
        return []
    keeper = {}
    for key in sorted(rules):
        keeper.setdefault(rules[key], key)
    return [
        key
        for key in sorted(rules)
        if key[1] < FIXED_RULES and (rules[key] not in wanted or keeper[rules[key]] != key)
    ]


def quota_problem(rules, creates, quota):
    """Why the rules in place plus ``creates`` do not fit the ACL quota; None when they do."""
    for egress, direction in ((False, "inbound"), (True, "outbound")):
        needed = sum(key[0] == egress for key in rules) + sum(c[0] == egress for _, c in creates)
        if needed > quota:
            return (
                f"needs {needed} {direction} rules (deny-all, rules in place, new rules written "
                f"before old ones go) but {QUOTA_HINT.format(quota)}"
            )
    return None


def _attempt(write, **params):
    """One ACL write; 1 if made, 0 if another sync raced us to it (the next read shows)."""
    try:
        write(**params)
        return 1
    except write.__self__.exceptions.ClientError as error:
        code = error.response["Error"]["Code"]
        if code in RACED:
            return 0
        if code == "NetworkAclEntryLimitExceeded":
            raise QuotaError(
                f"{params['NetworkAclId']} is full: {QUOTA_HINT.format(code)}"
            ) from error
        raise


def sync(ec2, network_acl_id, cidrs, quota=RULE_QUOTA):
    """Converge the ACL to one rule pair per CIDR; returns the number of writes made."""
    wanted, writes = wanted_rules(cidrs), 0
    for _ in range(MAX_STEPS):
        rules = read_rules(ec2, network_acl_id)
        creates = plan_creates(rules, wanted)
        if problem := creates and quota_problem(rules, creates, quota):
            raise QuotaError(f"{network_acl_id} {problem}")
        for number, (egress, protocol, action, cidr, (low, high)) in creates:
            writes += _attempt(
                ec2.create_network_acl_entry,
                NetworkAclId=network_acl_id,
                Egress=egress,
                RuleNumber=number,
                Protocol=protocol,
                RuleAction=action,
                CidrBlock=cidr,
                PortRange={"From": low, "To": high},
            )
        deletes = [] if creates else plan_deletes(rules, wanted)[:1]  # re-read before each
        for egress, number in deletes:
            writes += _attempt(
                ec2.delete_network_acl_entry,
                NetworkAclId=network_acl_id,
                Egress=egress,
                RuleNumber=number,
            )
        if not creates and not deletes:
            return writes
    raise RuntimeError(f"{network_acl_id} still changing after {MAX_STEPS} steps")


def rule_quota(source):
    """The NetworkAclRuleQuota in ``source`` (a raised quota), else the default."""
    value = source.get("NetworkAclRuleQuota", RULE_QUOTA)
    if str(value).isdigit() and RULE_QUOTA <= int(value) <= MAX_RULE_QUOTA:
        return int(value)
    raise ValueError(f"NetworkAclRuleQuota must be {RULE_QUOTA} to {MAX_RULE_QUOTA}: {value!r}")


def apply(network_acl_id, quota=RULE_QUOTA):
    ec2 = boto3.client("ec2")
    prefix_list_id, cidrs = s3_prefix_list(ec2, os.environ["AWS_REGION"])
    changes = sync(ec2, network_acl_id, cidrs, quota)
    print(f"{network_acl_id}: {len(cidrs)} S3 CIDRs, {changes} entries changed")
    return prefix_list_id, cidrs


def create_or_update(event, context):
    properties = event["ResourceProperties"]
    network_acl_id = properties["NetworkAclId"]  # the id: a new ACL is a new resource
    prefix_list_id, cidrs = apply(network_acl_id, rule_quota(properties))
    return network_acl_id, {"PrefixListId": prefix_list_id, "Cidrs": ",".join(cidrs)}


def handler(event, context):
    if isinstance(event, dict) and "RequestType" not in event and "NetworkAclId" in event:
        # The daily schedule; an error shows in Lambda metrics.
        apply(event["NetworkAclId"], rule_quota(event))
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
