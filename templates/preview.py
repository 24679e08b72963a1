"""Upgrade preview: what a stack update from one template to another adds, changes, replaces
and removes, decided offline from the templates (``python build.py diff OLD NEW``).

CloudFormation replaces a resource when one of its type's create-only properties changes (the
resource schemas cfn-lint ships list them, nested ones as ``/properties/A/B``), when its type
changes, and a custom resource when its handler answers a new physical id (our handlers do when
the properties in ``CUSTOM_IDENTITY`` change: the old id then gets a Delete). A replacement
changes the resource's Ref and attributes, so whatever takes them in a create-only property is
replaced too: the plan is repeated until no new replacement appears.

Values are compared after partial evaluation: parameters (defaults, then the given values),
known pseudo parameters, conditions, Fn::If/Join/Select/Split/Sub/FindInMap/Cidr. What stays
unknown stays symbolic (``{"Ref": "NamePrefix"}``) and is assumed the same on both sides, as an
update that keeps its parameters. The region is one of those values: without it (``build.py
diff`` on ``components-runtime.json`` without ``--region``), ``${AWS::Region}`` stays symbolic,
equal on both sides, and the schemas of us-east-1 say what is create-only.
``parameter_effects`` answers the other question: what changing one parameter would replace or
remove.

A create-only value the plan cannot resolve offline and that differs from the other side's,
say a literal CIDR against a custom resource's answer (``ZonePlan.CidrA``), is a conditional
replacement: CloudFormation's change set says "Replacement: Conditional" and compares the
resolved values only while it executes. The plan never calls that "in place": it reports
``replace?`` (``certain`` False) with the reason ``create-only CidrBlock: replaced if
ZonePlan.CidrA (known only at deploy time) is not 172.31.0.0/20``. Of a stateful resource
that is data at risk until someone checks the value, so it counts as destructive (``build.py
diff`` exits 3) and the report says so under the summary line.

Everything here is pure: template dicts in, a ``Plan`` out; reading files and git is build.py's.
"""

import copy
import ipaddress
import itertools
import re
from dataclasses import asdict, dataclass, field
from functools import cache

from .preview_values import MISSING, NO_VALUE, concrete, differs, symbol_text, unresolved_reason

UNKNOWN_REGION_SCHEMAS = "us-east-1"  # schemas used when the template's region is unknown

# What a replacement or removal of each type loses: these make ``build.py diff`` exit 3.
STATEFUL = {
    "AWS::S3::Bucket": "bucket: its objects",
    "AWS::ECR::Repository": "repository: its images",
    "AWS::KMS::Key": "key: what it encrypted becomes unreadable once the old key is deleted",
    "AWS::Logs::LogGroup": "log group: its log events",
    "AWS::SQS::Queue": "queue: its messages, and the URL Grand Challenge reads",
    "AWS::EC2::VPC": "VPC: running training jobs lose their network",
    "AWS::EC2::Subnet": "subnet: its id is in Grand Challenge's settings",
    "Custom::EmptyBucket": "a Delete of the old resource EMPTIES the old bucket",
    "Custom::RepositoryOnDelete": "a Delete of the old resource deletes the repository's images",
    "Custom::TrainingJobsLogGroup": "a Delete of the old resource deletes a log group it created",
}
# Stateful only when an Output hands them out (pasted into Grand Challenge, attached to workers).
STATEFUL_WHEN_OUTPUT = {
    "AWS::IAM::Role": "role: its ARN is pasted into Grand Challenge",
    "AWS::IAM::ManagedPolicy": "managed policy: attached to the Grand Challenge workers",
    "AWS::EC2::SecurityGroup": "security group: its id is in Grand Challenge's settings",
}
# Properties whose change makes our custom resource handlers answer a new physical id.
CUSTOM_IDENTITY = {
    "Custom::EmptyBucket": ("BucketName",),
    "Custom::RepositoryOnDelete": ("RepositoryName",),
    "Custom::TrainingJobsLogGroup": ("LogGroupName",),
    "Custom::NetworkInterfaceCleanup": ("VpcId", "SecurityGroupId"),
    "Custom::VpcLockdown": ("VpcId",),
    "Custom::S3NetworkAclEntries": ("NetworkAclId",),
}
# Properties whose change makes a custom resource's handler answer other attributes in place.
# ZonePlan's Cidr<LETTER> hang on the VPC CIDR and the zone's id, fixed for a name: a zone
# added or dropped (Zones) leaves the other zones' answers as they were.
ANSWERS_FROM = {"Custom::ZonePlan": ("VpcCidr",)}
ACTIONS = ("remove", "replace", "add", "modify")  # most serious first


