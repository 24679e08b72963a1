"""The product template as the migrated stack runs it: the module's names, the state's settings."""

import ipaddress
import json
import re

from . import MigrationError

TERRAFORM_MODULE_STYLE = "terraform-module"


def render_product(region, zone_ids):
    """The product template (dict) for ``region``: its NameStyle parameter keeps the module's
    names when the parameters file says ``terraform-module``."""
    from templates.runtime import build_template
    from templates.stack import Region

    return json.loads(json.dumps(build_template(Region(region, tuple(zone_ids))).to_dict()))


def minified(template):
    return (json.dumps(template, sort_keys=True, separators=(",", ":")) + "\n").encode()


def zone_resources(product):
    """``{zone id: {"subnet": id, "route_table": id, "association": id, "parameter": name}}``."""
    resources = product["Resources"]
    zones = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::EC2::Subnet":
            condition = product["Conditions"][resource["Condition"]]
            zones[resource["Properties"]["AvailabilityZoneId"]] = {
                "subnet": logical_id,
                "parameter": condition["Fn::Equals"][0]["Ref"],
            }
    by_subnet = {zone["subnet"]: zone for zone in zones.values()}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::EC2::SubnetRouteTableAssociation":
            zone = by_subnet[resource["Properties"]["SubnetId"]["Ref"]]
            zone["association"] = logical_id
            zone["route_table"] = resource["Properties"]["RouteTableId"]["Ref"]
    return zones


def check_subnet_layout(facts, subnet_cidrs, region_zone_ids):
    """Refuse unless every subnet of the state is where the product puts its zone's subnet.

    Both slice the VPC CIDR in 16 (the module: cidrsubnet(cidr, 4, i); the product:
    Fn::Cidr(cidr, 16, 32 - prefix - 4)[i]), so for any /16 to /24 they coincide exactly when
    the zone's index i is the same: the module's index is its zone's place in the sorted ids of
    the zones that needed no opt-in when it was applied, the product's in params/build.json."""
    unknown = sorted(set(subnet_cidrs) - set(region_zone_ids))
    if unknown:
        raise MigrationError(
            f"zone {unknown[0]} has a subnet in the state but is not one of {facts.region}'s "
            "zones in the build settings: add it there (sorted) and build again"
        )
    vpc = ipaddress.ip_network(facts.vpc_cidr)
    slices = list(vpc.subnets(new_prefix=vpc.prefixlen + 4))
    ordered = sorted(region_zone_ids)
    for zone, cidr in sorted(subnet_cidrs.items()):
        expected = str(slices[ordered.index(zone)])
        if cidr != expected:
            raise MigrationError(
                f"subnet of {zone} is {cidr}, the product's is {expected}: the module saw "
                f"another zone list than the build settings' {ordered}; importing would "
                "replace the subnet"
            )


def parameter_values(facts, product):
    """The product's parameters reproducing the running deployment (only those it declares)."""
    zones = zone_resources(product)
    wanted = {
        "NamePrefix": facts.prefix,
        "NameStyle": TERRAFORM_MODULE_STYLE,
        "VpcCidr": facts.vpc_cidr,
        "RepositoryNames": ",".join(facts.repository_names),
        "LogRetentionDays": str(facts.log_retention_days),
        "AllowedInstanceTypes": ",".join(facts.allowed_instance_types),
        "MaximumRuntimeSeconds": str(facts.maximum_runtime_seconds),
        "StoppedEventsQueueArn": facts.stopped_events_queue_arn,
        "LogsBucketName": facts.logs_bucket_name,
        # Participants' images: deleting the stack later must not delete them by default.
        "KeepImagesOnDelete": "true",
    } | {
        zone["parameter"]: str(zone_id in facts.zone_ids).lower() for zone_id, zone in zones.items()
    }
    declared = product["Parameters"]
    values = {key: value for key, value in wanted.items() if key in declared}
    for key, value in values.items():
        problem = _rejected(declared[key], value)
        if problem:
            raise MigrationError(f"the state's {key} {value!r} is not valid here: {problem}")
    return values


def _rejected(definition, value):
    items = value.split(",") if definition["Type"] == "CommaDelimitedList" else [value]
    for item in items:
        if "AllowedValues" in definition and item not in definition["AllowedValues"]:
            return f"{item!r} is not one of {definition['AllowedValues']}"
        pattern = definition.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, item):
            return f"{item!r} does not match {pattern}"
    return None


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
