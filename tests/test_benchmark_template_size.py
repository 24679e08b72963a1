"""The size benchmarks measure what they say: byte accounting adds up, the short-id rewrite
keeps every reference pointing at its target, the compressed bootstrap runs the same code,
and every resource of the real template is attributed to the concern that added it."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import build_vs_cfn_lint
import template_size

import build

SMALL = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"NamePrefix": {"Type": "String"}},
    "Conditions": {"UseZoneA": {"Fn::Equals": ["a", "a"]}},
    "Resources": {
        "PrivateSubnetA": {"Type": "AWS::EC2::Subnet", "Condition": "UseZoneA"},
        "LogsBucket": {"Type": "AWS::S3::Bucket", "Metadata": {"checkov": {}}},
        "LogsBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "DependsOn": ["LogsBucket"],
            "Properties": {
                "Bucket": {"Ref": "LogsBucket"},
                "Arn": {"Fn::GetAtt": ["LogsBucket", "Arn"]},
                "Name": {"Fn::Sub": "${NamePrefix}-${LogsBucket}-${LogsBucket.Arn}"},
                "Shadowed": {"Fn::Sub": ["${LogsBucket}", {"LogsBucket": {"Ref": "LogsBucket"}}]},
                "Subnet": {"Fn::If": ["UseZoneA", {"Ref": "PrivateSubnetA"}, "none"]},
            },
        },
    },
    "Outputs": {"LogsBucket": {"Value": {"Ref": "LogsBucket"}}},
}


def test_section_sizes_add_up_to_the_minified_template():
    sizes = template_size.section_sizes(SMALL)
    assert sum(sizes.values()) == len(template_size.minified(SMALL))
    assert sizes["Parameters"] == len('"Parameters":{"NamePrefix":{"Type":"String"}},')


def test_short_ids_rename_definitions_and_every_kind_of_reference():
    ids = template_size.short_ids(SMALL)
    short = template_size.with_short_ids(SMALL)
    bucket, subnet, zone = ids["LogsBucket"], ids["PrivateSubnetA"], ids["UseZoneA"]
    # Parameters and outputs keep their names; "LogsBucket" is an output, so never reused
    assert set(short["Parameters"]) == {"NamePrefix"} and set(short["Outputs"]) == {"LogsBucket"}
    assert "LogsBucket" not in ids.values() and len({*ids.values()}) == len(ids)
    assert set(short["Conditions"]) == {zone}
    assert short["Resources"][subnet]["Condition"] == zone
    policy = short["Resources"][ids["LogsBucketPolicy"]]
    assert policy["DependsOn"] == [bucket]
    assert policy["Properties"]["Bucket"] == {"Ref": bucket}
    assert policy["Properties"]["Arn"] == {"Fn::GetAtt": [bucket, "Arn"]}
    assert policy["Properties"]["Name"] == {
        "Fn::Sub": f"${{NamePrefix}}-${{{bucket}}}-${{{bucket}.Arn}}"
    }
    # a Sub variable of the same name is the variable, not the resource
    assert policy["Properties"]["Shadowed"] == {
        "Fn::Sub": ["${LogsBucket}", {"LogsBucket": {"Ref": bucket}}]
    }
    assert policy["Properties"]["Subnet"] == {"Fn::If": [zone, {"Ref": subnet}, "none"]}
    assert short["Outputs"]["LogsBucket"]["Value"] == {"Ref": bucket}


def test_the_compressed_bootstrap_defines_the_same_handler():
    code = "def handler(event, context):\n    return {'answer': event * 2}\n" * 20
    for what, shrink in template_size.COMPRESSIONS.items():
        if what.startswith("custodian code"):
            template = {"Resources": {"Custodian": {"Properties": {"Code": {"ZipFile": code}}}}}
            namespace = {}
            exec(template_size.code_of(shrink(template)), namespace)
            assert namespace["handler"](21, None) == {"answer": 42}, what


def test_dropping_resource_metadata_keeps_metadata_elsewhere():
    shrink = template_size.COMPRESSIONS["no resource Metadata (checkov skips)"]
    nested = {**SMALL, "Metadata": {"AWS::CloudFormation::Interface": {}}}
    smaller = shrink(nested)
    assert "Metadata" not in smaller["Resources"]["LogsBucket"]
    assert smaller["Metadata"] == nested["Metadata"]


def test_zone_slot_entries_are_one_letters_entries_of_the_real_template():
    template, _ = template_size.render_with_origins()
    assert sorted(template_size.zone_slot_entries(template)) == [
        "Conditions/UseZoneA",
        "Resources/PrivateNetworkAclAssociationA",
        "Resources/PrivateRouteTableA",
        "Resources/PrivateRouteTableAssociationA",
        "Resources/PrivateSubnetA",
    ]


def test_every_resource_is_attributed_to_the_concern_that_added_it():
    template, origins = template_size.render_with_origins()
    assert template_size.minified(template) == build.render()
    assert set(origins) == set(template["Resources"])
    assert origins["PrivateSubnetA"] == "network.add_network"
    assert origins["ZonePlan"] == "network.add_network"  # via add_custom_resource
    assert origins["Custodian"] == "custom_resources.add_custodian"
    fewer, _ = template_size.render_with_origins(zone_letters="abcde")
    assert "PrivateSubnetF" not in fewer["Resources"] and "PrivateSubnetE" in fewer["Resources"]
    assert json.loads(build.render()) == template  # the override does not leak


def test_build_benchmark_ratios_compare_best_with_best_and_each_round_with_itself():
    build_runs = [(3.0, 3.2), (2.0, 3.1), (4.0, 3.3)]
    baseline_runs = [(2.0, 2.0), (1.0, 2.2), (1.6, 2.1)]
    build_summary = build_vs_cfn_lint.summary(build_runs)
    assert build_summary == {"best": 2.0, "median": 3.0, "cpu_best": 3.1, "cpu_median": 3.2}
    ratios = build_vs_cfn_lint.ratios(build_runs, baseline_runs)
    assert ratios == {
        "wall_best": 2.0,
        "wall_median": 3.0 / 1.6,
        "wall_paired_median": 2.0,  # rounds: 1.5, 2.0, 2.5
        "cpu": 1.55,
    }