class TemplateError(ValueError):
    """A template or parameters file that is not what CloudFormation takes."""


@dataclass(frozen=True)
class Change:
    action: str  # one of ACTIONS
    logical_id: str
    resource_type: str
    stateful: str  # what is lost ("" when nothing is)
    certain: bool  # False: depends on values the plan could not resolve
    reasons: tuple[str, ...] = ()

    @property
    def destructive(self):
        """A stateful resource replaced or removed (maybe): the release needs a human."""
        return bool(self.stateful) and self.action in ("remove", "replace")


@dataclass
class Plan:
    """The changes of one update, most serious first (remove, replace, add, modify)."""

    changes: list[Change] = field(default_factory=list)

    @property
    def destructive(self):
        return [change for change in self.changes if change.destructive]

    def to_dict(self):
        return {
            "changes": [
                asdict(change) | {"destructive": change.destructive} for change in self.changes
            ],
            "destructive": [change.logical_id for change in self.destructive],
        }


# Partial evaluation ----------------------------------------------------------------------------


class Side:
    """One template with its parameter values: resolves what it can, keeps the rest symbolic.
    ``replaced`` maps logical ids to "certain"/"possible": their Ref and attributes change, or
    "answers": a custom resource's attributes change (``ANSWERS_FROM``), its Ref stays."""

    def __init__(self, template, parameters=None, region=None, replaced=None):
        self.template = template
        self.resources = template.get("Resources", {})
        definitions = template.get("Parameters", {})
        self.parameters = {k: d["Default"] for k, d in definitions.items() if "Default" in d}
        self.parameters |= {k: v for k, v in (parameters or {}).items() if k in definitions}
        for key, value in self.parameters.items():
            if definitions[key].get("Type", "").startswith(("CommaDelimitedList", "List<")):
                self.parameters[key] = [item.strip() for item in str(value).split(",")]
            else:
                self.parameters[key] = str(value)
        self.pseudo = {"AWS::NoValue": NO_VALUE}
        if region:
            partition = partition_of(region)
            suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
            self.pseudo |= {
                "AWS::Region": region,
                "AWS::Partition": partition,
                "AWS::URLSuffix": suffix,
            }
        self.replaced = replaced or {}
        self.exported = output_references(template)

    def assuming(self, replaced):
        """The same side with another set of replaced resources."""
        other = copy.copy(self)
        other.replaced = replaced
        return other

    def condition(self, name, seen=()):
        """True, False, or None when it hangs on something unknown."""
        definition = self.template.get("Conditions", {}).get(name)
        if definition is None or name in seen:
            return None
        return self.truth(definition, (*seen, name))

    def truth(self, expression, seen=()):
        if not isinstance(expression, dict) or len(expression) != 1:
            return expression if isinstance(expression, bool) else None
        ((function, args),) = expression.items()
        if function == "Condition":
            return self.condition(args, seen)
        if function == "Fn::Equals" and isinstance(args, list) and len(args) == 2:
            left, right = (self.resolve(arg) for arg in args)
            if concrete(left) and concrete(right):
                return str(left) == str(right)
            return True if left == right else None
        values = [self.truth(arg, seen) for arg in args] if isinstance(args, list) else [None]
        if function == "Fn::Not":
            return None if values[0] is None else not values[0]
        if function == "Fn::And":
            return False if False in values else None if None in values else True
        if function == "Fn::Or":
            return True if True in values else None if None in values else False
        return None

    def exists(self, logical_id):
        name = self.resources[logical_id].get("Condition")
        return True if name is None else self.condition(name)

    def resolve(self, value):
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item != NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, args),) = value.items()
            if function == "Ref" or function.startswith("Fn::") or function == "Condition":
                return self.intrinsic(function, args)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item != NO_VALUE}

    def intrinsic(self, function, args):
        if function == "Ref":
            return self.ref(args)
        if function == "Fn::GetAtt":
            target, attribute = args.split(".", 1) if isinstance(args, str) else args[:2]
            return self.mark({"Fn::GetAtt": [target, self.resolve(attribute)]}, target, True)
        if function == "Fn::If" and isinstance(args, list) and len(args) == 3:
            truth = self.condition(args[0])
            if truth is not None:
                return self.resolve(args[1] if truth else args[2])
            return {"Fn::If": [args[0], self.resolve(args[1]), self.resolve(args[2])]}
        if function == "Fn::Sub":
            return self.sub(*(args if isinstance(args, list) else [args, {}]))
        resolved = self.resolve(args)
        evaluate = EVALUATORS.get(function)
        if evaluate is not None and concrete(resolved):
            try:
                return evaluate(self, resolved)
            except (IndexError, KeyError, TypeError, ValueError):
                pass  # CloudFormation would reject it; compare it as written
        return {function: resolved}

    def ref(self, name):
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        return self.mark({"Ref": name}, name)

    def mark(self, symbol, logical_id, attribute=False):
        """A reference to a replaced resource, or an attribute of a custom resource that
        answers anew (``ANSWERS_FROM``, its Ref stays): a new value after the update."""
        state = self.replaced.get(logical_id)
        if state is None or (state == "answers" and not attribute):
            return symbol
        return symbol | {"Replaced": "possible" if state == "possible" else "certain"}

    def sub(self, text, variables):
        if not isinstance(text, str) or not isinstance(variables, dict):
            return {"Fn::Sub": self.resolve([text, variables])}
        values = {key: self.resolve(value) for key, value in variables.items()}

        def substitute(match):
            name = match.group(1)
            value = values[name] if name in values else self.sub_reference(name)
            return value if isinstance(value, str) and value != NO_VALUE else symbol_text(value)

        result = re.sub(r"\$\{([^!}][^}]*)\}", substitute, text)
        return result if "\0" not in result else {"Fn::Sub": result}

    def sub_reference(self, name):
        if "." in name and name.split(".", 1)[0] in self.resources:
            target, attribute = name.split(".", 1)
            return self.mark({"Fn::GetAtt": [target, attribute]}, target, True)
        return self.ref(name)


