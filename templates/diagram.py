"""A Mermaid flowchart of a rendered template, derived from its resources and their references.

Nothing here names a particular resource: nodes come from resource types, edges from the
references between resources (``Ref``, ``Fn::GetAtt``, ``${X}`` / ``${X.Attr}`` in
``Fn::Sub``, ``DependsOn``, and ARNs spelled out from a log group's or bucket's name).

    mermaid(template)          -> the flowchart text (deterministic for a given dict)
    embed(readme, diagram)     -> the README with the block between the markers replaced

Layout rules, so the picture stays readable as the template grows:

- each VPC is a subgraph holding the EC2 resources that name it, with one subgraph per
  availability zone: subnets grouped by ``AvailabilityZoneId`` or ``AvailabilityZone``, with
  their route tables; a zone named relative to the region (``${AWS::Region}a``: a slot the
  operator fills by picking zone a) is titled "zone a". References from outside to a zone's
  resources point at the VPC; when the zones' resources read one attribute each of the same
  resource (``CidrA``, ``CidrB``, ...), the one edge says ``CidrA..F``;
- attachments (bucket and queue policies, Lambda permissions, KMS aliases) fold into the
  resource they attach to; subnet associations become edges;
- resources of one type whose names differ only by a trailing number (ECR repository
  slots) collapse into one node, "(up to N)" when they are conditional;
- parameters that name an existing resource (``...Arn``, ``...BucketName``) are external
  nodes; resources with a ``Condition`` are dashed and labelled "(optional)";
- solid arrows: references and data flow; dotted: IAM or resource-policy grants and
  ``DependsOn``; unknown types get a generic node.

``python -m templates.diagram dist/components-runtime.json`` prints the diagram.
"""

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

README_START = "<!-- diagram:start -->"
README_END = "<!-- diagram:end -->"
SOURCE = "dist/components-runtime.json"

FLOW, PERM, DEPENDS = "flow", "perm", "depends"
ARROWS = {FLOW: "-->", PERM: "-.->", DEPENDS: "-.->"}

SHAPES = {
    "rect": ('["', '"]'),
    "round": ('("', '")'),
    "stadium": ('(["', '"])'),
    "cylinder": ('[("', '")]'),
    "hexagon": ('{{"', '"}}'),
    "subroutine": ('[["', '"]]'),
    "parallelogram": ('[/"', '"/]'),
}

# type -> (readable label, shape, category); the category orders the node declarations.
TYPES = {
    "AWS::EC2::VPC": ("VPC", "rect", 0),
    "AWS::EC2::Subnet": ("Subnet", "rect", 0),
    "AWS::EC2::RouteTable": ("Route table", "rect", 0),
    "AWS::EC2::VPCEndpoint": ("VPC endpoint", "rect", 0),
    "AWS::EC2::SecurityGroup": ("Security group", "rect", 0),
    "AWS::EC2::NetworkAcl": ("Network ACL", "rect", 0),
    "AWS::EC2::FlowLog": ("VPC flow log", "rect", 0),
    "AWS::EC2::InternetGateway": ("Internet gateway", "rect", 0),
    "AWS::EC2::NatGateway": ("NAT gateway", "rect", 0),
    "AWS::S3::Bucket": ("S3 bucket", "cylinder", 1),
    "AWS::ECR::Repository": ("ECR repository", "cylinder", 1),
    "AWS::Events::Rule": ("EventBridge rule", "hexagon", 2),
    "AWS::SQS::Queue": ("SQS queue", "cylinder", 2),
    "AWS::SNS::Topic": ("SNS topic", "cylinder", 2),
    "AWS::Logs::LogGroup": ("Log group", "cylinder", 3),
    "AWS::Logs::ResourcePolicy": ("Logs resource policy", "round", 3),
    "AWS::KMS::Key": ("KMS key", "rect", 3),
    "AWS::IAM::Role": ("IAM role", "stadium", 4),
    "AWS::IAM::ManagedPolicy": ("IAM managed policy", "round", 4),
    "AWS::IAM::Policy": ("IAM policy", "round", 4),
    "AWS::Lambda::Function": ("Lambda function", "subroutine", 5),
}
CUSTOM_CATEGORY, OTHER_CATEGORY = 5, 6
CATEGORY_BY_SERVICE = {"EC2": 0, "S3": 1, "ECR": 1, "Events": 2, "SQS": 2, "SNS": 2}
CATEGORY_BY_SERVICE |= {"Logs": 3, "KMS": 3, "IAM": 4, "Lambda": 5}

