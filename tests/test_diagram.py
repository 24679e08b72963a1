"""The README diagram: derived from the rendered product template (rendered here, in memory, as
build.py writes it to dist/), structurally valid Mermaid, stable."""

import copy
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from build import PRODUCT_FILE
from templates.diagram import README_END, README_START, SOURCE, embed, mermaid
from tests.helpers import rendered

ROOT = Path(__file__).resolve().parent.parent
# The product template; the launch role's template is not drawn.
DIST_FILES = [PRODUCT_FILE]
ZONE_LETTERS = "abcdef"

ID = re.compile(r"^[A-Za-z0-9_]+$")
SUBGRAPH = re.compile(r'^subgraph (?P<id>\S+)\["(?P<label>[^"]*)"\]$')
EDGE = re.compile(
    r"^(?P<source>\S+) (?P<arrow>-->|-\.->)(?:\|(?P<label>[^|]+)\|)? (?P<target>\S+)$"
)
NODE = re.compile(
    r'^(?P<id>[^\s\[\](){}/"|]+)'
    r'(?P<open>\[\(|\{\{|\[\[|\(\[|\[/|\(|\[)"(?P<label>[^"]*)"(?P<close>\)\]|\}\}|\]\]|\]\)|/\]|\)|\])$'
)
SHAPES = {"[(": ")]", "{{": "}}", "[[": "]]", "([": "])", "[/": "/]", "(": ")", "[": "]"}
CLASS = re.compile(r"^class (?P<ids>\S+) (?P<name>\w+)$")


@dataclass
class Chart:
    nodes: dict = field(default_factory=dict)  # id -> label
    subgraphs: dict = field(default_factory=dict)  # id -> label
    parent: dict = field(default_factory=dict)  # node or subgraph id -> enclosing subgraph id
    edges: list = field(default_factory=list)  # (source, arrow, label, target)
    classes: dict = field(default_factory=dict)  # class name -> ids

    def has_edge(self, source, target, label=None):
        return any(
            (s, t) == (source, target) and (label is None or text == label)
            for s, _, text, t in self.edges
        )

    def ancestors(self, item):
        found = []
        while self.parent.get(item):
            item = self.parent[item]
            found.append(item)
        return found


