"""Decisions: one region's state -> the actions that make it match the settings.  Pure: no
boto3 here, so every rule is tested with plain state fixtures."""

from __future__ import annotations

import base64
import json
from typing import Any

from .actions import Action, Plan, Ref
from .config import PublishConfig, Target, organization_node, principal_type, product_fields
from .state import BucketState, CatalogState, Context
from .versions import plan_version

TLS_STATEMENT_SID = "DenyInsecureTransport"
LAUNCH_ROLE_STACK = "gc-components-launch-role"
DEPLOY_LAUNCH_ROLE = (
    "aws cloudformation deploy --template-file dist/launch-role.json "
    f"--stack-name {LAUNCH_ROLE_STACK} --capabilities CAPABILITY_NAMED_IAM"
)


def plan_region(
    config: PublishConfig,
    target: Target,
    context: Context,
    bucket: BucketState,
    catalog: CatalogState,
) -> Plan:
    plan = Plan()
    plan.extend(plan_bucket(target, context, bucket))
    plan.extend(plan_portfolio(config, catalog))
    plan.extend(plan_product(config, catalog))
    plan.extend(plan_version(config, target, context, catalog))
    plan.extend(plan_association(catalog))
    plan.extend(plan_launch_constraint(config, context, catalog))
    plan.extend(plan_principals(config, catalog))
    plan.extend(plan_shares(config, catalog))
    # plan_version put version retirement last: a new version is AVAILABLE first.
    plan.actions.sort(key=lambda action: action.operation == "UpdateProvisioningArtifact")
    return plan


def _s3(operation: str, summary: str, context: Context, **params: Any) -> Action:
    return Action("s3", operation, {"Bucket": context.bucket, **params}, summary)


def plan_bucket(target: Target, context: Context, state: BucketState) -> Plan:
    plan = Plan()
    owner = {"ExpectedBucketOwner": context.account}
    if not state.exists:
        create: dict[str, Any] = {"ObjectOwnership": "BucketOwnerEnforced"}
        if context.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": context.region}
        action = _s3("CreateBucket", f"create bucket {context.bucket}", context, **create)
        action.tolerate = ("BucketAlreadyOwnedByYou",)
        plan.add(action)
    if not state.versioning:
        versioning = {"VersioningConfiguration": {"Status": "Enabled"}}
        plan.add(
            _s3("PutBucketVersioning", "enable bucket versioning", context, **versioning, **owner)
        )
    if not state.encryption:
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        sse = {"ServerSideEncryptionConfiguration": {"Rules": [rule]}}
        plan.add(
            _s3("PutBucketEncryption", "set default encryption (SSE-S3)", context, **sse, **owner)
        )
    if not state.public_access_blocked:
        names = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        block = {"PublicAccessBlockConfiguration": dict.fromkeys(names, True)}
        plan.add(_s3("PutPublicAccessBlock", "block all public access", context, **block, **owner))
    merged = merged_policy(state.policy, tls_only_statement(context.partition, context.bucket))
    if merged is not None:
        policy = {"Policy": json.dumps(merged)}
        plan.add(
            _s3(
                "PutBucketPolicy",
                "set a bucket policy denying non-TLS requests",
                context,
                **policy,
                **owner,
            )
        )
    elif state.exists:
        plan.notes.append(f"bucket {context.bucket} is configured")
    if state.object_exists:
        plan.notes.append(f"template already uploaded as s3://{context.bucket}/{target.key}")
    else:
        upload = {
            "Key": target.key,
            "Body": target.body,
            "ContentType": "application/json",
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(target.sha256)).decode(),
        }
        summary = f"upload {target.template.name} to s3://{context.bucket}/{target.key}"
        plan.add(_s3("PutObject", summary, context, **upload, **owner))
    return plan


