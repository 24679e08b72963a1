"""Custom resource: remove the network interfaces SageMaker left in the stack's subnets.

ResourceProperties: ``VpcId``, ``SecurityGroupId``, ``SubnetIds`` (optional list). An interface
is SageMaker's leftover when it is in ``VpcId`` and has ``SecurityGroupId``: that group is used
only by the SageMaker training jobs, so matching on it (not on SageMaker's undocumented
descriptions or requester ids) finds exactly their leftovers and nothing else.

- Create validates the properties.
- Update cleans the subnets that were in the old ``SubnetIds`` and are not in the new ones (a
  zone switched off: its subnet is deleted after the update, which the interfaces would
  block). The physical id stays unless the VPC or the group changed; then the new id makes
  CloudFormation send a Delete for the old pair, which cleans that up.
- Delete cleans every matching interface in the VPC, whatever its subnet, as any of them
  would block deleting the security group.

An interface is deleted once its status is ``available``; those still in use are polled with
backoff until ``MAX_WAIT_SECONDS`` or shortly before the invocation's deadline, then the
request fails naming them. Physical id:
``<VpcId>-<SecurityGroupId>-eni-cleanup``.
"""

import time

import boto3

from .custom_resource import logger, run

MAX_WAIT_SECONDS = 840
FIRST_POLL_SECONDS = 5
MAX_POLL_SECONDS = 60
# Stop waiting this long before a deadline; above the protocol's watchdog margin.
DEADLINE_MARGIN_SECONDS = 30


def _properties(properties):
    properties = properties or {}
    vpc, group = properties.get("VpcId"), properties.get("SecurityGroupId")
    subnets = properties.get("SubnetIds") or []
    if not (str(vpc).startswith("vpc-") and str(group).startswith("sg-") and type(subnets) is list):
        raise ValueError("Need VpcId (vpc-...), SecurityGroupId (sg-...), SubnetIds (a list)")
    return vpc, group, subnets


def validate(event, _context):
    vpc, group, _ = _properties(event.get("ResourceProperties"))
    return f"{vpc}-{group}-eni-cleanup", {}


def update(event, context):
    vpc, group, subnets = _properties(event.get("ResourceProperties"))
    old = event.get("OldResourceProperties") or event.get("ResourceProperties")
    old_vpc, old_group, old_subnets = _properties(old)
    if (vpc, group) != (old_vpc, old_group):
        return validate(event, context)  # a new id: the Delete of the old one cleans it
    if dropped := sorted(set(old_subnets) - set(subnets)):
        clean_up(event, context, vpc, group, dropped)
    return event["PhysicalResourceId"], {}


def delete(event, context):
    vpc, group, _ = _properties(event.get("ResourceProperties"))
    clean_up(event, context, vpc, group, [])
    return event.get("PhysicalResourceId"), {}


def _sweep(ec2, vpc, group, subnets, context):
    """Delete the matching available interfaces (in ``subnets``, or all subnets when empty);
    return the ones still busy."""
    if getattr(context, "cancelled", None) and context.cancelled.is_set():
        raise RuntimeError("the watchdog has answered: stopped")  # nothing more after that
    filters = [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-id", "Values": [group]}]
    if subnets:
        filters.append({"Name": "subnet-id", "Values": subnets})
    busy = []
    for page in ec2.get_paginator("describe_network_interfaces").paginate(Filters=filters):
        for eni in page["NetworkInterfaces"]:
            eni_id, status = eni["NetworkInterfaceId"], eni["Status"]
            # Whatever the filters returned, touch only interfaces of this VPC and group.
            if eni["VpcId"] != vpc or group not in [g["GroupId"] for g in eni["Groups"]]:
                continue
            try:
                if status == "available":
                    ec2.delete_network_interface(NetworkInterfaceId=eni_id)
                    logger.info("deleted %s", eni_id)
                    continue
            except ec2.exceptions.ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "InvalidNetworkInterfaceID.NotFound":
                    continue
                if code != "InvalidNetworkInterface.InUse":
                    raise
            busy.append(f"{eni_id} ({status})")
    return busy


def clean_up(event, context, vpc, group, subnets):
    ec2 = boto3.client("ec2")
    start = time.monotonic()
    budget = context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    deadline = start + max(0, min(MAX_WAIT_SECONDS, budget))
    delay = FIRST_POLL_SECONDS
    while busy := _sweep(ec2, vpc, group, subnets, context):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(
                f"{len(busy)} network interface(s) of {group} not available after "
                f"{time.monotonic() - start:.0f}s: {', '.join(busy[:5])}"
            )
        time.sleep(min(delay, left))
        delay = min(delay * 2, MAX_POLL_SECONDS)


def handler(event, context):
    run(event, context, {"Create": validate, "Update": update, "Delete": delete})
