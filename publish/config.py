"""Local inputs: the ``publish`` settings, the template to publish and the release version."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.loaders

ROOT = Path(__file__).resolve().parent.parent
#: CloudFormation's limit for a template body read from S3.
MAX_TEMPLATE_BYTES = 1024 * 1024
#: Service Catalog allows at most 10 IAM_PATTERN principals per portfolio.
MAX_PATTERN_PRINCIPALS = 10
LAUNCH_ROLE_TEMPLATE = "launch-role.json"

VERSION_PATTERN = re.compile(
    r"^(?:v?\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z][0-9A-Za-z.+-]*)?"  # 1.2.3, v1.2.3-4-gabc1234
    r"|[0-9a-f]{7,40}(?:-dirty)?)$"  # what `git describe --always` prints without tags
)
REGION_PATTERN = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
PRINCIPAL_PATTERN = re.compile(r"^arn:[a-z-]+:iam::(\d{12})?:(role|user|group)/\S+$")
ORGANIZATION_NODE_TYPES = (
    (re.compile(r"^o-[a-z0-9]{10,32}$"), "ORGANIZATION"),
    (re.compile(r"^ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$"), "ORGANIZATIONAL_UNIT"),
    (re.compile(r"^\d{12}$"), "ACCOUNT"),
)
DEPLOYMENT_TARGET_PATTERN = re.compile(r"^(?:r-[a-z0-9]{4,32}|ou-[a-z0-9]{4,32}-[a-z0-9]{8,32})$")


class UsageError(Exception):
    """Bad flags or settings: nothing was attempted."""


class PublishError(Exception):
    """A one-line, user-facing reason why a scope (region, StackSet) could not be published."""


def principal_type(arn: str) -> str:
    """IAM for a fully defined ARN; IAM_PATTERN for an ARN without account id, which is also
    the only form that may hold wildcards (servicecatalog AssociatePrincipalWithPortfolio)."""
    return "IAM" if arn.split(":")[4] else "IAM_PATTERN"


def organization_node(value: str) -> dict[str, str]:
    """The OrganizationNode for an organization id, an OU id or a member account id."""
    for pattern, node_type in ORGANIZATION_NODE_TYPES:
        if pattern.match(value):
            return {"Type": node_type, "Value": value}
    raise UsageError(
        f"share target {value!r} is not an organization (o-…), OU (ou-…-…) or 12-digit account id"
    )


@dataclass(frozen=True)
class StackSetConfig:
    """The service-managed StackSet that deploys dist/launch-role.json to member accounts."""

    name: str = "gc-components-launch-role"
    region: str = ""  # the StackSet's home region and the one region of its instances
    deployment_targets: tuple[str, ...] = ()  # OU or root ids
    call_as: str = "SELF"  # DELEGATED_ADMIN from a delegated administrator account

    @property
    def enabled(self) -> bool:
        return bool(self.deployment_targets)


@dataclass(frozen=True)
class PublishConfig:
    """The ``publish`` section of params/build.json after the command-line overrides."""

    bucket_prefix: str
    portfolio_name: str
    portfolio_provider: str
    portfolio_description: str
    product: dict[str, str]
    launch_role_name: str
    principals: tuple[str, ...]
    keep_active_versions: int
    version_quota: int = 100  # Service Catalog's default "versions per product"
    share_with: tuple[str, ...] = ()
    share_principals: bool = True
    stack_set: StackSetConfig = field(default_factory=StackSetConfig)
    allow_replacement: bool = False  # publish even if the upgrade loses a stateful resource

    @classmethod
    def from_settings(
        cls,
        settings: dict[str, Any],
        *,
        portfolio: str | None = None,
        principals: list[str] | None = None,
        launch_role: str | None = None,
        allow_replacement: bool = False,
    ) -> PublishConfig:
        try:
            section = settings["publish"]
            folio = section["portfolio"]
            sharing = section.get("sharing") or {}
            stack_set = section.get("launch_role_stack_set") or {}
            config = cls(
                bucket_prefix=section["artifact_bucket_prefix"],
                portfolio_name=portfolio or folio["name"],
                portfolio_provider=folio["provider"],
                portfolio_description=folio.get("description", ""),
                product={key: str(value or "") for key, value in section["product"].items()},
                launch_role_name=role_name(
                    launch_role if launch_role is not None else section.get("launch_role_name")
                ),
                principals=tuple(principals if principals else section.get("principals") or []),
                keep_active_versions=int(section.get("keep_active_versions", 10)),
                version_quota=int(section.get("version_quota", 100)),
                share_with=tuple(sharing.get("organization_nodes") or []),
                share_principals=bool(sharing.get("share_principals", True)),
                stack_set=StackSetConfig(
                    name=stack_set.get("name", StackSetConfig.name),
                    region=stack_set.get("region", ""),
                    deployment_targets=tuple(stack_set.get("deployment_targets") or []),
                    call_as=stack_set.get("call_as", "SELF"),
                ),
                allow_replacement=allow_replacement,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"params/build.json: bad or missing publish setting {exc}") from exc
        config.validate()
        return config

    def validate(self) -> None:
        if not self.product.get("name") or not self.product.get("owner"):
            raise UsageError("params/build.json: publish.product needs a name and an owner")
        if not 1 <= len(self.portfolio_name) <= 100:
            raise UsageError("portfolio name must be 1-100 characters")
        if not 1 <= len(self.portfolio_provider) <= 50:
            raise UsageError("publish.portfolio.provider must be 1-50 characters")
        if self.keep_active_versions < 1:
            raise UsageError("publish.keep_active_versions must be at least 1")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.bucket_prefix):
            raise UsageError(
                f"publish.artifact_bucket_prefix {self.bucket_prefix!r} must be lowercase "
                "letters, digits and hyphens"
            )
        self._validate_principals()
        for node in self.share_with:
            organization_node(node)
        self._validate_stack_set()

    def _validate_principals(self) -> None:
        for principal in self.principals:
            if not PRINCIPAL_PATTERN.match(principal):
                raise UsageError(f"principal {principal!r} is not an IAM role/user/group ARN")
            if principal_type(principal) == "IAM" and re.search(r"[*?]", principal):
                raise UsageError(
                    f"principal {principal!r}: wildcards are only allowed without an account "
                    "id (IAM_PATTERN), e.g. arn:aws:iam:::role/GrandChallenge*"
                )
        patterns = [p for p in self.principals if principal_type(p) == "IAM_PATTERN"]
        if len(patterns) > MAX_PATTERN_PRINCIPALS:
            raise UsageError(
                f"{len(patterns)} account-less principals; Service Catalog allows at most "
                f"{MAX_PATTERN_PRINCIPALS} IAM_PATTERN principals per portfolio"
            )

    def _validate_stack_set(self) -> None:
        stack_set = self.stack_set
        if not stack_set.enabled:
            return
        if stack_set.call_as not in ("SELF", "DELEGATED_ADMIN"):
            raise UsageError(
                "publish.launch_role_stack_set.call_as must be SELF or DELEGATED_ADMIN"
            )
        if not REGION_PATTERN.match(stack_set.region):
            raise UsageError("publish.launch_role_stack_set.region must name one region")
        for target in stack_set.deployment_targets:
            if not DEPLOYMENT_TARGET_PATTERN.match(target):
                raise UsageError(
                    f"launch_role_stack_set deployment target {target!r} is not a root (r-…) "
                    "or OU (ou-…-…) id"
                )
        if not re.fullmatch(r"[a-zA-Z][-a-zA-Z0-9]{0,127}", stack_set.name):
            raise UsageError(f"StackSet name {stack_set.name!r} is not valid")


def product_fields(config: PublishConfig) -> list[tuple[str, str, str]]:
    """(UpdateProduct parameter, ProductViewSummary field, wanted value)."""
    product = config.product
    return [
        ("Owner", "Owner", product.get("owner", "")),
        ("Description", "ShortDescription", product.get("description", "")),
        ("Distributor", "Distributor", product.get("distributor", "")),
        ("SupportDescription", "SupportDescription", product.get("support_description", "")),
        ("SupportEmail", "SupportEmail", product.get("support_email", "")),
        ("SupportUrl", "SupportUrl", product.get("support_url", "")),
    ]


def role_name(value: str | None) -> str:
    """Launch roles are referenced by local name; accept a role ARN and keep its name."""
    value = (value or "").strip()
    if value.startswith("arn:"):
        value = value.rsplit("/", 1)[-1]
    return value


@dataclass(frozen=True)
class Target:
    """The local half of a region's plan: what would be published."""

    region: str
    template: Path
    body: bytes
    version: str

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def key(self) -> str:
        return template_key(self.sha256)

    @property
    def description(self) -> str:
        return f"Release {self.version}, template sha256:{self.sha256}"


