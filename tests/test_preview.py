"""The upgrade preview (templates/preview.py, `build.py diff`) on pairs of templates this
project renders: parameter changes, git revisions, hand-made edits, and create-only values
known only at deploy time (conditional replacements)."""

import copy
import json

import pytest

import build
from build import PRODUCT_FILE
from templates.preview import (
    Side,
    create_only_paths,
    parameter_effects,
    parse_parameters,
    plan,
    replacements,
    report_lines,
)
from templates.preview_values import MISSING, differs
from tests.helpers import rendered

REGION = "eu-central-1"
ZONES = "eu-central-1a,eu-central-1b,eu-central-1c"
BEFORE = {"NamePrefix": "gc", "LogRetentionDays": "30", "AvailabilityZones": ZONES}
FIRST_PRODUCT_REVISION = "b8fd601"  # the first commit with dist/components-runtime.json
CONDITIONAL_CIDR = (
    "create-only CidrBlock: replaced if ZonePlan.CidrA (known only at deploy time) is not "
    "172.31.0.0/20"
)


def template():
    return copy.deepcopy(rendered())


def by_id(result):
    return {change.logical_id: change for change in result.changes}


def run(capsys, *argv):
    code = build.main(["diff", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def write(path, value):
    path.write_text(json.dumps(value))
    return path


# Decisions over parameters ------------------------------------------------------------------


def test_a_new_name_prefix_replaces_every_named_resource_and_flags_the_stateful_ones():
    result = plan(template(), template(), BEFORE, BEFORE | {"NamePrefix": "gc2"}, REGION)
    changes = by_id(result)
    for logical_id in ("InputsBucket", "OutputsBucket", "Repository1", "StoppedJobsLogGroup"):
        assert changes[logical_id].action == "replace" and changes[logical_id].certain
        assert changes[logical_id].destructive
    assert "create-only BucketName" in changes["InputsBucket"].reasons
    assert "create-only RepositoryName" in changes["Repository1"].reasons
    # the emptier's handler answers a new id for a new bucket name: the old bucket gets emptied
    assert changes["EmptyInputsBucket"].action == "replace"
    assert "EMPTIES the old bucket" in changes["EmptyInputsBucket"].stateful
    # referenced from outside: the execution role ARN is pasted into Grand Challenge
    assert changes["ExecutionRole"].destructive
    # the Custodian's own role is not handed out: replaced or not, nothing outside breaks
    assert "CustodianRole" not in changes
    assert changes["Vpc"].action == "modify"  # only its Name tag carries the prefix


def test_a_retention_change_is_in_place():
    result = plan(template(), template(), BEFORE, BEFORE | {"LogRetentionDays": "90"}, REGION)
    assert {c.logical_id: c.action for c in result.changes} == {
        "StoppedJobsLogGroup": "modify",
        "TrainingJobsLogGroup": "modify",
    }
    assert result.destructive == []
    assert by_id(result)["StoppedJobsLogGroup"].reasons == ("in place: RetentionInDays",)


def test_dropping_a_zone_removes_its_slot_and_flags_the_subnet():
    fewer = BEFORE | {"AvailabilityZones": "eu-central-1a,eu-central-1b"}
    result = plan(template(), template(), BEFORE, fewer, REGION)
    changes = by_id(result)
    assert changes["PrivateSubnetC"].action == "remove"
    assert changes["PrivateSubnetC"].certain and changes["PrivateSubnetC"].destructive
    assert "its condition UseZoneC is now false" in changes["PrivateSubnetC"].reasons
    for logical_id in (
        "PrivateRouteTableC",
        "PrivateRouteTableAssociationC",
        "PrivateNetworkAclAssociationC",
    ):
        assert changes[logical_id].action == "remove", logical_id
    assert [c.logical_id for c in result.destructive] == ["PrivateSubnetC"]
    assert changes["NetworkInterfaceCleanup"].action == "modify"  # SubnetIds: in place
    # the zone plan is told in place; the other zones keep their answers, hence their subnets
    assert changes["ZonePlan"].reasons == ("in place: Zones",)
    assert not {"PrivateSubnetA", "PrivateSubnetB"} & set(changes)
    # and back: added, nothing lost
    back = plan(template(), template(), fewer, BEFORE, REGION)
    assert by_id(back)["PrivateSubnetC"].action == "add"
    assert back.destructive == []


def test_a_new_vpc_cidr_replaces_the_vpc_and_everything_built_on_its_id():
    result = plan(template(), template(), BEFORE, BEFORE | {"VpcCidr": "10.0.0.0/16"}, REGION)
    changes = by_id(result)
    assert changes["Vpc"].reasons == ("create-only CidrBlock",)
    # replaced because the VPC is: its id changes, and VpcId is create-only
    assert "create-only VpcId" in changes["ExecutionSecurityGroup"].reasons
    assert "create-only VpcId" in changes["PrivateSubnetA"].reasons
    # the zone plan answers new slices for a new VpcCidr: the subnet's CIDR moves too
    assert changes["ZonePlan"].reasons == ("in place: VpcCidr",)
    assert "create-only CidrBlock" in changes["PrivateSubnetA"].reasons
    assert "create-only NetworkAclId" in changes["S3NetworkAclEntries"].reasons


def test_the_same_values_change_nothing_and_unknown_parameters_count_as_unchanged():
    assert plan(template(), template(), BEFORE, BEFORE, REGION).changes == []
    assert plan(template(), template(), region=REGION).changes == []  # NamePrefix unknown


def test_parameter_effects_say_what_changing_a_parameter_would_cost():
    effects = parameter_effects(template(), REGION)
    assert {"InputsBucket", "Repository1", "ExecutionRole"} <= set(effects["NamePrefix"])
    assert effects["AvailabilityZones"] == [f"PrivateSubnet{letter}" for letter in "ABCDEF"]
    assert {f"PrivateSubnet{letter}" for letter in "ABCDEF"} <= set(effects["VpcCidr"])
    assert "LogRetentionDays" not in effects
    assert "MaximumRuntimeSeconds" not in effects


def test_the_publisher_entry_point_keeps_the_stacks_parameters():
    old = template()
    new = template()
    new["Resources"]["InputsBucket"]["Properties"]["BucketName"] = {"Fn::Sub": "${NamePrefix}-in"}
    result = replacements(old, new, {"NamePrefix": "gc"}, REGION)
    assert [c.logical_id for c in result.destructive] == ["EmptyInputsBucket", "InputsBucket"]
    assert replacements(old, old, {"NamePrefix": "gc"}, REGION).destructive == []


# Decisions over template edits --------------------------------------------------------------


def test_a_type_change_is_a_replacement():
    new = template()
    new["Resources"]["StoppedJobsLogGroup"]["Type"] = "Custom::TrainingJobsLogGroup"
    change = by_id(plan(template(), new, BEFORE, BEFORE, REGION))["StoppedJobsLogGroup"]
    assert (change.action, change.certain) == ("replace", True)
    assert change.reasons == ("type AWS::Logs::LogGroup -> Custom::TrainingJobsLogGroup",)
    assert change.destructive


def test_a_renamed_logical_id_says_the_old_resource_is_deleted():
    new = template()
    new["Resources"]["JobInputsBucket"] = new["Resources"].pop("InputsBucket")
    changes = by_id(plan(template(), new, BEFORE, BEFORE, REGION))
    assert changes["InputsBucket"].action == "remove" and changes["InputsBucket"].destructive
    assert changes["InputsBucket"].reasons[0] == (
        "logical id changed to JobInputsBucket: the old resource is DELETED"
    )
    assert changes["JobInputsBucket"].action == "add"


def test_policy_changes_are_listed_and_retain_is_said_on_removal():
    old = template()
    old["Resources"]["OutputsBucket"]["DeletionPolicy"] = "Retain"
    new = copy.deepcopy(old)
    new["Resources"]["OutputsBucket"]["DeletionPolicy"] = "Delete"
    change = by_id(plan(old, new, BEFORE, BEFORE, REGION))["OutputsBucket"]
    assert change.action == "modify"
    assert change.reasons == ("DeletionPolicy Retain -> Delete",)
    new["Resources"]["OutputsBucket"]["UpdateReplacePolicy"] = "Delete"  # the default, spelt out
    assert by_id(plan(old, new, BEFORE, BEFORE, REGION))["OutputsBucket"].reasons == (
        "DeletionPolicy Retain -> Delete",
    )
    del new["Resources"]["OutputsBucket"]
    removed = by_id(plan(old, new, BEFORE, BEFORE, REGION))["OutputsBucket"]
    assert "DeletionPolicy Retain: kept out of the stack, not deleted" in removed.reasons


def test_a_nested_create_only_property_replaces_and_a_sibling_does_not():
    assert ("EncryptionConfiguration", "KmsKey") in create_only_paths(
        "AWS::ECR::Repository", REGION
    )
    assert ("DnsOptions", "PrivateDnsPreference") in create_only_paths(
        "AWS::EC2::VPCEndpoint", REGION
    )
    old = template()
    new = template()
    new["Resources"]["S3GatewayEndpoint"]["Properties"]["DnsOptions"] = {
        "PrivateDnsPreference": "ALL_DOMAINS"
    }
    change = by_id(plan(old, new, BEFORE, BEFORE, REGION))["S3GatewayEndpoint"]
    assert change.reasons == ("create-only DnsOptions/PrivateDnsPreference",)
    new = template()
    new["Resources"]["Repository1"]["Properties"]["ImageScanningConfiguration"] = {}
    assert by_id(plan(old, new, BEFORE, BEFORE, REGION))["Repository1"].action == "modify"


def test_an_unresolved_condition_that_changes_may_switch_a_resource_off():
    new = template()
    new["Conditions"]["UseZoneC"] = {"Fn::Equals": [{"Ref": "NamePrefix"}, "gc"]}
    change = by_id(plan(template(), new, region=REGION))["PrivateSubnetC"]
    assert (change.action, change.certain) == ("remove", False)
    assert change.destructive


def test_sub_and_if_resolve_over_parameters_and_pseudo_parameters():
    side = Side(template(), {"NamePrefix": "gc", "AvailabilityZones": "eu-central-1a"}, REGION)
    assert side.resolve({"Fn::Sub": "${NamePrefix}-${AWS::Region}"}) == "gc-eu-central-1"
    assert side.resolve({"Fn::Sub": "arn:${AWS::Partition}:x"}) == "arn:aws:x"
    assert side.resolve({"Fn::If": ["UseZoneA", "on", {"Ref": "AWS::NoValue"}]}) == "on"
    assert side.resolve({"Fn::If": ["UseZoneB", "on", {"Ref": "AWS::NoValue"}]}) == ("\0NoValue")
    assert side.resolve([{"Fn::If": ["UseZoneB", "on", {"Ref": "AWS::NoValue"}]}]) == []
    unknown = Side(template(), None, REGION).resolve({"Fn::Sub": "${NamePrefix}-x"})
    assert isinstance(unknown, dict)  # kept symbolic: the same on both sides of the update


# Values known only at deploy time -----------------------------------------------------------


def with_literal_cidr():
    """The product with subnet A's CidrBlock written out, as an import template has it."""
    old = template()
    old["Resources"]["PrivateSubnetA"]["Properties"]["CidrBlock"] = "172.31.0.0/20"
    return old


def test_a_literal_cidr_against_the_zone_plans_answer_is_a_conditional_replacement():
    """CloudFormation decides it at execution ("Replacement: Conditional"): never "in place"."""
    result = plan(with_literal_cidr(), template(), BEFORE, BEFORE, REGION)
    change = by_id(result)["PrivateSubnetA"]
    assert (change.action, change.certain) == ("replace", False)
    assert change.reasons == (CONDITIONAL_CIDR,)
    assert change.destructive  # a stateful maybe: the operator's data until checked
    # what takes the subnet's id in a create-only property may be replaced with it
    association = by_id(result)["PrivateRouteTableAssociationA"]
    assert (association.action, association.certain) == ("replace", False)
    assert association.reasons == ("create-only SubnetId (if what it refers to is replaced)",)
    lines = report_lines(result)
    [row] = [line for line in lines if line.split()[1] == "PrivateSubnetA"]
    assert row.split()[:4] == ["replace?", "PrivateSubnetA", "AWS::EC2::Subnet", "STATEFUL"]
    assert row.endswith(f"{CONDITIONAL_CIDR}; subnet: its id is in Grand Challenge's settings")
    assert lines[-1] == (
        "1 of them only maybe (replace?, remove?): the preview cannot rule it out offline, so "
        "it is the operator's data at risk until the reason on its line is checked"
    )


def test_a_conditional_replacement_of_a_stateful_resource_exits_3(tmp_path, capsys):
    old = write(tmp_path / "import.json", with_literal_cidr())
    new = write(tmp_path / PRODUCT_FILE, template())
    code, out, _ = run(capsys, old, new, "--region", REGION)
    assert code == 3
    assert CONDITIONAL_CIDR in out and "the operator's data at risk" in out


def test_the_region_unknown_is_the_same_on_both_sides_and_decides_nothing_else():
    old = template()
    assert plan(old, template(), BEFORE, BEFORE, None).changes == []
    # a literal zone name against ${AWS::Region}a: only the region could tell
    old["Resources"]["PrivateSubnetA"]["Properties"]["AvailabilityZone"] = "eu-central-1a"
    change = by_id(plan(old, template(), BEFORE, BEFORE, None))["PrivateSubnetA"]
    assert (change.action, change.certain) == ("replace", False)
    assert change.reasons == (
        "create-only AvailabilityZone: replaced if ${AWS::Region}a (unknown here: give "
        "--region) is not eu-central-1a",
    )
    assert "PrivateSubnetA" not in by_id(plan(old, template(), BEFORE, BEFORE, REGION))
    moved = by_id(plan(old, template(), BEFORE, BEFORE, "eu-west-1"))["PrivateSubnetA"]
    assert (moved.action, moved.certain) == ("replace", True)


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        ("10.0.0.0/20", "10.0.0.0/20", False),
        ("10.0.0.0/20", "10.0.16.0/20", True),
        (MISSING, "10.0.0.0/20", True),
        ("10.0.0.0/20", {"Fn::GetAtt": ["ZonePlan", "CidrA"]}, None),
        ({"Ref": "Vpc"}, {"Ref": "Vpc", "Replaced": "certain"}, True),
        (
            {"Fn::Sub": "a-\0{'Ref': 'Vpc'}\0"},
            {"Fn::Sub": "a-\0{'Ref': 'Vpc', 'Replaced': 'certain'}\0"},
            True,
        ),
        (["x", "y"], ["x", {"Ref": "Other"}], None),
        # strings with symbols: their literal parts decide when they can
        ({"Fn::Sub": "\0{'Ref': 'AWS::Region'}\0a"}, "eu-central-1a", None),
        ({"Fn::Sub": "\0{'Ref': 'NamePrefix'}\0-outputs"}, "fixed-outputs-2", True),
        (
            {"Fn::Sub": "gc-\0{'Ref': 'AWS::AccountId'}\0"},
            {"Fn::Sub": "gc2-\0{'Ref': 'AWS::AccountId'}\0"},
            True,
        ),
        ({"Fn::Sub": "gc-\0{'Ref': 'A'}\0"}, {"Fn::Sub": "gc-x-\0{'Ref': 'B'}\0"}, None),
        ({"Fn::Sub": "gc-\0{'Ref': 'A'}\0"}, {"Fn::Sub": "ab-\0{'Ref': 'B'}\0"}, True),
        (["x", "y"], ["z", {"Ref": "Other"}], True),
        ({"A": "x", "B": {"Ref": "R"}}, {"A": "x", "B": {"Ref": "R"}}, False),
    ],
)
def test_differs_says_unknown_only_where_a_symbol_could_still_match(before, after, verdict):
    assert differs(before, after) is verdict


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["NamePrefix=gc", "X=a=b"], {"NamePrefix": "gc", "X": "a=b"}),
        ([{"ParameterKey": "NamePrefix", "ParameterValue": "gc"}], {"NamePrefix": "gc"}),
    ],
)
def test_parameter_files_in_both_shapes(entries, expected):
    assert parse_parameters(entries) == expected


