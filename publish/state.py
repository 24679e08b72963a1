"""Read phase: the remote state of one region as plain data (no decisions here)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .aws import (
    ACCESS_DENIED_CODES,
    NOT_FOUND_CODES,
    all_items,
    all_token_pages,
    error_code,
    find_one_by_name,
    get_or_none,
)
from .config import PublishConfig, PublishError, Target, role_name, template_key

EPOCH = datetime.min.replace(tzinfo=UTC)
SHA256_MARKER = re.compile(r"sha256:([0-9a-f]{64})")
# Account-to-account shares (type ACCOUNT) are made by hand and never touched here.
SHARE_TYPES = ("ORGANIZATION", "ORGANIZATIONAL_UNIT", "ORGANIZATION_MEMBER_ACCOUNT")
PUBLIC_ACCESS_BLOCK = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


@dataclass(frozen=True)
class Context:
    """Where a region publishes: account, partition and the artifact bucket."""

    region: str
    account: str
    partition: str
    bucket: str
    url: str


@dataclass(frozen=True)
class BucketState:
    exists: bool
    versioning: bool = False
    encryption: bool = False
    public_access_blocked: bool = False
    policy: dict[str, Any] | None = None
    object_exists: bool = False


@dataclass(frozen=True)
class Artifact:
    id: str
    name: str
    description: str = ""
    active: bool = True
    guidance: str = "DEFAULT"
    created: datetime = EPOCH
    status: str | None = None  # read only for the versions the plan may reuse

    @property
    def sha256(self) -> str | None:
        marker = SHA256_MARKER.search(self.description or "")
        return marker.group(1) if marker else None


@dataclass(frozen=True)
class Share:
    node_type: str
    value: str
    share_principals: bool = False
    accepted: bool = False


@dataclass(frozen=True)
class PreviousTemplate:
    """The template of the version stacks update from, for the upgrade preview."""

    version: str  # the version's name
    id: str
    location: str = ""  # s3://bucket/key it was uploaded to
    template: dict[str, Any] | None = None
    problem: str | None = None  # why ``template`` could not be read


@dataclass(frozen=True)
class CatalogState:
    portfolio: dict[str, Any] | None = None  # PortfolioDetail
    product: dict[str, Any] | None = None  # ProductViewSummary
    artifacts: tuple[Artifact, ...] = ()
    in_use: frozenset[str] = frozenset()  # version ids provisioned products run on
    in_portfolio: bool = False
    launch_constraints: tuple[tuple[str, str], ...] = ()  # (constraint id, role name)
    principals: dict[str, str] = field(default_factory=dict)  # ARN -> PrincipalType
    shares: tuple[Share, ...] = ()
    organizations_access: str | None = None  # read only when shares are configured
    launch_role_exists: bool | None = None  # None: no launch role configured
    previous: PreviousTemplate | None = None  # read only when a new version is created


def read_bucket(s3: Any, context: Context, key: str) -> BucketState:
    bucket, owner = context.bucket, context.account
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as exc:
        code = error_code(exc)
        if code in NOT_FOUND_CODES:
            return BucketState(exists=False)
        if code in {"403", *ACCESS_DENIED_CODES}:
            raise PublishError(
                f"bucket {bucket} exists but HeadBucket was denied: another account owns it "
                "or the caller lacks s3:ListBucket"
            ) from None
        if code == "301":
            raise PublishError(f"bucket {bucket} exists in another region") from None
        raise
    versioning = s3.get_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=owner)
    encryption = get_or_none(
        s3.get_bucket_encryption,
        {"ServerSideEncryptionConfigurationNotFoundError"},
        Bucket=bucket,
        ExpectedBucketOwner=owner,
    )
    rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    block = get_or_none(
        s3.get_public_access_block,
        {"NoSuchPublicAccessBlockConfiguration"},
        Bucket=bucket,
        ExpectedBucketOwner=owner,
    )
    block_settings = (block or {}).get("PublicAccessBlockConfiguration", {})
    policy = get_or_none(
        s3.get_bucket_policy, {"NoSuchBucketPolicy"}, Bucket=bucket, ExpectedBucketOwner=owner
    )
    head = get_or_none(
        s3.head_object, NOT_FOUND_CODES, Bucket=bucket, Key=key, ExpectedBucketOwner=owner
    )
    return BucketState(
        exists=True,
        versioning=versioning.get("Status") == "Enabled",
        encryption=any(
            r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules
        ),
        public_access_blocked=all(block_settings.get(name) for name in PUBLIC_ACCESS_BLOCK),
        policy=json.loads(policy["Policy"]) if policy else None,
        object_exists=head is not None,
    )


def read_previous_template(s3: Any, context: Context, artifact: Artifact) -> PreviousTemplate:
    """``artifact``'s template, from the content-addressed key this publisher uploaded it to."""
    found = PreviousTemplate(artifact.name, artifact.id)
    if artifact.sha256 is None:
        return replace(found, problem="its description names no template sha256")
    key = template_key(artifact.sha256)
    found = replace(found, location=f"s3://{context.bucket}/{key}")
    answer = get_or_none(
        s3.get_object,
        NOT_FOUND_CODES,
        Bucket=context.bucket,
        Key=key,
        ExpectedBucketOwner=context.account,
    )
    if answer is None:
        return replace(found, problem=f"{found.location} does not exist")
    body = answer["Body"].read()
    if hashlib.sha256(body).hexdigest() != artifact.sha256:
        return replace(found, problem=f"{found.location} does not hold the template it names")
    try:
        return replace(found, template=json.loads(body))
    except ValueError:
        return replace(found, problem=f"{found.location} is not JSON")