def parse(text):
    """Every line must be one we emit on purpose; subgraph/end must balance."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    chart, stack = Chart(), []
    for raw in lines[1:]:
        line = raw.strip()
        if not line or line.startswith(("%%", "classDef ", "direction ")):
            continue
        if match := SUBGRAPH.match(line):
            identifier = match["id"]
            assert identifier not in chart.subgraphs and identifier not in chart.nodes, line
            chart.subgraphs[identifier] = match["label"]
            chart.parent[identifier] = stack[-1] if stack else None
            stack.append(identifier)
        elif line == "end":
            assert stack, "end without subgraph"
            stack.pop()
        elif match := EDGE.match(line):
            chart.edges.append((match["source"], match["arrow"], match["label"], match["target"]))
        elif match := CLASS.match(line):
            chart.classes.setdefault(match["name"], set()).update(match["ids"].split(","))
        elif match := NODE.match(line):
            identifier = match["id"]
            assert SHAPES[match["open"]] == match["close"], line
            assert identifier not in chart.nodes and identifier not in chart.subgraphs, line
            chart.nodes[identifier] = match["label"]
            chart.parent[identifier] = stack[-1] if stack else None
        else:
            raise AssertionError(f"unrecognised Mermaid line: {line!r}")
    assert not stack, f"unclosed subgraphs {stack}"
    return chart


def template(name):
    assert name == PRODUCT_FILE, name
    return rendered()


@cache
def chart(name):
    return parse(mermaid(template(name)))


def of_type(tmpl, kind):
    return sorted(rid for rid, body in tmpl["Resources"].items() if body["Type"] == kind)


def node(rid):
    return f"res_{rid}"


# --- structure --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DIST_FILES)
def test_chart_is_structurally_valid_mermaid(name):
    drawn = chart(name)
    declared = drawn.nodes.keys() | drawn.subgraphs.keys()
    assert all(ID.match(identifier) for identifier in declared)
    for source, _, label, target in drawn.edges:
        assert source in declared and target in declared, (source, target)
        assert source != target
        assert label is None or re.fullmatch(r"[A-Za-z0-9 ._-]+", label)
    for members in drawn.classes.values():
        assert members <= drawn.nodes.keys()
    assert all(label and "\n" not in label for label in drawn.nodes.values())
    pairs = [frozenset((s, t)) for s, _, _, t in drawn.edges]
    assert len(pairs) == len(set(pairs)), "one edge per pair of nodes"


def test_one_zone_slot_subgraph_per_zone_letter_inside_the_vpc():
    tmpl, drawn = template(PRODUCT_FILE), chart(PRODUCT_FILE)
    subnets = of_type(tmpl, "AWS::EC2::Subnet")
    zone_graphs = {k: v for k, v in drawn.subgraphs.items() if v.startswith("zone ")}
    assert sorted(zone_graphs.values()) == [f"zone {x} (optional)" for x in ZONE_LETTERS]
    assert not any(v.startswith("AZ ") for v in drawn.subgraphs.values())
    (vpc,) = of_type(tmpl, "AWS::EC2::VPC")
    assert node(vpc) in drawn.subgraphs
    assert all(drawn.parent[z] == node(vpc) for z in zone_graphs)
    for subnet in subnets:
        zone = tmpl["Resources"][subnet]["Properties"]["AvailabilityZone"]["Fn::Sub"]
        letter = zone.removeprefix("${AWS::Region}")
        assert drawn.subgraphs[drawn.parent[node(subnet)]] == f"zone {letter} (optional)"
        assert drawn.nodes[node(subnet)] == f"Subnet<br/>{subnet}"  # optional: said once
    for association in of_type(tmpl, "AWS::EC2::SubnetRouteTableAssociation"):
        properties = tmpl["Resources"][association]["Properties"]
        subnet, table = properties["SubnetId"]["Ref"], properties["RouteTableId"]["Ref"]
        assert drawn.parent[node(table)] == drawn.parent[node(subnet)]
        assert drawn.has_edge(node(subnet), node(table), "routes via")
    for kind in ("AWS::EC2::VPCEndpoint", "AWS::EC2::SecurityGroup", "AWS::EC2::NetworkAcl"):
        for rid in of_type(tmpl, kind):
            assert drawn.parent[node(rid)] == node(vpc)
    for rid in of_type(tmpl, "AWS::EC2::FlowLog"):
        assert drawn.parent[node(rid)] == node(vpc)


def test_the_zone_slots_cidrs_come_from_the_zone_plan_in_one_edge():
    """Each slot's subnet reads its own attribute (CidrA ... CidrF); drawn from the VPC, the
    one edge names them all, not just the first."""
    assert chart(PRODUCT_FILE).has_edge(node("Vpc"), node("ZonePlan"), "CidrA..F")


@pytest.mark.parametrize(
    "key, zone, title",
    [
        ("AvailabilityZoneId", "euc1-az1", "AZ euc1-az1"),
        ("AvailabilityZone", "us-east-1a", "AZ us-east-1a"),
        ("AvailabilityZone", {"Fn::Sub": "${AWS::Region}b"}, "zone b"),
        ("AvailabilityZone", {"Fn::Sub": "${AWS::Region}"}, "AZ {#quot;Fn::Sub#quot;"),
        ("AvailabilityZone", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}, "AZ {#quot;Fn::Select"),
    ],
)
def test_zones_are_titled_by_id_name_or_slot(key, zone, title):
    subnet = {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Net"}, key: zone}}
    drawn = parse(mermaid({"Resources": {"Net": {"Type": "AWS::EC2::VPC"}, "Sub": subnet}}))
    [zone_title] = [v for k, v in drawn.subgraphs.items() if k.startswith("zone_")]
    assert zone_title.startswith(title), zone_title
    assert drawn.parent["res_Sub"] == next(k for k in drawn.subgraphs if k.startswith("zone_"))


@pytest.mark.parametrize("name", DIST_FILES)
def test_main_resources_appear_with_readable_labels(name):
    tmpl, drawn = template(name), chart(name)
    labels = {
        "AWS::EC2::Subnet": "Subnet",
        "AWS::EC2::RouteTable": "Route table",
        "AWS::EC2::VPCEndpoint": "S3 gateway endpoint",
        "AWS::EC2::SecurityGroup": "Security group",
        "AWS::EC2::NetworkAcl": "Network ACL",
        "AWS::EC2::FlowLog": "VPC flow log",
        "AWS::S3::Bucket": "S3 bucket",
        "AWS::Events::Rule": "EventBridge",
        "AWS::SQS::Queue": "SQS queue",
        "AWS::Logs::LogGroup": "Log group",
        "AWS::KMS::Key": "KMS key",
        "AWS::IAM::Role": "IAM role",
        "AWS::IAM::ManagedPolicy": "IAM managed policy",
        "AWS::Lambda::Function": "Lambda function",
    }
    for kind, label in labels.items():
        for rid in of_type(tmpl, kind):
            assert node(rid) in drawn.nodes, rid
            assert drawn.nodes[node(rid)].startswith(label), drawn.nodes[node(rid)]
            assert rid in drawn.nodes[node(rid)]
    assert of_type(tmpl, "AWS::S3::Bucket")
    assert of_type(tmpl, "AWS::IAM::Role")
    for rid, body in tmpl["Resources"].items():
        if body["Type"].startswith("Custom::"):
            assert body["Type"] in drawn.nodes[node(rid)]


@pytest.mark.parametrize("name", DIST_FILES)
def test_ecr_repository_slots_collapse_into_one_node(name):
    tmpl, drawn = template(name), chart(name)
    repositories = of_type(tmpl, "AWS::ECR::Repository")
    assert len(repositories) == 4
    assert not any(node(rid) in drawn.nodes for rid in repositories)
    (group,) = [n for n, label in drawn.nodes.items() if label.startswith("ECR repositories")]
    assert drawn.nodes[group].startswith("ECR repositories (up to 4)")
    assert group in drawn.classes["optional"]


@pytest.mark.parametrize("name", DIST_FILES)
def test_attachments_fold_into_their_resources(name):
    tmpl, drawn = template(name), chart(name)
    folded = [
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::Lambda::Permission",
        "AWS::KMS::Alias",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::SubnetNetworkAclAssociation",
    ]
    for kind in folded:
        assert not any(node(rid) in drawn.nodes for rid in of_type(tmpl, kind)), kind
    assert len(drawn.nodes) + len(drawn.subgraphs) < len(tmpl["Resources"])


# --- edges ------------------------------------------------------------------------------------


def stopped_jobs_rule(tmpl):
    (rule,) = [
        rid
        for rid in of_type(tmpl, "AWS::Events::Rule")
        if "EventPattern" in tmpl["Resources"][rid]["Properties"]
    ]
    return rule


@pytest.mark.parametrize("name", DIST_FILES)
def test_stopped_jobs_rule_targets_the_queue_and_the_log_group(name):
    tmpl, drawn = template(name), chart(name)
    rule = node(stopped_jobs_rule(tmpl))
    external = "param_StoppedEventsQueueArn"
    assert "SQS queue (external)" in drawn.nodes[external]
    assert "StoppedEventsQueueArn" in drawn.nodes[external]
    assert external in drawn.classes["external"]
    assert drawn.has_edge(rule, external, "target")
    targets = json.dumps(tmpl["Resources"][stopped_jobs_rule(tmpl)]["Properties"]["Targets"])
    log_groups = [
        rid
        for rid in of_type(tmpl, "AWS::Logs::LogGroup")
        if tmpl["Resources"][rid]["Properties"].get("LogGroupName", {}).get("Fn::Sub", "?")
        in targets
    ]
    assert log_groups
    for log_group in log_groups:
        assert drawn.has_edge(rule, node(log_group), "target")
    rule_targets = tmpl["Resources"][stopped_jobs_rule(tmpl)]["Properties"]["Targets"]
    target_arns = json.dumps([target["Arn"] for target in rule_targets])
    dead_letters = json.dumps([target.get("DeadLetterConfig") for target in rule_targets])
    for queue in of_type(tmpl, "AWS::SQS::Queue"):
        if queue in target_arns:
            assert drawn.has_edge(rule, node(queue), "target")
        if queue in dead_letters:
            assert drawn.has_edge(rule, node(queue), "dead letters")


@pytest.mark.parametrize("name", DIST_FILES)
def test_network_edges(name):
    tmpl, drawn = template(name), chart(name)
    for endpoint in of_type(tmpl, "AWS::EC2::VPCEndpoint"):
        tables = of_type(tmpl, "AWS::EC2::RouteTable")
        assert tables
        for table in tables:
            assert drawn.has_edge(node(endpoint), node(table), "adds route")
    for acl in of_type(tmpl, "AWS::EC2::NetworkAcl"):
        for subnet in of_type(tmpl, "AWS::EC2::Subnet"):
            assert drawn.has_edge(node(acl), node(subnet), "filters")


@pytest.mark.parametrize("name", DIST_FILES)
def test_key_encrypts_log_groups_and_roles_have_their_policies(name):
    tmpl, drawn = template(name), chart(name)
    (key,) = of_type(tmpl, "AWS::KMS::Key")
    encrypted = [
        rid
        for rid, body in tmpl["Resources"].items()
        for property_name in ("KmsKeyId", "KmsKeyArn")
        if key in json.dumps(body.get("Properties", {}).get(property_name))
    ]
    assert encrypted
    for rid in encrypted:
        assert drawn.has_edge(node(key), node(rid), "encrypts")
    assert drawn.has_edge(node("ExecutionPolicy"), node("ExecutionRole"), "attached to")
    assert drawn.has_edge(node("Custodian"), node("CustodianRole"), "runs as")


@pytest.mark.parametrize("name", DIST_FILES)
def test_custodian_serves_its_custom_resources_from_one_subgraph(name):
    tmpl, drawn = template(name), chart(name)
    custom = [rid for rid, body in tmpl["Resources"].items() if body["Type"].startswith("Custom::")]
    assert len(custom) >= 2
    (function,) = of_type(tmpl, "AWS::Lambda::Function")
    cluster = drawn.parent[node(custom[0])]
    assert all(drawn.parent[node(rid)] == cluster for rid in custom)
    assert function in drawn.subgraphs[cluster]
    assert drawn.has_edge(node(function), cluster, "serves")
    assert not any(drawn.has_edge(node(function), node(rid)) for rid in custom)


@pytest.mark.parametrize("name", DIST_FILES)
def test_conditional_resources_are_marked_optional(name):
    tmpl, drawn = template(name), chart(name)
    optional = drawn.classes["optional"]
    for rid, body in sorted(tmpl["Resources"].items()):
        if "Condition" not in body or node(rid) not in drawn.nodes:
            continue
        assert node(rid) in optional, rid
        said = [drawn.nodes[node(rid)]] + [drawn.subgraphs[g] for g in drawn.ancestors(node(rid))]
        assert any("(optional)" in text for text in said), rid
    for rid, body in tmpl["Resources"].items():
        if "Condition" not in body and node(rid) in drawn.nodes:
            assert node(rid) not in optional
            assert "(optional)" not in drawn.nodes[node(rid)]


def test_optional_logs_bucket_is_dashed_and_labelled():
    tmpl = copy.deepcopy(template(PRODUCT_FILE))
    tmpl["Resources"]["ExtraLogsBucket"] = {
        "Type": "AWS::S3::Bucket",
        "Condition": "CreateLogsBucket",
        "Properties": {},
    }
    drawn = parse(mermaid(tmpl))
    assert drawn.nodes["res_ExtraLogsBucket"] == "S3 bucket (optional)<br/>ExtraLogsBucket"
    assert "res_ExtraLogsBucket" in drawn.classes["optional"]


# --- robustness and determinism ------------------------------------------------------------------


def test_unknown_and_malformed_resources_get_generic_nodes():
    tmpl = copy.deepcopy(template(PRODUCT_FILE))
    tmpl["Resources"].update(
        {
            "Gadget": {
                "Type": "AWS::Gizmo::Gadget",
                "DependsOn": ["Missing", "InputsBucket"],
                "Properties": {"Target": {"Fn::GetAtt": "OutputsBucket.Arn"}, "X": [{"Y": 1}]},
            },
            "Plugin": {"Type": "Vendor::Thing::Plugin", "Properties": "not a dict"},
            "NoType": {},
            "NotADict": "surprise",
            "BadRefs": {
                "Type": "AWS::Gizmo::Gadget",
                "DependsOn": 7,
                "Properties": {
                    "A": {"Ref": ["x"]},
                    "B": {"Fn::Sub": [1, 2]},
                    "C": {"Fn::GetAtt": 5},
                },
            },
        }
    )
    drawn = parse(mermaid(tmpl))
    assert drawn.nodes["res_Gadget"] == "Gizmo Gadget<br/>Gadget"
    assert drawn.has_edge("res_Gadget", "res_OutputsBucket")
    assert drawn.has_edge("res_Gadget", "res_InputsBucket", "depends on")
    assert drawn.nodes["res_Plugin"] == "Vendor::Thing::Plugin<br/>Plugin"
    assert drawn.nodes["res_NoType"].startswith("Unknown")
    assert drawn.nodes["res_NotADict"].startswith("Unknown")
    assert "res_BadRefs" in drawn.nodes


@pytest.mark.parametrize("tmpl", [{}, {"Resources": None}, {"Resources": {}}, []])
def test_empty_templates_still_give_a_chart(tmpl):
    assert parse(mermaid(tmpl)).nodes == {}


def test_ids_are_sanitised_and_labels_escaped():
    tmpl = {
        "Resources": {
            "Odd": {"Type": 'AWS::X::"Quoted"<b>#1', "Properties": {"P": {"Ref": "end"}}},
            "end": {"Type": "AWS::X::Y"},
        }
    }
    drawn = parse(mermaid(tmpl))
    assert '"' not in "".join(drawn.nodes.values())
    assert "#quot;" in drawn.nodes["res_Odd"]
    assert drawn.has_edge("res_Odd", "res_end")


def test_same_input_gives_the_same_text():
    tmpl = template(PRODUCT_FILE)
    shuffled = copy.deepcopy(tmpl)
    shuffled["Resources"] = dict(reversed(list(shuffled["Resources"].items())))
    assert mermaid(tmpl) == mermaid(copy.deepcopy(tmpl)) == mermaid(shuffled)


def test_text_does_not_depend_on_hash_seed():
    code = (
        "import json, sys, build; from templates.diagram import mermaid; "
        "sys.stdout.write(mermaid(json.loads(build.render())))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert outputs == {mermaid(template(PRODUCT_FILE))}


# --- README embedding ------------------------------------------------------------------------


README = f"# Title\n\nBefore.\n\n{README_START}\nold diagram\n{README_END}\n\nAfter.\n"


def test_embed_replaces_only_between_the_markers():
    diagram = mermaid(template(PRODUCT_FILE))
    text = embed(README, diagram)
    assert text.startswith(f"# Title\n\nBefore.\n\n{README_START}\n")
    assert text.endswith(f"{README_END}\n\nAfter.\n")
    assert "old diagram" not in text
    inner = text.split(README_START)[1].split(README_END)[0]
    assert inner.startswith(f"\nGenerated by `python build.py` from {SOURCE}; do not edit.\n")
    assert f"```mermaid\n{diagram}```\n" in inner
    assert f"dist/{PRODUCT_FILE}" == SOURCE


def test_embed_is_idempotent_and_follows_the_diagram():
    once = embed(README, "flowchart LR\n    a --> b\n")
    assert embed(once, "flowchart LR\n    a --> b\n") == once
    again = embed(once, "flowchart LR\n    c --> d\n")
    assert "c --> d" in again and "a --> b" not in again
    assert embed(again, "flowchart LR\n    a --> b\n") == once


@pytest.mark.parametrize(
    "text, message",
    [
        ("# no markers\n", "exactly once"),
        (f"{README_START}\nonly the start\n", "exactly once"),
        (f"only the end\n{README_END}\n", "exactly once"),
        (f"{README_START}\n{README_START}\n{README_END}\n", "exactly once"),
        (f"{README_END}\nswapped\n{README_START}\n", "before"),
    ],
)
def test_embed_rejects_missing_or_misplaced_markers(text, message):
    with pytest.raises(ValueError, match=message):
        embed(text, "flowchart LR\n")
