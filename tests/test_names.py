"""Physical names: the worst case (a 21-character prefix, the longest region name of every
partition botocore knows) fits every service's limit, names that are global per account or
partition carry the region, and the names Grand Challenge relies on are exactly as expected."""

import re

import botocore.session
import pytest

from templates.names import PATTERNS
from templates.runtime import MAX_PREFIX_LENGTH

LONGEST_PREFIX = "g" * MAX_PREFIX_LENGTH
ACCOUNT = "123456789012"


def all_regions():
    session = botocore.session.get_session()
    return sorted(
        {
            region
            for partition in session.get_available_partitions()
            for service in ("s3", "iam", "sagemaker", "cloudformation")
            for region in session.get_available_regions(service, partition)
        }
    )


LONGEST_REGION = max(all_regions(), key=len)
# name key -> (limit, allowed characters)
LIMITS = {
    "inputs_bucket": (63, r"[a-z0-9.-]+"),
    "outputs_bucket": (63, r"[a-z0-9.-]+"),
    "logs_bucket": (63, r"[a-z0-9.-]+"),
    "security_group": (255, r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+"),
    "vpc_tag": (256, r".+"),
    "execution_role": (64, r"[\w+=,.@-]+"),
    "execution_policy": (128, r"[\w+=,.@-]+"),
    "schedule_policy": (128, r"[\w+=,.@-]+"),
    "logs_policy": (128, r"[\w+=,.@-]+"),
    "ecr_policy": (128, r"[\w+=,.@-]+"),
    "kms_alias": (256, r"alias/[a-zA-Z0-9/_-]+"),
    "training_jobs_log_group": (512, r"[\w./#-]+"),
    "stopped_jobs_log_group": (512, r"[\w./#-]+"),
    "logs_resource_policy": (255, r".+"),
    "stopped_jobs_rule": (64, r"[\.\-_A-Za-z0-9]+"),
    "stopped_jobs_queue": (80, r"[A-Za-z0-9_-]+"),
    "stopped_jobs_dead_letter_queue": (80, r"[A-Za-z0-9_-]+"),
    "consume_stopped_jobs_policy": (128, r"[\w+=,.@-]+"),
    "undeliverable_events_queue": (80, r"[A-Za-z0-9_-]+"),
    "undeliverable_events_alarm": (255, r".+"),
    "unprocessed_messages_alarm": (255, r".+"),
    "repository": (256, r"[a-z0-9._/-]+"),
    "training_job": (63 - 42 + 2, r"[A-Za-z0-9-]+\*"),  # the prefix plus "-*"
}
GLOBAL_PER_ACCOUNT_OR_PARTITION = {
    "inputs_bucket",
    "outputs_bucket",
    "logs_bucket",
    "execution_role",
    "execution_policy",
    "schedule_policy",
    "logs_policy",
    "ecr_policy",
    "consume_stopped_jobs_policy",
}


def resolve(pattern, prefix=LONGEST_PREFIX, region=LONGEST_REGION):
    return (
        pattern.replace("${NamePrefix}", prefix)
        .replace("${AWS::Region}", region)
        .replace("${AWS::AccountId}", ACCOUNT)
        .replace("${RepositoryName}", "workstations/workstationimage")
    )


def test_every_name_has_a_limit_checked():
    assert set(LIMITS) == set(PATTERNS)


@pytest.mark.parametrize("key", sorted(PATTERNS))
def test_worst_case_name_fits_its_service_limit(key):
    limit, characters = LIMITS[key]
    name = resolve(PATTERNS[key])
    assert "${" not in name, f"{key}: unresolved variable in {name}"
    assert len(name) <= limit, f"{key}: {name} is {len(name)} > {limit}"
    assert re.fullmatch(characters, name), f"{key}: {name} has characters the service refuses"


def test_worst_case_is_really_the_worst_case():
    assert len(LONGEST_PREFIX) == MAX_PREFIX_LENGTH == 21
    assert len(LONGEST_REGION) >= len("ap-southeast-2")


@pytest.mark.parametrize("key", sorted(GLOBAL_PER_ACCOUNT_OR_PARTITION))
def test_account_or_partition_wide_names_differ_between_regions(key):
    assert resolve(PATTERNS[key], region="eu-central-1") != resolve(
        PATTERNS[key], region="eu-west-1"
    )
    if key.endswith("_bucket"):  # bucket names are global across all accounts
        assert "${AWS::AccountId}" in PATTERNS[key]


def test_names_grand_challenge_relies_on_are_unchanged():
    assert PATTERNS["repository"] == "${NamePrefix}/${RepositoryName}"
    assert PATTERNS["training_job"] == "${NamePrefix}-*"
    assert PATTERNS["training_jobs_log_group"] == "/aws/sagemaker/TrainingJobs"
    assert PATTERNS["stopped_jobs_log_group"] == "/aws/events/${NamePrefix}-components-stopped-jobs"
    # Grand Challenge names jobs <prefix>-A-<uuid4>-00: 42 characters after the prefix.
    job = f"{LONGEST_PREFIX}-A-{'0' * 8}-{'0' * 4}-{'0' * 4}-{'0' * 4}-{'0' * 12}-00"
    assert len(job) == 63
