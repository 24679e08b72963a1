"""The executor against botocore's Stubber: ids flow between calls, fresh resources that are not
visible yet are retried, asynchronous work is waited for, and botocore makes the tokens."""

import boto3
import pytest
from botocore.stub import Stubber

from publish.actions import Action, Plan, Ref
from publish.apply import NOT_VISIBLE_YET_DELAYS, Executor
from publish.aws import Clients
from publish.config import PublishError
from tests.publish_fixtures import PORTFOLIO_ID, PRODUCT_ID, REGION, product_summary

ARTIFACT_ID = "pa-abcdefghijklm"
URL = f"https://bucket.s3.{REGION}.amazonaws.com/templates/abc.json"


@pytest.fixture
def sc():
    client = boto3.client("servicecatalog", region_name=REGION)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def executor(client, sleeps):
    return Executor(Clients(None, None, client), sleep=sleeps.append, poll_interval=1.0)


def constraint_action():
    params = {
        "PortfolioId": Ref("portfolio_id"),
        "ProductId": PRODUCT_ID,
        "Type": "LAUNCH",
        "Parameters": '{"LocalRoleName": "Launch"}',
    }
    return Action("servicecatalog", "CreateConstraint", params, "constraint")


def constraint_response():
    return {
        "ConstraintDetail": {
            "ConstraintId": "cons-abcdefghijklm",
            "Type": "LAUNCH",
            "Owner": "123456789012",
        },
        "ConstraintParameters": '{"LocalRoleName": "Launch"}',
        "Status": "AVAILABLE",
    }


def tokens_sent(client, operation):
    """The IdempotencyToken of every request (botocore fills it in before this hook runs)."""
    seen = []

    def record(params, model, **_):
        if model.name == operation:
            seen.append(params.get("IdempotencyToken"))

    # generic event name: handlers of a more specific one run before botocore's token filler
    client.meta.events.register("before-parameter-build", record)
    return seen


def test_a_constraint_on_a_fresh_product_is_retried_until_visible_with_fresh_tokens(sc):
    client, stub = sc
    expected = {
        "PortfolioId": PORTFOLIO_ID,
        "ProductId": PRODUCT_ID,
        "Type": "LAUNCH",
        "Parameters": '{"LocalRoleName": "Launch"}',
    }  # the Stubber checks before botocore adds the token
    stub.add_client_error(
        "create_constraint", "ResourceNotFoundException", expected_params=expected
    )
    stub.add_response("create_constraint", constraint_response(), expected)
    tokens = tokens_sent(client, "CreateConstraint")
    sleeps = []
    plan = Plan(actions=[constraint_action()], known={"portfolio_id": PORTFOLIO_ID})
    executor(client, sleeps).apply(plan)
    assert sleeps == [NOT_VISIBLE_YET_DELAYS[0]]
    assert plan.completed == 1
    # botocore's own token per call: a deleted constraint recreated later is never "replayed"
    assert len(set(tokens)) == 2 and all(tokens)


def test_a_resource_that_never_appears_fails_after_the_back_off(sc):
    client, stub = sc
    for _ in range(len(NOT_VISIBLE_YET_DELAYS) + 1):
        stub.add_client_error("create_constraint", "ResourceNotFoundException")
    sleeps = []
    plan = Plan(actions=[constraint_action()], known={"portfolio_id": PORTFOLIO_ID})
    with pytest.raises(PublishError, match=r"step 1/1 \(constraint\) failed"):
        executor(client, sleeps).apply(plan)
    assert sleeps == list(NOT_VISIBLE_YET_DELAYS)
    assert plan.completed == 0


def create_product_action():
    from publish.versions import _create_product
    from tests.publish_fixtures import config_with, context, target

    return _create_product(config_with(), target(), context())


