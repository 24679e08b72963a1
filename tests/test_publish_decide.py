"""publish's decisions, tested with plain state fixtures: no stubs, no call order."""

import json

import pytest

from publish.actions import Ref
from publish.config import UsageError, organization_node
from publish.decide import DEPLOY_LAUNCH_ROLE, plan_region
from publish.state import BucketState, CatalogState, Share
from publish.versions import lifecycle_changes
from tests.publish_fixtures import (
    CONFIGURED_BUCKET,
    ORG_ID,
    OU_ID,
    PORTFOLIO_ID,
    PRINCIPAL,
    PRODUCT_ID,
    ROLE,
    SETTINGS,
    artifact,
    config_with,
    context,
    published_state,
    target,
)


def decide(state, *, config=None, version_target=None, bucket=CONFIGURED_BUCKET):
    config = config or config_with()
    return plan_region(config, version_target or target(), context(), bucket, state)


def operations(plan):
    return [action.operation for action in plan.actions]


def calls(plan, operation):
    return [action.params for action in plan.actions if action.operation == operation]


def test_everything_in_place_plans_nothing():
    plan = decide(published_state(artifact(1)), version_target=target("v1.1.0", "1"))
    assert plan.actions == []
    assert plan.blockers == []
    assert plan.version == "v1.1.0"


def test_bytes_already_published_under_another_name_make_no_new_version():
    """A docs-only commit: a new `git describe` name, the same template bytes."""
    state = published_state(artifact(1, guidance="DEPRECATED"), artifact(2))
    plan = decide(state, version_target=target("v1.2.0-3-gabc1234", revision="2"))
    assert operations(plan) == []
    assert plan.version == "v1.2.0"
    assert any("already published as version 'v1.2.0' (pa-0000000000002)" in n for n in plan.notes)


def test_new_bytes_create_a_version_and_retire_old_ones():
    state = published_state(*(artifact(n) for n in range(1, 5)))
    plan = decide(state, version_target=target("v1.9.0", revision="9"))
    assert operations(plan)[0] == "CreateProvisioningArtifact"
    created = plan.actions[0]
    assert created.params["Parameters"]["Name"] == "v1.9.0"
    assert "IdempotencyToken" not in created.params  # botocore makes one per call
    updates = {p["ProvisioningArtifactId"]: p for p in calls(plan, "UpdateProvisioningArtifact")}
    # keep 3 active: the new one and the two newest; every older one is deprecated
    assert updates["pa-0000000000001"] == {
        "ProductId": PRODUCT_ID,
        "ProvisioningArtifactId": "pa-0000000000001",
        "Guidance": "DEPRECATED",
        "Active": False,
    }
    assert updates["pa-0000000000002"]["Active"] is False
    assert "Active" not in updates["pa-0000000000004"]
    assert operations(plan)[-1] == "UpdateProvisioningArtifact"  # after the new version


def test_versions_provisioned_products_run_on_are_never_deactivated():
    state = published_state(
        *(artifact(n) for n in range(1, 5)), in_use=frozenset({"pa-0000000000001"})
    )
    plan = decide(state, version_target=target("v1.9.0", revision="9"))
    updates = {p["ProvisioningArtifactId"]: p for p in calls(plan, "UpdateProvisioningArtifact")}
    assert "Active" not in updates["pa-0000000000001"]
    assert updates["pa-0000000000001"]["Guidance"] == "DEPRECATED"
    assert updates["pa-0000000000002"]["Active"] is False
    assert any("provisioned products run on v1.1.0" in note for note in plan.notes)


def test_same_name_with_other_bytes_is_blocked():
    plan = decide(published_state(artifact(1)), version_target=target("v1.1.0", revision="other"))
    assert plan.actions == []
    assert "never changed" in plan.blockers[0]


def test_version_quota_is_warned_about_well_before_and_then_blocks():
    many = [artifact(n) for n in range(1, 81)]
    plan = decide(published_state(*many), version_target=target("v9.0.0", revision="new"))
    assert "81 of at most 100" in plan.warnings[0] and "Service Quotas" in plan.warnings[0]
    full = decide(
        published_state(*many, *(artifact(n) for n in range(81, 101))),
        version_target=target("v9.0.0", revision="new"),
    )
    assert full.actions == [] and "quota is 100" in full.blockers[0]
    raised = decide(
        published_state(*many),
        config=config_with(version_quota=200),
        version_target=target("v9.0.0", revision="new"),
    )
    assert not [w for w in raised.warnings if "versions" in w]


def test_a_fresh_account_creates_portfolio_product_and_fills_ids_from_results():
    plan = decide(CatalogState(launch_role_exists=True), bucket=BucketState(exists=False))
    assert operations(plan)[:7] == [
        "CreateBucket",
        "PutBucketVersioning",
        "PutBucketEncryption",
        "PutPublicAccessBlock",
        "PutBucketPolicy",
        "PutObject",
        "CreatePortfolio",
    ]
    assert operations(plan)[7:] == [
        "CreateProduct",
        "AssociateProductWithPortfolio",
        "CreateConstraint",
        "AssociatePrincipalWithPortfolio",
    ]
    constraint = calls(plan, "CreateConstraint")[0]
    assert constraint["PortfolioId"] == Ref("portfolio_id")
    assert constraint["ProductId"] == Ref("product_id")
    assert json.loads(constraint["Parameters"]) == {"LocalRoleName": ROLE}
    assert "IdempotencyToken" not in constraint
    create_product = next(a for a in plan.actions if a.operation == "CreateProduct")
    assert create_product.waits == ("version", "product_searchable")
    assert plan.creates_product


