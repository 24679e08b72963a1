"""What a member account sees of the shared product (``publish --check-member``, read only)."""

from __future__ import annotations

from typing import Any

from .aws import all_items, all_token_pages, find_one_by_name
from .config import PublishConfig, PublishError
from .state import launch_role_exists


def member_view(sc: Any, iam: Any, config: PublishConfig) -> list[str]:
    """One line per check; raises PublishError at the first thing a launch would miss."""
    portfolios = all_items(
        sc,
        "list_accepted_portfolio_shares",
        "PortfolioDetails",
        PortfolioShareType="AWS_ORGANIZATIONS",
    )
    portfolio = find_one_by_name(
        portfolios,
        config.portfolio_name,
        what="portfolio",
        name_of=lambda p: p.get("DisplayName"),
        id_of=lambda p: p["Id"],
    )
    if portfolio is None:
        raise PublishError(
            f"portfolio {config.portfolio_name!r} is not among this account's accepted shares: "
            "if the management account's plan lists the share, accept it once with `aws "
            "servicecatalog accept-portfolio-share --portfolio-share-type AWS_ORGANIZATIONS "
            "--portfolio-id <id from the plan>`"
        )
    lines = [f"portfolio {portfolio['Id']} is shared with this account through AWS Organizations"]
    name = config.product["name"]
    products = all_token_pages(
        sc.search_products, "ProductViewSummaries", Filters={"FullTextSearch": [name]}
    )
    product = next((p for p in products if p.get("Name") == name), None)
    if product is None:
        raise PublishError(
            f"product {name!r} is not launchable here: associate a principal with the imported "
            "portfolio, or share it with SharePrincipals and an account-less principal"
        )
    lines.append(f"product {product['ProductId']} can be launched by this identity")
    if config.launch_role_name and not launch_role_exists(iam, config.launch_role_name):
        raise PublishError(
            f"launch role {config.launch_role_name!r} is missing: the StackSet has not reached "
            "this account yet"
        )
    lines.append(f"launch role {config.launch_role_name!r} exists")
    return lines
