"""The four files ``build.py migrate --from-stack DIR`` reads, checked and reduced to plain data.

The operator writes them with the AWS CLI (FILES has the exact commands); each is checked for
the fields the botocore service models give those answers, so a file from the wrong command,
stack or region is refused in one line before anything is derived from it.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from . import MigrationError

REGION_PLACEHOLDER = "REGION"
STACK_PLACEHOLDER = "STACK"
FILES = {
    "template.json": "aws cloudformation get-template --region REGION --stack-name STACK "
    "--query TemplateBody --output json > template.json",
    "stack.json": "aws cloudformation describe-stacks --region REGION --stack-name STACK "
    "> stack.json",
    "resources.json": "aws cloudformation describe-stack-resources --region REGION "
    "--stack-name STACK > resources.json",
    "zones.json": "aws ec2 describe-availability-zones --region REGION > zones.json",
}
# A stack CloudFormation may update: not in progress, not failed half-way.
UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}


@dataclass(frozen=True)
class StackInputs:
    template: dict  # the deployed template
    stack_name: str
    stack_id: str
    region: str
    parameters: dict  # {key: value} as the stack runs
    physical_ids: dict  # {logical id: physical id}
    zones: dict  # {zone id: {ZoneName, ZoneId, ZoneType}} in this account


def read_inputs(directory):
    """StackInputs from DIR; MigrationError naming the file and the command to write it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MigrationError(f"{directory}: not a directory (it must hold {', '.join(FILES)})")
    texts = {name: _read(directory / name) for name in FILES}
    template = _template(texts["template.json"])
    stack = _stack(texts["stack.json"])
    region = stack["StackId"].split(":")[3]
    return StackInputs(
        template=template,
        stack_name=stack["StackName"],
        stack_id=stack["StackId"],
        region=region,
        parameters={p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
        physical_ids=_physical_ids(texts["resources.json"], stack["StackId"]),
        zones=_zones(texts["zones.json"], region),
    )


def _read(path):
    try:
        text = path.read_text()
    except OSError as error:
        raise MigrationError(
            f"{path}: cannot read ({error.strerror or error}): write it with `{FILES[path.name]}`"
        ) from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise MigrationError(
            f"{path}: not JSON ({error}): write it with `{FILES[path.name]}`"
        ) from None


def _malformed(name, what):
    return MigrationError(f"{name}: {what}: write it with `{FILES[name]}`")


def _template(body):
    if isinstance(body, dict) and "TemplateBody" in body:  # the whole get-template answer
        body = body["TemplateBody"]
    if isinstance(body, str):  # a template kept as text (CloudFormation stores it as given)
        try:
            body = json.loads(body)
        except ValueError:
            raise _malformed("template.json", "the template is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
        raise _malformed("template.json", "no Resources")
    return body


def _stack(answer):
    stacks = answer.get("Stacks") if isinstance(answer, dict) else None
    if not isinstance(stacks, list) or len(stacks) != 1:
        raise _malformed("stack.json", "not one stack under Stacks")
    [stack] = stacks
    if not all(isinstance(stack.get(key), str) for key in ("StackId", "StackName", "StackStatus")):
        raise _malformed("stack.json", "StackId, StackName or StackStatus missing")
    arn = stack["StackId"].split(":")
    if len(arn) < 6 or arn[2] != "cloudformation":
        raise _malformed("stack.json", f"StackId {stack['StackId']!r} is not a stack ARN")
    if stack["StackStatus"] not in UPDATABLE:
        raise MigrationError(
            f"stack {stack['StackName']} is {stack['StackStatus']}: wait until it is one of "
            f"{', '.join(sorted(UPDATABLE))}, then write stack.json again"
        )
    return stack


def _physical_ids(answer, stack_id):
    resources = answer.get("StackResources") if isinstance(answer, dict) else None
    if not isinstance(resources, list) or not resources:
        raise _malformed("resources.json", "no StackResources")
    ids = {}
    for resource in resources:
        if resource.get("StackId", stack_id) != stack_id:
            raise MigrationError(
                f"resources.json is of stack {resource['StackId']}, stack.json of {stack_id}"
            )
        if resource.get("PhysicalResourceId") and "LogicalResourceId" in resource:
            ids[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    return ids


def _zones(answer, region):
    zones = answer.get("AvailabilityZones") if isinstance(answer, dict) else None
    if not isinstance(zones, list) or not zones:
        raise _malformed("zones.json", "no AvailabilityZones")
    regions = {zone.get("RegionName") for zone in zones}
    if regions != {region}:
        found = ", ".join(sorted(str(name) for name in regions))
        raise MigrationError(
            f"zones.json describes {found}, the stack is in {region}: "
            f"write it with `{FILES['zones.json'].replace(REGION_PLACEHOLDER, region)}`"
        )
    return {
        zone["ZoneId"]: {
            "ZoneName": zone["ZoneName"],
            "ZoneId": zone["ZoneId"],
            "ZoneType": zone.get("ZoneType", "availability-zone"),
        }
        for zone in zones
    }
