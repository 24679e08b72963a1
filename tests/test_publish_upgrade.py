"""The upgrade preview in publishing: a new version whose template would make stacks on the
newest published version replace or remove a stateful resource is refused, unless the operator
passes --allow-replacement.  Pure decisions with plain state, and the S3 read with the Stubber."""

import io
import json
import re
import subprocess

import boto3
import pytest
from botocore.stub import Stubber

import build
from publish.decide import plan_region
from publish.state import PreviousTemplate, read_previous_template
from publish.versions import from_per_region_template, upgrade_from
from tests.helpers import ROOT
from tests.publish_fixtures import (
    ACCOUNT,
    CONFIGURED_BUCKET,
    REGION,
    body_target,
    config_with,
    context,
    published_artifact,
    published_state,
    sha,
    stack_template,
    write_dist,
)

OLD = stack_template()
PREVIOUS = published_artifact(1, OLD)
LOCATION = f"s3://{context().bucket}/templates/{sha(OLD)}.json"


def previous(body=OLD, **overrides):
    fields = {"version": PREVIOUS.name, "id": PREVIOUS.id, "location": LOCATION}
    return PreviousTemplate(**{**fields, "template": json.loads(body), **overrides})


def decide(new_body, previous_template, *, allow=False):
    state = published_state(PREVIOUS, previous=previous_template)
    config = config_with()
    if allow:
        config = type(config)(**{**config.__dict__, "allow_replacement": True})
    return plan_region(config, body_target(new_body), context(), CONFIGURED_BUCKET, state)


def operations(plan):
    return [action.operation for action in plan.actions]


def test_a_renamed_bucket_blocks_the_release_and_says_how_to_inspect_it():
    plan = decide(stack_template(inputs_bucket="gc-prod-inputs-2"), previous())
    [blocker] = plan.blockers
    assert blocker.startswith(
        "updating stacks from version 'v1.1.0' (pa-0000000000001) to 'v1.2.0' would replace "
        "InputsBucket (AWS::S3::Bucket; bucket: its objects)"
    )
    assert (
        f"inspect it with `aws s3 cp {LOCATION} previous.json && python build.py diff "
        "previous.json dist/components-runtime.json --region eu-central-1`"
    ) in blocker
    assert "one-time move" not in blocker  # only for the move from a per-region template
    assert blocker.endswith("pass --allow-replacement to publish anyway")
    assert not any("InputsBucket" in warning for warning in plan.warnings)


def test_allow_replacement_turns_the_refusal_into_a_warning_and_creates_the_version():
    plan = decide(stack_template(inputs_bucket="gc-prod-inputs-2"), previous(), allow=True)
    assert plan.blockers == []
    [warning] = [w for w in plan.warnings if "InputsBucket" in w]
    assert warning.endswith("publishing anyway (--allow-replacement)")
    assert operations(plan)[0] == "CreateProvisioningArtifact"


def test_removing_a_stateful_resource_is_refused_too():
    new = json.loads(OLD)
    del new["Resources"]["TrainingJobsLogGroup"]
    plan = decide(json.dumps(new).encode(), previous())
    [blocker] = plan.blockers
    assert "would remove TrainingJobsLogGroup (AWS::Logs::LogGroup; log group: its log" in blocker


@pytest.mark.parametrize(
    "new_body",
    [stack_template(retention="90"), stack_template(description="Components, release 2")],
    ids=["retention default", "description"],
)
def test_in_place_changes_create_the_version_without_blocker_or_warning(new_body):
    plan = decide(new_body, previous())
    assert plan.blockers == []
    assert not [w for w in plan.warnings if "stacks" in w]
    assert operations(plan)[0] == "CreateProvisioningArtifact"
    assert (
        "updating stacks from version 'v1.1.0' (pa-0000000000001) to 'v1.2.0' replaces or "
        "removes no stateful resource"
    ) in plan.notes


def test_a_previous_template_that_cannot_be_read_blocks_unless_allowed():
    missing = previous(template=None, problem=f"{LOCATION} does not exist")
    new = stack_template(retention="90")
    [blocker] = decide(new, missing).blockers
    assert blocker == (
        "cannot tell whether updating stacks from version 'v1.1.0' (pa-0000000000001) to "
        f"'v1.2.0' replaces a stateful resource: {LOCATION} does not exist; pass "
        "--allow-replacement to publish anyway"
    )
    allowed = decide(new, missing, allow=True)
    assert allowed.blockers == [] and any("cannot tell" in w for w in allowed.warnings)


def test_a_previous_file_that_is_no_template_is_a_reason_not_a_crash():
    plan = decide(stack_template(retention="90"), previous(template=["not", "a", "template"]))
    [blocker] = plan.blockers
    assert "the preview cannot read the templates: not a CloudFormation template" in blocker