def template_key(sha256: str) -> str:
    """Where a template is uploaded in the artifact bucket: content-addressed."""
    return f"templates/{sha256}.json"


PRODUCT_TEMPLATE = "components-runtime.json"


def template_path(dist_dir: Path) -> Path:
    """The rendered template published to every region: one file, so the same bytes and the
    same sha256 (hence the same content-addressed key and version) everywhere."""
    return Path(dist_dir) / PRODUCT_TEMPLATE


def read_template(path: Path) -> bytes:
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        raise PublishError(f"{path} does not exist; run `python build.py` first") from None
    if len(body) > MAX_TEMPLATE_BYTES:
        raise PublishError(f"{path} is {len(body)} bytes; S3 templates are limited to 1 MiB")
    try:
        json.loads(body)
    except ValueError as exc:
        raise PublishError(f"{path} is not valid JSON: {exc}") from None
    return body


def load_targets(regions: list[str], dist_dir: Path, version: str) -> dict[str, Target]:
    """One target per region, from one read of the template: a dist/ rewritten while
    publishing cannot give two regions different bytes under one version name."""
    path = template_path(dist_dir)
    body = read_template(path)
    return {region: Target(region, path, body, version) for region in regions}


def validate_version(version: str) -> str:
    version = version.strip()
    if len(version) > 100 or not VERSION_PATTERN.match(version):
        raise UsageError(
            f"version {version!r} is neither semver-like (1.2.3, v1.2.3-rc.1) nor "
            "`git describe` output (v1.2.3-4-gabc1234); pass --version"
        )
    return version