# Resources that only attach to another: type -> property naming the host they fold into.
ABSORBED = {
    "AWS::S3::BucketPolicy": "Bucket",
    "AWS::SQS::QueuePolicy": "Queues",
    "AWS::SNS::TopicPolicy": "Topics",
    "AWS::Lambda::Permission": "FunctionName",
    "AWS::KMS::Alias": "TargetKeyId",
}
# Resources that only link two others: type -> (from property, to property, label).
LINKS = {
    "AWS::EC2::SubnetRouteTableAssociation": ("SubnetId", "RouteTableId", "routes via"),
    "AWS::EC2::SubnetNetworkAclAssociation": ("NetworkAclId", "SubnetId", "filters"),
    "AWS::EC2::VPCGatewayAttachment": ("InternetGatewayId", "VpcId", "attached to"),
}
# (referring type, top-level property) -> (label, style, drawn from the referenced resource)
RELATIONS = {
    ("AWS::Lambda::Function", "Role"): ("runs as", FLOW, False),
    ("AWS::Lambda::Function", "LoggingConfig"): ("logs to", FLOW, False),
    ("AWS::Lambda::Permission", "SourceArn"): ("invokes", FLOW, True),
    ("AWS::S3::Bucket", "LoggingConfiguration"): ("access logs", FLOW, False),
    ("AWS::S3::Bucket", "NotificationConfiguration"): ("notifies", FLOW, False),
    ("AWS::EC2::FlowLog", "LogDestination"): ("flow logs", FLOW, False),
    ("AWS::SQS::Queue", "RedrivePolicy"): ("dead letters", FLOW, False),
    ("AWS::EC2::VPCEndpoint", "RouteTableIds"): ("adds route", FLOW, False),
    ("AWS::EC2::VPCEndpoint", "SubnetIds"): ("in subnet", FLOW, False),
    ("AWS::IAM::Policy", "Roles"): ("attached to", FLOW, False),
    ("AWS::IAM::ManagedPolicy", "Roles"): ("attached to", FLOW, False),
    ("AWS::IAM::Role", "ManagedPolicyArns"): ("attached to", FLOW, True),
}
POLICY_KEYS = {"PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument", "Policies"}
# ARNs spelled out from a resource's name: type -> (name property, ARN text before the name,
# what may follow the name).
NAMED_ARNS = {
    "AWS::Logs::LogGroup": ("LogGroupName", ":log-group:", r"(?::|$)"),
    "AWS::S3::Bucket": ("BucketName", ":s3:::", r"(?:/|$)"),
    "AWS::IAM::Role": ("RoleName", ":role/", r"$"),
}
# Parameters naming an existing resource become external nodes: (word in the name, type).
EXTERNAL_PARAMETER = re.compile(r"(Arn|BucketName|QueueUrl|TopicArn)$")
EXTERNAL_KINDS = [
    ("Queue", "AWS::SQS::Queue"),
    ("Bucket", "AWS::S3::Bucket"),
    ("Topic", "AWS::SNS::Topic"),
    ("Role", "AWS::IAM::Role"),
    ("Key", "AWS::KMS::Key"),
    ("Function", "AWS::Lambda::Function"),
]
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
TRAILING_NUMBER = re.compile(r"^(.*?[A-Za-z_])(\d+)$")
UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")
SAFE_LABEL = re.compile(r"[^A-Za-z0-9 ._-]")