def _cidr(_side, args):
    block, count, bits = args
    network = ipaddress.ip_network(block, strict=False)
    subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
    return [str(subnet) for subnet in itertools.islice(subnets, int(count))]


def _select(_side, args):
    index, items = args
    return items[int(index)]


EVALUATORS = {
    "Fn::Join": lambda _side, args: args[0].join(args[1]),
    "Fn::Split": lambda _side, args: args[1].split(args[0]),
    "Fn::Select": _select,
    "Fn::FindInMap": lambda side, args: side.template["Mappings"][args[0]][args[1]][args[2]],
    "Fn::Cidr": _cidr,
}


def partition_of(region):
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


# Resource facts ----------------------------------------------------------------------------


@cache
def create_only_paths(resource_type, region):
    """Create-only property paths, ("BucketName",) or ("DnsOptions", "PrivateDnsPreference"),
    from the resource schema cfn-lint ships, plus our custom resources' identity properties."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError:
        schema = {}
    paths = [tuple(path.split("/")[2:]) for path in schema.get("createOnlyProperties", [])]
    paths += [(name,) for name in CUSTOM_IDENTITY.get(resource_type, ())]
    return tuple(dict.fromkeys(path for path in paths if path))


def value_at(properties, path):
    """The value at a create-only path; "*" steps into every item of a list."""
    if not path:
        return properties
    if path[0] == "*":
        return (
            [value_at(item, path[1:]) for item in properties]
            if isinstance(properties, list)
            else MISSING
        )
    if not isinstance(properties, dict) or path[0] not in properties:
        return MISSING
    return value_at(properties[path[0]], path[1:])


def output_references(template):
    """Logical ids any Output refers to: what operators paste into Grand Challenge."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "Ref" and isinstance(item, str):
                    found.add(item)
                elif key == "Fn::GetAtt":
                    found.add(item[0] if isinstance(item, list) else str(item).split(".")[0])
                elif key == "Fn::Sub":
                    text = item[0] if isinstance(item, list) else item
                    found.update(
                        m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", str(text))
                    )
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template.get("Outputs", {}))
    return found


