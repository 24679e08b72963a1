"""The repository-on-delete custom resource against moto ECR, answering a real local ResponseURL.

A used repository (images pushed) is deleted with its images unless KeepImages is "true";
a repository not tagged as this stack's is refused; one already gone is success; Create and
Update only validate and answer an id that changes only with the repository's name.
"""

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from templates.functions import ecr_repository
from tests.conftest import answer_of, make_event, spy_on_clients

STACK_ID = make_event("Create", "")["StackId"]
OTHER_STACK_ID = "arn:aws:cloudformation:eu-central-1:123456789012:stack/other/9f8e7d6c"
NAME = "gc/algorithms/algorithmimage"
TAG = ecr_repository.OPT_IN_TAG_KEY
MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def ecr():
    with mock_aws():
        yield boto3.client("ecr", region_name="eu-central-1")


@pytest.fixture
def calls(monkeypatch):
    return spy_on_clients(monkeypatch, ecr_repository)


def used_repository(ecr, owner=STACK_ID, images=3):
    """A repository tagged for ``owner`` holding ``images`` images, as Grand Challenge leaves it."""
    ecr.create_repository(repositoryName=NAME, tags=[{"Key": TAG, "Value": owner}])
    for index in range(images):
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": MEDIA_TYPE, "layers": [], "n": index}
        )
        ecr.put_image(repositoryName=NAME, imageManifest=manifest, imageTag=f"v{index}")
    return NAME


def exists(ecr, name):
    try:
        ecr.describe_repositories(repositoryNames=[name])
    except ClientError as error:
        assert error.response["Error"]["Code"] == "RepositoryNotFoundException"
        return False
    return True


def delete(cfn_responses, keep="false", name=NAME, stack_id=STACK_ID):
    return answer_of(
        ecr_repository.handler,
        cfn_responses,
        "Delete",
        {"RepositoryName": name, "KeepImages": keep},
        PhysicalResourceId=ecr_repository.REPOSITORY_ID_PREFIX + name,
        StackId=stack_id,
    )


def test_delete_removes_a_repository_that_holds_images(ecr, calls, cfn_responses):
    used_repository(ecr)
    assert len(ecr.list_images(repositoryName=NAME)["imageIds"]) == 3

    body = delete(cfn_responses)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == "repository:" + NAME
    assert not exists(ecr, NAME)
    assert calls.calls == ["ListTagsForResource", "DeleteRepository"]


def test_the_arn_is_in_the_stacks_partition_region_and_account():
    assert (
        ecr_repository.repository_arn(STACK_ID, NAME)
        == "arn:aws:ecr:eu-central-1:123456789012:repository/" + NAME
    )
    china = "arn:aws-cn:cloudformation:cn-north-1:210987654321:stack/gc/1a2b"
    assert (
        ecr_repository.repository_arn(china, "p/x")
        == "arn:aws-cn:ecr:cn-north-1:210987654321:repository/p/x"
    )


def test_keep_images_leaves_the_repository_and_its_images_untouched(ecr, calls, cfn_responses):
    used_repository(ecr)

    body = delete(cfn_responses, keep="true")

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert len(ecr.list_images(repositoryName=NAME)["imageIds"]) == 3
    assert calls.calls == []


@pytest.mark.parametrize("owner", [OTHER_STACK_ID, None])
def test_a_repository_not_tagged_as_this_stacks_is_refused(ecr, calls, cfn_responses, owner):
    if owner:
        used_repository(ecr, owner=owner)
    else:
        ecr.create_repository(repositoryName=NAME)

    body = delete(cfn_responses)

    assert body["Status"] == "FAILED"
    assert f"Refusing to delete {NAME}" in body["Reason"]
    assert exists(ecr, NAME)
    assert "DeleteRepository" not in calls.calls


def test_a_repository_already_gone_is_success(ecr, calls, cfn_responses):
    body = delete(cfn_responses)
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert calls.calls == ["ListTagsForResource"]


def test_a_repository_deleted_between_the_tag_check_and_the_delete_is_success(
    ecr, calls, cfn_responses
):
    used_repository(ecr)
    gone = ecr.exceptions.RepositoryNotFoundException(
        {"Error": {"Code": "RepositoryNotFoundException", "Message": "gone"}}, "DeleteRepository"
    )
    calls.faults["DeleteRepository"] = gone
    assert delete(cfn_responses)["Status"] == "SUCCESS"


def test_an_ecr_failure_fails_the_delete_with_its_reason(ecr, calls, cfn_responses):
    used_repository(ecr)
    calls.faults["DeleteRepository"] = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteRepository"
    )
    body = delete(cfn_responses)
    assert body["Status"] == "FAILED"
    assert "AccessDeniedException" in body["Reason"]
    assert exists(ecr, NAME)


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_validate_and_name_the_repository(
    ecr, calls, cfn_responses, request_type
):
    body = answer_of(
        ecr_repository.handler,
        cfn_responses,
        request_type,
        {"RepositoryName": NAME, "KeepImages": "false"},
        PhysicalResourceId="repository:" + NAME,
    )
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == "repository:" + NAME
    assert body["Data"] == {"RepositoryName": NAME}
    assert calls.calls == []


def test_update_keeps_the_id_unless_the_name_changes(ecr, calls, cfn_responses):
    def update(name, keep):
        return answer_of(
            ecr_repository.handler,
            cfn_responses,
            "Update",
            {"RepositoryName": name, "KeepImages": keep},
            PhysicalResourceId="repository:" + NAME,
            OldResourceProperties={"RepositoryName": NAME, "KeepImages": "false"},
        )["PhysicalResourceId"]

    assert update(NAME, "true") == "repository:" + NAME  # keep switched on: same resource
    assert (
        update("gc2/algorithms/algorithmimage", "false")
        == "repository:gc2/algorithms/algorithmimage"
    )


@pytest.mark.parametrize(
    "properties",
    [
        {"KeepImages": "false"},
        {"RepositoryName": "", "KeepImages": "false"},
        {"RepositoryName": NAME},
        {"RepositoryName": NAME, "KeepImages": "yes"},
        {"RepositoryName": NAME, "KeepImages": True},
    ],
)
def test_malformed_properties_fail_create_without_touching_ecr(
    ecr, calls, cfn_responses, properties
):
    body = answer_of(ecr_repository.handler, cfn_responses, "Create", properties)
    assert body["Status"] == "FAILED"
    assert "ResourceProperties." in body["Reason"]
    assert calls.calls == []
