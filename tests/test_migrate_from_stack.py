"""``build.py migrate --from-stack``: a stack made from a per-region template (releases up to
f1cf291) moves onto the one template by resource import, re-creating nothing.

Every case starts from a real old template from git and the answers of the AWS CLI commands
the runbook asks for (describe-stacks, describe-stack-resources, describe-availability-zones,
shaped as the botocore service models give them, with made-up but well-formed ids), for the
four old regions, several zone name <-> id mappings and several zones switched on or off.
"""

import json
import shutil
from pathlib import Path

import cfnlint
import pytest

import build
from migrate import MigrationError
from migrate.stack_zones import ZONE_KINDS
from templates import preview
from templates.functions import zone_plan
from tests.fixtures.from_stack.stack_answers import (
    CASE_IDS,
    CASES,
    FIXTURE,
    OLD_REGIONS,
    moved,
    new_ids,
    old_template,
    old_zone_ids,
    physical_ids,
    product,
    product_text,
    write_fixture,
    zone_ids_of,
)
from tests.migrate_helpers import Resolved

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"


def schema(resource_type, region):
    index = json.loads((SCHEMAS / "providers" / f"{region}.json").read_text())
    return json.loads((SCHEMAS / "resources" / f"{index[resource_type]}.json").read_text())


# 1. Retain ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_step_1_adds_retain_to_the_zone_resources_that_are_on_and_nothing_else(case):
    deployed, step1 = old_template(case.region), moved(case)["step1"]
    zone_ids = zone_ids_of(case)
    assert {k: v for k, v in step1.items() if k != "Resources"} == {
        k: v for k, v in deployed.items() if k != "Resources"
    }
    assert step1["Resources"].keys() == deployed["Resources"].keys()
    for logical_id, resource in step1["Resources"].items():
        before = deployed["Resources"][logical_id]
        if logical_id in zone_ids:
            assert resource == before | {
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
            }
        else:
            assert resource == before, logical_id


# 2. Release: everything else resolves to what runs --------------------------------------------


def resolved_everywhere(template, case, ids):
    """{logical id: resolved Properties} of every existing resource but the zone ones, and
    {output: resolved Value} of every existing output."""
    deployment = Resolved(template, case.region, case.parameters(), ids)
    zone_ids = zone_ids_of(case)
    resources = {
        logical_id: deployment.resolve(resource.get("Properties", {}))
        for logical_id, resource in template["Resources"].items()
        if logical_id not in zone_ids and deployment.exists(logical_id)
    }
    outputs = {
        name: deployment.resolve(output["Value"])
        for name, output in template.get("Outputs", {}).items()
        if "Condition" not in output or deployment.condition(output["Condition"])
    }
    return resources, outputs


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_step_2_drops_the_zone_resources_and_every_other_resource_and_output_resolves_the_same(
    case,
):
    step1, step2 = moved(case)["step1"], moved(case)["step2"]
    zone_ids = zone_ids_of(case)
    assert set(step1["Resources"]) - set(step2["Resources"]) == zone_ids
    ids = {logical_id: {"Id": physical} for logical_id, physical in physical_ids(case).items()}
    before = resolved_everywhere(old_template(case.region), case, ids)
    after = resolved_everywhere(step2, case, ids)  # the stack's ids, as CloudFormation has
    assert after == before
    text = json.dumps(step2)
    for logical_id in zone_ids:  # nothing refers to a removed resource any more
        assert f'"{logical_id}"' not in text and "${" + logical_id not in text
    # only what referred to the zone resources changed, and nothing else of the template
    changed = {
        logical_id
        for logical_id, resource in step2["Resources"].items()
        if resource != step1["Resources"][logical_id]
    }
    assert changed <= {
        "ExecutionPolicy",
        "SchedulePolicy",
        "NetworkInterfaceCleanup",
        "S3GatewayEndpoint",
    }
    for key in step2:
        if key not in ("Resources", "Outputs", "Conditions"):
            assert step2[key] == step1[key], key
    # conditions: the same, but those only the removed subnets' CidrBlock used
    conditions = step1["Conditions"]
    assert step2["Conditions"] == {k: conditions[k] for k in step2["Conditions"]}
    removed_text = json.dumps([step1["Resources"][i] for i in zone_ids])
    for name in set(conditions) - set(step2["Conditions"]):
        assert f'"{name}"' in removed_text and name not in json.dumps(step2), name


