"""build.py migrate on realistic module states: the import template, identifiers, names,
parameters, and the update to the product replacing nothing that was imported."""

import json
import re
from pathlib import Path

import cfnlint
import pytest

from build import lint
from migrate.facts import read_facts
from migrate.product import check_subnet_layout
from migrate.tfstate import parse_state
from templates import preview
from tests.cfn_resolve import Deployment
from tests.helpers import violations
from tests.migrate_helpers import (
    DIRECT,
    NESTED,
    REGIONS,
    Resolved,
    instances,
    migrated,
    state_text,
    subnet_zones,
    zone_plan_answer,
)

FIXTURES = [DIRECT, NESTED]
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Logs::ResourcePolicy": "PolicyName",
    "AWS::Events::Rule": "Name",
}
STATE_NAME = {  # the attribute holding the same name in the provider's state
    "AWS::S3::Bucket": "bucket",
    "AWS::Logs::ResourcePolicy": "policy_name",
}


def schema(resource_type, region):
    index = json.loads((SCHEMAS / "providers" / f"{region}.json").read_text())
    return json.loads((SCHEMAS / "resources" / f"{index[resource_type]}.json").read_text())


def imported_addresses(fixture):
    """``{logical id: state address}`` from the runbook's table."""
    table = migrated(fixture)["runbook"].split("## What happens to every Terraform address")[1]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    return {row[2].rstrip(" |"): row[0].strip("|` ") for row in rows if row[1] == "imported"}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_import_template_passes_cfn_lint(fixture):
    body = json.dumps(migrated(fixture)["import"]).encode()
    assert lint([REGIONS[fixture]], body) == []
    assert len(migrated(fixture)["raw"][f"{REGIONS[fixture]}-import.json"]) <= 51_200


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_imported_resource_is_retained_and_listed(fixture):
    result = migrated(fixture)
    resources = result["import"]["Resources"]
    assert {r["LogicalResourceId"] for r in result["resources"]} == set(resources)
    for logical_id, resource in resources.items():
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain", logical_id
        # An IMPORT creates nothing: every reference is to another imported resource (or a
        # pseudo parameter: the subnets' AvailabilityZone is ${AWS::Region}<letter>).
        references = _references(resource["Properties"])
        assert {r for r in references if not r.startswith("AWS::")} <= set(resources), logical_id


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_identifier_is_its_types_primary_identifier_with_the_states_value(fixture):
    result = migrated(fixture)
    addresses = imported_addresses(fixture)
    state = instances(fixture)
    for entry in result["resources"]:
        resource_type = entry["ResourceType"]
        primary = schema(resource_type, REGIONS[fixture])["primaryIdentifier"]
        assert [f"/properties/{key}" for key in entry["ResourceIdentifier"]] == primary
        [(key, value)] = entry["ResourceIdentifier"].items()
        attributes = state[addresses[entry["LogicalResourceId"]]]
        # What the provider records for the same thing: the resource's id, or its ARN.
        assert value in (attributes.get("arn"), attributes.get("id"), attributes.get("key_id"))
        properties = result["import"]["Resources"][entry["LogicalResourceId"]]["Properties"]
        if key in properties:
            assert properties[key] == value


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_name_is_the_states_in_the_import_and_in_the_product(fixture):
    """The import keeps each name; the product, with the parameters file (NameStyle
    terraform-module), names every one of them the same, so the update renames nothing."""
    result = migrated(fixture)
    state = instances(fixture)
    product = Deployment(result["product"], REGIONS[fixture], result["parameters"])
    checked = 0
    for logical_id, address in imported_addresses(fixture).items():
        resource = result["import"]["Resources"][logical_id]
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop is None:
            continue
        attributes = state[address]
        expected = attributes[STATE_NAME.get(resource["Type"], "name")]
        assert resource["Properties"][prop] == expected, logical_id
        product_properties = result["product"]["Resources"][logical_id]["Properties"]
        assert product.resolve(product_properties[prop]) == expected, logical_id
        checked += 1
    assert checked >= 13


