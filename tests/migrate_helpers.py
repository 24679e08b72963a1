"""Shared by the migrate tests: the fixtures' states and what ``build.py migrate`` makes of them."""

import json
from functools import cache
from pathlib import Path

from migrate.plan import migration_files
from templates.functions import zone_plan
from tests.cfn_resolve import Deployment

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tfstate"
# Written from the module's .tf files at 7044460 (its latest release), attributes as the AWS
# provider v5 records them: used directly in eu-central-1, and as module.components in eu-west-1.
DIRECT = "module-direct.json"
NESTED = "module-components.json"
REGIONS = {DIRECT: "eu-central-1", NESTED: "eu-west-1"}


def state_text(fixture):
    return (FIXTURES / fixture).read_text()


def state(fixture):
    return json.loads(state_text(fixture))


def instances(fixture):
    """``{address: attributes}`` of the fixture's managed instances."""
    found = {}
    for resource in state(fixture)["resources"]:
        if resource["mode"] != "managed":
            continue
        module = resource.get("module")
        for instance in resource["instances"]:
            key = instance.get("index_key")
            address = f"{module + '.' if module else ''}{resource['type']}.{resource['name']}"
            found[address + ("" if key is None else f"[{json.dumps(key)}]")] = instance[
                "attributes"
            ]
    return found


@cache
def migrated(fixture):
    """``{"import", "resources", "product", "parameters", "runbook", "raw"}`` for one fixture."""
    raw = migration_files(state_text(fixture), fixture)
    region = REGIONS[fixture]
    return {
        "import": json.loads(raw[f"{region}-import.json"]),
        "resources": json.loads(raw[f"{region}-resources-to-import.json"]),
        "product": json.loads(raw[f"{region}-product.json"]),
        "parameters": dict(
            entry.split("=", 1) for entry in json.loads(raw[f"{region}-parameters.json"])
        ),
        "runbook": raw[f"{region}-MIGRATION.md"].decode(),
        "raw": raw,
    }


def subnet_zones(fixture):
    """The fixture's subnets as DescribeAvailabilityZones describes their zones, with CIDRs."""
    return [
        {
            "ZoneName": attributes["availability_zone"],
            "ZoneId": attributes["availability_zone_id"],
            "ZoneType": "availability-zone",
            "CidrBlock": attributes["cidr_block"],
        }
        for address, attributes in sorted(instances(fixture).items())
        if "aws_subnet.private[" in address
    ]


def zone_plan_answer(fixture, vpc_cidr=None):
    """What the product's ZonePlan answers in the fixture's account: the custom resource's own
    plan() over the zones its DescribeAvailabilityZones call would return."""
    [vpc] = [a for k, a in instances(fixture).items() if k.endswith("aws_vpc.this")]
    return zone_plan.plan(subnet_zones(fixture), vpc_cidr or vpc["cidr_block"], REGIONS[fixture])


class Resolved(Deployment):
    """A template resolved with the state's identifiers as the imported resources' Refs (as
    CloudFormation would) and ``answers`` as custom resources' attributes ({logical id:
    {attribute: value}}, e.g. the ZonePlan's Cidr<LETTER> that the subnets' CidrBlock takes)."""

    def __init__(self, template, region, parameters=None, ids=None, answers=None):
        super().__init__(template, region, parameters)
        self.pseudo["AWS::StackId"] = "arn:aws:cloudformation:stack/migrated"  # tags only
        self.ids = ids or {}
        self.answers = answers or {}

    def _physical(self, logical_id):
        if logical_id in self.ids:
            [identifier] = self.ids[logical_id].values()
            return _Physical(identifier, logical_id)
        return super()._physical(logical_id)

    def get_att(self, logical_id, attribute):
        if logical_id in self.answers:
            return self.answers[logical_id][attribute]
        return super().get_att(logical_id, attribute)


class _Physical(dict):
    """Ref and GroupId: the identifier; any other attribute: a placeholder both sides share."""

    def __init__(self, identifier, logical_id):
        super().__init__(Ref=identifier, GroupId=identifier)
        self.logical_id = logical_id

    def __missing__(self, attribute):
        return f"{self.logical_id}.{attribute}"
