"""Every parameter is validated by CloudFormation itself: good values pass, bad ones are refused
by the template's own AllowedPattern / AllowedValues / Min / Max, before anything is created."""

import ipaddress
import itertools
import json
import re

import pytest

from build import commercial_regions
from templates.network import VPC_PREFIX_LENGTHS, decimal_pattern, vpc_cidr_pattern
from tests.helpers import rendered, violations

GOOD_AND_BAD = {
    "NamePrefix": (
        ["gc", "g", "gc-prod", "a1-b2-c3", "abcdefghijklmnopqrstu"],
        ["", "GC", "1gc", "-gc", "gc.prod", "gc/prod", "gc_prod", "abcdefghijklmnopqrstuv"],
    ),
    "LogRetentionDays": (
        ["1", "7", "365", "3653"],
        ["0", "2", "366", "9999", "forever"],
    ),
    "StoppedEventsQueueArn": (
        [
            "",
            "arn:aws:sqs:eu-central-1:123456789012:gc-stopped",
            "arn:aws-cn:sqs:cn-north-1:123456789012:Queue_1",
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q",
        ],
        [
            "gc-stopped",
            "arn:aws:sqs:eu-central-1:12345678901:gc",
            "arn:aws:sns:eu-central-1:123456789012:gc",
            "https://sqs.eu-central-1.amazonaws.com/123456789012/gc",
            "arn:aws:sqs:eu-central-1:123456789012:" + "q" * 81,
        ],
    ),
    "LogsBucketName": (
        ["", "gc-logs", "abc", "my.logs.bucket-1", "a" * 63],
        ["ab", "GC-logs", "-gc-logs", "gc-logs-", "gc_logs", "a" * 64],
    ),
    "VpcCidr": (
        ["172.31.0.0/16", "10.0.0.0/20", "192.168.1.0/24", "10.255.0.0/18"],
        [
            "172.31.0.0/8",
            "172.31.0.0/15",
            "10.0.0.0/25",
            "10.0.0.0",
            "256.0.0.0/16",
            "a.b.c.d/16",
            "10.0.0.5/16",
            "10.0.1.0/16",
            "10.0.128.0/16",
            "10.0.64.0/17",
            "10.0.8.0/20",
            "10.0.1.0/23",
            "010.0.0.0/16",
        ],
    ),
    "LogsExpirationDays": (["1", "365", "3653"], ["0", "3654", "-5", "a year"]),
    "MaximumRuntimeSeconds": (
        ["1", "3600", "86400", "2419200"],
        ["0", "-1", "2419201", "one day"],
    ),
    "AllowedInstanceTypes": (
        ["ml.g4dn.xlarge", "ml.g4dn.xlarge,ml.p4d.24xlarge", "ml.m7i.large"],
        ["g4dn.xlarge", "ml.g4dn.xlarge,", "ml.g4dn.xlarge, ml.g5.xlarge", "ML.G4DN.XLARGE"],
    ),
    "KeepImagesOnDelete": (["true", "false"], ["", "True", "yes", "1"]),
    "NameStyle": (["region-unique", "terraform-module"], ["", "terraform", "Region-Unique"]),
    "AlarmTopicArn": (
        ["", "arn:aws:sns:eu-central-1:123456789012:gc-on-call"],
        ["gc-on-call", "arn:aws:sqs:eu-central-1:123456789012:q", "arn:aws:sns:eu-central-1:1:x"],
    ),
    "PermissionsBoundaryArn": (
        ["", "arn:aws:iam::123456789012:policy/GrandChallengeComponentsLaunch-Boundary"],
        ["arn:aws:iam::aws:policy/AdministratorAccess", "Boundary", "arn:aws:iam::1234:policy/x"],
    ),
    "RepositoryNames": (
        ["algorithms/algorithmimage", "a,b/c,d-e/f_g", "evaluation/method"],
        ["Algorithms", "/leading", "trailing/", "a//b", "a,,b", "with space"],
    ),
}


# Parameters of AWS-specific types: CloudFormation checks each value exists in the account
# and region before it creates anything, and the console offers only those.
CHECKED_BY_CLOUDFORMATION = {"AvailabilityZones": "List<AWS::EC2::AvailabilityZone::Name>"}