@dataclass
class Node:
    id: str
    lines: list
    shape: str = "rect"
    category: int = OTHER_CATEGORY
    optional: bool = False
    external: bool = False
    order: tuple = ()


@dataclass
class Area:
    """A subgraph: a VPC holding zones and nodes, or a zone holding nodes."""

    id: str
    title: str
    nodes: list = field(default_factory=list)
    zones: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    style: str

    def rank(self):
        """Lower wins when two edges join the same pair of nodes."""
        kind = {FLOW: 0 if self.label else 1, PERM: 2, DEPENDS: 3}[self.style]
        return (kind, self.label, self.source, self.target)


def mermaid(template: dict) -> str:
    """The Mermaid ``flowchart`` of a template dict (as build.py renders it)."""
    return _Diagram(template).render()


def embed(readme_text: str, diagram: str, source: str = SOURCE) -> str:
    """``readme_text`` with everything between the diagram markers replaced by ``diagram``."""
    starts, ends = readme_text.count(README_START), readme_text.count(README_END)
    if starts != 1 or ends != 1:
        raise ValueError(
            f"README must contain {README_START} and {README_END} exactly once each "
            f"(found {starts} and {ends})"
        )
    start, end = readme_text.index(README_START), readme_text.index(README_END)
    if end < start:
        raise ValueError(f"README has {README_END} before {README_START}")
    block = (
        f"{README_START}\n"
        f"Generated by `python build.py` from {source}; do not edit.\n\n"
        f"```mermaid\n{diagram.strip()}\n```\n"
        f"{README_END}"
    )
    return readme_text[:start] + block + readme_text[end + len(README_END) :]


