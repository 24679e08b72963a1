"""Service Catalog read-phase stubs in the order publish.state reads (one helper, so a change of
read order touches one place), and realistic write responses."""

import re

from botocore.stub import Stubber

from tests.publish_fixtures import (
    ACCOUNT,
    PORTFOLIO_ID,
    PRODUCT_ID,
    PRODUCT_NAME,
    ROLE,
    T0,
    portfolio_detail,
    product_summary,
)

SC_WRITE = re.compile(r"^(Create|Update|Delete|Associate|Disassociate|Enable|Accept)")
CF_WRITE = re.compile(r"^(Create|Update|Delete|Activate)")
S3_WRITE = re.compile(r"^(Create|Put|Delete|Copy|Upload|Complete|Restore|Abort)")


class Recorder:
    """Operation names of every call a client makes, unexpected ones included."""

    def __init__(self, client):
        self.calls = []
        client.meta.events.register("before-parameter-build", self._record)

    def _record(self, model, **_):
        self.calls.append(model.name)

    def writes(self, pattern):
        return [name for name in self.calls if pattern.match(name)]


def artifact_details(artifacts):
    return [
        {
            "Id": a["Id"],
            "Name": a["Name"],
            "Description": a["Description"],
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "CreatedTime": a.get("CreatedTime", T0),
            "Active": a.get("Active", True),
            "Guidance": a.get("Guidance", "DEFAULT"),
        }
        for a in artifacts
    ]


def stub_reads(stub: Stubber, *, exists, artifacts=(), matching=(), shares=(), org_access=None):
    """``exists``: the portfolio and product exist with every association in place."""
    stub.add_response(
        "list_portfolios", {"PortfolioDetails": [portfolio_detail()] if exists else []}
    )
    found = [{"ProductViewSummary": product_summary(), "Status": "CREATED"}] if exists else []
    stub.add_response("search_products_as_admin", {"ProductViewDetails": found})
    if not exists:
        stub.add_client_error(
            "describe_product_as_admin",
            "ResourceNotFoundException",
            expected_params={"Name": PRODUCT_NAME},
        )
    else:
        stub_existing_product_reads(stub, artifacts, matching, shares)
    if org_access is not None:
        stub.add_response("get_aws_organizations_access_status", {"AccessStatus": org_access})


def stub_existing_product_reads(stub: Stubber, artifacts, matching, shares):
    """The reads after the product is found (portfolio and product exist, all in place)."""
    stub.add_response(
        "describe_product_as_admin",
        {"ProductViewDetail": {"ProductViewSummary": product_summary(), "Status": "CREATED"}},
        {"Id": PRODUCT_ID},
    )
    stub.add_response(
        "list_provisioning_artifacts",
        {"ProvisioningArtifactDetails": artifact_details(artifacts)},
    )
    for artifact in matching:
        stub.add_response(
            "describe_provisioning_artifact",
            {
                "ProvisioningArtifactDetail": artifact_details([artifact])[0],
                "Status": "AVAILABLE",
            },
            {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": artifact["Id"]},
        )
    stub.add_response(
        "search_provisioned_products", {"ProvisionedProducts": [], "TotalResultsCount": 0}
    )
    stub.add_response("list_portfolios_for_product", {"PortfolioDetails": [portfolio_detail()]})
    stub.add_response(
        "list_constraints_for_portfolio",
        {
            "ConstraintDetails": [
                {
                    "ConstraintId": "cons-abcdefghijklm",
                    "Type": "LAUNCH",
                    "Owner": ACCOUNT,
                    "ProductId": PRODUCT_ID,
                    "PortfolioId": PORTFOLIO_ID,
                }
            ]
        },
    )
    stub.add_response(
        "describe_constraint",
        {
            "ConstraintDetail": {"ConstraintId": "cons-abcdefghijklm", "Type": "LAUNCH"},
            "ConstraintParameters": f'{{"LocalRoleName": "{ROLE}"}}',
            "Status": "AVAILABLE",
        },
    )
    principal = {
        "PrincipalARN": "arn:aws:iam:::role/GrandChallengeOperators",
        "PrincipalType": "IAM_PATTERN",
    }
    stub.add_response("list_principals_for_portfolio", {"Principals": [principal]})
    for share_type in ("ORGANIZATION", "ORGANIZATIONAL_UNIT", "ORGANIZATION_MEMBER_ACCOUNT"):
        details = [s for s in shares if s["Type"] == share_type]
        stub.add_response(
            "describe_portfolio_shares",
            {"PortfolioShareDetails": details},
            {"PortfolioId": PORTFOLIO_ID, "Type": share_type},
        )


def creating_artifact(artifact_id, name, description, status="AVAILABLE"):
    detail = {
        "Id": artifact_id,
        "Name": name,
        "Description": description,
        "Type": "CLOUD_FORMATION_TEMPLATE",
        "CreatedTime": T0,
        "Active": True,
        "Guidance": "DEFAULT",
    }
    return {
        "ProvisioningArtifactDetail": detail,
        "Info": {"TemplateUrl": "https://example"},
        "Status": status,
    }


def stub_first_publish(stub: Stubber, *, description, name):
    """The writes of a publish into an empty catalog (after stub_reads(exists=False))."""
    stub.add_response("create_portfolio", {"PortfolioDetail": portfolio_detail()})
    stub.add_response(
        "create_product",
        {
            "ProductViewDetail": {"ProductViewSummary": product_summary(), "Status": "CREATED"},
            "ProvisioningArtifactDetail": creating_artifact("pa-0000000000001", name, description)[
                "ProvisioningArtifactDetail"
            ],
        },
    )
    stub.add_response(
        "describe_provisioning_artifact", creating_artifact("pa-0000000000001", name, description)
    )
    found = {"ProductViewSummary": product_summary(), "Status": "CREATED"}
    stub.add_response("search_products_as_admin", {"ProductViewDetails": [found]})
    stub.add_response("associate_product_with_portfolio", {})
    stub.add_response(
        "create_constraint",
        {
            "ConstraintDetail": {"ConstraintId": "cons-abcdefghijklm", "Type": "LAUNCH"},
            "ConstraintParameters": f'{{"LocalRoleName": "{ROLE}"}}',
            "Status": "AVAILABLE",
        },
    )
    stub.add_response("associate_principal_with_portfolio", {})


def stub_new_version(stub: Stubber, *, artifact_id, name, description, url, deprecate):
    """The writes of a new version on an existing product (after stub_reads(exists=True)):
    create it, wait until it is AVAILABLE, then deprecate the older version ``deprecate``."""
    created = creating_artifact(artifact_id, name, description, status="CREATING")
    parameters = {
        "Name": name,
        "Description": description,
        "Info": {"LoadTemplateFromURL": url},
        "Type": "CLOUD_FORMATION_TEMPLATE",
        "DisableTemplateValidation": False,
    }
    stub.add_response(
        "create_provisioning_artifact",
        created,
        {"ProductId": PRODUCT_ID, "Parameters": parameters},  # botocore adds the token later
    )
    stub.add_response(
        "describe_provisioning_artifact",
        creating_artifact(artifact_id, name, description),
        {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": artifact_id},
    )
    old = {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": deprecate}
    stub.add_response(
        "update_provisioning_artifact",
        {
            "ProvisioningArtifactDetail": {"Id": deprecate, "Guidance": "DEPRECATED"},
            "Status": "AVAILABLE",
        },
        {**old, "Guidance": "DEPRECATED"},
    )