def stateful_reason(resource_type, logical_id, exported):
    if resource_type in STATEFUL:
        return STATEFUL[resource_type]
    return STATEFUL_WHEN_OUTPUT.get(resource_type, "") if logical_id in exported else ""


# The plan ----------------------------------------------------------------------------------


def plan(old, new, old_parameters=None, new_parameters=None, region=None):
    """The update from template ``old`` to ``new`` (dicts), each with its parameter values
    ({name: value}; None: defaults, the rest unknown and assumed unchanged)."""
    for template in (old, new):
        check_template(template)
    replaced = {}
    # Each round can only add replacements, so it settles within one round per resource.
    for _ in range(len(all_ids(old, new)) + 1):
        sides = (Side(old, old_parameters, region), Side(new, new_parameters, region, replaced))
        changes = [c for c in (compare(*sides, lid, region) for lid in all_ids(old, new)) if c]
        now = {lid: "answers" for lid in answers_anew(*sides, changes)} | {
            c.logical_id: "certain" if c.certain else "possible"
            for c in changes
            if c.action == "replace"
        }
        if now == replaced:
            break
        replaced = now
    notice_renames(changes, old, new)
    changes.sort(key=lambda change: (ACTIONS.index(change.action), change.logical_id))
    return Plan(changes)


def answers_anew(old_side, new_side, changes):
    """Custom resources updated in place whose handler answers other attributes: a change
    to one of their ``ANSWERS_FROM`` properties (a new VpcCidr gives every zone a new CIDR)."""
    for change in changes:
        inputs = ANSWERS_FROM.get(change.resource_type, ())
        if change.action != "modify" or not inputs:
            continue
        old, new = (
            side.resources[change.logical_id].get("Properties", {}) for side in (old_side, new_side)
        )
        if any(old_side.resolve(old.get(key)) != new_side.resolve(new.get(key)) for key in inputs):
            yield change.logical_id


def replacements(old_template, new_template, parameters=None, region=None):
    """For the publisher: the update of a stack whose parameters stay ``parameters``.
    ``plan.destructive`` lists the stateful resources it would replace or remove."""
    return plan(old_template, new_template, parameters, parameters, region)


def check_template(template):
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError("not a CloudFormation template: no Resources object")
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise TemplateError(f"resource {logical_id} has no Type")
        if not isinstance(resource.get("Properties", {}), dict):
            raise TemplateError(f"resource {logical_id}: Properties is not an object")


def all_ids(old, new):
    return sorted(set(old["Resources"]) | set(new["Resources"]))


