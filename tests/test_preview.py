"""The upgrade preview (templates/preview.py, `build.py diff`) on pairs of templates this
project renders: parameter changes, build-time variants, git revisions, hand-made edits."""

import copy
import json

import pytest

import build
from templates.preview import (
    Side,
    create_only_paths,
    parameter_effects,
    parse_parameters,
    plan,
    replacements,
)
from tests.helpers import SETTINGS, rendered

REGION = "eu-central-1"
ZONES = SETTINGS["regions"][REGION]
BEFORE = {"NamePrefix": "gc", "LogRetentionDays": "30"}


def template():
    return copy.deepcopy(rendered(REGION))


def variant(zone_ids):
    return json.loads(build.render(REGION, zone_ids))


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


def test_switching_a_zone_off_removes_its_subnet_and_flags_it():
    result = plan(template(), template(), BEFORE, BEFORE | {"ZoneEuc1Az3": "false"}, REGION)
    changes = by_id(result)
    assert changes["PrivateSubnetEuc1Az3"].action == "remove"
    assert changes["PrivateSubnetEuc1Az3"].destructive
    assert "its condition UseZoneEuc1Az3 is now false" in changes["PrivateSubnetEuc1Az3"].reasons
    assert changes["PrivateRouteTableEuc1Az3"].action == "remove"
    assert changes["NetworkInterfaceCleanup"].action == "modify"  # SubnetIds: in place
    assert "PrivateSubnetEuc1Az1" not in changes
    # and back on: added, nothing lost
    back = plan(template(), template(), BEFORE | {"ZoneEuc1Az3": "false"}, BEFORE, REGION)
    assert by_id(back)["PrivateSubnetEuc1Az3"].action == "add"
    assert back.destructive == []


def test_a_new_vpc_cidr_replaces_the_vpc_and_everything_built_on_its_id():
    result = plan(template(), template(), BEFORE, BEFORE | {"VpcCidr": "10.0.0.0/16"}, REGION)
    changes = by_id(result)
    assert changes["Vpc"].reasons == ("create-only CidrBlock",)
    # replaced because the VPC is: its id changes, and VpcId is create-only
    assert "create-only VpcId" in changes["ExecutionSecurityGroup"].reasons
    assert "create-only VpcId" in changes["PrivateSubnetEuc1Az1"].reasons
    # Fn::Cidr evaluated: the slice itself moves too
    assert "create-only CidrBlock" in changes["PrivateSubnetEuc1Az1"].reasons
    assert "create-only NetworkAclId" in changes["S3NetworkAclEntries"].reasons


def test_the_same_values_change_nothing_and_unknown_parameters_count_as_unchanged():
    assert plan(template(), template(), BEFORE, BEFORE, REGION).changes == []
    assert plan(template(), template(), region=REGION).changes == []  # NamePrefix unknown


def test_parameter_effects_say_what_changing_a_parameter_would_cost():
    effects = parameter_effects(template(), REGION)
    assert {"InputsBucket", "Repository1", "ExecutionRole"} <= set(effects["NamePrefix"])
    assert effects["ZoneEuc1Az3"] == ["PrivateSubnetEuc1Az3"]
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


def test_a_zone_dropped_at_build_time_removes_its_subnet():
    result = plan(variant(ZONES), variant(ZONES[:2]), BEFORE, BEFORE, REGION)
    changes = by_id(result)
    assert changes["PrivateSubnetEuc1Az3"].action == "remove"
    assert changes["PrivateSubnetEuc1Az3"].destructive
    assert changes["PrivateSubnetEuc1Az3"].reasons == ()  # gone from the template itself


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
    new["Conditions"]["UseZoneEuc1Az3"] = {"Fn::Equals": [{"Ref": "NamePrefix"}, "gc"]}
    change = by_id(plan(template(), new, region=REGION))["PrivateSubnetEuc1Az3"]
    assert (change.action, change.certain) == ("remove", False)
    assert change.destructive