class _Diagram:
    def __init__(self, template):
        resources = template.get("Resources") if isinstance(template, dict) else None
        self.resources = {
            str(rid): body if isinstance(body, dict) else {}
            for rid, body in (resources if isinstance(resources, dict) else {}).items()
        }
        parameters = template.get("Parameters") if isinstance(template, dict) else None
        self.parameters = parameters if isinstance(parameters, dict) else {}
        self.types = {rid: _type(body) for rid, body in self.resources.items()}
        self.ids = sorted(self.resources)
        self.nodes = {}  # node id -> Node
        self.host = {}  # logical id -> node id it is drawn as
        self.areas = {}  # VPC node id -> Area
        self.area_of = {}  # node id -> (VPC node id, zone title or None)
        self.links = set()  # logical ids drawn as edges
        self.absorbed = {}  # logical id -> logical id of the resource it folds into
        self.clusters = {}  # subgraph id -> (title, node ids): custom resources of one function
        self._fold_attachments()
        self._place_vpcs()
        self._group_numbered()
        for rid in self.ids:
            if rid not in self.host and rid not in self.links and rid not in self.absorbed:
                self._add_node(rid, _node_id(rid), [rid])
        for rid, host in sorted(self.absorbed.items()):
            if host in self.host:
                self.host[rid] = self.host[host]
            else:  # its host is drawn as an edge: draw it after all
                self._add_node(rid, _node_id(rid), [rid])
        self._cluster_custom_resources()

    # --- nodes -----------------------------------------------------------------------------

    def _fold_attachments(self):
        for rid in self.ids:
            kind = self.types[rid]
            if kind in ABSORBED:
                hosts = [
                    target
                    for target, _, _ in self._references(rid, only=ABSORBED[kind])
                    if target in self.resources and self.types[target] not in ABSORBED
                ]
                if hosts:
                    self.absorbed[rid] = sorted(hosts)[0]
            elif kind in LINKS or _is_link(kind, self._resource_targets(rid)):
                self.links.add(rid)

    def _place_vpcs(self):
        for vpc in (rid for rid in self.ids if self.types[rid] == "AWS::EC2::VPC"):
            members = [
                rid
                for rid in self.ids
                if self.types[rid].startswith("AWS::EC2::")
                and rid not in self.absorbed
                and rid not in self.links
                and vpc in self._direct(rid, ("VpcId", "ResourceId"))
            ]
            node_id = _node_id(vpc)
            if not members:
                continue  # drawn as an ordinary node
            body = self.resources[vpc]
            label, _, _ = TYPES["AWS::EC2::VPC"]
            title = f"{label}: {vpc}" + (" (optional)" if "Condition" in body else "")
            area = self.areas[node_id] = Area(node_id, title)
            self.host[vpc] = node_id
            zones = self._zones(members)
            for rid in members:
                member_id = _node_id(rid)
                self._add_node(rid, member_id, [rid])
                zone = zones.get(rid)
                if zone is None:
                    area.nodes.append(member_id)
                else:
                    area.zones.setdefault(zone, []).append(member_id)
                self.area_of[member_id] = (node_id, zone)
            for node_ids in area.zones.values():
                optional = all(self.nodes[n].optional for n in node_ids)
                if optional:  # said once, in the zone's title
                    for n in node_ids:
                        self.nodes[n].lines[0] = self.nodes[n].lines[0].replace(" (optional)", "")

    def _zones(self, members):
        """Zone title of each subnet, and of resources tied to subnets of one zone only."""
        zones = {}
        for rid in members:
            if self.types[rid] == "AWS::EC2::Subnet":
                properties = _properties(self.resources[rid])
                zones[rid] = _zone_title(
                    properties.get("AvailabilityZoneId", properties.get("AvailabilityZone"))
                )
        tied = {rid: set() for rid in members if rid not in zones}
        for link in sorted(self.links):
            targets = self._resource_targets(link)
            for subnet in (t for t in targets if t in zones):
                for other in (t for t in targets if t in tied):
                    tied[other].add(zones[subnet])
        for rid in tied:
            for subnet in self._direct(rid, ("SubnetId",)):
                if subnet in zones:
                    tied[rid].add(zones[subnet])
        zones.update({rid: found.pop() for rid, found in tied.items() if len(found) == 1})
        return zones

    def _group_numbered(self):
        """Resources of one type named <stem><n> (two or more) become one node."""
        groups = {}
        for rid in self.ids:
            match = TRAILING_NUMBER.match(rid)
            skip = rid in self.host or rid in self.links or rid in self.absorbed
            if match and not skip:
                groups.setdefault((self.types[rid], match[1]), []).append(rid)
        for (kind, stem), members in sorted(groups.items()):
            if len(members) < 2:
                continue
            node_id = "group_" + _safe_id(stem)
            numbers = sorted(int(TRAILING_NUMBER.match(rid)[2]) for rid in members)
            optional = any("Condition" in self.resources[rid] for rid in members)
            label = _plural(_type_label(kind, {}))
            count = f"up to {len(members)}" if optional else str(len(members))
            contiguous = numbers == list(range(numbers[0], numbers[0] + len(numbers)))
            names = (
                f"{stem}{numbers[0]}..{numbers[-1]}"
                if contiguous
                else ", ".join(f"{stem}{n}" for n in numbers)
            )
            self._add_node(members[0], node_id, [f"{label} ({count})", names])
            self.nodes[node_id].optional = optional
            for rid in members:
                self.host[rid] = node_id

    def _cluster_custom_resources(self):
        """Custom resources served by one function share a subgraph (two or more)."""
        served = {}
        for rid in self.ids:
            node_id = self.host.get(rid)
            if _is_custom(self.types[rid]) and node_id == _node_id(rid):
                functions = {
                    name
                    for name, _, _ in self._references(rid, only="ServiceToken")
                    if name in self.resources
                }
                if len(functions) == 1:
                    served.setdefault(functions.pop(), []).append(node_id)
        for function, node_ids in sorted(served.items()):
            if len(node_ids) >= 2:
                cluster_id = "served_by_" + _safe_id(function)
                self.clusters[cluster_id] = (f"Custom resources served by {function}", node_ids)

    def _add_node(self, rid, node_id, lines):
        kind = self.types[rid]
        body = self.resources[rid]
        _, shape, category = _type_info(kind)
        optional = "Condition" in body
        first = _type_label(kind, _properties(body)) + (" (optional)" if optional else "")
        extra = _detail(kind, _properties(body))
        if len(lines) == 1:
            lines = [first, *lines, *extra]
        self.nodes[node_id] = Node(node_id, lines, shape, category, optional, order=(kind, rid))
        self.host.setdefault(rid, node_id)

    def _external(self, parameter):
        node_id = "param_" + _safe_id(parameter)
        if node_id not in self.nodes:
            kind = next((t for word, t in EXTERNAL_KINDS if word in parameter), None)
            label, shape, category = _type_info(kind) if kind else ("Resource", "rect", 6)
            lines = [f"{label} (external)", f"parameter {parameter}"]
            self.nodes[node_id] = Node(node_id, lines, shape, category, external=True)
            self.nodes[node_id].order = (kind or "", parameter)
        return node_id

    # --- references ------------------------------------------------------------------------

    def _references(self, rid, only=None):
        """(name, attribute, path) for every reference in a resource's properties."""
        properties = _properties(self.resources[rid])
        if only is not None:
            properties = {only: properties.get(only)}
        found = []
        for kind, name, attribute, path in _walk(properties, ()):
            if kind == "ref":
                found.extend((*target, path) for target in self._passed_through(name, attribute))
            else:
                found.extend((target, None, path) for target in self._named_arns(rid, name))
        return found

    def _passed_through(self, name, attribute, depth=0):
        """A custom resource's attribute named like one of its properties is taken to echo
        that property (``GetAtt EmptyLogsBucket.BucketName`` is the bucket it was given)."""
        if depth < 3 and attribute and _is_custom(self.types.get(name, "")):
            value = _properties(self.resources[name]).get(attribute)
            inner = [
                (inner_name, inner_attribute)
                for kind, inner_name, inner_attribute, _ in _walk(value, ())
                if kind == "ref" and (inner_name in self.resources or inner_name in self.parameters)
            ]
            if inner:
                return [
                    found
                    for inner_name, inner_attribute in inner
                    for found in self._passed_through(inner_name, inner_attribute, depth + 1)
                ]
        return [(name, attribute)]

    def _resource_targets(self, rid):
        return sorted(
            {name for name, _, _ in self._references(rid) if name in self.resources} - {rid}
        )

    def _direct(self, rid, keys):
        """Resources referenced by the given top-level properties."""
        properties = _properties(self.resources[rid])
        return {
            name
            for key in keys
            for kind, name, _, _ in _walk(properties.get(key), ())
            if kind == "ref" and name in self.resources
        }

    def _named_arns(self, rid, text):
        matches = []
        for other, kind in sorted(self.types.items()):
            # A custom resource creating a log group or bucket is named like one.
            patterns = NAMED_ARNS.values() if _is_custom(kind) else [NAMED_ARNS.get(kind)]
            for name_key, before, after in filter(None, patterns):
                name = _properties(self.resources[other]).get(name_key)
                if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
                    name = name["Fn::Sub"]
                if (
                    other != rid
                    and isinstance(name, str)
                    and name
                    and re.search(re.escape(before + name) + after, text)
                ):
                    matches.append(other)
        return matches

    # --- edges -----------------------------------------------------------------------------

    def _edges(self):
        candidates = []
        for rid in self.ids:
            kind = self.types[rid]
            if rid in self.links:
                candidates.extend(self._link_edges(rid))
                continue
            for name, attribute, path in self._references(rid):
                target = self._target_node(name)
                if target is None:
                    continue
                relation = _relation(kind, self.types.get(name, ""), path, attribute)
                if relation is None:
                    continue
                label, style, reverse = relation
                source = self.host[rid]
                pair = (target, source) if reverse else (source, target)
                candidates.append(Edge(*pair, label, style))
            depends = self.resources[rid].get("DependsOn")
            depends = [depends] if isinstance(depends, str) else depends
            for name in depends if isinstance(depends, list) else []:
                target = self._target_node(name) if name in self.ids else None
                if target and rid in self.host:
                    candidates.append(Edge(self.host[rid], target, "depends on", DEPENDS))
        placed = {self._placed(edge) for edge in candidates} - {None}
        best, labels = {}, {}
        for edge in self._lift(placed):
            key = frozenset((edge.source, edge.target))
            labels.setdefault((edge.source, edge.target, edge.style), set()).add(edge.label)
            if key not in best or edge.rank() < best[key].rank():
                best[key] = edge
        edges = (_merge_labels(e, labels[e.source, e.target, e.style]) for e in best.values())
        return sorted(edges, key=lambda e: (e.source, e.target))

    def _lift(self, edges):
        """An edge every member of a cluster has alike is drawn once, from the cluster."""
        edges = set(edges)
        for cluster_id, (_, members) in sorted(self.clusters.items()):
            alike = {}
            for edge in edges:
                if edge.source in members and edge.target not in members:
                    alike.setdefault(("out", edge.target, edge.label, edge.style), []).append(edge)
                if edge.target in members and edge.source not in members:
                    alike.setdefault(("in", edge.source, edge.label, edge.style), []).append(edge)
            for (direction, other, label, style), found in sorted(alike.items()):
                if len(found) == len(members):
                    edges.difference_update(found)
                    pair = (cluster_id, other) if direction == "out" else (other, cluster_id)
                    edges.add(Edge(*pair, label, style))
        return edges

    def _link_edges(self, rid):
        kind = self.types[rid]
        if kind in LINKS:
            source_key, target_key, label = LINKS[kind]
            sources, targets = self._direct(rid, (source_key,)), self._direct(rid, (target_key,))
        else:
            first, second = self._resource_targets(rid)
            sources, targets, label = {first}, {second}, ""
        return [
            Edge(self.host[s], self.host[t], label, FLOW)
            for s in sorted(sources)
            for t in sorted(targets)
        ]

    def _target_node(self, name):
        if name in self.resources:
            if name in self.links:
                return None
            return self.host.get(name)
        definition = self.parameters.get(name)
        if isinstance(definition, dict) and (
            EXTERNAL_PARAMETER.search(name) or str(definition.get("Type", "")).startswith("AWS::")
        ):
            return self._external(name)
        return None

    def _placed(self, edge):
        """None for self-edges and a VPC's own members pointing at it; outside references
        to a zone's resources point at the VPC instead."""
        source, target = edge.source, edge.target
        if source == target:
            return None
        source_area = self.area_of.get(source, (source if source in self.areas else None, None))
        target_area = self.area_of.get(target, (target if target in self.areas else None, None))
        if source_area[0] and source_area[0] == target_area[0]:
            if source in self.areas or target in self.areas:
                return None  # containment already shows it
            return edge
        if target_area[1] is not None:
            target = target_area[0]
        if source_area[1] is not None:
            source = source_area[0]
        return Edge(source, target, edge.label, edge.style)

    # --- text ------------------------------------------------------------------------------

    def render(self):
        edges = self._edges()
        out = [
            "flowchart LR",
            "    %% solid: references and data flow; dotted: IAM or resource-policy grants,",
            "    %% DependsOn; dashed border: created only under a Condition",
        ]
        for area_id in sorted(self.areas):
            area = self.areas[area_id]
            out.append(f'    subgraph {area_id}["{_escape(area.title)}"]')
            out.append("        direction TB")
            for zone in sorted(area.zones):
                node_ids = area.zones[zone]
                optional = all(self.nodes[n].optional for n in node_ids)
                title = zone + (" (optional)" if optional else "")
                zone_id = f"zone_{area_id}_{_safe_id(zone)}"
                out.append(f'        subgraph {zone_id}["{_escape(title)}"]')
                out.extend("            " + self._declare(n) for n in self._sorted(node_ids))
                out.append("        end")
            out.extend("        " + self._declare(n) for n in self._sorted(area.nodes))
            out.append("    end")
        for cluster_id, (title, members) in sorted(self.clusters.items()):
            out.append(f'    subgraph {cluster_id}["{_escape(title)}"]')
            out.extend("        " + self._declare(n) for n in self._sorted(members))
            out.append("    end")
        placed = set(self.area_of) | {n for _, ms in self.clusters.values() for n in ms}
        rest = [n for n in self.nodes if n not in placed]
        out.extend("    " + self._declare(n) for n in self._sorted(rest))
        for edge in edges:
            label = f"|{edge.label}|" if edge.label else ""
            out.append(f"    {edge.source} {ARROWS[edge.style]}{label} {edge.target}")
        out.append("    classDef optional stroke-dasharray: 5 5")
        out.append("    classDef external fill:#eeeeee,stroke:#888888")
        for style in ("optional", "external"):
            members = sorted(n for n, node in self.nodes.items() if getattr(node, style))
            if members:
                out.append(f"    class {','.join(members)} {style}")
        return "\n".join(out) + "\n"

    def _sorted(self, node_ids):
        return sorted(node_ids, key=lambda n: (self.nodes[n].category, self.nodes[n].order, n))

    def _declare(self, node_id):
        node = self.nodes[node_id]
        opening, closing = SHAPES[node.shape]
        label = "<br/>".join(_escape(line) for line in node.lines)
        return f"{node_id}{opening}{label}{closing}"