def test_step_2_writes_every_form_of_reference_as_the_physical_id():
    """Ref, Fn::Sub ${X} and ${X.Id}, Sub variables and GetAtt of the id attribute; a Sub
    variable of the same name shadows the resource; another GetAtt is refused."""
    from migrate.stack_steps import literal

    physical = {"PrivateSubnetEuc1Az1": ("subnet-0abc", "AWS::EC2::Subnet")}
    value = {
        "A": {"Ref": "PrivateSubnetEuc1Az1"},
        "B": {"Fn::Sub": "x-${PrivateSubnetEuc1Az1}-${PrivateSubnetEuc1Az1.SubnetId}-${!Keep}"},
        "C": {
            "Fn::Sub": ["${Id}/${PrivateSubnetEuc1Az1}", {"Id": {"Ref": "PrivateSubnetEuc1Az1"}}]
        },
        "D": {"Fn::GetAtt": ["PrivateSubnetEuc1Az1", "SubnetId"]},
        "E": {"Fn::GetAtt": "PrivateSubnetEuc1Az1.SubnetId"},
        "F": {"Fn::Sub": ["${PrivateSubnetEuc1Az1}", {"PrivateSubnetEuc1Az1": "shadow"}]},
        "G": {"Ref": "Vpc"},
    }
    assert literal(value, physical) == {
        "A": "subnet-0abc",
        "B": {"Fn::Sub": "x-subnet-0abc-subnet-0abc-${!Keep}"},
        "C": {"Fn::Sub": ["${Id}/subnet-0abc", {"Id": "subnet-0abc"}]},
        "D": "subnet-0abc",
        "E": "subnet-0abc",
        "F": {"Fn::Sub": ["${PrivateSubnetEuc1Az1}", {"PrivateSubnetEuc1Az1": "shadow"}]},
        "G": {"Ref": "Vpc"},
    }
    with pytest.raises(MigrationError, match=r"PrivateSubnetEuc1Az1\.CidrBlock"):
        literal({"Fn::GetAtt": ["PrivateSubnetEuc1Az1", "CidrBlock"]}, physical)


# 3. Import ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_import_template_is_step_2_plus_exactly_the_imported_resources(case):
    result = moved(case)
    step2, importing = result["step2"], result["import"]
    imported = set(importing["Resources"]) - set(step2["Resources"])
    assert imported == new_ids(case)
    assert {k: v for k, v in importing.items() if k != "Resources"} == {
        k: v for k, v in step2.items() if k != "Resources"
    }
    for logical_id, resource in step2["Resources"].items():
        assert importing["Resources"][logical_id] == resource
    for logical_id in imported:
        resource = importing["Resources"][logical_id]
        assert resource["DeletionPolicy"] == "Retain", logical_id
        assert "Condition" not in resource  # the old Zone<Id> conditions do not name it
        assert resource["Type"] == product()["Resources"][logical_id]["Type"]
        # the product's property shapes: the same property names
        in_product = product()["Resources"][logical_id]
        assert set(resource["Properties"]) == set(in_product["Properties"])
        assert resource.get("DependsOn") == in_product.get("DependsOn")  # ACL entries first


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_resources_to_import_name_each_resource_by_its_schemas_primary_identifier(case):
    result = moved(case)
    ids = physical_ids(case)
    account = case.account()
    old_suffix = old_zone_ids(case.region)
    expected = set()
    for name, zone_id in account.items():
        if zone_id in case.on:
            for kind in ZONE_KINDS:
                expected.add((kind + name[-1].upper(), ids[kind + old_suffix[zone_id]]))
    found = set()
    for entry in result["resources"]:
        logical_id, identifier = entry["LogicalResourceId"], entry["ResourceIdentifier"]
        type_ = result["import"]["Resources"][logical_id]["Type"]
        assert entry["ResourceType"] == type_
        keys = [
            p.removeprefix("/properties/") for p in schema(type_, case.region)["primaryIdentifier"]
        ]
        assert list(identifier) == keys, logical_id
        found.add((logical_id, identifier[keys[0]]))
    assert found == expected
    assert len(result["resources"]) == len(expected)


@pytest.mark.parametrize("region", OLD_REGIONS)
def test_cfn_lint_passes_the_step_and_import_templates(region):
    result = moved(next(case for case in CASES if case.region == region))
    for name in ("step1-retain", "step2-release", "step3-import"):
        assert build.lint([region], result["raw"][f"{region}-{name}.json"]) == [], name


