"""Shared by the migrate tests: the fixtures' states and what ``build.py migrate`` makes of them."""

import ipaddress
import json
from functools import cache
from pathlib import Path

from migrate.plan import migration_files
from tests.cfn_resolve import Deployment
from tests.helpers import SETTINGS

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
    raw = migration_files(state_text(fixture), fixture, SETTINGS["regions"])
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


class Resolved(Deployment):
    """A template resolved with the state's identifiers as the imported resources' Refs (as
    CloudFormation would) and Fn::Cidr evaluated (the subnets' create-only CidrBlock)."""

    def __init__(self, template, region, parameters=None, ids=None):
        super().__init__(template, region, parameters)
        self.pseudo["AWS::StackId"] = "arn:aws:cloudformation:stack/migrated"  # tags only
        self.ids = ids or {}

    def _physical(self, logical_id):
        if logical_id in self.ids:
            [identifier] = self.ids[logical_id].values()
            return _Physical(identifier, logical_id)
        return super()._physical(logical_id)

    def _function(self, key, argument):
        if key != "Fn::Cidr":
            return super()._function(key, argument)
        block, count, bits = self.resolve(argument)
        slices = ipaddress.ip_network(block).subnets(new_prefix=32 - int(bits))
        return [str(network) for network in slices][: int(count)]


class _Physical(dict):
    """Ref and GroupId: the identifier; any other attribute: a placeholder both sides share."""

    def __init__(self, identifier, logical_id):
        super().__init__(Ref=identifier, GroupId=identifier)
        self.logical_id = logical_id

    def __missing__(self, attribute):
        return f"{self.logical_id}.{attribute}"