def tls_only_statement(partition: str, bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_STATEMENT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _as_set(value: Any) -> frozenset[str]:
    return frozenset([value]) if isinstance(value, str) else frozenset(value or [])


def _same_statement(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return (
        existing.get("Effect") == wanted["Effect"]
        and existing.get("Principal") in ("*", {"AWS": "*"})
        and _as_set(existing.get("Action")) == _as_set(wanted["Action"])
        and _as_set(existing.get("Resource")) == _as_set(wanted["Resource"])
        and json.dumps(existing.get("Condition"), sort_keys=True).lower()
        == json.dumps(wanted["Condition"], sort_keys=True).lower()
    )


def merged_policy(current: dict[str, Any] | None, statement: dict[str, Any]) -> dict | None:
    """The policy to put, or None when ``current`` already denies non-TLS requests."""
    if current is None:
        return {"Version": "2012-10-17", "Statement": [statement]}
    statements = current.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if any(_same_statement(existing, statement) for existing in statements):
        return None
    kept = [s for s in statements if s.get("Sid") != statement["Sid"]]
    return {**current, "Version": "2012-10-17", "Statement": [*kept, statement]}


def portfolio_ref(state: CatalogState) -> str | Ref:
    return state.portfolio["Id"] if state.portfolio else Ref("portfolio_id")


def product_ref(state: CatalogState) -> str | Ref:
    return state.product["ProductId"] if state.product else Ref("product_id")


def plan_portfolio(config: PublishConfig, state: CatalogState) -> Plan:
    plan = Plan()
    if state.portfolio is None:
        params = {"DisplayName": config.portfolio_name, "ProviderName": config.portfolio_provider}
        if config.portfolio_description:
            params["Description"] = config.portfolio_description
        plan.add(
            Action(
                "servicecatalog",
                "CreatePortfolio",
                params,
                f"create portfolio {config.portfolio_name!r}",
                outputs={"portfolio_id": ("PortfolioDetail", "Id")},
            )
        )
        return plan
    portfolio_id = plan.known["portfolio_id"] = state.portfolio["Id"]
    wanted = {
        "ProviderName": config.portfolio_provider,
        "Description": config.portfolio_description,
    }
    changes = {k: v for k, v in wanted.items() if state.portfolio.get(k, "") != v}
    if changes:
        summary = f"update portfolio {portfolio_id} ({', '.join(sorted(changes))})"
        plan.add(
            Action("servicecatalog", "UpdatePortfolio", {"Id": portfolio_id, **changes}, summary)
        )
    else:
        plan.notes.append(f"portfolio {portfolio_id} is up to date")
    return plan


def plan_product(config: PublishConfig, state: CatalogState) -> Plan:
    """Descriptive fields of an existing product (a new one is created with its first version)."""
    plan = Plan()
    if state.product is None:
        return plan
    product_id = plan.known["product_id"] = state.product["ProductId"]
    changes = {
        param: wanted
        for param, current, wanted in product_fields(config)
        if (state.product.get(current) or "") != wanted
    }
    if changes:
        summary = f"update product {product_id} ({', '.join(sorted(changes))})"
        plan.add(Action("servicecatalog", "UpdateProduct", {"Id": product_id, **changes}, summary))
    else:
        plan.notes.append(f"product {product_id} is up to date")
    return plan


def plan_association(state: CatalogState) -> Plan:
    plan = Plan()
    if state.in_portfolio:
        plan.notes.append("product is in the portfolio")
        return plan
    params = {"ProductId": product_ref(state), "PortfolioId": portfolio_ref(state)}
    summary = "associate the product with the portfolio"
    plan.add(Action("servicecatalog", "AssociateProductWithPortfolio", params, summary))
    return plan


def plan_launch_constraint(config: PublishConfig, context: Context, state: CatalogState) -> Plan:
    plan = Plan()
    role = config.launch_role_name
    if not role:
        plan.warnings.append("no launch role configured: launches use the user's own permissions")
        return plan
    parameters = json.dumps({"LocalRoleName": role})
    description = f"Launch as the local IAM role {role}"
    current = state.launch_constraints[0] if state.launch_constraints else None
    if current is not None and current[1] == role:
        plan.notes.append(f"LAUNCH constraint uses role {role!r}")
    elif current is not None:
        params = {"Id": current[0], "Parameters": parameters, "Description": description}
        summary = f"change the LAUNCH constraint's role from {current[1]!r} to {role!r}"
        plan.add(Action("servicecatalog", "UpdateConstraint", params, summary))
    else:
        params = {
            "PortfolioId": portfolio_ref(state),
            "ProductId": product_ref(state),
            "Type": "LAUNCH",
            "Parameters": parameters,
            "Description": description,
        }
        plan.add(
            Action(
                "servicecatalog",
                "CreateConstraint",
                params,
                f"add a LAUNCH constraint with role {role!r}",
            )
        )
    if state.launch_role_exists is False:
        missing = (
            f"launch role {role!r} does not exist in account {context.account}: deploy it once "
            f"per account (IAM is global): {DEPLOY_LAUNCH_ROLE}"
        )
        (plan.blockers if current is None or current[1] != role else plan.warnings).append(missing)
    return plan


def plan_principals(config: PublishConfig, state: CatalogState) -> Plan:
    """Make the portfolio's principals exactly the configured ones."""
    plan = Plan()
    wanted = {arn: principal_type(arn) for arn in config.principals}
    if not wanted:
        plan.warnings.append(
            "no principals configured (publish.principals or --principal): nobody can launch "
            "the product from this portfolio"
        )
    portfolio_id = portfolio_ref(state)
    for arn, kind in sorted(state.principals.items()):
        if wanted.get(arn) != kind:
            params = {"PortfolioId": portfolio_id, "PrincipalARN": arn, "PrincipalType": kind}
            summary = f"remove {arn} from the portfolio"
            plan.add(
                Action("servicecatalog", "DisassociatePrincipalFromPortfolio", params, summary)
            )
    for arn, kind in wanted.items():
        if state.principals.get(arn) != kind:
            params = {"PortfolioId": portfolio_id, "PrincipalARN": arn, "PrincipalType": kind}
            summary = f"give {arn} ({kind}) access to the portfolio"
            plan.add(Action("servicecatalog", "AssociatePrincipalWithPortfolio", params, summary))
    kept = [arn for arn in wanted if state.principals.get(arn) == wanted[arn]]
    if kept:
        plan.notes.append(f"{len(kept)} principal(s) already have portfolio access")
    if config.share_with and config.share_principals:
        local = [arn for arn, kind in wanted.items() if kind == "IAM"]
        if local:
            plan.warnings.append(
                f"{len(local)} principal(s) name an account, so shares do not carry them; use "
                "account-less ARNs (arn:aws:iam:::role/Name) for member accounts"
            )
    return plan


def plan_shares(config: PublishConfig, state: CatalogState) -> Plan:
    """Share the portfolio with exactly the configured organization nodes."""
    plan = Plan()
    portfolio_id = portfolio_ref(state)
    wanted = {value: organization_node(value) for value in config.share_with}
    if wanted and state.organizations_access != "ENABLED":
        summary = "enable Service Catalog's trusted access to AWS Organizations"
        plan.add(Action("servicecatalog", "EnableAWSOrganizationsAccess", {}, summary))
    current = {share.value: share for share in state.shares}
    for value, node in wanted.items():
        share = current.get(value)
        params = {
            "PortfolioId": portfolio_id,
            "OrganizationNode": node,
            "SharePrincipals": config.share_principals,
        }
        if share is None:
            operation, summary = "CreatePortfolioShare", f"share the portfolio with {value}"
        elif share.share_principals != config.share_principals:
            operation = "UpdatePortfolioShare"
            summary = f"set SharePrincipals={config.share_principals} on the share with {value}"
        else:
            plan.notes.append(f"portfolio is shared with {node['Type']} {value}")
            continue
        plan.add(_share_action(operation, params, summary))
    for share in state.shares:
        if share.value in wanted:
            continue
        if share.node_type in ("ORGANIZATION", "ORGANIZATIONAL_UNIT"):
            node = {"Type": share.node_type, "Value": share.value}
            params = {"PortfolioId": portfolio_id, "OrganizationNode": node}
            summary = f"stop sharing the portfolio with {share.value}"
            plan.add(_share_action("DeletePortfolioShare", params, summary))
        else:
            plan.notes.append(f"account share with {share.value} is not in the settings: kept")
    return plan


def _share_action(operation: str, params: dict[str, Any], summary: str) -> Action:
    """Organization shares complete asynchronously: wait for the share token's status."""
    outputs = {"share_token": ("PortfolioShareToken",)}
    return Action("servicecatalog", operation, params, summary, outputs=outputs, waits=("share",))