CONDITIONAL_CIDR = re.compile(
    r"^create-only CidrBlock: replaced if ZonePlan\.(Cidr[A-F]) \(known only at deploy time\) "
    r"is not (\S+)$"
)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_update_to_the_product_replaces_only_subnets_whose_cidr_the_zone_plan_gives(fixture):
    """The preview cannot know the zone plan's answer offline: each imported subnet is a
    conditional replacement on CidrBlock alone (and its association only through it), nothing
    imported is replaced for certain or removed, and check_subnet_layout, which migrate ran,
    proves the zone plan gives each subnet exactly its literal CIDR."""
    result = migrated(fixture)
    plan = preview.plan(
        result["import"], result["product"], {}, result["parameters"], REGIONS[fixture]
    )
    imported = result["import"]["Resources"]
    touched = {c.logical_id: c for c in plan.changes if c.logical_id in imported}
    replaced = {lid: c for lid, c in touched.items() if c.action in ("replace", "remove")}
    subnets = {lid for lid, r in imported.items() if r["Type"] == "AWS::EC2::Subnet"}
    assert {lid for lid, c in replaced.items() if c.resource_type == "AWS::EC2::Subnet"} == subnets
    answers = zone_plan_answer(fixture)
    for logical_id in subnets:
        change = replaced.pop(logical_id)
        assert (change.action, change.certain) == ("replace", False)
        [reason] = [r for r in change.reasons if r.startswith("create-only")]
        attribute, cidr = CONDITIONAL_CIDR.match(reason).groups()
        assert cidr == imported[logical_id]["Properties"]["CidrBlock"]
        assert answers[attribute] == cidr  # what the zone plan will answer at the update
    for logical_id, change in replaced.items():  # only because a subnet may be replaced
        assert change.resource_type == "AWS::EC2::SubnetRouteTableAssociation", logical_id
        assert not change.certain
        assert imported[logical_id]["Properties"]["SubnetId"]["Ref"] in subnets
        assert [r for r in change.reasons if r.startswith("create-only")] == [
            "create-only SubnetId (if what it refers to is replaced)"
        ]
    state = parse_state(state_text(fixture), fixture)
    check_subnet_layout(read_facts(state), subnet_zones(fixture))  # the runbook's guarantee


@pytest.mark.parametrize("fixture", FIXTURES)
def test_create_only_properties_equal_the_products_resolved(fixture):
    """Independently of the preview: resolved with the state's physical ids for the imported
    resources, each create-only property is the same string in both templates."""
    result = migrated(fixture)
    region = REGIONS[fixture]
    ids = {e["LogicalResourceId"]: e["ResourceIdentifier"] for e in result["resources"]}
    old = Resolved(result["import"], region, {}, ids)
    answers = {"ZonePlan": zone_plan_answer(fixture)}
    new = Resolved(result["product"], region, result["parameters"], ids, answers)
    for logical_id, resource in result["import"]["Resources"].items():
        paths = preview.create_only_paths(resource["Type"], region)
        before = old.resolve(resource["Properties"])
        after = new.resolve(result["product"]["Resources"][logical_id]["Properties"])
        for path in paths:
            assert preview.value_at(before, path) == preview.value_at(after, path), (
                logical_id,
                path,
            )


