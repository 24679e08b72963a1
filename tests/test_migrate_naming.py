"""The NameStyle parameter, the subnet slices both tools compute, and the network ACL switch."""

import ipaddress
import json

import pytest

from migrate import MigrationError
from migrate.facts import Facts
from migrate.plan import migration_files
from migrate.product import acl_switch_waits_for_entries, check_subnet_layout, render_product
from templates import names
from tests.helpers import SETTINGS, rendered
from tests.migrate_helpers import (
    DIRECT,
    NESTED,
    REGIONS,
    Resolved,
    migrated,
    state_text,
    subnet_zones,
    zone_plan_answer,
)

MODULE_NAMES = {  # the module's physical names (its .tf files), prefix "gc"
    "inputs_bucket": "gc-components-inputs",
    "outputs_bucket": "gc-components-outputs",
    "execution_role": "SAGEMAKER_gc-components_EXECUTION",
    "execution_policy": "SAGEMAKER_gc-components_EXECUTION",
    "schedule_policy": "SAGEMAKER_gc-components_SCHEDULE",
    "logs_policy": "SAGEMAKER_gc-components_LOGS",
    "ecr_policy": "ECR_gc_READ_WRITE_DELETE",
    "security_group": "gc-components",
    "kms_alias": "alias/KMS_gc-/aws/sagemaker/TrainingJobs_ENCRYPT_LOGS",
    "training_jobs_log_group": "/aws/sagemaker/TrainingJobs",
    "stopped_jobs_log_group": "/aws/events/gc-components-stopped-jobs",
    "logs_resource_policy": "gc-components-stopped-jobs-put-logs",
    "stopped_jobs_rule": "gc-components-stopped-training-jobs",
}
NAMED = {  # logical id in the product: (name key, property)
    "InputsBucket": ("inputs_bucket", "BucketName"),
    "OutputsBucket": ("outputs_bucket", "BucketName"),
    "ExecutionRole": ("execution_role", "RoleName"),
    "ExecutionPolicy": ("execution_policy", "ManagedPolicyName"),
    "SchedulePolicy": ("schedule_policy", "ManagedPolicyName"),
    "LogsPolicy": ("logs_policy", "ManagedPolicyName"),
    "EcrReadWriteDeletePolicy": ("ecr_policy", "ManagedPolicyName"),
    "ExecutionSecurityGroup": ("security_group", "GroupName"),
    "LogsKeyAlias": ("kms_alias", "AliasName"),
    "StoppedJobsLogGroup": ("stopped_jobs_log_group", "LogGroupName"),
    "StoppedJobsPutLogsPolicy": ("logs_resource_policy", "PolicyName"),
    "StoppedTrainingJobsRule": ("stopped_jobs_rule", "Name"),
}
LIMITS = {"bucket": 63, "role": 64, "policy": 128}
LONGEST_PREFIX = "a" * 21


def product_names(style):
    template = render_product()
    parameters = {"NamePrefix": "gc", "NameStyle": style}
    deployment = Resolved(template, "eu-central-1", parameters)
    return {
        key: deployment.resolve(template["Resources"][logical_id]["Properties"][prop])
        for logical_id, (key, prop) in NAMED.items()
    }


def existing(deployment, template):
    """The resolved properties of the resources that exist in this deployment."""
    return {
        logical_id: deployment.resolve(resource.get("Properties", {}))
        for logical_id, resource in template["Resources"].items()
        if deployment.exists(logical_id)
    }


def test_terraform_module_style_gives_every_name_the_module_gave():
    assert product_names("terraform-module") == {
        key: MODULE_NAMES[key] for _, (key, _) in NAMED.items()
    }


def test_region_unique_style_is_the_default_and_keeps_the_region_unique_names():
    template = render_product()
    assert template["Parameters"]["NameStyle"]["Default"] == "region-unique"
    unique = product_names("region-unique")
    assert unique["inputs_bucket"] == "gc-123456789012-eu-central-1-inputs"
    assert unique["execution_role"] == "SAGEMAKER_gc-eu-central-1_EXECUTION"
    different = {key for key in unique if unique[key] != MODULE_NAMES[key]}
    assert different == set(names.TERRAFORM_MODULE_PATTERNS)


def test_module_patterns_fit_the_services_limits_at_the_longest_prefix():
    for key, pattern in names.TERRAFORM_MODULE_PATTERNS.items():
        assert key in names.PATTERNS
        value = pattern.replace("${NamePrefix}", LONGEST_PREFIX)
        limit = LIMITS["bucket" if "bucket" in key else "role" if "role" in key else "policy"]
        assert len(value) <= limit, key


def test_every_product_template_keeps_region_unique_names_unless_told_otherwise():
    """NameStyle defaults to region-unique; each name that differs in the module chooses by
    its condition, and nothing else refers to it."""
    template = rendered()
    for region in SETTINGS["regions"]:  # the names carry the region the stack resolves
        assert template["Parameters"]["NameStyle"]["Default"] == "region-unique"
        assert template["Conditions"][names.USE_TERRAFORM_MODULE_NAMES] == {
            "Fn::Equals": [{"Ref": "NameStyle"}, "terraform-module"]
        }
        zones = {"NamePrefix": "gc", "AvailabilityZones": f"{region}a,{region}b"}
        plan = {"ZonePlan": {"CidrA": "172.31.0.0/20", "CidrB": "172.31.16.0/20"}}
        resolved = Resolved(template, region, zones, answers=plan)
        text = json.dumps(existing(resolved, template))
        assert f"gc-123456789012-{region}-inputs" in text and "gc-components-inputs" not in text