# 4. The update to the product replaces nothing ------------------------------------------------


def zone_plan_answer(case):
    """What the product's ZonePlan answers in this account: its own plan() over the zones its
    DescribeAvailabilityZones would return."""
    account = case.account()
    described = [
        {"ZoneName": name, "ZoneId": zone_id, "ZoneType": "availability-zone"}
        for name, zone_id in account.items()
        if zone_id in case.on
    ]
    return zone_plan.plan(described, case.vpc_cidr, case.region)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_zone_and_cidr_of_each_imported_subnet_resolve_as_in_the_product_and_as_running(case):
    result = moved(case)
    ids = {e["LogicalResourceId"]: e["ResourceIdentifier"] for e in result["resources"]}
    before = Resolved(result["import"], case.region, case.parameters(), ids)
    answers = {"ZonePlan": zone_plan_answer(case)}
    after = Resolved(result["product"], case.region, result["parameters"], ids, answers)
    old = preview.Side(old_template(case.region), case.parameters(), case.region)
    old_suffix = old_zone_ids(case.region)
    for name, zone_id in case.account().items():
        if zone_id not in case.on:
            continue
        new_id = "PrivateSubnet" + name[-1].upper()
        assert after.exists(new_id)
        imported = before.resolve(result["import"]["Resources"][new_id]["Properties"])
        updated = after.resolve(result["product"]["Resources"][new_id]["Properties"])
        running = old.resolve(
            old_template(case.region)["Resources"]["PrivateSubnet" + old_suffix[zone_id]][
                "Properties"
            ]
        )
        assert imported["AvailabilityZone"] == updated["AvailabilityZone"] == name
        assert imported["CidrBlock"] == updated["CidrBlock"] == running["CidrBlock"]
        assert running["AvailabilityZoneId"] == zone_id
        assert imported["Tags"] == old.resolve(
            old_template(case.region)["Resources"]["PrivateSubnet" + old_suffix[zone_id]][
                "Properties"
            ]["Tags"]
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_preview_of_the_update_replaces_nothing_but_maybe_the_subnets_on_their_cidr(case):
    """The preview cannot know the zone plan's answer offline: each imported subnet is a
    conditional replacement on CidrBlock alone (the test above shows the answer is the
    literal), its associations only through SubnetId; nothing else stateful is replaced or
    removed, nothing is replaced for certain."""
    result = moved(case)
    plan = preview.plan(
        result["import"], result["product"], case.parameters(), result["parameters"], case.region
    )
    subnets = {i for i in new_ids(case) if i.startswith("PrivateSubnet")}
    assert {c.logical_id for c in plan.destructive} == subnets
    assert not [c for c in plan.changes if c.action == "remove"]
    answers = zone_plan_answer(case)
    for change in plan.changes:
        if change.action != "replace":
            continue
        assert not change.certain, change
        [reason] = [r for r in change.reasons if r.startswith("create-only")]
        if change.logical_id in subnets:
            assert reason.startswith("create-only CidrBlock"), reason
            letter = change.logical_id[-1]
            assert (
                answers[f"Cidr{letter}"]
                == result["import"]["Resources"][change.logical_id]["Properties"]["CidrBlock"]
            )
        else:
            assert change.resource_type in (
                "AWS::EC2::SubnetRouteTableAssociation",
                "AWS::EC2::SubnetNetworkAclAssociation",
            ), change
            assert reason == "create-only SubnetId (if what it refers to is replaced)"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_product_parameters_are_the_stacks_with_the_zones_that_were_on(case):
    result = moved(case)
    declared = product()["Parameters"]
    old = case.parameters()
    expected = {k: v for k, v in old.items() if k in declared}
    names = sorted(n for n, i in case.account().items() if i in case.on)
    assert result["parameters"] == expected | {"AvailabilityZones": ",".join(names)}
    assert not [k for k in result["parameters"] if k.startswith("Zone")]
    assert set(result["parameters"]) <= set(declared)
    assert result["raw"][f"{case.region}-step4-product.json"] == product_text()


# The command, end to end, on the fixture directory ---------------------------------------------


def fixture_dir(directory):
    """The fixture (a us-east-1 stack, three of six zones on, an account without use1-az3 whose
    letters are not in zone id order) with template.json as get-template gives it."""
    shutil.copytree(FIXTURE, directory)
    (directory / "template.json").write_text(json.dumps(old_template("us-east-1"), indent=4))
    return directory


def run(argv, capsys):
    code = build.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_writes_every_step_and_the_preview_of_the_last_flags_only_the_subnets(
    tmp_path, capsys
):
    source, out = fixture_dir(tmp_path / "stack"), tmp_path / "out"
    code, printed, error = run(["migrate", "--from-stack", str(source), "--out", str(out)], capsys)
    assert (code, error) == (0, "")
    runbook = out / "us-east-1-FROM-STACK.md"
    assert printed == f"wrote 9 files to {out}: follow {runbook}\n"
    resources = json.loads((source / "resources.json").read_text())["StackResources"]
    ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    to_import = json.loads((out / "us-east-1-step3-resources-to-import.json").read_text())
    # the fixture's account: a=use1-az6, c=use1-az4, e=use1-az1
    moves = {"A": "Use1Az6", "C": "Use1Az4", "E": "Use1Az1"}
    assert {(e["LogicalResourceId"], *e["ResourceIdentifier"].values()) for e in to_import} == {
        (kind + letter, ids[kind + suffix])
        for letter, suffix in moves.items()
        for kind in ZONE_KINDS
    }
    parameters = json.loads((out / "us-east-1-step4-parameters.json").read_text())
    assert "AvailabilityZones=us-east-1a,us-east-1c,us-east-1e" in parameters
    text = runbook.read_text()
    for suffix in moves.values():  # every subnet id, and the steps' files, are in the runbook
        assert ids["PrivateSubnet" + suffix] in text
    steps = ["## 1.", "## 2.", "--change-set-type IMPORT", "wait stack-import-complete", "## 4."]
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps)
    for name in os_listing(out):
        if name != runbook.name and not name.endswith("old-parameters.json"):
            assert name in text, name
    # build.py diff from the imported stack to the product: only the subnets, maybe (exit 3)
    code, printed, _ = run(
        [
            "diff",
            str(out / "us-east-1-step3-import.json"),
            str(out / "us-east-1-step4-product.json"),
            "--region",
            "us-east-1",
            "--parameters",
            str(out / "us-east-1-old-parameters.json"),
            str(out / "us-east-1-step4-parameters.json"),
        ],
        capsys,
    )
    assert code == 3, printed
    rows = [line.split(maxsplit=3) for line in printed.splitlines() if line[:1].isalpha()]
    assert not {row[0] for row in rows} & {"remove", "remove?", "replace"}, printed
    destructive = sorted(
        row[1] for row in rows if row[3].startswith("STATEFUL") and row[0] == "replace?"
    )
    assert destructive == ["PrivateSubnetA", "PrivateSubnetC", "PrivateSubnetE"]


