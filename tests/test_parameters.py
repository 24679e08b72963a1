"""Every parameter is validated by CloudFormation itself: good values pass, bad ones are refused
by the template's own AllowedPattern / AllowedValues / Min / Max, before anything is created."""

import pytest

from tests.helpers import REGIONS, rendered, violations

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
    "RepositoryNames": (
        ["algorithms/algorithmimage", "a,b/c,d-e/f_g", "evaluation/method"],
        ["Algorithms", "/leading", "trailing/", "a//b", "a,,b", "with space"],
    ),
}


def test_every_parameter_is_validated_and_in_this_table():
    for region in REGIONS:
        parameters = rendered(region)["Parameters"]
        for name, definition in parameters.items():
            checks = {"AllowedPattern", "AllowedValues", "MinValue", "MaxValue"} & set(definition)
            assert checks, f"{region}: parameter {name} has no validation"
            if "AllowedPattern" in definition or "MinValue" in definition:
                assert definition.get("ConstraintDescription"), f"{name}: no ConstraintDescription"
            assert name in GOOD_AND_BAD or name.startswith("Zone"), f"{name}: add to the table"


@pytest.mark.parametrize("name", sorted(GOOD_AND_BAD))
def test_good_values_are_accepted(name):
    definition = rendered("us-east-1")["Parameters"][name]
    for value in GOOD_AND_BAD[name][0]:
        assert violations(definition, value) == [], (name, value)


@pytest.mark.parametrize("name", sorted(GOOD_AND_BAD))
def test_bad_values_are_refused(name):
    definition = rendered("us-east-1")["Parameters"][name]
    for value in GOOD_AND_BAD[name][1]:
        assert violations(definition, value), f"{name} would accept {value!r}"


def test_defaults_are_valid_values():
    for region in REGIONS:
        for name, definition in rendered(region)["Parameters"].items():
            if "Default" in definition:
                assert violations(definition, str(definition["Default"])) == [], (region, name)


def test_zone_switches_take_only_true_or_false():
    parameters = rendered("us-east-1")["Parameters"]
    zone_parameters = [name for name in parameters if name.startswith("Zone")]
    assert len(zone_parameters) == 6
    for name in zone_parameters:
        assert violations(parameters[name], "true") == []
        assert violations(parameters[name], "false") == []
        assert violations(parameters[name], "yes")


def test_the_console_rule_refuses_switching_every_zone_off():
    rule = rendered("eu-central-1")["Rules"]["AtLeastOneZone"]["Assertions"][0]["Assert"]
    switched = [clause["Fn::Equals"][0]["Ref"] for clause in rule["Fn::Or"]]
    assert switched == ["ZoneEuc1Az1", "ZoneEuc1Az2", "ZoneEuc1Az3"]
