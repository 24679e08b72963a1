"""The read phase against botocore's Stubber: every page is read, names are exact, and a
product the search index does not list yet is still found."""

import boto3
import pytest
from botocore.stub import Stubber

from publish.config import PublishError
from publish.state import find_portfolio, find_product, versions_in_use
from tests.publish_fixtures import (
    PORTFOLIO_NAME,
    PRODUCT_ID,
    PRODUCT_NAME,
    REGION,
    portfolio_detail,
    product_summary,
)


@pytest.fixture
def sc():
    client = boto3.client("servicecatalog", region_name=REGION)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_portfolios_are_found_on_later_pages_by_exact_name(sc):
    client, stub = sc
    similar = {**portfolio_detail(), "Id": "port-other", "DisplayName": f"{PORTFOLIO_NAME} (old)"}
    stub.add_response("list_portfolios", {"PortfolioDetails": [similar], "NextPageToken": "page-2"})
    stub.add_response(
        "list_portfolios", {"PortfolioDetails": [portfolio_detail()]}, {"PageToken": "page-2"}
    )
    assert find_portfolio(client, PORTFOLIO_NAME)["Id"] == portfolio_detail()["Id"]


def test_two_portfolios_with_the_name_are_an_error(sc):
    client, stub = sc
    twin = {**portfolio_detail(), "Id": "port-twin"}
    stub.add_response("list_portfolios", {"PortfolioDetails": [portfolio_detail(), twin]})
    with pytest.raises(PublishError, match="2 portfolios are named 'Grand Challenge'"):
        find_portfolio(client, PORTFOLIO_NAME)


def test_a_product_the_search_index_does_not_list_yet_is_found_by_name(sc):
    """Right after CreateProduct, SearchProductsAsAdmin can miss it; a run that trusted the
    search alone would create a second product."""
    client, stub = sc
    stub.add_response("search_products_as_admin", {"ProductViewDetails": []})
    stub.add_response(
        "describe_product_as_admin",
        {"ProductViewDetail": {"ProductViewSummary": product_summary(), "Status": "CREATED"}},
        {"Name": PRODUCT_NAME},
    )
    assert find_product(client, PRODUCT_NAME)["ProductId"] == PRODUCT_ID


def test_a_missing_product_is_none(sc):
    client, stub = sc
    stub.add_response("search_products_as_admin", {"ProductViewDetails": []})
    stub.add_client_error(
        "describe_product_as_admin",
        "ResourceNotFoundException",
        expected_params={"Name": PRODUCT_NAME},
    )
    assert find_product(client, PRODUCT_NAME) is None


def test_versions_in_use_come_from_this_accounts_provisioned_products(sc):
    client, stub = sc
    query = {
        "AccessLevelFilter": {"Key": "Account", "Value": "self"},
        "Filters": {"SearchQuery": [f"productId:{PRODUCT_ID}"]},
    }
    running = {
        "Name": "gc",
        "Id": "pp-abcdefghijklm",
        "ProductId": PRODUCT_ID,
        "ProvisioningArtifactId": "pa-0000000000001",
    }
    stub.add_response(
        "search_provisioned_products",
        {"ProvisionedProducts": [running], "NextPageToken": "p2"},
        query,
    )
    second = {**running, "Id": "pp-bcdefghijklmn", "ProvisioningArtifactId": "pa-0000000000003"}
    stub.add_response(
        "search_provisioned_products",
        {"ProvisionedProducts": [second]},
        {**query, "PageToken": "p2"},
    )
    assert versions_in_use(client, PRODUCT_ID) == {"pa-0000000000001", "pa-0000000000003"}