def git_describe() -> str:
    try:
        completed = subprocess.run(
            ["git", "describe", "--tags", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"cannot run git describe ({exc}); pass --version") from exc
    if completed.returncode != 0:
        reason = completed.stderr.strip().splitlines()[-1:] or ["unknown error"]
        raise UsageError(f"git describe failed ({reason[0]}); pass --version")
    return completed.stdout.strip()


@functools.cache
def _partitions() -> list[dict[str, Any]]:
    return botocore.loaders.create_loader().load_data("partitions")["partitions"]


def partition_for_region(region: str) -> tuple[str, str]:
    """(partition, DNS suffix) for a region, from botocore's endpoint-ruleset partition data."""
    partitions = _partitions()
    for partition in partitions:
        if region in partition.get("regions", {}):
            return partition["id"], partition["outputs"]["dnsSuffix"]
    for partition in partitions:
        if re.match(partition["regionRegex"], region):
            return partition["id"], partition["outputs"]["dnsSuffix"]
    raise PublishError(f"unknown region {region!r}")


def template_url(bucket: str, region: str, key: str) -> str:
    _, dns_suffix = partition_for_region(region)
    return f"https://{bucket}.s3.{region}.{dns_suffix}/{key}"


def regions_to_publish(value: str | None, settings: dict[str, Any]) -> list[str]:
    """Settings' ``regions`` (a list) or the subset ``value`` names."""
    targets = list(settings.get("regions") or [])
    if not value:
        regions = targets
    else:
        regions = list(dict.fromkeys(r.strip() for r in value.split(",") if r.strip()))
        unknown = [r for r in regions if r not in targets]
        if unknown:
            raise UsageError(f"region {unknown[0]!r} is not a target region in the settings file")
    if not regions:
        raise UsageError("no target regions (params/build.json `regions` or --regions)")
    for region in regions:
        if not REGION_PATTERN.match(region):
            raise UsageError(f"{region!r} is not a region name")
    return regions