def compare(old_side, new_side, logical_id, region):
    """The Change for one logical id, or None when the update leaves it alone."""
    old = old_side.resources.get(logical_id)
    new = new_side.resources.get(logical_id)
    was = old_side.exists(logical_id) if old else False
    will = new_side.exists(logical_id) if new else False
    resource_type = (new or old)["Type"]
    stateful = stateful_reason(resource_type, logical_id, (new_side if new else old_side).exported)
    if old is not None and new is not None and old["Type"] != new["Type"]:
        stateful = stateful or stateful_reason(old["Type"], logical_id, old_side.exported)
    if was is False and will is False:
        return None
    if will is False:
        return Change(
            "remove", logical_id, resource_type, stateful, was is True, removal_reasons(old, new)
        )
    if was is False:
        reasons = ("its condition is now true",) if old else ()
        return Change("add", logical_id, resource_type, stateful, will is True, reasons)
    action, certain, reasons = update_of(old_side, new_side, old, new, region)
    if (was is None or will is None) and condition_changed(old_side, new_side, old, new):
        action = "remove" if action in ("modify", None) else action
        certain = False
        reasons += (f"condition {old.get('Condition')} -> {new.get('Condition')}: may turn it off",)
    if action is None:
        return None
    return Change(action, logical_id, resource_type, stateful, certain, reasons)


def condition_changed(old_side, new_side, old, new):
    """Whether an unresolved condition may now decide differently than before."""

    def definition(side, resource):
        return side.resolve(side.template.get("Conditions", {}).get(resource.get("Condition")))

    return old.get("Condition") != new.get("Condition") or (
        definition(old_side, old) != definition(new_side, new)
    )


def removal_reasons(old, new):
    reasons = []
    if new is not None:
        reasons.append(f"its condition {new.get('Condition')} is now false")
    if old.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate", "Snapshot"):
        reasons.append(
            f"DeletionPolicy {old['DeletionPolicy']}: kept out of the stack, not deleted"
        )
    return tuple(reasons)


def update_of(old_side, new_side, old, new, region):
    """(action or None, certain, reasons) for a resource in both templates."""
    if old["Type"] != new["Type"]:
        return "replace", True, (f"type {old['Type']} -> {new['Type']}",)
    old_properties = old_side.resolve(old.get("Properties", {}))
    certain = {key: value for key, value in new_side.replaced.items() if value != "possible"}
    new_certain = new_side.assuming(certain).resolve(new.get("Properties", {}))
    new_possible = new_side.resolve(new.get("Properties", {}))
    replaced_by, unresolved, maybe_by = [], [], []
    for path in create_only_paths(old["Type"], region or UNKNOWN_REGION_SCHEMAS):
        if any(path[: len(done[0])] == done[0] for done in replaced_by + unresolved + maybe_by):
            continue  # a parent path already explains it
        before, after = value_at(old_properties, path), value_at(new_certain, path)
        verdict = differs(before, after)
        if verdict is None:
            unresolved.append((path, before, after))
        elif verdict:
            replaced_by.append((path,))
        elif before != value_at(new_possible, path):
            maybe_by.append((path,))
    policies = policy_changes(old, new)
    if replaced_by or unresolved or maybe_by:
        reasons = [f"create-only {'/'.join(p)}" for (p,) in replaced_by]
        reasons += [unresolved_reason(*item, region) for item in unresolved]
        reasons += [
            f"create-only {'/'.join(p)} (if what it refers to is replaced)" for (p,) in maybe_by
        ]
        if new.get("UpdateReplacePolicy") in ("Retain", "Snapshot"):
            reasons.append(f"UpdateReplacePolicy {new['UpdateReplacePolicy']}: the old one is kept")
        return "replace", bool(replaced_by), tuple(reasons + policies)
    if old_properties != new_possible or policies:
        changed = sorted(
            k
            for k in set(old_properties) | set(new_possible)
            if old_properties.get(k) != new_possible.get(k)
        )
        return (
            "modify",
            old_properties != new_certain or bool(policies),
            tuple(policies + [f"in place: {', '.join(changed)}"] * bool(changed)),
        )
    return None, True, ()