# --- helpers -------------------------------------------------------------------------------


def _walk(value, path):
    """("ref", name, attribute, path) and ("text", string, None, path) found in ``value``;
    ``path`` holds the dict keys leading there (list positions left out)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and isinstance(argument, str):
                yield ("ref", argument, None, path)
                return
            if key == "Fn::GetAtt":
                if isinstance(argument, str) and "." in argument:
                    argument = argument.split(".", 1)
                if isinstance(argument, list) and argument and isinstance(argument[0], str):
                    attribute = argument[1] if len(argument) > 1 else None
                    yield (
                        "ref",
                        argument[0],
                        attribute if isinstance(attribute, str) else None,
                        path,
                    )
                    return
            if key == "Fn::Sub":
                text, variables = argument, {}
                if isinstance(argument, list) and argument:
                    text = argument[0]
                    variables = argument[1] if len(argument) > 1 else {}
                    variables = variables if isinstance(variables, dict) else {}
                if isinstance(text, str):
                    yield ("text", text, None, path)
                    for match in SUB_VARIABLE.finditer(text):
                        name, _, attribute = match[1].strip().partition(".")
                        if name not in variables:
                            yield ("ref", name, attribute or None, path)
                for name in sorted(variables):
                    yield from _walk(variables[name], path)
                return
        for key in sorted(value, key=str):
            step = () if str(key).startswith("Fn::") else (str(key),)
            yield from _walk(value[key], (*path, *step))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, path)
    elif isinstance(value, str):
        yield ("text", value, None, path)


def _relation(kind, target_kind, path, attribute):
    """(label, style, reverse) for a reference from a ``kind`` resource at ``path``."""
    top = path[0] if path else ""
    if kind == "AWS::Events::Rule" and top == "Targets":
        if path[1:] == ("Arn",):
            return ("target", FLOW, False)
        if "DeadLetterConfig" in path:
            return ("dead letters", FLOW, False)
        if path[-1:] == ("RoleArn",):
            return ("", PERM, False)
        return None  # the payload sent to a target, not a link
    if _is_custom(kind) and top == "ServiceToken":
        return ("serves", FLOW, True)
    if any(key in POLICY_KEYS for key in path):
        return ("", PERM, False)
    if target_kind == "AWS::KMS::Key":
        return ("encrypts", FLOW, True)
    if (kind, top) in RELATIONS:
        return RELATIONS[kind, top]
    if _is_custom(kind):
        return ("manages", FLOW, False)
    if _is_custom(target_kind) and attribute:
        return (SAFE_LABEL.sub("", attribute), FLOW, False)
    return ("", FLOW, False)


def _zone_title(zone):
    """A zone subgraph's title: "AZ <zone id or name>", or "zone a" for ``${AWS::Region}a``."""
    if isinstance(zone, str):
        return f"AZ {zone}"
    text = zone.get("Fn::Sub") if isinstance(zone, dict) and len(zone) == 1 else None
    slot = text.removeprefix("${AWS::Region}") if isinstance(text, str) else ""
    if text != slot and slot and "${" not in slot:
        return f"zone {slot}"
    return f"AZ {_short_json(zone)}"


