"""training_jobs_log_group: adopting a group older than the stack, and giving it back.

The physical id records the group's retention and key from before the stack; Update keeps the
id (so CloudFormation sends no Delete) and never shortens that retention; Delete restores both.
Same moto account and emulated AssociateKmsKey as tests/test_training_jobs_log_group.py.
"""

import threading

import pytest

from templates.functions import training_jobs_log_group
from templates.functions.training_jobs_log_group import adopted_id, parse_id
from tests import test_training_jobs_log_group as base
from tests.conftest import make_event

NAME, NEW_NAME, UNKNOWN_KEY = base.NAME, base.NEW_NAME, base.UNKNOWN_KEY
# The fixtures, shared by name (pytest finds fixtures among a module's attributes).
moto_account, aws, api = base.moto_account, base.aws, base.api

# id, group before (retention, key), properties' retention, ShortenExistingRetention,
# physical id, group while the stack has it, the calls of Create
ADOPTIONS = {
    "longer-retention-kept": ((30, None), "14", None, "30:none", (30, "{key}")),
    "shorter-retention-raised": ((7, None), "14", None, "7:none", (14, "{key}")),
    "never-expiring-kept": ((None, None), "14", None, "never:none", (None, "{key}")),
    "own-key-replaced-for-now": (
        (None, "{other_key}"),
        "90",
        "false",
        "never:{other_key}",
        (None, "{key}"),
    ),
    "shortened-when-asked": ((3653, None), "14", "true", "3653:none", (14, "{key}")),
    "never-expiring-shortened-when-asked": (
        (None, None),
        "14",
        "TRUE",
        "never:none",
        (14, "{key}"),
    ),
}


def properties(aws, retention="14", shorten=None, name=NAME):
    found = base.fill(base.props(name=name, retention=retention), aws)
    return found if shorten is None else {**found, "ShortenExistingRetention": shorten}


@pytest.mark.parametrize(
    ("before", "retention", "shorten", "recorded", "while_ours"),
    ADOPTIONS.values(),
    ids=ADOPTIONS.keys(),
)
def test_adopted_group_keeps_its_logs_and_gets_back_what_it_had(
    aws, api, cfn_responses, before, retention, shorten, recorded, while_ours
):
    base.add_group(aws, NAME, *base.fill(before, aws))
    asked = properties(aws, retention, shorten)

    created = base.invoke(cfn_responses, "Create", asked)

    assert created["Status"] == "SUCCESS", created["Reason"]
    physical_id = base.fill(f"adopted:{recorded}:{NAME}", aws)
    assert created["PhysicalResourceId"] == physical_id
    base.assert_groups(aws, {NAME: while_ours})

    updated = base.invoke(cfn_responses, "Update", asked, PhysicalResourceId=physical_id)

    assert (updated["Status"], updated["PhysicalResourceId"]) == ("SUCCESS", physical_id)
    base.assert_groups(aws, {NAME: while_ours})

    deleted = base.invoke(cfn_responses, "Delete", asked, PhysicalResourceId=physical_id)

    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    base.assert_groups(aws, {NAME: before})


def test_update_never_shortens_the_retention_the_group_had(aws, api, cfn_responses):
    base.add_group(aws, NAME, 60)
    physical_id = base.invoke(cfn_responses, "Create", properties(aws, "14"))["PhysicalResourceId"]
    assert physical_id == f"adopted:60:none:{NAME}"

    for retention, expected in [("365", 365), ("30", 60), ("1", 60)]:
        body = base.invoke(
            cfn_responses, "Update", properties(aws, retention), PhysicalResourceId=physical_id
        )
        assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", physical_id)
        base.assert_groups(aws, {NAME: (expected, "{key}")})

    base.invoke(cfn_responses, "Delete", {}, PhysicalResourceId=physical_id)
    base.assert_groups(aws, {NAME: (60, None)})


def test_prior_key_no_longer_usable_detaches_ours_and_restores_retention(aws, api, cfn_responses):
    base.add_group(aws, NAME, 14, aws.key)
    physical_id = f"adopted:30:{UNKNOWN_KEY}:{NAME}"  # that key has been deleted since

    body = base.invoke(cfn_responses, "Delete", {}, PhysicalResourceId=physical_id)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert api.calls == ["AssociateKmsKey", "DisassociateKmsKey", "PutRetentionPolicy"]
    base.assert_groups(aws, {NAME: (30, None)})