def test_the_static_fixture_is_what_its_generator_writes(tmp_path):
    write_fixture(tmp_path)
    assert os_listing(tmp_path) == [n for n in os_listing(FIXTURE) if n.endswith(".json")]
    for name in os_listing(tmp_path):
        assert (tmp_path / name).read_text() == (FIXTURE / name).read_text(), name


def os_listing(directory):
    return sorted(path.name for path in directory.iterdir())


# Refusals: one line, exit 2, nothing written -----------------------------------------------------


def edit(directory, name, path, value):
    """Change one value of a file of the directory (the whole document when ``path`` is
    None); ``value``: the new value, or a function of the old one."""
    file = directory / name
    document = json.loads(file.read_text())
    if path is None:
        document = value(document)
    else:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value
    file.write_text(json.dumps(document))


def refused(tmp_path, capsys, prepare):
    source, out = fixture_dir(tmp_path / "stack"), tmp_path / "out"
    prepare(source)
    code, printed, error = run(["migrate", "--from-stack", str(source), "--out", str(out)], capsys)
    assert (code, printed) == (2, "")
    assert len(error.splitlines()) == 1, error
    assert not out.exists()
    return error


@pytest.mark.parametrize(
    ("name", "command"),
    [
        (
            "template.json",
            "aws cloudformation get-template --region REGION --stack-name STACK "
            "--query TemplateBody --output json > template.json",
        ),
        ("stack.json", "aws cloudformation describe-stacks --region REGION --stack-name STACK"),
        ("resources.json", "aws cloudformation describe-stack-resources --region REGION"),
        ("zones.json", "aws ec2 describe-availability-zones --region REGION > zones.json"),
    ],
)
def test_a_missing_or_malformed_file_is_refused_with_the_command_that_writes_it(
    tmp_path, capsys, name, command
):
    error = refused(tmp_path / "missing", capsys, lambda d: (d / name).unlink())
    assert "cannot read" in error and command in error, error
    error = refused(tmp_path / "broken", capsys, lambda d: (d / name).write_text("{"))
    assert "not JSON" in error and command in error, error
    error = refused(tmp_path / "empty", capsys, lambda d: (d / name).write_text("{}"))
    assert command in error, error