def _merge_labels(edge, labels):
    """One edge drawn for several that differ only in the last letter of their labels
    (``CidrA`` ... ``CidrF``, read by the zones' subnets): labelled ``CidrA..F``."""
    ordered = sorted(labels)
    stems = {label[:-1] for label in ordered}
    if len(ordered) < 2 or len(stems) != 1 or not all(len(label) > 1 for label in ordered):
        return edge
    return Edge(edge.source, edge.target, f"{ordered[0]}..{ordered[-1][-1]}", edge.style)


def _is_custom(kind):
    return kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"


def _is_link(kind, targets):
    return kind.endswith(("Association", "Attachment")) and len(targets) == 2


def _type(body):
    kind = body.get("Type")
    return kind if isinstance(kind, str) and kind else "Unknown"


def _properties(body):
    properties = body.get("Properties")
    return properties if isinstance(properties, dict) else {}


def _type_info(kind):
    if kind in TYPES:
        return TYPES[kind]
    if _is_custom(kind):
        label = kind if kind.startswith("Custom::") else "Custom resource"
        return (label, "parallelogram", CUSTOM_CATEGORY)
    parts = kind.split("::")
    service = parts[1] if len(parts) > 2 and parts[0] == "AWS" else ""
    label = " ".join(parts[1:]) if parts[0] == "AWS" else kind
    return (label, "rect", CATEGORY_BY_SERVICE.get(service, OTHER_CATEGORY))