def find_portfolio(sc: Any, name: str) -> dict[str, Any] | None:
    return find_one_by_name(
        all_items(sc, "list_portfolios", "PortfolioDetails"),
        name,
        what="portfolio",
        name_of=lambda p: p.get("DisplayName"),
        id_of=lambda p: p["Id"],
    )


def find_product(sc: Any, name: str) -> dict[str, Any] | None:
    """The product's ProductViewSummary.  Search is eventually consistent, so a product it
    does not list yet is looked up by name directly before it is called missing."""
    found = find_one_by_name(
        all_items(
            sc,
            "search_products_as_admin",
            "ProductViewDetails",
            Filters={"FullTextSearch": [name]},
            ProductSource="ACCOUNT",
        ),
        name,
        what="product",
        name_of=lambda d: d.get("ProductViewSummary", {}).get("Name"),
        id_of=lambda d: d["ProductViewSummary"]["ProductId"],
    )
    kwargs = {"Id": found["ProductViewSummary"]["ProductId"]} if found else {"Name": name}
    detail = get_or_none(sc.describe_product_as_admin, {"ResourceNotFoundException"}, **kwargs)
    if detail is None:
        return None
    summary = detail["ProductViewDetail"]["ProductViewSummary"]
    if summary.get("Type", "CLOUD_FORMATION_TEMPLATE") != "CLOUD_FORMATION_TEMPLATE":
        raise PublishError(f"product {summary['ProductId']} has type {summary['Type']}")
    return summary


def read_artifacts(sc: Any, product_id: str, target: Target) -> tuple[Artifact, ...]:
    details = sc.list_provisioning_artifacts(ProductId=product_id).get(
        "ProvisioningArtifactDetails", []
    )
    artifacts = []
    for detail in details:
        artifact = Artifact(
            id=detail["Id"],
            name=detail.get("Name", ""),
            description=detail.get("Description", ""),
            active=detail.get("Active", True),
            guidance=detail.get("Guidance", "DEFAULT"),
            created=_aware(detail.get("CreatedTime")),
        )
        if artifact.sha256 == target.sha256 or artifact.name == target.version:
            status = sc.describe_provisioning_artifact(
                ProductId=product_id, ProvisioningArtifactId=artifact.id
            ).get("Status")
            artifact = Artifact(**{**artifact.__dict__, "status": status})
        artifacts.append(artifact)
    return tuple(artifacts)


