"""training_jobs_log_group: AWS errors part-way, duplicate deliveries and a whole adoption.

Same moto account and emulated AssociateKmsKey as tests/test_training_jobs_log_group.py.
"""

import pytest

from tests import test_training_jobs_log_group as base
from tests.test_training_jobs_log_group import (
    EVENTS_IN_STREAM,
    MADE,
    NAME,
    OURS,
    SAGEMAKERS,
    add_group,
    assert_groups,
    fill,
    group_state,
    invoke,
    messages,
    props,
)

# The fixtures, shared by name (pytest finds fixtures among a module's attributes).
moto_account, aws, api = base.moto_account, base.aws, base.api


def test_access_denied_mid_create_fails_with_reason_and_leaves_no_group(aws, api, cfn_responses):
    api.faults["PutRetentionPolicy"] = ("AccessDeniedException", "not allowed to set retention")

    body = invoke(cfn_responses, "Create", fill(props(), aws))

    assert body["Status"] == "FAILED"
    assert "AccessDeniedException" in body["Reason"]
    assert "not allowed to set retention" in body["Reason"]
    assert body["PhysicalResourceId"].startswith("failed-create-")
    # The Delete that follows a failed Create carries that marker and cleans nothing up, so
    # the Create must not leave a group bound to the key the rollback is about to delete.
    assert group_state(aws, NAME) is None
    api.calls.clear()
    assert invoke(cfn_responses, "Delete", {}, PhysicalResourceId=body["PhysicalResourceId"])[
        "Status"
    ] == ("SUCCESS")
    assert api.calls == []

    del api.faults["PutRetentionPolicy"]
    retried = invoke(cfn_responses, "Create", fill(props(), aws))

    assert retried["Status"] == "SUCCESS", retried["Reason"]
    assert retried["PhysicalResourceId"] == f"created:{NAME}"
    assert_groups(aws, {NAME: (14, "{key}")})


def test_access_denied_mid_adoption_fails_and_unbinds_the_key(aws, api, cfn_responses):
    add_group(aws, NAME, 30)
    api.faults["PutRetentionPolicy"] = ("AccessDeniedException", "not allowed to set retention")

    body = invoke(cfn_responses, "Create", fill(props(), aws))

    assert body["Status"] == "FAILED"
    assert "AccessDeniedException: " in body["Reason"]
    assert body["PhysicalResourceId"].startswith("failed-create-")
    assert_groups(aws, SAGEMAKERS)  # SageMaker's group and logs stay, without our key


def test_failed_cleanup_still_reports_the_original_error(aws, api, cfn_responses):
    api.faults["PutRetentionPolicy"] = ("AccessDeniedException", "not allowed to set retention")
    api.faults["DeleteLogGroup"] = ("AccessDeniedException", "not allowed to delete")

    body = invoke(cfn_responses, "Create", fill(props(), aws))

    assert body["Status"] == "FAILED"
    assert "not allowed to set retention" in body["Reason"]
    assert api.calls == [*MADE, "DeleteLogGroup"]


def test_update_error_keeps_the_physical_id(aws, api, cfn_responses):
    add_group(aws, NAME, 7, aws.key)
    api.faults["AssociateKmsKey"] = ("AccessDeniedException", "kms:Decrypt denied")

    body = invoke(
        cfn_responses,
        "Update",
        fill(props(key="{other_key}"), aws),
        PhysicalResourceId=f"adopted:{NAME}",
    )

    assert body["Status"] == "FAILED"
    assert "AccessDeniedException" in body["Reason"] and "kms:Decrypt denied" in body["Reason"]
    assert body["PhysicalResourceId"] == f"adopted:{NAME}"
    assert_groups(aws, OURS)


def test_describe_throttled_fails_without_creating(aws, api, cfn_responses):
    api.faults["DescribeLogGroups"] = ("ThrottlingException", "Rate exceeded")

    body = invoke(cfn_responses, "Create", fill(props(), aws))

    assert body["Status"] == "FAILED"
    assert "ThrottlingException" in body["Reason"]
    assert api.calls == ["DescribeLogGroups"]
    assert group_state(aws, NAME) is None


def test_delete_error_other_than_not_found_fails(aws, api, cfn_responses):
    add_group(aws, NAME, 7, aws.key)
    api.faults["DeleteLogGroup"] = ("AccessDeniedException", "not allowed to delete")

    body = invoke(cfn_responses, "Delete", {}, PhysicalResourceId=f"created:{NAME}")

    assert body["Status"] == "FAILED"
    assert "not allowed to delete" in body["Reason"]
    assert body["PhysicalResourceId"] == f"created:{NAME}"
    assert_groups(aws, OURS)


@pytest.mark.parametrize("origin", ["created", "adopted"])
def test_duplicate_delete_is_harmless(aws, api, cfn_responses, origin):
    add_group(aws, NAME, 7, aws.key)

    first = invoke(cfn_responses, "Delete", {}, PhysicalResourceId=f"{origin}:{NAME}")
    state = group_state(aws, NAME)
    second = invoke(cfn_responses, "Delete", {}, PhysicalResourceId=f"{origin}:{NAME}")

    assert (first["Status"], second["Status"]) == ("SUCCESS", "SUCCESS"), second["Reason"]
    assert state == ({"created": None, "adopted": (7, None)}[origin])
    assert group_state(aws, NAME) == state
    if state:
        assert messages(aws, NAME) == {"job-1/algo-1": EVENTS_IN_STREAM}


def test_adopted_lifecycle_leaves_sagemakers_group_and_logs(aws, api, cfn_responses):
    add_group(aws, NAME, 30)

    created = invoke(cfn_responses, "Create", fill(props(), aws))
    updated = invoke(
        cfn_responses,
        "Update",
        fill(props(retention="60", key="{other_key}"), aws),
        PhysicalResourceId=created["PhysicalResourceId"],
    )
    assert_groups(aws, {NAME: (60, "{other_key}")})
    deleted = invoke(cfn_responses, "Delete", {}, PhysicalResourceId=updated["PhysicalResourceId"])

    assert [created["Status"], updated["Status"], deleted["Status"]] == ["SUCCESS"] * 3
    assert {created["PhysicalResourceId"], updated["PhysicalResourceId"]} == {
        f"adopted:30:none:{NAME}"
    }
    assert_groups(aws, SAGEMAKERS)  # as SageMaker had it: its retention, no key