def artifact_detail(status="CREATING"):
    return {
        "ProvisioningArtifactDetail": {
            "Id": ARTIFACT_ID,
            "Name": "v1.2.0",
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "Active": True,
        },
        "Info": {"TemplateUrl": URL},
        "Status": status,
    }


def test_a_new_product_is_waited_for_until_available_and_searchable(sc):
    client, stub = sc
    action = create_product_action()
    stub.add_response(
        "create_product",
        {
            "ProductViewDetail": {"ProductViewSummary": product_summary(), "Status": "CREATED"},
            **{k: v for k, v in artifact_detail().items() if k == "ProvisioningArtifactDetail"},
        },
        action.params,
    )
    stub.add_response("describe_provisioning_artifact", artifact_detail("CREATING"))
    stub.add_response("describe_provisioning_artifact", artifact_detail("AVAILABLE"))
    stub.add_response("search_products_as_admin", {"ProductViewDetails": []})
    found = {"ProductViewSummary": product_summary(), "Status": "CREATED"}
    stub.add_response("search_products_as_admin", {"ProductViewDetails": [found]})
    sleeps = []
    results = executor(client, sleeps).apply(Plan(actions=[action]))
    assert results == {"product_id": PRODUCT_ID, "artifact_id": ARTIFACT_ID}
    assert sleeps == [1.0, 1.0]  # one poll for AVAILABLE, one for the search index


def test_a_failed_version_says_how_to_find_out_why(sc):
    """DescribeProvisioningArtifact's Info is the template URL; a FAILED status has no reason."""
    client, stub = sc
    stub.add_response("describe_provisioning_artifact", artifact_detail("CREATING"))
    stub.add_response("describe_provisioning_artifact", artifact_detail("FAILED"))
    action = Action(
        "servicecatalog",
        "DescribeProvisioningArtifact",
        {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": ARTIFACT_ID},
        "wait",
        waits=("version",),
    )
    plan = Plan(actions=[action], known={"product_id": PRODUCT_ID, "artifact_id": ARTIFACT_ID})
    with pytest.raises(
        PublishError, match=f"FAILED .*check {URL} with `aws cloudformation validate-template`"
    ):
        executor(client, []).apply(plan)


def test_a_share_that_ends_with_errors_fails_the_step(sc):
    client, stub = sc
    node = {"Type": "ORGANIZATIONAL_UNIT", "Value": "ou-abcd-12345678"}
    params = {"PortfolioId": PORTFOLIO_ID, "OrganizationNode": node, "SharePrincipals": True}
    stub.add_response(
        "create_portfolio_share", {"PortfolioShareToken": "share-abcdefghijklm"}, params
    )
    stub.add_response(
        "describe_portfolio_share_status",
        {
            "PortfolioShareToken": "share-abcdefghijklm",
            "PortfolioId": PORTFOLIO_ID,
            "OrganizationNodeValue": "ou-abcd-12345678",
            "Status": "COMPLETED_WITH_ERRORS",
            "ShareDetails": {
                "SuccessfulShares": [],
                "ShareErrors": [
                    {
                        "Accounts": ["210987654321"],
                        "Message": "not a member",
                        "Error": "InvalidParametersException",
                    }
                ],
            },
        },
        {"PortfolioShareToken": "share-abcdefghijklm"},
    )
    from publish.decide import _share_action

    plan = Plan(actions=[_share_action("CreatePortfolioShare", params, "share")])
    with pytest.raises(
        PublishError, match="COMPLETED_WITH_ERRORS: InvalidParametersException: not a member"
    ):
        executor(client, []).apply(plan)


def test_dry_run_renders_the_exact_call():
    action = constraint_action()
    assert action.render() == (
        'servicecatalog.CreateConstraint {"Parameters": "{\\"LocalRoleName\\": \\"Launch\\"}", '
        '"PortfolioId": "<portfolio_id>", "ProductId": "prod-abcdefghijklm", "Type": "LAUNCH"}'
        " (+ IdempotencyToken generated by botocore)"
    )