def _aware(created: datetime | None) -> datetime:
    created = created or datetime.min
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def versions_in_use(sc: Any, product_id: str) -> frozenset[str]:
    """Versions that provisioned products in this account run on (member accounts' provisioned
    products are not visible here)."""
    products = all_token_pages(
        sc.search_provisioned_products,
        "ProvisionedProducts",
        AccessLevelFilter={"Key": "Account", "Value": "self"},
        Filters={"SearchQuery": [f"productId:{product_id}"]},
    )
    return frozenset(
        p["ProvisioningArtifactId"] for p in products if p.get("ProvisioningArtifactId")
    )


def launch_constraints(sc: Any, portfolio_id: str, product_id: str) -> tuple[tuple[str, str], ...]:
    found = []
    for constraint in all_items(
        sc,
        "list_constraints_for_portfolio",
        "ConstraintDetails",
        PortfolioId=portfolio_id,
        ProductId=product_id,
    ):
        if constraint.get("Type") != "LAUNCH":
            continue
        detail = sc.describe_constraint(Id=constraint["ConstraintId"])
        try:
            parameters = json.loads(detail.get("ConstraintParameters") or "{}")
        except ValueError:
            parameters = {}
        role = role_name(parameters.get("LocalRoleName") or parameters.get("RoleArn"))
        found.append((constraint["ConstraintId"], role))
    return tuple(found)


def read_shares(sc: Any, portfolio_id: str) -> tuple[Share, ...]:
    shares = []
    for share_type in SHARE_TYPES:
        for detail in all_token_pages(
            sc.describe_portfolio_shares,
            "PortfolioShareDetails",
            PortfolioId=portfolio_id,
            Type=share_type,
        ):
            shares.append(
                Share(
                    node_type=detail.get("Type", share_type),
                    value=detail["PrincipalId"],
                    share_principals=bool(detail.get("SharePrincipals")),
                    accepted=bool(detail.get("Accepted")),
                )
            )
    return tuple(shares)


def launch_role_exists(iam: Any, name: str) -> bool:
    return get_or_none(iam.get_role, {"NoSuchEntity"}, RoleName=name) is not None


def read_catalog(sc: Any, iam: Any, config: PublishConfig, target: Target) -> CatalogState:
    """Everything the catalog decisions need, read with list/describe calls only."""
    portfolio = find_portfolio(sc, config.portfolio_name)
    product = find_product(sc, config.product["name"])
    portfolio_id = portfolio["Id"] if portfolio else None
    product_id = product["ProductId"] if product else None
    state: dict[str, Any] = {"portfolio": portfolio, "product": product}
    if product_id:
        state["artifacts"] = read_artifacts(sc, product_id, target)
        state["in_use"] = versions_in_use(sc, product_id)
    if product_id and portfolio_id:
        portfolios = all_items(
            sc, "list_portfolios_for_product", "PortfolioDetails", ProductId=product_id
        )
        state["in_portfolio"] = any(p.get("Id") == portfolio_id for p in portfolios)
    if state.get("in_portfolio") and config.launch_role_name:
        state["launch_constraints"] = launch_constraints(sc, portfolio_id, product_id)
    if portfolio_id:
        principals = all_items(
            sc, "list_principals_for_portfolio", "Principals", PortfolioId=portfolio_id
        )
        state["principals"] = {p["PrincipalARN"]: p.get("PrincipalType", "IAM") for p in principals}
        state["shares"] = read_shares(sc, portfolio_id)
    if config.share_with:
        state["organizations_access"] = sc.get_aws_organizations_access_status().get("AccessStatus")
    if config.launch_role_name:
        state["launch_role_exists"] = launch_role_exists(iam, config.launch_role_name)
    return CatalogState(**state)
