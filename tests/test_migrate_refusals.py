"""build.py migrate refuses, in one line and exit 2 writing nothing, what it cannot move."""

import json

import pytest

import build
from tests.migrate_helpers import DIRECT, FIXTURES, NESTED, state


def run_migrate(tmp_path, capsys, content):
    path = tmp_path / "state.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out"
    code = build.main(["migrate", "--tfstate", str(path), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.err.strip(), out


def refused(tmp_path, capsys, content):
    code, error, out = run_migrate(tmp_path, capsys, content)
    assert code == 2
    assert len(error.splitlines()) == 1, error
    assert not out.exists()
    return error


def resources_without(fixture, type_, name):
    changed = state(fixture)
    changed["resources"] = [
        r for r in changed["resources"] if (r["type"], r["name"]) != (type_, name)
    ]
    return changed


def with_attributes(fixture, type_, name, change):
    changed = state(fixture)
    for resource in changed["resources"]:
        if (resource["type"], resource["name"]) == (type_, name):
            for instance in resource["instances"]:
                change(instance)
    return changed


def test_writes_every_file_for_a_good_state(tmp_path, capsys):
    code, error, out = run_migrate(tmp_path, capsys, (FIXTURES / NESTED).read_text())
    assert (code, error) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == [
        "eu-west-1-MIGRATION.md",
        "eu-west-1-import.json",
        "eu-west-1-parameters.json",
        "eu-west-1-product.json",
        "eu-west-1-resources-to-import.json",
    ]


def test_refuses_the_fixture_with_a_missing_attribute(tmp_path, capsys):
    content = (FIXTURES / "module-components-missing-queue-arn.json").read_text()
    error = refused(tmp_path, capsys, content)
    assert "module.components.aws_cloudwatch_event_target.stopped_training_jobs_sqs" in error
    assert "attribute arn is missing" in error


def test_refuses_a_state_not_from_the_module(tmp_path, capsys):
    other = {
        "version": 4,
        "resources": [
            {
                "mode": "managed",
                "type": "aws_instance",
                "name": "web",
                "instances": [{"attributes": {"id": "i-0123"}}],
            }
        ],
    }
    assert "not a state of terraform-aws-grand-challenge-components" in refused(
        tmp_path, capsys, other
    )


@pytest.mark.parametrize("version", [3, 5, "4"])
def test_refuses_an_unknown_state_version(tmp_path, capsys, version):
    content = state(DIRECT) | {"version": version}
    assert "state format version" in refused(tmp_path, capsys, content)


@pytest.mark.parametrize("content", ["", "{", "[]", '{"resources": []}'])
def test_refuses_what_is_not_a_state(tmp_path, capsys, content):
    refused(tmp_path, capsys, content)


def test_refuses_a_missing_resource_by_its_address(tmp_path, capsys):
    error = refused(tmp_path, capsys, resources_without(NESTED, "aws_iam_policy", "schedule"))
    assert "module.components.aws_iam_policy.schedule" in error


def test_refuses_a_missing_vpc_cidr(tmp_path, capsys):
    def drop(instance):
        del instance["attributes"]["cidr_block"]

    error = refused(tmp_path, capsys, with_attributes(DIRECT, "aws_vpc", "this", drop))
    assert "aws_vpc.this: attribute cidr_block is missing" in error


def test_refuses_a_resource_the_module_release_does_not_have(tmp_path, capsys):
    extra = state(DIRECT)
    extra["resources"].append(
        {
            "mode": "managed",
            "type": "aws_sqs_queue",
            "name": "extra",
            "instances": [{"attributes": {"id": "https://sqs/extra"}}],
        }
    )
    assert "aws_sqs_queue.extra: not a resource of the module" in refused(tmp_path, capsys, extra)


def test_refuses_two_copies_of_the_module(tmp_path, capsys):
    both = state(DIRECT)
    both["resources"] += state(NESTED)["resources"]
    assert "several copies of the module" in refused(tmp_path, capsys, both)


def test_refuses_a_subnet_the_product_would_put_elsewhere(tmp_path, capsys):
    """A subnet CIDR that is not the zone plan's slice for its zone id: the update would
    replace the subnet (CidrBlock is create-only)."""

    def shift(instance):
        attributes = instance["attributes"]
        if attributes["availability_zone_id"] == "euc1-az3":
            attributes["cidr_block"] = "172.31.48.0/20"

    error = refused(tmp_path, capsys, with_attributes(DIRECT, "aws_subnet", "private", shift))
    assert error.endswith(
        "subnet of euc1-az3 (eu-central-1c) is 172.31.48.0/20, the product's is 172.31.32.0/20 "
        "(slice 2 of 172.31.0.0/16 for az3): the module counted the zone ids it saw, with a "
        "gap; the update would replace the subnet"
    )


def test_refuses_a_module_that_counted_past_a_missing_zone_id(tmp_path, capsys):
    """A us-east-1 account without use1-az3: the module's sorted ids were az1, az2, az4 and it
    put az4 at slice 2; the zone plan puts az4 at slice 3."""
    text = (FIXTURES / DIRECT).read_text().replace("euc1-az3", "use1-az4")
    text = text.replace("euc1-az", "use1-az").replace("eu-central-1", "us-east-1")
    error = refused(tmp_path, capsys, text)
    assert "subnet of use1-az4 (us-east-1c) is 172.31.32.0/20, the product's is 172.31.48.0/20" in (
        error
    )


def test_refuses_a_zone_without_a_subnet_slot(tmp_path, capsys):
    def move(instance):
        if instance["attributes"]["availability_zone_id"] == "euc1-az3":
            instance["attributes"]["availability_zone"] = "eu-central-1g"

    error = refused(tmp_path, capsys, with_attributes(DIRECT, "aws_subnet", "private", move))
    assert error.endswith(
        "eu-central-1g: the template has subnets for zones a to f only: the product has no "
        "subnet slot for it"
    )


def test_migrates_a_state_of_any_region(tmp_path, capsys):
    """One template serves every region: a region the product is not published to yet still
    migrates, its zones by name."""
    moved = (FIXTURES / DIRECT).read_text().replace("eu-central-1", "ap-south-2")
    code, error, out = run_migrate(tmp_path, capsys, moved)
    assert (code, error) == (0, "")
    parameters = json.loads((out / "ap-south-2-parameters.json").read_text())
    assert "AvailabilityZones=ap-south-2a,ap-south-2b,ap-south-2c" in parameters
    assert "ap-south-2-product.json" in {p.name for p in out.iterdir()}


def test_refuses_more_repositories_than_slots(tmp_path, capsys):
    def many(resource_list):
        for resource in resource_list:
            if resource["type"] == "aws_ecr_repository":
                template = resource["instances"][0]
                resource["instances"] = [
                    json.loads(json.dumps(template).replace("algorithms/algorithmimage", f"r{i}"))
                    | {"index_key": f"r{i}"}
                    for i in range(5)
                ]

    content = state(DIRECT)
    many(content["resources"])
    assert "5 repositories: the product has 4 slots" in refused(tmp_path, capsys, content)
