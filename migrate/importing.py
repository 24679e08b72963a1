"""The IMPORT change set's template and ``--resources-to-import``, from the state.

Each imported resource has the product's logical id and the properties that are running (read
from the state, sub-resources folded in), so the update to the product template changes what
differs and replaces nothing: the create-only properties equal the product's once resolved. The
subnets' CidrBlock is the one the product leaves to deploy time (the zone plan's answer):
check_subnet_layout refused the state unless that answer is the literal CIDR written here.
Resources refer to each other by Ref as in the product; nothing else is referred to (an import
creates nothing).
"""

from . import import_network, import_services
from .product import zone_resources

RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
BUCKETS = {"inputs": "InputsBucket", "outputs": "OutputsBucket"}
MANAGED_POLICIES = {
    "execution": "ExecutionPolicy",
    "schedule": "SchedulePolicy",
    "read_write_delete": "EcrReadWriteDeletePolicy",
}


def import_resources(state, facts, product):
    """``[(address, logical id, type, identifier, properties)]`` of every imported resource."""
    zones = zone_resources(product)
    return [
        import_network.vpc(state),
        *import_network.per_zone(state, zones, facts.region),
        import_network.endpoint(state, zones, facts.region),
        import_network.flow_log(state),
        import_network.security_group(state),
        *(import_services.bucket(state, kind, logical_id) for kind, logical_id in BUCKETS.items()),
        *import_services.repositories(state, facts),
        import_services.role(state),
        *(
            import_services.policy(state, key, logical_id, product)
            for key, logical_id in MANAGED_POLICIES.items()
        ),
        *import_services.logs(state),
        import_services.rule(state),
    ]


def import_template(resources):
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Grand Challenge components runtime: the Terraform module's resources, "
        "imported as they run (build.py migrate)",
        "Resources": {
            logical_id: {"Type": type_, **RETAIN, "Properties": properties}
            for _, logical_id, type_, _, properties in resources
        },
    }
    return template


def resources_to_import(resources):
    return [
        {"ResourceType": type_, "LogicalResourceId": logical_id, "ResourceIdentifier": identifier}
        for _, logical_id, type_, identifier, _ in resources
    ]