OTHER_STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/other/1"
SUBNET_AZ1 = ["Resources", "PrivateSubnetUse1Az1", "Properties"]
REFUSALS = {  # label: (file, path of the value changed, new value, the error's words)
    "one template": (
        "template.json",
        None,
        lambda _: json.loads(product_text()),
        "already runs the one template: nothing to do",
    ),
    "not per-region": (
        "template.json",
        None,
        lambda _: {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}},
        "not a per-region release of this product",
    ),
    "zone id not listed": (
        "zones.json",
        ["AvailabilityZones"],
        lambda zones: zones[1:],
        "zone id use1-az6 (PrivateSubnetUse1Az6) is not in zones.json",
    ),
    "cidr not the zone plan's": (
        "template.json",
        [*SUBNET_AZ1, "CidrBlock", "Fn::Select", 0],
        7,
        "PrivateSubnetUse1Az1 is 172.31.112.0/20 (slice 7), the zone plan gives use1-az1 "
        "172.31.0.0/20",
    ),
    "letter past f": (
        "zones.json",
        ["AvailabilityZones", 4, "ZoneName"],
        "us-east-1g",
        "us-east-1g: the template has subnets for zones a to f only",
    ),
    "local zone": (
        "zones.json",
        ["AvailabilityZones", 4, "ZoneType"],
        "local-zone",
        "us-east-1e is a local-zone",
    ),
    "zones of another region": (
        "zones.json",
        ["AvailabilityZones"],
        lambda zones: [zone | {"RegionName": "eu-west-1"} for zone in zones],
        "zones.json describes eu-west-1, the stack is in us-east-1",
    ),
    "stack busy": (
        "stack.json",
        ["Stacks", 0, "StackStatus"],
        "UPDATE_IN_PROGRESS",
        "stack gc-components is UPDATE_IN_PROGRESS",
    ),
    "resources of another stack": (
        "resources.json",
        ["StackResources", 0, "StackId"],
        OTHER_STACK,
        f"resources.json is of stack {OTHER_STACK}",
    ),
    "zone resource not in the stack": (
        "resources.json",
        ["StackResources"],
        lambda rs: [r for r in rs if r["LogicalResourceId"] != "PrivateRouteTableUse1Az4"],
        "PrivateRouteTableUse1Az4 is not in resources.json though ZoneUse1Az4 is true",
    ),
    "no zone on": (
        "stack.json",
        ["Stacks", 0, "Parameters"],
        lambda ps: [
            p | {"ParameterValue": "false"} if "Zone" in p["ParameterKey"] else p for p in ps
        ],
        "no zone is on",
    ),
    "parameter the product refuses": (
        "stack.json",
        ["Stacks", 0, "Parameters"],
        lambda ps: [
            p | {"ParameterValue": "2"} if p["ParameterKey"] == "LogRetentionDays" else p
            for p in ps
        ],
        "the stack's LogRetentionDays '2' is not valid in the product: '2' is not one of",
    ),
    "attribute without a literal": (
        "template.json",
        ["Outputs", "Zone"],
        {"Value": {"Fn::GetAtt": ["PrivateSubnetUse1Az1", "AvailabilityZone"]}},
        "the template reads PrivateSubnetUse1Az1.AvailabilityZone",
    ),
}


@pytest.mark.parametrize("label", REFUSALS)
def test_what_cannot_move_unchanged_is_refused_in_one_line(tmp_path, capsys, label):
    name, path, value, message = REFUSALS[label]
    assert message in refused(tmp_path, capsys, lambda d: edit(d, name, path, value))


def test_migrate_needs_exactly_one_source(capsys):
    with pytest.raises(SystemExit) as exit_:
        build.main(["migrate", "--tfstate", "a.json", "--from-stack", "b"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