def test_sub_and_if_resolve_over_parameters_and_pseudo_parameters():
    side = Side(template(), {"NamePrefix": "gc", "ZoneEuc1Az2": "false"}, REGION)
    assert side.resolve({"Fn::Sub": "${NamePrefix}-${AWS::Region}"}) == "gc-eu-central-1"
    assert side.resolve({"Fn::Sub": "arn:${AWS::Partition}:x"}) == "arn:aws:x"
    assert side.resolve({"Fn::If": ["UseZoneEuc1Az2", "on", {"Ref": "AWS::NoValue"}]}) == (
        "\0NoValue"
    )
    assert side.resolve([{"Fn::If": ["UseZoneEuc1Az2", "on", {"Ref": "AWS::NoValue"}]}]) == []
    unknown = Side(template(), None, REGION).resolve({"Fn::Sub": "${NamePrefix}-x"})
    assert isinstance(unknown, dict)  # kept symbolic: the same on both sides of the update


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
    path = write(tmp_path / f"{REGION}.json", template())
    old = write(tmp_path / "old.json", ["NamePrefix=gc", "LogRetentionDays=30"])
    new = write(tmp_path / "new.json", ["NamePrefix=gc-new", "LogRetentionDays=30"])
    code, out, err = run(capsys, path, path, "--parameters", old, new)
    assert (code, err) == (3, "")
    line = next(line for line in out.splitlines() if line.split()[1] == "InputsBucket")
    assert line.split()[:4] == ["replace", "InputsBucket", "AWS::S3::Bucket", "STATEFUL"]
    assert "create-only BucketName" in line
    assert out.splitlines()[-1].endswith("stateful replaced or removed")


def test_diff_in_place_exits_0_and_json_says_the_same(tmp_path, capsys):
    path = write(tmp_path / f"{REGION}.json", template())
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
    path = write(tmp_path / f"{REGION}.json", template())
    code, out, _ = run(capsys, path, path)
    assert code == 0
    assert out.splitlines()[0] == "no changes"
    assert "changing parameter ZoneEuc1Az3 would replace or remove: PrivateSubnetEuc1Az3" in out


def test_diff_of_a_git_revision_against_the_working_tree(tmp_path, capsys):
    """HEAD's dist/ against a file: named like the file; an edit to it shows."""
    committed = json.loads(build._git("show", f"HEAD:dist/{REGION}.json"))
    working = write(tmp_path / f"{REGION}.json", committed)
    code, out, _ = run(capsys, "HEAD", working)
    assert code == 0 and out.splitlines()[0] == "no changes"
    committed["Resources"]["OutputsBucket"]["Properties"]["BucketName"] = "fixed-outputs"
    write(working, committed)
    code, out, _ = run(capsys, "HEAD", working)
    assert code == 3
    assert [line.split()[:2] for line in out.splitlines()[:2]] == [
        ["replace", "EmptyOutputsBucket"],
        ["replace", "OutputsBucket"],
    ]


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
    new = write(tmp_path / f"{REGION}.json", template())
    code, out, err = run(capsys, old, new)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {old}: ") and message in err and err.count("\n") == 1


def test_bad_revisions_parameters_and_names_exit_2(tmp_path, capsys):
    new = write(tmp_path / f"{REGION}.json", template())
    code, _, err = run(capsys, "no-such-revision", new)
    assert code == 2
    assert (
        err
        == f"error: no-such-revision: no such file, nor a git revision with dist/{REGION}.json\n"
    )
    bad = write(tmp_path / "params.json", {"NamePrefix": "gc"})
    code, _, err = run(capsys, new, new, "--parameters", bad, bad)
    assert code == 2 and err.startswith(f"error: {bad}: parameters must be a JSON list")
    code, _, err = run(capsys, new, new, "--parameters", tmp_path / "none.json", bad)
    assert code == 2 and "cannot read" in err
    code, _, err = run(capsys, "HEAD", "HEAD")
    assert code == 2 and "--template" in err


def test_diff_help_documents_its_options():
    help_text = build.parser()._subparsers._group_actions[0].choices["diff"].format_help()
    for option in ("OLD", "NEW", "--template", "--region", "--parameters", "--json", "exit 3"):
        assert option in help_text, option