def policy_changes(old, new):
    """Changed DeletionPolicy / UpdateReplacePolicy; unset is Delete (for our types)."""
    return [
        f"{policy} {old.get(policy, 'Delete')} -> {new.get(policy, 'Delete')}"
        for policy in ("DeletionPolicy", "UpdateReplacePolicy")
        if old.get(policy, "Delete") != new.get(policy, "Delete")
    ]


def notice_renames(changes, old, new):
    """A removed and an added resource of one type with the same properties: a renamed
    logical id, which CloudFormation carries out as create new, DELETE old."""
    added = {
        c.logical_id: c
        for c in changes
        if c.action == "add" and c.logical_id not in old["Resources"]
    }
    for index, change in enumerate(changes):
        if change.action != "remove" or change.logical_id in new["Resources"]:
            continue
        before = old["Resources"][change.logical_id]
        for logical_id, addition in added.items():
            after = new["Resources"][logical_id]
            if after["Type"] == before["Type"] and after.get("Properties") == before.get(
                "Properties"
            ):
                note = f"logical id changed to {logical_id}: the old resource is DELETED"
                changes[index] = Change(**{**asdict(change), "reasons": (note, *change.reasons)})
                note = f"logical id changed from {change.logical_id}: a new resource"
                changes[changes.index(addition)] = Change(
                    **{**asdict(addition), "reasons": (note,)}
                )
                del added[logical_id]
                break


def parameter_effects(template, region=None, parameters=None):
    """{parameter: [logical ids it would replace or remove if changed]}, stateful ones only:
    what to keep as it is in an update (NamePrefix renames every bucket)."""
    effects = {}
    for name in template.get("Parameters", {}):
        changed = dict(parameters or {}) | {name: "\0changed"}  # a value no condition tests for
        destructive = plan(template, template, parameters, changed, region).destructive
        if destructive:
            effects[name] = [change.logical_id for change in destructive]
    return effects


# Reading and printing ----------------------------------------------------------------------


def parse_parameters(entries):
    """The ``--parameter-overrides file://`` shape: ["Key=Value", ...] (or CloudFormation's
    [{"ParameterKey": ..., "ParameterValue": ...}])."""
    if not isinstance(entries, list):
        raise TemplateError('parameters must be a JSON list like ["NamePrefix=gc", ...]')
    values = {}
    for entry in entries:
        if isinstance(entry, str) and "=" in entry:
            key, _, value = entry.partition("=")
            values[key.strip()] = value
        elif isinstance(entry, dict) and "ParameterKey" in entry and "ParameterValue" in entry:
            values[entry["ParameterKey"]] = entry["ParameterValue"]
        else:
            raise TemplateError(f"parameter {entry!r} is not Key=Value")
    return values


def report_lines(result, effects=None):
    """The table ``build.py diff`` prints, then a summary line."""
    rows = [
        (
            change.action + ("" if change.certain else "?"),
            change.logical_id,
            change.resource_type,
            "STATEFUL" if change.stateful else "-",
            "; ".join(change.reasons + ((change.stateful,) if change.destructive else ())),
        )
        for change in result.changes
    ]
    widths = [max([len(row[i]) for row in rows] + [6]) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    counts = {action: sum(c.action == action for c in result.changes) for action in ACTIONS}
    summary = ", ".join(f"{n} to {action}" for action, n in counts.items())
    maybe = sum(not change.certain for change in result.destructive)
    lines.append(
        f"{summary}; {len(result.destructive)} stateful replaced or removed"
        if rows
        else "no changes"
    )
    if maybe:
        lines.append(
            f"{maybe} of them only maybe (replace?, remove?): the preview cannot rule it out "
            "offline, so it is the operator's data at risk until the reason on its line is checked"
        )
    for name, logical_ids in (effects or {}).items():
        lines.append(f"changing parameter {name} would replace or remove: {', '.join(logical_ids)}")
    return [line.rstrip() for line in lines]
