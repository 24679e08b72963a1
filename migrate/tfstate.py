"""The module's resources in a ``terraform state pull`` (format version 4), by address."""

import json
from dataclasses import dataclass

from . import MigrationError

STATE_VERSION = 4
# Resources every release of the module has: a module path holding all of them is the module.
SIGNATURE = (
    ("aws_vpc", "this"),
    ("aws_s3_bucket", "io"),
    ("aws_iam_role", "execution"),
    ("aws_cloudwatch_event_rule", "stopped_training_jobs"),
)


@dataclass(frozen=True)
class Instance:
    """One managed resource instance of the module."""

    module: str  # "" at the root, else "module.<name>" (nested: "module.a.module.b")
    type: str
    name: str
    key: object  # for_each key, count index, or None
    attributes: dict

    @property
    def address(self):
        index = "" if self.key is None else f"[{json.dumps(self.key)}]"
        return f"{self.module + '.' if self.module else ''}{self.type}.{self.name}{index}"


class ModuleState:
    """The instances of one copy of the module, with accessors that refuse missing facts."""

    def __init__(self, module, instances):
        self.module = module
        self.instances = instances

    def each(self, type_, name):
        """``{key: Instance}`` of one resource block (for_each or count)."""
        return {i.key: i for i in self.instances if (i.type, i.name) == (type_, name)}

    def one(self, type_, name, key=None):
        found = self.each(type_, name).get(key)
        if found is None:
            address = Instance(self.module, type_, name, key, {}).address
            raise MigrationError(f"the state has no {address}: is it a complete apply?")
        return found


def attribute(instance, *path):
    """``instance.attributes[path...]``; a missing or null one refuses the state."""
    value = instance.attributes
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            value = None
        if value is None:
            where = ".".join(str(step) for step in path)
            raise MigrationError(f"{instance.address}: attribute {where} is missing in the state")
    return value


def parse_state(text, source="state"):
    """The module's instances from the state's JSON text; refuses anything else."""
    try:
        state = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MigrationError(f"{source}: not valid JSON: {error}") from None
    if not isinstance(state, dict) or "version" not in state:
        raise MigrationError(f"{source}: not a Terraform state (no format version)")
    if state["version"] != STATE_VERSION:
        raise MigrationError(
            f"{source}: state format version {state['version']!r} is not supported "
            f"(expected {STATE_VERSION}: Terraform 0.12 or later, `terraform state pull`)"
        )
    resources = state.get("resources")
    if not isinstance(resources, list):
        raise MigrationError(f"{source}: the state has no resource list")
    instances = list(_managed_instances(resources, source))
    module = _the_module(instances, source)
    return ModuleState(module, [i for i in instances if i.module == module])


def _managed_instances(resources, source):
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("mode") != "managed":
            continue
        for instance in resource.get("instances") or []:
            attributes = instance.get("attributes") if isinstance(instance, dict) else None
            if not isinstance(attributes, dict):
                raise MigrationError(f"{source}: {resource.get('type')} has no attributes")
            yield Instance(
                resource.get("module", ""),
                resource.get("type"),
                resource.get("name"),
                instance.get("index_key"),
                attributes,
            )


def _the_module(instances, source):
    """The one module path that holds the module's signature resources."""
    paths = sorted(
        {
            module
            for module in {i.module for i in instances}
            if all(
                any((i.module, i.type, i.name) == (module, *block) for i in instances)
                for block in SIGNATURE
            )
        }
    )
    if not paths:
        raise MigrationError(
            f"{source}: not a state of terraform-aws-grand-challenge-components "
            "(no aws_vpc.this, aws_s3_bucket.io, aws_iam_role.execution and "
            "aws_cloudwatch_event_rule.stopped_training_jobs in one module)"
        )
    if len(paths) > 1:
        shown = ", ".join(path or "(root)" for path in paths)
        raise MigrationError(f"{source}: several copies of the module ({shown}): one per run")
    return paths[0]