def test_every_parameter_is_validated_and_in_this_table():
    parameters = rendered()["Parameters"]
    for name, definition in parameters.items():
        if name in CHECKED_BY_CLOUDFORMATION:
            assert definition["Type"] == CHECKED_BY_CLOUDFORMATION[name]
            continue
        checks = {"AllowedPattern", "AllowedValues", "MinValue", "MaxValue"} & set(definition)
        assert checks, f"parameter {name} has no validation"
        if "AllowedPattern" in definition or "MinValue" in definition:
            assert definition.get("ConstraintDescription"), f"{name}: no ConstraintDescription"
        assert name in GOOD_AND_BAD, f"{name}: add to the table"
    assert set(parameters) == set(GOOD_AND_BAD) | set(CHECKED_BY_CLOUDFORMATION)


@pytest.mark.parametrize("name", sorted(GOOD_AND_BAD))
def test_good_values_are_accepted(name):
    definition = rendered()["Parameters"][name]
    for value in GOOD_AND_BAD[name][0]:
        assert violations(definition, value) == [], (name, value)


@pytest.mark.parametrize("name", sorted(GOOD_AND_BAD))
def test_bad_values_are_refused(name):
    definition = rendered()["Parameters"][name]
    for value in GOOD_AND_BAD[name][1]:
        assert violations(definition, value), f"{name} would accept {value!r}"


def test_defaults_are_valid_values():
    for name, definition in rendered()["Parameters"].items():
        if "Default" in definition:
            assert violations(definition, str(definition["Default"])) == [], name


def test_zones_are_picked_by_name_from_the_regions_own_with_no_default():
    """No default: the operator picks (two or more for capacity), and a zone list could not
    be right in every region. The AtLeastOneZone rule refuses an empty pick."""
    zones = rendered()["Parameters"]["AvailabilityZones"]
    assert zones["Type"] == "List<AWS::EC2::AvailabilityZone::Name>"
    assert "Default" not in zones
    assert "Local" in zones["Description"]  # says which zones the zone plan refuses
    assert "AtLeastOneZone" in rendered()["Rules"]


def test_no_rule_or_value_ties_the_template_to_a_region():
    template = rendered()
    assert set(template["Rules"]) == {"AtLeastOneZone"}  # BuiltForRegion is gone
    text = json.dumps(template)
    assert [region for region in commercial_regions() if region in text] == []


def test_log_retention_has_a_default_of_a_year():
    assert rendered()["Parameters"]["LogRetentionDays"]["Default"] == "365"


def test_repositories_are_deleted_on_delete_unless_the_operator_keeps_them():
    parameters = rendered()["Parameters"]
    assert parameters["KeepImagesOnDelete"]["Default"] == "false"
    interface = rendered()["Metadata"]["AWS::CloudFormation::Interface"]
    group = next(g for g in interface["ParameterGroups"] if "KeepImagesOnDelete" in g["Parameters"])
    assert group["Label"]["default"] == "Container images"


def test_every_parameter_has_a_description():
    for name, definition in rendered()["Parameters"].items():
        assert len(definition.get("Description", "")) >= 20, name


@pytest.mark.parametrize("values", [range(256), range(0, 256, 2), range(0, 256, 16), [0], [7]])
def test_decimal_pattern_matches_exactly_its_numbers(values):
    pattern = decimal_pattern(values)
    matched = {n for n in range(1000) if re.fullmatch(pattern, str(n))}
    assert matched == set(values)
    assert not re.fullmatch(pattern, "00") and not re.fullmatch(pattern, "01")


def is_aligned_vpc_network(text):
    """What the VPC CIDR must be, by Python's own parser: an IPv4 network /16 to /24."""
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return False
    return 16 <= network.prefixlen <= 24 and str(network) == text


def test_vpc_cidr_pattern_agrees_with_ipaddress():
    """Every third octet and prefix length 0-32, on a sample of the other octets."""
    pattern = rendered()["Parameters"]["VpcCidr"]["AllowedPattern"]
    assert pattern == vpc_cidr_pattern(range(16, 25)) == vpc_cidr_pattern(VPC_PREFIX_LENGTHS)
    checked = 0
    for first, second, third, fourth, length in itertools.product(
        ["0", "10", "172", "255", "256", "01"],
        ["0", "31", "168"],
        range(257),
        ["0", "1", "128"],
        range(33),
    ):
        if fourth != "0" and length != 24:
            continue  # a non-zero last octet fails either way; a sample of it suffices
        text = f"{first}.{second}.{third}.{fourth}/{length}"
        assert bool(re.fullmatch(pattern, text)) == is_aligned_vpc_network(text), text
        checked += 1
    assert checked > 40_000
    for junk in ("10.0.0.0", "10.0.0.0/16 ", " 10.0.0.0/16", "10.0.0/16", "10.0.0.0.0/16"):
        assert not re.fullmatch(pattern, junk)