def test_missing_launch_role_blocks_with_the_deploy_command():
    plan = decide(
        published_state(artifact(1), launch_constraints=(), launch_role_exists=False),
        version_target=target("v1.1.0", "1"),
    )
    assert "GrandChallengeComponentsLaunch' does not exist in account" in plan.blockers[0]
    assert DEPLOY_LAUNCH_ROLE in plan.blockers[0]


def test_a_launch_constraint_with_another_role_is_updated():
    state = published_state(artifact(1), launch_constraints=(("cons-abcdefghijklm", "OldRole"),))
    plan = decide(state, version_target=target("v1.1.0", "1"))
    assert calls(plan, "UpdateConstraint") == [
        {
            "Id": "cons-abcdefghijklm",
            "Parameters": json.dumps({"LocalRoleName": ROLE}),
            "Description": f"Launch as the local IAM role {ROLE}",
        }
    ]


def test_principals_are_reconciled_and_wildcards_are_patterns():
    wildcard = "arn:aws:iam:::role/GrandChallenge*"
    removed = "arn:aws:iam::123456789012:role/Gone"
    state = published_state(artifact(1), principals={removed: "IAM", PRINCIPAL: "IAM_PATTERN"})
    plan = decide(
        state,
        config=config_with(principals=[PRINCIPAL, wildcard]),
        version_target=target("v1.1.0", "1"),
    )
    assert calls(plan, "DisassociatePrincipalFromPortfolio") == [
        {"PortfolioId": PORTFOLIO_ID, "PrincipalARN": removed, "PrincipalType": "IAM"}
    ]
    assert calls(plan, "AssociatePrincipalWithPortfolio") == [
        {"PortfolioId": PORTFOLIO_ID, "PrincipalARN": wildcard, "PrincipalType": "IAM_PATTERN"}
    ]


def test_wildcards_with_an_account_id_are_refused():
    with pytest.raises(UsageError, match="wildcards are only allowed without an account"):
        config_with(principals=["arn:aws:iam::123456789012:role/Team*"])


def test_no_principals_warns_that_nobody_can_launch():
    plan = decide(
        published_state(artifact(1), principals={}),
        config=config_with(principals=[]),
        version_target=target("v1.1.0", "1"),
    )
    assert any("nobody can launch" in warning for warning in plan.warnings)


def test_shares_are_created_updated_and_removed_to_match_the_settings():
    config = config_with(sharing={"organization_nodes": [ORG_ID, OU_ID, "210987654321"]})
    state = published_state(
        artifact(1),
        organizations_access="ENABLED",
        shares=(
            Share("ORGANIZATIONAL_UNIT", OU_ID, share_principals=False),
            Share("ORGANIZATIONAL_UNIT", "ou-abcd-99999999", share_principals=True),
        ),
    )
    plan = decide(state, config=config, version_target=target("v1.1.0", "1"))
    assert [(a.operation, a.params.get("OrganizationNode")) for a in plan.actions] == [
        ("CreatePortfolioShare", {"Type": "ORGANIZATION", "Value": ORG_ID}),
        ("UpdatePortfolioShare", {"Type": "ORGANIZATIONAL_UNIT", "Value": OU_ID}),
        ("CreatePortfolioShare", {"Type": "ACCOUNT", "Value": "210987654321"}),
        ("DeletePortfolioShare", {"Type": "ORGANIZATIONAL_UNIT", "Value": "ou-abcd-99999999"}),
    ]
    assert all(a.waits == ("share",) for a in plan.actions)
    assert plan.actions[0].params["SharePrincipals"] is True


def test_sharing_needs_trusted_access_first():
    config = config_with(sharing={"organization_nodes": [ORG_ID]})
    plan = decide(
        published_state(artifact(1), organizations_access="DISABLED"),
        config=config,
        version_target=target("v1.1.0", "1"),
    )
    assert operations(plan) == ["EnableAWSOrganizationsAccess", "CreatePortfolioShare"]


def test_shared_principals_must_be_account_less():
    config = config_with(
        principals=["arn:aws:iam::123456789012:role/Local"], sharing={"organization_nodes": [OU_ID]}
    )
    plan = decide(
        published_state(artifact(1), organizations_access="ENABLED"),
        config=config,
        version_target=target("v1.1.0", "1"),
    )
    assert any("shares do not carry them" in warning for warning in plan.warnings)


@pytest.mark.parametrize(
    ("value", "node_type"),
    [(ORG_ID, "ORGANIZATION"), (OU_ID, "ORGANIZATIONAL_UNIT"), ("210987654321", "ACCOUNT")],
)
def test_organization_nodes_are_typed_by_their_id(value, node_type):
    assert organization_node(value) == {"Type": node_type, "Value": value}


def test_republishing_an_older_version_leaves_newer_ones_alone():
    artifacts = tuple(artifact(n) for n in range(1, 5))
    assert lifecycle_changes(artifacts, "pa-0000000000001", 3, frozenset()) == []


def test_an_inactive_version_with_the_same_bytes_is_reactivated():
    state = published_state(artifact(1, active=False, guidance="DEPRECATED"), artifact(2))
    plan = decide(state, version_target=target("v1.1.0", "1"))
    assert calls(plan, "UpdateProvisioningArtifact")[0] == {
        "ProductId": PRODUCT_ID,
        "ProvisioningArtifactId": "pa-0000000000001",
        "Active": True,
        "Guidance": "DEFAULT",
    }


def test_the_real_build_settings_are_accepted():
    import build

    settings = build.load_settings(build.DEFAULT_SETTINGS)
    assert settings["publish"]["launch_role_name"] == SETTINGS["publish"]["launch_role_name"]
    config = config_with(**settings["publish"])
    assert config.portfolio_name == "Grand Challenge"