# The command ---------------------------------------------------------------------------------


def test_diff_with_parameter_files_lists_replacements_and_exits_3(tmp_path, capsys):
    path = write(tmp_path / PRODUCT_FILE, template())
    old = write(tmp_path / "old.json", ["NamePrefix=gc", "LogRetentionDays=30"])
    new = write(tmp_path / "new.json", ["NamePrefix=gc-new", "LogRetentionDays=30"])
    code, out, err = run(capsys, path, path, "--parameters", old, new, "--region", REGION)
    assert (code, err) == (3, "")
    line = next(line for line in out.splitlines() if line.split()[1] == "InputsBucket")
    assert line.split()[:4] == ["replace", "InputsBucket", "AWS::S3::Bucket", "STATEFUL"]
    assert "create-only BucketName" in line
    assert out.splitlines()[-1].endswith("stateful replaced or removed")


def test_diff_in_place_exits_0_and_json_says_the_same(tmp_path, capsys):
    path = write(tmp_path / PRODUCT_FILE, template())
    old = write(tmp_path / "old.json", ["NamePrefix=gc", "LogRetentionDays=30"])
    new = write(tmp_path / "new.json", ["NamePrefix=gc", "LogRetentionDays=90"])
    code, out, _ = run(capsys, path, path, "--parameters", old, new)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[:-1]] == ["modify", "modify"]
    code, out, _ = run(capsys, path, path, "--parameters", old, new, "--json")
    document = json.loads(out)
    assert code == 0 and document["destructive"] == []
    assert {c["logical_id"] for c in document["changes"]} == {
        "StoppedJobsLogGroup",
        "TrainingJobsLogGroup",
    }