@pytest.mark.parametrize("fixture", FIXTURES)
def test_parameters_reproduce_the_running_deployment(fixture):
    result = migrated(fixture)
    state = instances(fixture)
    module = "module.components." if fixture == NESTED else ""
    parameters = result["parameters"]
    vpc = state[f"{module}aws_vpc.this"]
    assert parameters["VpcCidr"] == vpc["cidr_block"]
    assert parameters["NameStyle"] == "terraform-module"
    assert (
        parameters["NamePrefix"]
        == state[f"{module}aws_security_group.execution"]["name"][: -len("-components")]
    )
    repositories = sorted(
        a["name"].split("/", 1)[1] for k, a in state.items() if ".aws_ecr_repository." in "." + k
    )
    assert parameters["RepositoryNames"].split(",") == repositories
    target = state[f"{module}aws_cloudwatch_event_target.stopped_training_jobs_sqs"]
    assert parameters["StoppedEventsQueueArn"] == target["arn"]
    logging = state[f'{module}aws_s3_bucket_logging.io["inputs"]']
    assert parameters["LogsBucketName"] == logging["target_bucket"]
    group = state[f"{module}aws_cloudwatch_log_group.stopped_jobs"]
    assert parameters["LogRetentionDays"] == str(group["retention_in_days"])
    schedule = json.loads(state[f"{module}aws_iam_policy.schedule"]["policy"])
    [create] = [s for s in schedule["Statement"] if s["Sid"] == "CreateSageMakerJobs"]
    condition = create["Condition"]
    assert sorted(parameters["AllowedInstanceTypes"].split(",")) == sorted(
        condition["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
    )
    assert (
        parameters["MaximumRuntimeSeconds"]
        == condition["NumericLessThanEquals"]["sagemaker:MaxRuntimeInSeconds"]
    )
    declared = result["product"]["Parameters"]
    for key, value in parameters.items():
        assert violations(declared[key], value) == [], key
    # Every zone of the state by name: its subnet slot is on, the other slots are off.
    zone_names = sorted(a["availability_zone"] for k, a in state.items() if "aws_subnet." in k)
    assert parameters["AvailabilityZones"].split(",") == zone_names
    product = Deployment(result["product"], REGIONS[fixture], parameters)
    on = {
        lid for lid, r in result["product"]["Resources"].items() if r["Type"] == "AWS::EC2::Subnet"
    }
    assert {lid for lid in on if product.exists(lid)} == {
        f"PrivateSubnet{name[-1].upper()}" for name in zone_names
    }


@pytest.mark.parametrize("fixture", FIXTURES)
def test_the_runbook_accounts_for_every_address(fixture):
    runbook = migrated(fixture)["runbook"]
    state_rm = runbook.split("terraform state rm \\\n")[1].split("```")[0]
    table = runbook.split("## What happens to every Terraform address")[1]
    for address in instances(fixture):
        assert f"`{address}`" in table, address
        assert address in state_rm, address
    for step in ("create-change-set", "--change-set-type IMPORT", "execute-change-set", "deploy"):
        assert step in runbook
    assert runbook.index("--change-set-type IMPORT") < runbook.index("deploy --stack-name")
    assert runbook.index("deploy --stack-name") < runbook.index("terraform state rm")
    assert runbook.count("Roll back:") == 4
    # the change set's view of the subnets, and why it is safe
    assert "The subnets show Replacement\n#   Conditional on CidrBlock" in runbook


def test_module_used_as_a_module_keeps_its_addresses():
    runbook = migrated(NESTED)["runbook"]
    assert "'module.components.aws_subnet.private[\"euw1-az1\"]'" in runbook
    assert "-target=module.components.aws_network_acl.private" in runbook
    assert "| `aws_vpc.this`" not in runbook


def test_the_product_keeps_the_running_endpoint_grants():
    """S3 access through the switch: the product's endpoint policy, with the parameters file,
    grants the same principal the same objects as the module's policy that is running."""
    result = migrated(DIRECT)
    product = Deployment(result["product"], REGIONS[DIRECT], result["parameters"])
    policy = product.resolve(
        result["product"]["Resources"]["S3GatewayEndpoint"]["Properties"]["PolicyDocument"]
    )
    running = result["import"]["Resources"]["S3GatewayEndpoint"]["Properties"]["PolicyDocument"]

    assert _grants(running) <= _grants(policy)
    role = instances(DIRECT)["aws_iam_role.execution"]["arn"]
    assert {grant[2] for grant in _grants(policy)} == {
        json.dumps({"StringEquals": {"aws:PrincipalArn": role}})
    }


def _grants(document):
    """(action, resource, condition) triples of a policy's statements."""
    return {
        (action, resource, json.dumps(statement.get("Condition"), sort_keys=True))
        for statement in document["Statement"]
        for action in _listed(statement["Action"])
        for resource in _listed(statement["Resource"])
    }


def _listed(value):
    return value if isinstance(value, list) else [value]


def _references(value):
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, inner in value.items():
        if key == "Ref":
            found.add(inner)
        elif key == "Fn::GetAtt":
            found.add(inner[0])
        elif key == "Fn::Sub":
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", inner)}
        else:
            found |= _references(inner)
    return found


def test_the_product_template_written_for_the_update_passes_cfn_lint():
    assert lint([REGIONS[DIRECT]], migrated(DIRECT)["raw"]["eu-central-1-product.json"]) == []


def test_build_diff_of_the_import_against_the_product_flags_only_the_conditional_subnets(
    tmp_path, capsys
):
    """The same check through `build.py diff`, on the files as written: it exits 3 (the
    subnets' replacement is conditional, a stateful maybe) and says why; every other
    imported resource is modified in place, or replaced only through a subnet."""
    import build

    for name, body in migrated(NESTED)["raw"].items():
        (tmp_path / name).write_bytes(body)
    (tmp_path / "none.json").write_text("[]")
    code = build.main(
        [
            "diff",
            str(tmp_path / "eu-west-1-import.json"),
            str(tmp_path / "eu-west-1-product.json"),
            "--region",
            "eu-west-1",
            "--parameters",
            str(tmp_path / "none.json"),
            str(tmp_path / "eu-west-1-parameters.json"),
        ]
    )
    output = capsys.readouterr().out
    assert code == 3, output
    rows = [line.split(maxsplit=3) for line in output.splitlines() if line[:1].isalpha()]
    actions = {action for action, *_ in rows}
    assert "modify" in actions and not actions & {"replace", "remove", "remove?"}, output
    destructive = [
        row[1] for row in rows if row[3].startswith("STATEFUL") and row[0].startswith("re")
    ]
    assert sorted(destructive) == ["PrivateSubnetA", "PrivateSubnetB", "PrivateSubnetC"]
    for row in rows:
        if row[1] in destructive:
            assert "replaced if ZonePlan.Cidr" in row[3] and "(known only at deploy time)" in row[3]
    assert "3 of them only maybe (replace?, remove?)" in output
    assert "the operator's data at risk" in output