def test_the_previous_version_is_the_newest_active_one_and_only_for_a_new_version():
    old, newer = published_artifact(1, OLD), published_artifact(2, stack_template(retention="60"))
    retired = published_artifact(3, stack_template(retention="7"), active=False)
    artifacts = (old, newer, retired)
    assert upgrade_from(artifacts, body_target(stack_template(retention="90"), "v1.4.0")) == newer
    # the bytes are published already (a docs-only commit): no new version, nothing to read
    assert upgrade_from(artifacts, body_target(stack_template(retention="60"), "v9.0.0")) is None
    # the version name is taken by other bytes: blocked anyway, nothing to read
    assert upgrade_from(artifacts, body_target(stack_template(retention="90"), "v1.1.0")) is None
    assert upgrade_from((), body_target(OLD)) is None  # a first version
    assert upgrade_from((retired,), body_target(OLD)) is None


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name=REGION)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def get_object_params(body):
    return {
        "Bucket": context().bucket,
        "Key": f"templates/{sha(body)}.json",
        "ExpectedBucketOwner": ACCOUNT,
    }


def test_the_previous_template_is_read_from_its_content_addressed_key(s3):
    client, stub = s3
    response = {
        "Body": io.BytesIO(OLD),
        "ContentLength": len(OLD),
        "ContentType": "application/json",
    }
    stub.add_response("get_object", response, get_object_params(OLD))
    found = read_previous_template(client, context(), PREVIOUS)
    assert found == previous()


def test_a_missing_or_altered_previous_template_is_reported_as_a_problem(s3):
    client, stub = s3
    stub.add_client_error("get_object", "NoSuchKey", http_status_code=404)
    missing = read_previous_template(client, context(), PREVIOUS)
    assert (missing.template, missing.problem) == (None, f"{LOCATION} does not exist")
    altered = OLD.replace(b"gc-prod-inputs", b"gc-other-inputs")
    stub.add_response("get_object", {"Body": io.BytesIO(altered)}, get_object_params(OLD))
    assert read_previous_template(client, context(), PREVIOUS).problem == (
        f"{LOCATION} does not hold the template it names"
    )


def test_a_version_without_a_sha256_is_a_problem_without_any_read(s3):
    client, _ = s3
    by_hand = type(PREVIOUS)(id="pa-0000000000009", name="manual", description="made by hand")
    found = read_previous_template(client, context(), by_hand)
    assert found.problem == "its description names no template sha256"


PER_REGION_RELEASE = "f1cf291"  # the last commit whose dist/ held one template per region


@pytest.fixture(scope="module")
def per_region_template():
    """What stacks made before the one template run on: dist/eu-central-1.json of then."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{PER_REGION_RELEASE}:dist/{REGION}.json"],
        capture_output=True,
        check=False,
    )
    if shown.returncode:
        pytest.skip(f"{PER_REGION_RELEASE} is not in this clone's history")
    return json.loads(shown.stdout)


def flagged(finding):
    """The logical ids a refusal or warning names as replaced or removed."""
    return set(re.findall(r"(?:replace|remove) (\w+) \(AWS::", finding))


def test_the_move_from_a_per_region_template_is_refused_and_says_what_to_do(
    per_region_template, tmp_path, monkeypatch, capsys
):
    new_body = build.render()
    plan = decide(new_body, previous(template=per_region_template))
    [blocker] = plan.blockers
    old_subnets = {
        logical_id
        for logical_id, resource in per_region_template["Resources"].items()
        if resource["Type"] == "AWS::EC2::Subnet"
    }
    assert old_subnets == {f"PrivateSubnetEuc1Az{n}" for n in (1, 2, 3)}
    assert flagged(blocker) == old_subnets  # the VPC, buckets, repositories: not at risk
    assert "this is the one-time move from the per-region templates to the one template" in (
        blocker
    )
    assert "(README: Upgrading a stack made from a per-region template)" in blocker
    assert blocker.endswith("; pass --allow-replacement to publish anyway")

    # the inspect command of the refusal works on those templates (S3 download stood in for)
    command = re.search(r"&& python build\.py (diff [^`]+)`", blocker).group(1).split()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "previous.json").write_text(json.dumps(per_region_template))
    write_dist(tmp_path / "dist", new_body)
    assert build.main(command) == 3
    removed = {
        line.split()[1]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("remove ")
    }
    assert old_subnets <= removed

    allowed = decide(new_body, previous(template=per_region_template), allow=True)
    assert allowed.blockers == []
    [warning] = [w for w in allowed.warnings if "one-time move" in w]
    assert flagged(warning) == old_subnets
    assert warning.endswith("publishing anyway (--allow-replacement)")
    assert operations(allowed)[0] == "CreateProvisioningArtifact"


def test_only_a_per_region_template_followed_by_the_one_template_is_the_move(
    per_region_template,
):
    one_template = json.loads(build.render())
    assert from_per_region_template(per_region_template, one_template)
    assert not from_per_region_template(one_template, one_template)
    assert not from_per_region_template(per_region_template, per_region_template)
    assert not from_per_region_template(["not", "a", "template"], one_template)
