"""The templates of the four steps, from the deployed template and the moving zones.

Each step differs from the one before in exactly what CloudFormation must do then and nothing
else: an IMPORT change set refuses any other change, and an update changes whatever resolves
differently.
"""

import copy
import re

from . import MigrationError
from .product import why_rejected
from .stack_zones import RETAIN, ZONE_KINDS, physical_of

SUB_REFERENCE = re.compile(r"\$\{([^!}][^}]*)\}")


def retained(template, moving):
    """Step 1: the deployed template with Retain on every moving zone resource."""
    step = copy.deepcopy(template)
    for logical_id in physical_of(moving):
        step["Resources"][logical_id].update(RETAIN)
    return step


def released(step1, moving):
    """Step 2: step 1 without the moving resources, every reference to them written as the
    physical id it resolves to (Ref, GetAtt of the id attribute, Fn::Sub), DependsOn on them
    dropped. Refuses a GetAtt of any other attribute: its value is not in the input files."""
    physical = physical_of(moving)
    step = copy.deepcopy(step1)
    resources = step["Resources"]
    for logical_id in physical:
        del resources[logical_id]
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn")
        if depends is not None:
            kept = [
                d for d in ([depends] if isinstance(depends, str) else depends) if d not in physical
            ]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
        resources[logical_id] = literal(resource, physical)
    if "Outputs" in step:
        step["Outputs"] = literal(step["Outputs"], physical)
    # Conditions only the removed resources used (the VPC prefix ones of their CidrBlock)
    # go too: CloudFormation does not mind them, cfn-lint warns (W8001).
    used = _used_conditions(step)
    step["Conditions"] = {k: v for k, v in step.get("Conditions", {}).items() if k in used}
    return step


def _used_conditions(template):
    """The conditions that resources and outputs use, directly or through other conditions."""
    conditions = template.get("Conditions", {})
    pending = [
        name
        for section in ("Resources", "Outputs")
        for entry in template.get(section, {}).values()
        for name in [entry.get("Condition"), *_named_conditions(entry)]
        if name
    ]
    used = set()
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending.extend(_named_conditions(conditions.get(name, {})))
    return used


def _named_conditions(value):
    if isinstance(value, list):
        for item in value:
            yield from _named_conditions(item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key == "Fn::If":
                yield inner[0]
            elif key == "Condition" and isinstance(inner, str):
                yield inner
            yield from _named_conditions(inner)


def literal(value, physical):
    """``value`` with every reference to a resource of ``physical`` ({logical id: (physical
    id, type)}) replaced by that physical id."""
    if isinstance(value, list):
        return [literal(item, physical) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        [(key, argument)] = value.items()
        if key == "Ref" and argument in physical:
            return physical[argument][0]
        if key == "Fn::GetAtt":
            target, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            if target in physical:
                return _attribute(physical, target, attribute)
        if key == "Fn::Sub":
            text, variables = argument if isinstance(argument, list) else (argument, None)
            # a Sub variable of the same name shadows the resource
            seen = {
                name: entry for name, entry in physical.items() if name not in (variables or {})
            }
            text = SUB_REFERENCE.sub(lambda match: _sub_value(match, seen), text)
            return {key: text if variables is None else [text, literal(variables, physical)]}
    return {key: literal(inner, physical) for key, inner in value.items()}


def _attribute(physical, target, attribute):
    physical_id, type_ = physical[target]
    identifier = next(key for t, key in ZONE_KINDS.values() if t == type_)
    if attribute != identifier:
        raise MigrationError(
            f"the template reads {target}.{attribute}: only {identifier} (its id) can be "
            "written as a literal from resources.json"
        )
    return physical_id


def _sub_value(match, physical):
    name = match.group(1)
    target, _, attribute = name.partition(".")
    if target not in physical:
        return match.group(0)
    return _attribute(physical, target, attribute) if attribute else physical[target][0]


def imported_resources(old_template, moving, product):
    """``{new logical id: (resource, identifier)}``: each moving resource under the product's
    letter id, shaped as the product writes it, with the values that run and Retain."""
    old = old_template["Resources"]
    found = {}
    for zone in moving:
        for kind, (type_, key) in ZONE_KINDS.items():
            new_id = zone.new_id(kind)
            if product["Resources"].get(new_id, {}).get("Type") != type_:
                raise MigrationError(f"the product has no {type_} {new_id} for {zone.name}")
            source = old[zone.old.logical_id(kind)]
            resource = {"Type": type_, **RETAIN, "Properties": _properties(kind, source, zone)}
            if "DependsOn" in source:
                resource["DependsOn"] = source["DependsOn"]
            found[new_id] = (resource, {key: zone.physical_ids[kind]})
    return found


def _properties(kind, source, zone):
    properties = copy.deepcopy(source.get("Properties", {}))
    if kind == "PrivateSubnet":
        del properties["AvailabilityZoneId"]
        # The zone's name as the product writes it (cfn-lint W3010 warns of a literal one,
        # migrate's import does the same): the same string once deployed.
        properties["AvailabilityZone"] = {"Fn::Sub": f"${{AWS::Region}}{zone.letter}"}
        properties["CidrBlock"] = zone.cidr
    if "SubnetId" in properties:
        properties["SubnetId"] = {"Ref": zone.new_id("PrivateSubnet")}
    if kind == "PrivateRouteTableAssociation":
        properties["RouteTableId"] = {"Ref": zone.new_id("PrivateRouteTable")}
    return properties


def importing(step2, imported):
    """Step 3's template: step 2 plus the imported resources, nothing else."""
    step = copy.deepcopy(step2)
    for logical_id, (resource, _) in imported.items():
        if logical_id in step["Resources"]:
            raise MigrationError(f"the deployed template already has a resource {logical_id}")
        step["Resources"][logical_id] = resource
    return step


def resources_to_import(imported):
    return [
        {
            "ResourceType": resource["Type"],
            "LogicalResourceId": logical_id,
            "ResourceIdentifier": identifier,
        }
        for logical_id, (resource, identifier) in imported.items()
    ]


def product_parameters(inputs, moving, product):
    """The product update's parameters: the stack's that the product declares (so not the
    Zone<Id> switches), plus AvailabilityZones = the zones that were on."""
    declared = product["Parameters"]
    values = {key: value for key, value in sorted(inputs.parameters.items()) if key in declared}
    values["AvailabilityZones"] = ",".join(sorted(zone.name for zone in moving))
    for key, value in values.items():
        problem = why_rejected(declared[key], value)
        if problem:
            raise MigrationError(
                f"the stack's {key} {value!r} is not valid in the product: {problem}"
            )
    return values
