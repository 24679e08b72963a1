"""Custom resource: on Delete, remove the network interfaces SageMaker left in the stack's VPC.

ResourceProperties: ``VpcId``, ``SecurityGroupId``, ``SubnetIds`` (optional list). Create and
Update only validate them. Delete deletes every network interface that is in ``VpcId``, has
``SecurityGroupId`` and, when ``SubnetIds`` is given, sits in one of those subnets, once its
status is ``available``. That group is used only by the SageMaker training jobs, so matching
on it (not on SageMaker's undocumented descriptions or requester ids) finds exactly their
leftovers and nothing else. Interfaces still in use are polled with backoff until
``MAX_WAIT_SECONDS`` or shortly before the Lambda deadline, then the Delete fails naming
them. Physical id: ``<VpcId>-<SecurityGroupId>-eni-cleanup``.
"""

import time

import boto3

from .custom_resource import logger, run

MAX_WAIT_SECONDS = 840
FIRST_POLL_SECONDS = 5
MAX_POLL_SECONDS = 60
# Stop waiting this long before the Lambda deadline; above the protocol's watchdog margin.
DEADLINE_MARGIN_SECONDS = 30


def _properties(event):
    properties = event.get("ResourceProperties") or {}
    vpc, group = properties.get("VpcId"), properties.get("SecurityGroupId")
    subnets = properties.get("SubnetIds") or []
    if not (str(vpc).startswith("vpc-") and str(group).startswith("sg-") and type(subnets) is list):
        raise ValueError("Need VpcId (vpc-...), SecurityGroupId (sg-...), SubnetIds (a list)")
    return vpc, group, subnets


def validate(event, _context):
    vpc, group, _ = _properties(event)
    return f"{vpc}-{group}-eni-cleanup", {}


def _sweep(ec2, vpc, group, subnets):
    """Delete the matching available interfaces; return the ones still busy."""
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


def clean_up(event, context):
    vpc, group, subnets = _properties(event)
    ec2 = boto3.client("ec2")
    start = time.monotonic()
    budget = context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    deadline = start + max(0, min(MAX_WAIT_SECONDS, budget))
    delay = FIRST_POLL_SECONDS
    while busy := _sweep(ec2, vpc, group, subnets):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(
                f"{len(busy)} network interface(s) of {group} not available after "
                f"{time.monotonic() - start:.0f}s: {', '.join(busy[:5])}"
            )
        time.sleep(min(delay, left))
        delay = min(delay * 2, MAX_POLL_SECONDS)
    return event.get("PhysicalResourceId"), {}


def handler(event, context):
    run(event, context, {"Create": validate, "Update": validate, "Delete": clean_up})