def _type_label(kind, properties):
    label = _type_info(kind)[0]
    if kind == "AWS::EC2::VPCEndpoint":
        service = properties.get("ServiceName")
        if isinstance(service, dict):
            service = service.get("Fn::Sub")
        endpoint_type = properties.get("VpcEndpointType", "Interface")
        if isinstance(service, str) and isinstance(endpoint_type, str):
            region = "${AWS::Region}."
            short = service.split(region)[-1] if region in service else service.rsplit(".")[-1]
            return f"{short.upper()} {endpoint_type.lower()} endpoint"
    if kind == "AWS::Events::Rule" and "ScheduleExpression" in properties:
        return "EventBridge schedule"
    return label


def _detail(kind, properties):
    """Extra label lines worth reading at a glance."""
    if kind == "AWS::Events::Rule" and isinstance(properties.get("ScheduleExpression"), str):
        return [properties["ScheduleExpression"]]
    return []


def _plural(label):
    if label.endswith("y") and label[-2:-1] not in "aeiou":
        return label[:-1] + "ies"
    return label + ("es" if label.endswith("s") else "s")


def _node_id(logical_id):
    return "res_" + _safe_id(logical_id)


def _safe_id(text):
    return UNSAFE_ID.sub("_", str(text))


def _short_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))[:40]


def _escape(text):
    """Label text safe inside Mermaid's double quotes."""
    text = str(text).replace("#", "#35;").replace('"', "#quot;")
    return text.replace("<", "#lt;").replace(">", "#gt;")


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or [SOURCE]
    for path in paths:
        sys.stdout.write(mermaid(json.loads(Path(path).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