def facts(region, vpc_cidr):
    fields = dict.fromkeys(Facts.__dataclass_fields__, None)
    return Facts(**fields | {"region": region, "vpc_cidr": vpc_cidr})


def module_layout(region, short, numbers, vpc):
    """The module's subnets in an account where zones ``numbers`` need no opt-in: cidrsubnet(
    vpc, 4, i) over the sorted ids; names in another order than ids, as accounts map them."""
    ids = sorted(f"{short}-az{n}" for n in numbers)
    letters = "bacfed"
    return [
        {
            "ZoneName": f"{region}{letters[i]}",
            "ZoneId": zone_id,
            "CidrBlock": str(list(vpc.subnets(prefixlen_diff=4))[i]),
        }
        for i, zone_id in enumerate(ids)
    ]


@pytest.mark.parametrize("prefix_length", range(16, 25))
def test_the_zone_plan_gives_the_modules_cidrsubnet_for_every_vpc_size(prefix_length):
    """The module: cidrsubnet(vpc, 4, i) over the sorted ids it saw; the zone plan: slice N-1
    for azN. With ids az1..azK they agree for any /16 to /24 VPC; with a gap they do not."""
    vpc = ipaddress.ip_network(f"10.0.0.0/{prefix_length}")
    for numbers in ([1], [1, 2, 3], [1, 2, 3, 4, 5, 6]):
        check_subnet_layout(
            facts("us-east-1", str(vpc)), module_layout("us-east-1", "use1", numbers, vpc)
        )
    gap = module_layout("us-east-1", "use1", [1, 2, 4, 5, 6], vpc)
    with pytest.raises(MigrationError, match=r"subnet of use1-az4 .* the product.s is"):
        check_subnet_layout(facts("us-east-1", str(vpc)), gap)


@pytest.mark.parametrize("fixture", [DIRECT, NESTED])
def test_the_fixtures_subnets_are_where_the_product_puts_them(fixture):
    """Each subnet takes the slot of its zone's letter (NESTED: euw1-az1 is eu-west-1b), and
    there the product's AvailabilityZone and CidrBlock, with the zone plan's answer, are the
    running subnet's."""
    result = migrated(fixture)
    region = REGIONS[fixture]
    answers = {"ZonePlan": zone_plan_answer(fixture)}
    deployment = Resolved(result["product"], region, result["parameters"], answers=answers)
    subnets = subnet_zones(fixture)
    for subnet in subnets:
        properties = result["product"]["Resources"][
            f"PrivateSubnet{subnet['ZoneName'][-1].upper()}"
        ]["Properties"]
        assert deployment.resolve(properties["AvailabilityZone"]) == subnet["ZoneName"]
        assert deployment.resolve(properties["CidrBlock"]) == subnet["CidrBlock"]
    if fixture == NESTED:
        [first] = [s for s in subnets if s["ZoneId"] == "euw1-az1"]
        assert (first["ZoneName"], first["CidrBlock"]) == ("eu-west-1b", "10.20.0.0/20")


def acl_template(depends_on):
    association = {
        "Type": "AWS::EC2::SubnetNetworkAclAssociation",
        "Properties": {"NetworkAclId": {"Ref": "Acl"}, "SubnetId": "subnet-1"},
    }
    if depends_on:
        association["DependsOn"] = depends_on
    return {
        "Resources": {
            "Acl": {"Type": "AWS::EC2::NetworkAcl", "Properties": {"VpcId": "vpc-1"}},
            "Entries": {
                "Type": "Custom::S3NetworkAclEntries",
                "Properties": {"NetworkAclId": {"Ref": "Acl"}},
            },
            "Association": association,
        }
    }


def test_acl_switch_is_safe_only_when_the_association_waits_for_the_entries():
    assert not acl_switch_waits_for_entries(acl_template(None))
    assert acl_switch_waits_for_entries(acl_template(["Entries"]))
    assert acl_switch_waits_for_entries(acl_template("Entries"))


def test_runbook_says_drain_first_exactly_when_the_switch_is_unsafe():
    result = migrated(DIRECT)
    safe = acl_switch_waits_for_entries(result["product"])
    assert ("**Drain first.**" in result["runbook"]) is not safe
    assert ("S3 access during the switch" in result["runbook"]) is safe


def test_product_moves_a_subnet_only_to_an_acl_that_already_allows_s3():
    files = migration_files(state_text(DIRECT), DIRECT)
    assert "**Drain first.**" not in files["eu-central-1-MIGRATION.md"].decode()


def test_the_module_style_product_never_names_a_region_unique_bucket():
    result = migrated(DIRECT)
    deployment = Resolved(result["product"], "eu-central-1", result["parameters"])
    text = json.dumps(existing(deployment, result["product"]))
    assert "gc-prod-123456789012-eu-central-1-inputs" not in text
    assert "gc-prod-123456789012-eu-central-1-outputs" not in text