def test_diff_without_parameters_lists_what_a_parameter_change_would_replace(tmp_path, capsys):
    path = write(tmp_path / PRODUCT_FILE, template())
    code, out, _ = run(capsys, path, path)
    assert code == 0
    assert out.splitlines()[0] == "no changes"
    assert (
        "changing parameter AvailabilityZones would replace or remove: PrivateSubnetA, "
        "PrivateSubnetB, PrivateSubnetC, PrivateSubnetD, PrivateSubnetE, PrivateSubnetF"
    ) in out


def test_diff_of_a_git_revision_against_the_working_tree(tmp_path, capsys):
    """A revision's dist/components-runtime.json against a file: an edit to it shows."""
    committed = json.loads(build._git("show", f"{FIRST_PRODUCT_REVISION}:dist/{PRODUCT_FILE}"))
    working = write(tmp_path / PRODUCT_FILE, committed)
    code, out, _ = run(capsys, FIRST_PRODUCT_REVISION, working)
    assert code == 0 and out.splitlines()[0] == "no changes"
    committed["Resources"]["OutputsBucket"]["Properties"]["BucketName"] = "fixed-outputs"
    write(working, committed)
    code, out, _ = run(capsys, FIRST_PRODUCT_REVISION, working)
    assert code == 3
    assert [line.split()[:2] for line in out.splitlines()[:2]] == [
        ["replace", "EmptyOutputsBucket"],
        ["replace", "OutputsBucket"],
    ]