def test_first_release_ids_keep_working(aws, api, cfn_responses):
    base.add_group(aws, NAME, 7, aws.key)  # adopted by the first release, retention unknown
    legacy = f"adopted:{NAME}"

    updated = base.invoke(cfn_responses, "Update", properties(aws, "3"), PhysicalResourceId=legacy)

    assert (updated["Status"], updated["PhysicalResourceId"]) == ("SUCCESS", legacy)
    base.assert_groups(aws, {NAME: (3, "{key}")})  # as that release did: nothing recorded
    api.calls.clear()

    deleted = base.invoke(cfn_responses, "Delete", {}, PhysicalResourceId=legacy)

    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert api.calls == ["DisassociateKmsKey"]
    base.assert_groups(aws, {NAME: (3, None)})


def test_renaming_adopts_the_new_group_and_gives_the_old_one_back(aws, api, cfn_responses):
    base.add_group(aws, NAME, 30)
    base.add_group(aws, NEW_NAME)
    old_id = base.invoke(cfn_responses, "Create", properties(aws))["PhysicalResourceId"]

    updated = base.invoke(
        cfn_responses, "Update", properties(aws, name=NEW_NAME), PhysicalResourceId=old_id
    )
    # CloudFormation then deletes the old id, with the old properties.
    deleted = base.invoke(cfn_responses, "Delete", properties(aws), PhysicalResourceId=old_id)

    assert updated["PhysicalResourceId"] == f"adopted:never:none:{NEW_NAME}"
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    base.assert_groups(aws, {NAME: (30, None), NEW_NAME: (None, "{key}")})


def test_redelivered_create_does_not_record_our_own_key_as_the_old_one(aws, api, cfn_responses):
    # Lambda may deliver a Create twice: the second finds the group the first made.
    first = base.invoke(cfn_responses, "Create", properties(aws))
    second = base.invoke(cfn_responses, "Create", properties(aws))

    assert first["PhysicalResourceId"] == f"created:{NAME}"
    assert second["PhysicalResourceId"] == f"adopted:14:none:{NAME}"
    base.invoke(cfn_responses, "Delete", {}, PhysicalResourceId=second["PhysicalResourceId"])
    base.assert_groups(aws, {NAME: (14, None)})  # not left with the key the stack deletes


@pytest.mark.parametrize(
    "group",
    [
        {},
        {"retentionInDays": 3653, "kmsKeyId": UNKNOWN_KEY},
        {"retentionInDays": 1, "kmsKeyId": UNKNOWN_KEY.replace(":aws:", ":aws-us-gov:")},
    ],
)
def test_ids_round_trip_at_the_longest_name(group):
    name = "/aws/" + "x" * 507  # CloudWatch's longest group name: 512 characters, no colon
    physical_id = adopted_id(name, group, "arn:aws:kms:eu-central-1:123456789012:key/ours")

    assert parse_id(physical_id) == (
        "adopted",
        name,
        (group.get("retentionInDays"), group.get("kmsKeyId")),
    )
    assert len(physical_id) < 1024  # CloudFormation's limit for a physical id
    assert parse_id(f"adopted:{name}") == ("adopted", name, None)
    assert parse_id(f"created:{name}") == ("created", name, None)
    assert training_jobs_log_group.adopted_retention(14, None, False) is None


class AnsweredLater:
    """A context whose watchdog answers (sets ``cancelled``) when ``answer()`` is called."""

    def __init__(self):
        self.cancelled = threading.Event()

    def get_remaining_time_in_millis(self):
        return 300_000


@pytest.mark.parametrize("before", [None, (30, None)], ids=["missing", "sagemakers"])
def test_create_finishing_after_the_watchdog_answered_leaves_nothing_behind(
    aws, api, monkeypatch, before
):
    # The watchdog answered FAILED while the calls were under way; the Delete that follows
    # carries failed-create-..., so the Create must undo itself.
    if before:
        base.add_group(aws, NAME, *before)
    context = AnsweredLater()
    configure = training_jobs_log_group.configure

    def slow_configure(*args):
        configure(*args)
        context.cancelled.set()

    monkeypatch.setattr(training_jobs_log_group, "configure", slow_configure)
    event = make_event("Create", "http://127.0.0.1:9/unused", properties(aws))

    with pytest.raises(RuntimeError, match="watchdog has answered"):
        training_jobs_log_group.create(event, context)

    assert base.group_state(aws, NAME) == before


def test_create_after_the_watchdog_answered_creates_nothing(aws, api):
    context = AnsweredLater()
    context.cancelled.set()
    event = make_event("Create", "http://127.0.0.1:9/unused", properties(aws))

    with pytest.raises(RuntimeError, match="watchdog has answered"):
        training_jobs_log_group.create(event, context)

    assert api.calls == ["DescribeLogGroups"]
    assert base.group_state(aws, NAME) is None
