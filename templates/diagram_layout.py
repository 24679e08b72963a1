"""The diagram's graph: which resources become nodes (folded, grouped, clustered), which
subgraph each lands in (VPC, zone), and the edges between them after placement.

The rules for single resources and references are in diagram_rules.py; turning the graph
into Mermaid text is diagram.py's job."""

import re
from dataclasses import dataclass, field

from .diagram_rules import (
    ABSORBED,
    DEPENDS,
    EXTERNAL_KINDS,
    EXTERNAL_PARAMETER,
    FLOW,
    LINKS,
    NAMED_ARNS,
    OTHER_CATEGORY,
    PERM,
    TRAILING_NUMBER,
    TYPES,
    detail_lines,
    is_custom,
    is_link,
    plural,
    properties_of,
    reference_relation,
    resource_node_id,
    resource_type,
    safe_id,
    type_info,
    type_label,
    walk_references,
    zone_title,
)


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


class Layout:
    """A template's diagram as plain data: nodes, VPC and zone areas, clusters, edges.

    Built in full by the constructor (edges last: they add the external parameter nodes they
    point at), so the text writer only reads it."""

    def __init__(self, template):
        resources = template.get("Resources") if isinstance(template, dict) else None
        self.resources = {
            str(rid): body if isinstance(body, dict) else {}
            for rid, body in (resources if isinstance(resources, dict) else {}).items()
        }
        parameters = template.get("Parameters") if isinstance(template, dict) else None
        self.parameters = parameters if isinstance(parameters, dict) else {}
        self.types = {rid: resource_type(body) for rid, body in self.resources.items()}
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
                self._add_node(rid, resource_node_id(rid), [rid])
        for rid, host in sorted(self.absorbed.items()):
            if host in self.host:
                self.host[rid] = self.host[host]
            else:  # its host is drawn as an edge: draw it after all
                self._add_node(rid, resource_node_id(rid), [rid])
        self._cluster_custom_resources()
        self.edges = self._edges()

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
            elif kind in LINKS or is_link(kind, self._resource_targets(rid)):
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
            node_id = resource_node_id(vpc)
            if not members:
                continue  # drawn as an ordinary node
            body = self.resources[vpc]
            label, _, _ = TYPES["AWS::EC2::VPC"]
            title = f"{label}: {vpc}" + (" (optional)" if "Condition" in body else "")
            area = self.areas[node_id] = Area(node_id, title)
            self.host[vpc] = node_id
            zones = self._zones(members)
            for rid in members:
                member_id = resource_node_id(rid)
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
                properties = properties_of(self.resources[rid])
                zones[rid] = zone_title(
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
            node_id = "group_" + safe_id(stem)
            numbers = sorted(int(TRAILING_NUMBER.match(rid)[2]) for rid in members)
            optional = any("Condition" in self.resources[rid] for rid in members)
            label = plural(type_label(kind, {}))
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
            if is_custom(self.types[rid]) and node_id == resource_node_id(rid):
                functions = {
                    name
                    for name, _, _ in self._references(rid, only="ServiceToken")
                    if name in self.resources
                }
                if len(functions) == 1:
                    served.setdefault(functions.pop(), []).append(node_id)
        for function, node_ids in sorted(served.items()):
            if len(node_ids) >= 2:
                cluster_id = "served_by_" + safe_id(function)
                self.clusters[cluster_id] = (f"Custom resources served by {function}", node_ids)

    def _add_node(self, rid, node_id, lines):
        kind = self.types[rid]
        body = self.resources[rid]
        _, shape, category = type_info(kind)
        optional = "Condition" in body
        first = type_label(kind, properties_of(body)) + (" (optional)" if optional else "")
        extra = detail_lines(kind, properties_of(body))
        if len(lines) == 1:
            lines = [first, *lines, *extra]
        self.nodes[node_id] = Node(node_id, lines, shape, category, optional, order=(kind, rid))
        self.host.setdefault(rid, node_id)

    def _external(self, parameter):
        node_id = "param_" + safe_id(parameter)
        if node_id not in self.nodes:
            kind = next((t for word, t in EXTERNAL_KINDS if word in parameter), None)
            label, shape, category = type_info(kind) if kind else ("Resource", "rect", 6)
            lines = [f"{label} (external)", f"parameter {parameter}"]
            self.nodes[node_id] = Node(node_id, lines, shape, category, external=True)
            self.nodes[node_id].order = (kind or "", parameter)
        return node_id

    # --- references ------------------------------------------------------------------------

    def _references(self, rid, only=None):
        """(name, attribute, path) for every reference in a resource's properties."""
        properties = properties_of(self.resources[rid])
        if only is not None:
            properties = {only: properties.get(only)}
        found = []
        for kind, name, attribute, path in walk_references(properties, ()):
            if kind == "ref":
                found.extend((*target, path) for target in self._passed_through(name, attribute))
            else:
                found.extend((target, None, path) for target in self._named_arns(rid, name))
        return found

    def _passed_through(self, name, attribute, depth=0):
        """A custom resource's attribute named like one of its properties is taken to echo
        that property (``GetAtt EmptyLogsBucket.BucketName`` is the bucket it was given)."""
        if depth < 3 and attribute and is_custom(self.types.get(name, "")):
            value = properties_of(self.resources[name]).get(attribute)
            inner = [
                (inner_name, inner_attribute)
                for kind, inner_name, inner_attribute, _ in walk_references(value, ())
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
        properties = properties_of(self.resources[rid])
        return {
            name
            for key in keys
            for kind, name, _, _ in walk_references(properties.get(key), ())
            if kind == "ref" and name in self.resources
        }

    def _named_arns(self, rid, text):
        matches = []
        for other, kind in sorted(self.types.items()):
            # A custom resource creating a log group or bucket is named like one.
            patterns = NAMED_ARNS.values() if is_custom(kind) else [NAMED_ARNS.get(kind)]
            for name_key, before, after in filter(None, patterns):
                name = properties_of(self.resources[other]).get(name_key)
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
        """The edges to draw, sorted; pointing at a parameter adds its external node."""
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
                relation = reference_relation(kind, self.types.get(name, ""), path, attribute)
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


def _merge_labels(edge, labels):
    """One edge drawn for several that differ only in the last letter of their labels
    (``CidrA`` ... ``CidrF``, read by the zones' subnets): labelled ``CidrA..F``."""
    ordered = sorted(labels)
    stems = {label[:-1] for label in ordered}
    if len(ordered) < 2 or len(stems) != 1 or not all(len(label) > 1 for label in ordered):
        return edge
    return Edge(edge.source, edge.target, f"{ordered[0]}..{ordered[-1][-1]}", edge.style)