def test_diff_of_two_revisions_of_the_product_template_needs_no_name(capsys):
    """Revisions alone stand for dist/components-runtime.json; its region stays unknown and
    ${AWS::Region} is the same symbol on both sides, so an unchanged template is unchanged."""
    code, out, err = run(capsys, FIRST_PRODUCT_REVISION, FIRST_PRODUCT_REVISION)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "no changes"
    assert "changing parameter NamePrefix would replace or remove: " in out


def test_diff_of_git_revisions_shows_the_committed_change(capsys):
    # 3f0b73e changed only the Custodian's description in every region's template
    code, out, _ = run(capsys, "2a3b505", "3f0b73e", "--template", f"{REGION}.json")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "modify",
        "Custodian",
        "AWS::Lambda::Function",
        "-",
        "in",
        "place:",
        "Description",
    ]


@pytest.mark.parametrize(
    ("old_text", "message"),
    [
        ('{"Resources": ', "Expecting value"),
        ("[1, 2]", "not a CloudFormation template: no Resources object"),
        ('{"Resources": {"A": {"Properties": {}}}}', "resource A has no Type"),
        (b"{\x80}", "codec can't decode"),
    ],
)
def test_a_malformed_template_exits_2_with_one_line(tmp_path, capsys, old_text, message):
    old = tmp_path / "old.json"
    old.write_bytes(old_text if isinstance(old_text, bytes) else old_text.encode())
    new = write(tmp_path / PRODUCT_FILE, template())
    code, out, err = run(capsys, old, new)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {old}: ") and message in err and err.count("\n") == 1


def test_bad_revisions_parameters_and_names_exit_2(tmp_path, capsys):
    new = write(tmp_path / PRODUCT_FILE, template())
    code, _, err = run(capsys, "no-such-revision", new)
    assert code == 2
    assert err.startswith("error: no-such-revision: ") and err.count("\n") == 1
    bad = write(tmp_path / "params.json", {"NamePrefix": "gc"})
    code, _, err = run(capsys, new, new, "--parameters", bad, bad)
    assert code == 2 and err.startswith(f"error: {bad}: parameters must be a JSON list")
    code, _, err = run(capsys, new, new, "--parameters", tmp_path / "none.json", bad)
    assert code == 2 and "cannot read" in err


def test_diff_help_documents_its_options():
    help_text = build.parser()._subparsers._group_actions[0].choices["diff"].format_help()
    for option in ("OLD", "NEW", "--template", "--region", "--parameters", "--json", "exit 3"):
        assert option in help_text, option
