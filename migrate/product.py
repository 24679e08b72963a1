"""The product template as the migrated stack runs it: the module's names, the state's settings."""

import json
import re

from templates.functions import zone_plan

from . import MigrationError

TERRAFORM_MODULE_STYLE = "terraform-module"


def render_product():
    """The product template (dict), the same for every region: its NameStyle parameter keeps
    the module's names when the parameters file says ``terraform-module``."""
    from templates.runtime import build_template

    return json.loads(json.dumps(build_template().to_dict()))


def minified(template):
    return (json.dumps(template, sort_keys=True, separators=(",", ":")) + "\n").encode()


def zone_resources(product):
    """``{zone letter: {"subnet": id, "route_table": id, "association": id}}``: the product's
    subnet slots, found by their AvailabilityZone ``${AWS::Region}<letter>``."""
    resources = product["Resources"]
    zones = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::EC2::Subnet":
            zone = resource["Properties"]["AvailabilityZone"]["Fn::Sub"]
            zones[zone.removeprefix("${AWS::Region}")] = {"subnet": logical_id}
    by_subnet = {zone["subnet"]: zone for zone in zones.values()}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::EC2::SubnetRouteTableAssociation":
            zone = by_subnet[resource["Properties"]["SubnetId"]["Ref"]]
            zone["association"] = logical_id
            zone["route_table"] = resource["Properties"]["RouteTableId"]["Ref"]
    return zones


def zone_letter(facts, zone_name):
    """The product's subnet slot of a zone: its name is the region plus this letter."""
    return zone_name.removeprefix(facts.region)


def check_subnet_layout(facts, subnets):
    """Refuse unless the zone plan will give every subnet of the state its running CIDR.

    ``subnets``: ``[{"ZoneName", "ZoneId", "CidrBlock"}]`` from the state. The module cut the
    VPC in 16 too (cidrsubnet(cidr, 4, i)) but took i from its zone's place among the sorted ids
    of the zones it saw (those needing no opt-in then); the product's zone plan takes slice N-1
    for id ``<region>-azN``. They agree when the module saw az1, az2, ... without gaps, not
    e.g. in a us-east-1 account without use1-az3 (the module put use1-az4 at slice 2). A
    differing CIDR is create-only: the update would replace the subnet, so refuse here."""
    zones = [{**subnet, "ZoneType": "availability-zone"} for subnet in subnets]
    try:
        planned = zone_plan.plan(zones, facts.vpc_cidr, facts.region)
    except ValueError as error:
        raise MigrationError(f"{error}: the product has no subnet slot for it") from None
    for subnet in sorted(subnets, key=lambda subnet: subnet["ZoneId"]):
        expected = planned[f"Cidr{zone_letter(facts, subnet['ZoneName']).upper()}"]
        if subnet["CidrBlock"] != expected:
            number = int(subnet["ZoneId"].rsplit("az", 1)[1])
            raise MigrationError(
                f"subnet of {subnet['ZoneId']} ({subnet['ZoneName']}) is {subnet['CidrBlock']}, "
                f"the product's is {expected} (slice {number - 1} of {facts.vpc_cidr} for "
                f"az{number}): the module counted the zone ids it saw, with a gap; the update "
                "would replace the subnet"
            )


def parameter_values(facts, product):
    """The product's parameters reproducing the running deployment (only those it declares)."""
    wanted = {
        "NamePrefix": facts.prefix,
        "NameStyle": TERRAFORM_MODULE_STYLE,
        "VpcCidr": facts.vpc_cidr,
        "AvailabilityZones": ",".join(facts.zone_names),
        "RepositoryNames": ",".join(facts.repository_names),
        "LogRetentionDays": str(facts.log_retention_days),
        "AllowedInstanceTypes": ",".join(facts.allowed_instance_types),
        "MaximumRuntimeSeconds": str(facts.maximum_runtime_seconds),
        "StoppedEventsQueueArn": facts.stopped_events_queue_arn,
        "LogsBucketName": facts.logs_bucket_name,
        # Participants' images: deleting the stack later must not delete them by default.
        "KeepImagesOnDelete": "true",
    }
    declared = product["Parameters"]
    values = {key: value for key, value in wanted.items() if key in declared}
    for key, value in values.items():
        problem = why_rejected(declared[key], value)
        if problem:
            raise MigrationError(f"the state's {key} {value!r} is not valid here: {problem}")
    return values


def why_rejected(definition, value):
    items = value.split(",") if _is_list(definition) else [value]
    for item in items:
        if "AllowedValues" in definition and item not in definition["AllowedValues"]:
            return f"{item!r} is not one of {definition['AllowedValues']}"
        pattern = definition.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, item):
            return f"{item!r} does not match {pattern}"
    return None


def _is_list(definition):
    return definition["Type"] == "CommaDelimitedList" or definition["Type"].startswith("List<")


def acl_switch_waits_for_entries(product):
    """True if every subnet-ACL association comes after the S3 entries are in its ACL, so a
    subnet never sits behind an empty (deny-all) ACL while CloudFormation switches it."""
    resources = product["Resources"]
    fillers = {
        resource["Properties"]["NetworkAclId"]["Ref"]: logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "Custom::S3NetworkAclEntries"
    }
    return all(
        fillers.get(resource["Properties"]["NetworkAclId"]["Ref"])
        in _dependencies(resources, logical_id)
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::EC2::SubnetNetworkAclAssociation"
    )


def _dependencies(resources, logical_id):
    """Every resource ``logical_id`` waits for (DependsOn, Ref, GetAtt), transitively."""
    seen, pending = set(), [logical_id]
    while pending:
        resource = resources[pending.pop()]
        depends = resource.get("DependsOn", [])
        direct = set([depends] if isinstance(depends, str) else depends)
        direct |= {ref for ref in _references(resource.get("Properties", {})) if ref in resources}
        pending.extend(direct - seen)
        seen |= direct
    return seen


def _references(value):
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".")[0]
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                yield from (ref.split(".")[0] for ref in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(inner, list):
                    yield from _references(inner[1])
            else:
                yield from _references(inner)
