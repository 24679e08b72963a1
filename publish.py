"""Publish the rendered templates as a versioned AWS Service Catalog product.

Wired into ``build.py`` as the ``publish`` subcommand::

    publish.add_arguments(subparser)
    exit_code = publish.main(args, settings, dist_dir)

For every target region, concurrently:

1. an artifact bucket ``<artifact_bucket_prefix>-<account>-<region>`` is created or reused
   (versioned, default SSE, public access blocked, non-TLS requests denied) and
   ``dist/<region>.json`` is uploaded under the content-addressed key
   ``templates/<sha256>.json`` (skipped when the object already exists);
2. the portfolio and the product are found by exact name (every page is read), created when
   missing and their descriptive fields updated only when they differ; the product is
   associated with the portfolio, the principals with the portfolio, and a LAUNCH constraint
   naming the launch role by its local name is added when none exists;
3. the release becomes a provisioning artifact named after the version whose description
   carries ``sha256:<hex>`` of the template.  A published version is never changed: the same
   name with another sha256 is an error.  After a new version is AVAILABLE, older versions are
   marked DEPRECATED (still active) and the oldest beyond ``keep_active_versions`` are
   deactivated.

Each region is first *planned* with read calls only; the plan is a list of write steps that
``--dry-run`` prints and a real run applies.  An unchanged re-publish therefore makes no write
call at all.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoAuthTokenError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

#: Service Catalog's default quota of provisioning artifacts (versions) per product.
VERSION_QUOTA = 100
#: Warn once a product holds this many versions.
VERSION_QUOTA_WARN = 90
#: CloudFormation's limit for a template body read from S3.
MAX_TEMPLATE_BYTES = 1024 * 1024
#: IdempotencyToken: min 1, max 128, pattern [a-zA-Z0-9][a-zA-Z0-9_-]* (servicecatalog model).
IDEMPOTENCY_TOKEN_MAX = 128
POLL_INTERVAL_SECONDS = 5.0
POLL_TIMEOUT_SECONDS = 900.0
TLS_STATEMENT_SID = "DenyInsecureTransport"
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=60,
)

SHA256_MARKER = re.compile(r"sha256:([0-9a-f]{64})")
VERSION_PATTERN = re.compile(
    r"^(?:v?\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z][0-9A-Za-z.+-]*)?"  # 1.2.3, v1.2.3-4-gabc1234
    r"|[0-9a-f]{7,40}(?:-dirty)?)$"  # what `git describe --always` prints without tags
)
REGION_PATTERN = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")

CREDENTIAL_EXCEPTIONS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    NoAuthTokenError,
    TokenRetrievalError,
    SSOError,
)
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
NOT_FOUND_CODES = frozenset({"404", "NoSuchBucket", "NoSuchKey", "NotFound"})


class PublishError(Exception):
    """A one-line, user-facing reason why a region could not be published."""


class UsageError(Exception):
    """Bad flags or settings: nothing was attempted."""


# --------------------------------------------------------------------------------------------
# Local inputs


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

    @classmethod
    def from_settings(
        cls,
        settings: dict[str, Any],
        *,
        portfolio: str | None = None,
        principals: list[str] | None = None,
        launch_role: str | None = None,
    ) -> PublishConfig:
        try:
            section = settings["publish"]
            folio = section["portfolio"]
            product = dict(section["product"])
            config = cls(
                bucket_prefix=section["artifact_bucket_prefix"],
                portfolio_name=portfolio or folio["name"],
                portfolio_provider=folio["provider"],
                portfolio_description=folio.get("description", ""),
                product={key: str(value or "") for key, value in product.items()},
                launch_role_name=_role_name(
                    launch_role if launch_role is not None else section.get("launch_role_name")
                ),
                principals=tuple(principals if principals else section.get("principals", []) or []),
                keep_active_versions=int(section.get("keep_active_versions", 10)),
            )
        except (KeyError, TypeError, ValueError) as exc:
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
        for principal in self.principals:
            if not re.fullmatch(r"arn:[a-z-]+:iam::(\d{12})?:(role|user|group)/\S+", principal):
                raise UsageError(f"principal {principal!r} is not an IAM role/user/group ARN")


def _role_name(value: str | None) -> str:
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
        return f"templates/{self.sha256}.json"

    @property
    def description(self) -> str:
        return f"Release {self.version}, template sha256:{self.sha256}"


def load_target(region: str, dist_dir: Path, version: str) -> Target:
    path = Path(dist_dir) / f"{region}.json"
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
    return Target(region=region, template=path, body=body, version=version)


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
            cwd=Path(__file__).resolve().parent,
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


def idempotency_token(*parts: str) -> str:
    """Deterministic token: the same request from a re-run is recognised by the service."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:IDEMPOTENCY_TOKEN_MAX]


def tls_only_statement(partition: str, bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_STATEMENT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


# --------------------------------------------------------------------------------------------
# Errors


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def is_credential_error(exc: BaseException) -> bool:
    if isinstance(exc, CREDENTIAL_EXCEPTIONS):
        return True
    return isinstance(exc, ClientError) and _code(exc) in CREDENTIAL_CODES


def describe_error(exc: BaseException) -> str:
    """A clear one-line reason for an exception raised while publishing a region."""
    cause = exc.__cause__ if isinstance(exc, PublishError) and exc.__cause__ else None
    if cause is not None and not isinstance(cause, PublishError):
        prefix = _one_line(str(exc))
        return f"{prefix}: {describe_error(cause)}"
    if isinstance(exc, PublishError):
        return _one_line(str(exc))
    if is_credential_error(exc):
        return f"no usable AWS credentials ({_one_line(str(exc))})"
    if isinstance(exc, ClientError):
        code = _code(exc)
        operation = getattr(exc, "operation_name", "request")
        message = _one_line(exc.response.get("Error", {}).get("Message", "") or str(exc))
        if code in ACCESS_DENIED_CODES:
            return f"access denied calling {operation}: {message}"
        if code in THROTTLING_CODES:
            return f"throttled by AWS on {operation} even after retries: {message}"
        return f"{operation} failed: {code}: {message}"
    if isinstance(exc, BotoCoreError):
        return _one_line(str(exc))
    return f"unexpected {type(exc).__name__}: {_one_line(str(exc))}"


# --------------------------------------------------------------------------------------------
# Plan


@dataclass
class Step:
    """One write call (or a few tightly bound ones) the plan will make."""

    service: str
    description: str
    run: Callable[[], None]


@dataclass
class Plan:
    target: Target
    account: str
    partition: str
    bucket: str
    url: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts about state that stays as it is
    warnings: list[str] = field(default_factory=list)
    portfolio_id: str | None = None
    product_id: str | None = None
    artifact_id: str | None = None
    completed: int = 0  # steps applied so far
    creates_product: bool = False
    creates_version: bool = False
    waits_for_version: bool = False

    def add(self, service: str, description: str, run: Callable[[], None]) -> None:
        self.steps.append(Step(service, description, run))


def _created(artifact: dict[str, Any]) -> tuple[datetime, str]:
    created = artifact.get("CreatedTime") or datetime.min.replace(tzinfo=UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created, artifact.get("Id", "")


def lifecycle_changes(
    artifacts: list[dict[str, Any]], target_id: str | None, keep_active: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Updates so versions older than the target are DEPRECATED and at most ``keep_active``
    versions (the target included, never deactivated) stay active.

    ``target_id`` None means the target is a version about to be created (the newest).
    """
    target = next((a for a in artifacts if a.get("Id") == target_id), None)
    others = [a for a in artifacts if a.get("Id") != target_id]
    if target is None:
        older = {a["Id"] for a in others}
    else:
        older = {a["Id"] for a in others if _created(a) < _created(target)}

    newest = datetime.max.replace(tzinfo=UTC)
    active = [a for a in others if a.get("Active", True)]
    ranked = sorted(
        [*active, target or {"Id": None, "CreatedTime": newest}], key=_created, reverse=True
    )
    keep_ids = {a["Id"] for a in ranked[:keep_active]} | {target_id}
    changes = []
    for artifact in sorted(others, key=_created):
        update: dict[str, Any] = {}
        if artifact["Id"] in older and artifact.get("Guidance", "DEFAULT") != "DEPRECATED":
            update["Guidance"] = "DEPRECATED"
        if artifact.get("Active", True) and artifact["Id"] not in keep_ids:
            update["Active"] = False
        if update:
            changes.append((artifact, update))
    return changes


class RegionPublisher:
    """Plans and applies one region's publication with injected boto3 clients."""

    def __init__(
        self,
        region: str,
        *,
        s3: Any,
        sts: Any,
        servicecatalog: Any,
        config: PublishConfig,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] | None = None,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        poll_timeout: float = POLL_TIMEOUT_SECONDS,
    ):
        self.region = region
        self.s3 = s3
        self.sts = sts
        self.sc = servicecatalog
        self.config = config
        self.sleep = sleep
        self.progress = progress or (lambda message: None)
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout

    # ---------------------------------------------------------------- read phase

    def plan(self, target: Target) -> Plan:
        """Read the remote state and return the writes needed.  Makes no write call."""
        identity = self.sts.get_caller_identity()
        account = identity["Account"]
        arn_partition = identity["Arn"].split(":")[1]
        partition, _ = partition_for_region(self.region)
        if arn_partition != partition:
            raise PublishError(
                f"credentials belong to partition {arn_partition}, region {self.region} "
                f"to {partition}"
            )
        bucket = f"{self.config.bucket_prefix}-{account}-{self.region}"
        if not BUCKET_PATTERN.match(bucket):
            raise PublishError(f"bucket name {bucket!r} is not valid (3-63 characters)")
        plan = Plan(
            target=target,
            account=account,
            partition=partition,
            bucket=bucket,
            url=template_url(bucket, self.region, target.key),
        )
        self._plan_bucket(plan)
        self._plan_catalog(plan)
        return plan

    def _plan_bucket(self, plan: Plan) -> None:
        s3, bucket, owner = self.s3, plan.bucket, plan.account
        try:
            s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
            exists = True
        except ClientError as exc:
            code = _code(exc)
            if code in NOT_FOUND_CODES:
                exists = False
            elif code in {"403", *ACCESS_DENIED_CODES}:
                raise PublishError(
                    f"bucket {bucket} exists but HeadBucket was denied: another account owns "
                    "it or the caller lacks s3:ListBucket"
                ) from None
            elif code == "301":
                raise PublishError(f"bucket {bucket} exists in another region") from None
            else:
                raise
        if not exists:
            plan.add("s3", f"create bucket {bucket}", functools.partial(self._create_bucket, plan))
            missing_versioning = missing_sse = missing_block = True
            policy: dict[str, Any] | None = None
            object_exists = False
        else:
            versioning = s3.get_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=owner)
            missing_versioning = versioning.get("Status") != "Enabled"
            missing_sse = not self._has_default_encryption(bucket, owner)
            missing_block = not self._blocks_public_access(bucket, owner)
            policy = self._bucket_policy(bucket, owner)
            object_exists = self._object_exists(bucket, plan.target.key, owner)

        if missing_versioning:
            plan.add("s3", "enable bucket versioning", functools.partial(self._versioning, plan))
        if missing_sse:
            plan.add("s3", "set default encryption (SSE-S3)", functools.partial(self._sse, plan))
        if missing_block:
            plan.add("s3", "block all public access", functools.partial(self._block, plan))
        merged = self._merged_policy(policy, tls_only_statement(plan.partition, bucket))
        if merged is not None:
            plan.add(
                "s3",
                "set bucket policy denying non-TLS requests",
                functools.partial(self._put_policy, plan, merged),
            )
        else:
            plan.notes.append(f"bucket {bucket} is configured")
        if object_exists:
            plan.notes.append(f"template already uploaded as s3://{bucket}/{plan.target.key}")
        else:
            plan.add(
                "s3",
                f"upload {plan.target.template.name} to s3://{bucket}/{plan.target.key}",
                functools.partial(self._upload, plan),
            )

    def _has_default_encryption(self, bucket: str, owner: str) -> bool:
        try:
            response = self.s3.get_bucket_encryption(Bucket=bucket, ExpectedBucketOwner=owner)
        except ClientError as exc:
            if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                return False
            raise
        rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        return any(
            rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for rule in rules
        )

    def _blocks_public_access(self, bucket: str, owner: str) -> bool:
        try:
            response = self.s3.get_public_access_block(Bucket=bucket, ExpectedBucketOwner=owner)
        except ClientError as exc:
            if _code(exc) == "NoSuchPublicAccessBlockConfiguration":
                return False
            raise
        settings = response.get("PublicAccessBlockConfiguration", {})
        return all(settings.get(name) for name in _PUBLIC_ACCESS_BLOCK)

    def _bucket_policy(self, bucket: str, owner: str) -> dict[str, Any] | None:
        try:
            response = self.s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner)
        except ClientError as exc:
            if _code(exc) == "NoSuchBucketPolicy":
                return None
            raise
        return json.loads(response["Policy"])

    def _object_exists(self, bucket: str, key: str, owner: str) -> bool:
        try:
            self.s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=owner)
        except ClientError as exc:
            if _code(exc) in NOT_FOUND_CODES:
                return False
            raise
        return True

    @staticmethod
    def _merged_policy(
        current: dict[str, Any] | None, statement: dict[str, Any]
    ) -> dict[str, Any] | None:
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

    def _plan_catalog(self, plan: Plan) -> None:
        config = self.config

        portfolio = self._find_portfolio(config.portfolio_name)
        if portfolio is None:
            plan.add(
                "servicecatalog",
                f"create portfolio {config.portfolio_name!r}",
                functools.partial(self._create_portfolio, plan),
            )
        else:
            plan.portfolio_id = portfolio["Id"]
            changes = {}
            if portfolio.get("ProviderName", "") != config.portfolio_provider:
                changes["ProviderName"] = config.portfolio_provider
            if portfolio.get("Description", "") != config.portfolio_description:
                changes["Description"] = config.portfolio_description
            if changes:
                plan.add(
                    "servicecatalog",
                    f"update portfolio {portfolio['Id']} ({', '.join(sorted(changes))})",
                    functools.partial(self._update_portfolio, plan, changes),
                )
            else:
                plan.notes.append(f"portfolio {portfolio['Id']} is up to date")

        product = self._find_product(config.product["name"])
        artifacts: list[dict[str, Any]] = []
        associated = False
        if product is not None:
            plan.product_id = product_id = product["ProductViewSummary"]["ProductId"]
            summary = self.sc.describe_product_as_admin(Id=product_id)["ProductViewDetail"][
                "ProductViewSummary"
            ]
            if summary.get("Type", "CLOUD_FORMATION_TEMPLATE") != "CLOUD_FORMATION_TEMPLATE":
                raise PublishError(
                    f"product {product_id} has type {summary['Type']}, not a CloudFormation one"
                )
            changes = {
                param: wanted
                for param, current_field, wanted in self._product_fields()
                if (summary.get(current_field) or "") != wanted
            }
            if changes:
                plan.add(
                    "servicecatalog",
                    f"update product {product_id} ({', '.join(sorted(changes))})",
                    functools.partial(self._update_product, plan, changes),
                )
            else:
                plan.notes.append(f"product {product_id} is up to date")
            artifacts = self.sc.list_provisioning_artifacts(ProductId=product_id).get(
                "ProvisioningArtifactDetails", []
            )

        self._plan_version(plan, artifacts)

        if product is not None and plan.portfolio_id:
            associated = self._product_in_portfolio(plan.product_id, plan.portfolio_id)
        if associated:
            plan.notes.append("product is in the portfolio")
        else:
            plan.add(
                "servicecatalog",
                "associate the product with the portfolio",
                functools.partial(self._associate_product, plan),
            )

        if config.launch_role_name:
            existing = None
            if associated:
                existing = self._launch_constraint(plan.portfolio_id, plan.product_id)
            if existing is None:
                plan.add(
                    "servicecatalog",
                    f"add LAUNCH constraint with local role {config.launch_role_name!r}",
                    functools.partial(self._create_launch_constraint, plan),
                )
            elif existing != config.launch_role_name:
                plan.warnings.append(
                    f"the existing LAUNCH constraint uses role {existing!r}, not "
                    f"{config.launch_role_name!r}; left unchanged"
                )
            else:
                plan.notes.append(f"LAUNCH constraint uses role {existing!r}")

        current_principals: set[str] = set()
        if config.principals and plan.portfolio_id:
            current_principals = self._portfolio_principals(plan.portfolio_id)
        present = [p for p in config.principals if p in current_principals]
        if present:
            plan.notes.append(f"{len(present)} principal(s) already have portfolio access")
        for principal in config.principals:
            if principal in current_principals:
                continue
            plan.add(
                "servicecatalog",
                f"give {principal} access to the portfolio",
                functools.partial(self._associate_principal, plan, principal),
            )

        # Last: the new version is AVAILABLE (its step waits) before older ones are retired.
        for artifact, update in lifecycle_changes(
            artifacts, plan.artifact_id, config.keep_active_versions
        ):
            words = []
            if update.get("Guidance") == "DEPRECATED":
                words.append("deprecate")
            if update.get("Active") is False:
                words.append("deactivate")
            plan.add(
                "servicecatalog",
                f"{' and '.join(words)} version {artifact.get('Name')!r} ({artifact['Id']})",
                functools.partial(self._update_artifact, plan, artifact["Id"], update),
            )

    def _plan_version(self, plan: Plan, artifacts: list[dict[str, Any]]) -> None:
        target = plan.target
        same = [a for a in artifacts if a.get("Name") == target.version]
        if len(same) > 1:
            raise PublishError(f"product has {len(same)} versions named {target.version!r}")
        if same:
            artifact = same[0]
            marker = SHA256_MARKER.search(artifact.get("Description") or "")
            if marker is None or marker.group(1) != target.sha256:
                published = f"sha256:{marker.group(1)}" if marker else "no sha256 marker"
                raise PublishError(
                    f"version {target.version!r} is already published ({artifact['Id']}, "
                    f"{published}) with a different template (sha256:{target.sha256}); "
                    "published versions are never changed: release a new version"
                )
            plan.artifact_id = artifact["Id"]
            status = self.sc.describe_provisioning_artifact(
                ProductId=plan.product_id, ProvisioningArtifactId=artifact["Id"]
            ).get("Status")
            if status == "FAILED":
                raise PublishError(
                    f"version {target.version!r} ({artifact['Id']}) is in FAILED state; delete "
                    "it and publish again"
                )
            if status == "CREATING":
                plan.waits_for_version = True
                plan.add(
                    "servicecatalog",
                    f"wait for version {target.version!r} ({artifact['Id']}) to become AVAILABLE",
                    functools.partial(self._wait_for_artifact, plan),
                )
            else:
                plan.notes.append(f"version {target.version!r} is published as {artifact['Id']}")
            if not artifact.get("Active", True):
                plan.warnings.append(f"version {target.version!r} exists but is inactive")
            return

        count = len(artifacts) + 1
        if count > VERSION_QUOTA:
            raise PublishError(
                f"product already has {len(artifacts)} versions, the Service Catalog quota is "
                f"{VERSION_QUOTA}: delete old inactive versions before publishing"
            )
        if count >= VERSION_QUOTA_WARN:
            plan.warnings.append(
                f"product will hold {count} of at most {VERSION_QUOTA} versions; delete old "
                "inactive versions soon"
            )
        plan.creates_version = True
        if plan.product_id is None:
            plan.creates_product = True
            plan.add(
                "servicecatalog",
                f"create product {self.config.product['name']!r} with version "
                f"{target.version!r} and wait until it is AVAILABLE",
                functools.partial(self._create_product, plan),
            )
        else:
            plan.add(
                "servicecatalog",
                f"create version {target.version!r} from {plan.url} and wait until it is AVAILABLE",
                functools.partial(self._create_artifact, plan),
            )

    def _product_fields(self) -> list[tuple[str, str, str]]:
        """(UpdateProduct parameter, ProductViewSummary field, wanted value)."""
        product = self.config.product
        return [
            ("Owner", "Owner", product.get("owner", "")),
            ("Description", "ShortDescription", product.get("description", "")),
            ("Distributor", "Distributor", product.get("distributor", "")),
            ("SupportDescription", "SupportDescription", product.get("support_description", "")),
            ("SupportEmail", "SupportEmail", product.get("support_email", "")),
            ("SupportUrl", "SupportUrl", product.get("support_url", "")),
        ]

    def _find_portfolio(self, name: str) -> dict[str, Any] | None:
        matches = [
            portfolio
            for page in self.sc.get_paginator("list_portfolios").paginate()
            for portfolio in page.get("PortfolioDetails", [])
            if portfolio.get("DisplayName") == name
        ]
        if len(matches) > 1:
            ids = ", ".join(p["Id"] for p in matches)
            raise PublishError(f"{len(matches)} portfolios are named {name!r} ({ids})")
        return matches[0] if matches else None

    def _find_product(self, name: str) -> dict[str, Any] | None:
        pages = self.sc.get_paginator("search_products_as_admin").paginate(
            Filters={"FullTextSearch": [name]}, ProductSource="ACCOUNT"
        )
        matches = [
            detail
            for page in pages
            for detail in page.get("ProductViewDetails", [])
            if detail.get("ProductViewSummary", {}).get("Name") == name
        ]
        if len(matches) > 1:
            ids = ", ".join(m["ProductViewSummary"]["ProductId"] for m in matches)
            raise PublishError(f"{len(matches)} products are named {name!r} ({ids})")
        return matches[0] if matches else None

    def _product_in_portfolio(self, product_id: str, portfolio_id: str) -> bool:
        pages = self.sc.get_paginator("list_portfolios_for_product").paginate(ProductId=product_id)
        return any(
            portfolio.get("Id") == portfolio_id
            for page in pages
            for portfolio in page.get("PortfolioDetails", [])
        )

    def _portfolio_principals(self, portfolio_id: str) -> set[str]:
        pages = self.sc.get_paginator("list_principals_for_portfolio").paginate(
            PortfolioId=portfolio_id
        )
        return {
            principal["PrincipalARN"] for page in pages for principal in page.get("Principals", [])
        }

    def _launch_constraint(self, portfolio_id: str, product_id: str) -> str | None:
        """The role name of the product's LAUNCH constraint in the portfolio, if any."""
        pages = self.sc.get_paginator("list_constraints_for_portfolio").paginate(
            PortfolioId=portfolio_id, ProductId=product_id
        )
        for page in pages:
            for constraint in page.get("ConstraintDetails", []):
                if constraint.get("Type") != "LAUNCH":
                    continue
                detail = self.sc.describe_constraint(Id=constraint["ConstraintId"])
                try:
                    parameters = json.loads(detail.get("ConstraintParameters") or "{}")
                except ValueError:
                    parameters = {}
                return _role_name(parameters.get("LocalRoleName") or parameters.get("RoleArn"))
        return None

    # ---------------------------------------------------------------- write phase

    def apply(self, plan: Plan) -> None:
        """Run the plan's write steps in order; the first failure stops the region."""
        total = len(plan.steps)
        for number, step in enumerate(plan.steps, 1):
            self.progress(f"[{number}/{total}] {step.description}")
            try:
                step.run()
                plan.completed = number
            except (ClientError, BotoCoreError, PublishError) as exc:
                if isinstance(exc, PublishError) and exc.__cause__ is None:
                    raise PublishError(f"step {number}/{total} failed: {exc}") from None
                raise PublishError(f"step {number}/{total} ({step.description}) failed") from exc

    def _create_bucket(self, plan: Plan) -> None:
        kwargs: dict[str, Any] = {"Bucket": plan.bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.s3.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise

    def _versioning(self, plan: Plan) -> None:
        self.s3.put_bucket_versioning(
            Bucket=plan.bucket,
            VersioningConfiguration={"Status": "Enabled"},
            ExpectedBucketOwner=plan.account,
        )

    def _sse(self, plan: Plan) -> None:
        self.s3.put_bucket_encryption(
            Bucket=plan.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            ExpectedBucketOwner=plan.account,
        )

    def _block(self, plan: Plan) -> None:
        self.s3.put_public_access_block(
            Bucket=plan.bucket,
            PublicAccessBlockConfiguration=dict.fromkeys(_PUBLIC_ACCESS_BLOCK, True),
            ExpectedBucketOwner=plan.account,
        )

    def _put_policy(self, plan: Plan, policy: dict[str, Any]) -> None:
        self.s3.put_bucket_policy(
            Bucket=plan.bucket, Policy=json.dumps(policy), ExpectedBucketOwner=plan.account
        )

    def _upload(self, plan: Plan) -> None:
        target = plan.target
        self.s3.put_object(
            Bucket=plan.bucket,
            Key=target.key,
            Body=target.body,
            ContentType="application/json",
            ChecksumSHA256=base64.b64encode(bytes.fromhex(target.sha256)).decode(),
            ExpectedBucketOwner=plan.account,
        )

    def _token(self, plan: Plan, *parts: str) -> str:
        return idempotency_token(plan.account, self.region, *parts)

    def _create_portfolio(self, plan: Plan) -> None:
        config = self.config
        kwargs = {
            "DisplayName": config.portfolio_name,
            "ProviderName": config.portfolio_provider,
            "IdempotencyToken": self._token(plan, "portfolio", config.portfolio_name),
        }
        if config.portfolio_description:
            kwargs["Description"] = config.portfolio_description
        response = self.sc.create_portfolio(**kwargs)
        plan.portfolio_id = response["PortfolioDetail"]["Id"]

    def _update_portfolio(self, plan: Plan, changes: dict[str, str]) -> None:
        self.sc.update_portfolio(Id=plan.portfolio_id, **changes)

    def _artifact_parameters(self, plan: Plan) -> dict[str, Any]:
        return {
            "Name": plan.target.version,
            "Description": plan.target.description,
            "Info": {"LoadTemplateFromURL": plan.url},
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "DisableTemplateValidation": False,
        }

    def _create_product(self, plan: Plan) -> None:
        product = self.config.product
        kwargs: dict[str, Any] = {
            "Name": product["name"],
            "ProductType": "CLOUD_FORMATION_TEMPLATE",
            "ProvisioningArtifactParameters": self._artifact_parameters(plan),
            "IdempotencyToken": self._token(
                plan, "product", product["name"], plan.target.version, plan.target.sha256
            ),
        }
        kwargs.update({param: value for param, _, value in self._product_fields() if value})
        response = self.sc.create_product(**kwargs)
        plan.product_id = response["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
        plan.artifact_id = response["ProvisioningArtifactDetail"]["Id"]
        self._wait_for_artifact(plan)

    def _update_product(self, plan: Plan, changes: dict[str, str]) -> None:
        self.sc.update_product(Id=plan.product_id, **changes)

    def _create_artifact(self, plan: Plan) -> None:
        response = self.sc.create_provisioning_artifact(
            ProductId=plan.product_id,
            Parameters=self._artifact_parameters(plan),
            IdempotencyToken=self._token(
                plan, "version", plan.product_id, plan.target.version, plan.target.sha256
            ),
        )
        plan.artifact_id = response["ProvisioningArtifactDetail"]["Id"]
        self._wait_for_artifact(plan)

    def _wait_for_artifact(self, plan: Plan) -> None:
        waited = 0.0
        while True:
            response = self.sc.describe_provisioning_artifact(
                ProductId=plan.product_id, ProvisioningArtifactId=plan.artifact_id
            )
            status = response.get("Status")
            if status == "AVAILABLE":
                return
            if status == "FAILED":
                info = response.get("Info") or {}
                reason = "; ".join(f"{k}: {v}" for k, v in sorted(info.items())) or "no reason"
                raise PublishError(
                    f"version {plan.target.version!r} ({plan.artifact_id}) FAILED: {reason}"
                )
            if waited >= self.poll_timeout:
                raise PublishError(
                    f"version {plan.target.version!r} ({plan.artifact_id}) is still {status} "
                    f"after {waited:.0f} s"
                )
            self.sleep(self.poll_interval)
            waited += self.poll_interval

    def _associate_product(self, plan: Plan) -> None:
        self.sc.associate_product_with_portfolio(
            ProductId=plan.product_id, PortfolioId=plan.portfolio_id
        )

    def _create_launch_constraint(self, plan: Plan) -> None:
        role = self.config.launch_role_name
        self.sc.create_constraint(
            PortfolioId=plan.portfolio_id,
            ProductId=plan.product_id,
            Type="LAUNCH",
            Parameters=json.dumps({"LocalRoleName": role}),
            Description=f"Launch as the local IAM role {role}",
            IdempotencyToken=self._token(plan, "launch", plan.portfolio_id, plan.product_id, role),
        )

    def _associate_principal(self, plan: Plan, principal: str) -> None:
        account_field = principal.split(":")[4]
        self.sc.associate_principal_with_portfolio(
            PortfolioId=plan.portfolio_id,
            PrincipalARN=principal,
            PrincipalType="IAM" if account_field else "IAM_PATTERN",
        )

    def _update_artifact(self, plan: Plan, artifact_id: str, update: dict[str, Any]) -> None:
        self.sc.update_provisioning_artifact(
            ProductId=plan.product_id, ProvisioningArtifactId=artifact_id, **update
        )


_PUBLIC_ACCESS_BLOCK = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def _as_set(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset([value])
    return frozenset(value or [])


def _same_statement(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    principal = existing.get("Principal")
    return (
        existing.get("Effect") == wanted["Effect"]
        and principal in ("*", {"AWS": "*"})
        and _as_set(existing.get("Action")) == _as_set(wanted["Action"])
        and _as_set(existing.get("Resource")) == _as_set(wanted["Resource"])
        and json.dumps(existing.get("Condition"), sort_keys=True).lower()
        == json.dumps(wanted["Condition"], sort_keys=True).lower()
    )


# --------------------------------------------------------------------------------------------
# Command line


@dataclass(frozen=True)
class Clients:
    s3: Any
    sts: Any
    servicecatalog: Any


ClientFactory = Callable[[str], Clients]


def session_client_factory(profile: str | None) -> ClientFactory:
    """Build each region's clients from its own session (sessions are not thread-safe)."""

    def make(region: str) -> Clients:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        return Clients(
            s3=session.client("s3", region_name=region, config=BOTO_CONFIG),
            sts=session.client("sts", region_name=region, config=BOTO_CONFIG),
            servicecatalog=session.client("servicecatalog", region_name=region, config=BOTO_CONFIG),
        )

    return make


@dataclass
class RegionResult:
    region: str
    target: Target | None = None
    plan: Plan | None = None
    error: str | None = None
    remote_unreadable: str | None = None  # dry run without credentials
    applied: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None

    def action(self, dry_run: bool) -> str:
        if self.error is not None:
            return "FAILED"
        if self.remote_unreadable is not None:
            return "local plan only"
        plan = self.plan
        assert plan is not None
        version = plan.target.version
        if plan.creates_product:
            return f"{'would create' if dry_run else 'created'} product and version {version}"
        if plan.creates_version:
            return f"{'would create' if dry_run else 'created'} version {version}"
        if plan.steps:
            verb = "would apply" if dry_run else "applied"
            return f"{verb} {len(plan.steps)} change(s); version {version} already published"
        return f"unchanged; version {version} already published"

    def product_id(self) -> str:
        if self.plan is None:
            return "-"
        return self.plan.product_id or "(new)"

    def artifact_id(self) -> str:
        if self.plan is None:
            return "-"
        return self.plan.artifact_id or "(new)"


class Reporter:
    """Serialised per-region progress lines on stderr."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, region: str, message: str) -> None:
        with self.lock:
            print(f"[{region}] {message}", file=sys.stderr, flush=True)


def publish_region(
    region: str,
    target: Target,
    clients: Clients,
    config: PublishConfig,
    *,
    dry_run: bool,
    report: Callable[[str, str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> RegionResult:
    result = RegionResult(region=region, target=target)
    publisher = RegionPublisher(
        region,
        s3=clients.s3,
        sts=clients.sts,
        servicecatalog=clients.servicecatalog,
        config=config,
        sleep=sleep,
        progress=lambda message: report(region, message),
    )
    try:
        report(region, "reading remote state")
        result.plan = publisher.plan(target)
        count = len(result.plan.steps)
        if dry_run:
            report(region, f"planned {count} change(s), dry run: nothing written")
            return result
        if count:
            publisher.apply(result.plan)
            result.applied = True
        report(region, f"done ({count} change(s))")
    except Exception as exc:  # noqa: BLE001 - one region's failure must not hide the others
        if dry_run and result.plan is None and is_credential_error(exc):
            result.remote_unreadable = describe_error(exc)
            report(region, "local plan only")
        else:
            result.error = describe_error(exc)
            report(region, f"failed: {result.error}")
    return result


def _print_result(result: RegionResult, config: PublishConfig, dry_run: bool) -> None:
    target = result.target
    if target is None:
        print(f"== {result.region}")
    else:
        print(
            f"== {result.region}: {target.template} ({len(target.body)} bytes) "
            f"sha256:{target.sha256} version {target.version}"
        )
    plan = result.plan
    if plan is not None:
        print(f"   account {plan.account}, template URL {plan.url}")
        for note in plan.notes:
            print(f"   = {note}")
        for number, step in enumerate(plan.steps, 1):
            if dry_run:
                print(f"   + would {step.description}")
            elif number <= plan.completed:
                print(f"   + {step.description}")
            elif number == plan.completed + 1 and result.error is not None:
                print(f"   x {step.description} (failed)")
            else:
                print(f"   - {step.description} (not done)")
        if not plan.steps:
            print("   nothing to do")
        for warning in plan.warnings:
            print(f"   ! warning: {warning}")
    elif target is not None and result.remote_unreadable is not None:
        bucket = f"{config.bucket_prefix}-<account>-{result.region}"
        print(f"   template object s3://{bucket}/{target.key}")
    if result.error is not None:
        print(f"   ERROR: {result.error}")


def _print_table(results: list[RegionResult], dry_run: bool) -> None:
    rows = [("REGION", "PRODUCT ID", "VERSION ID", "ACTION")]
    rows += [(r.region, r.product_id(), r.artifact_id(), r.action(dry_run)) for r in results]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``publish`` flags to build.py's subparser."""
    parser.add_argument(
        "--regions",
        default=argparse.SUPPRESS,  # keep a --regions given before the subcommand
        help="comma-separated subset of the target regions (default: all in params/build.json)",
    )
    parser.add_argument(
        "--version",
        help="release version, used as the Service Catalog version name "
        "(default: git describe --tags --always --dirty)",
    )
    parser.add_argument("--portfolio", help="portfolio display name (default: params/build.json)")
    parser.add_argument(
        "--principal",
        action="append",
        metavar="ARN",
        help="IAM role/user/group ARN given access to the portfolio; repeatable; replaces "
        "publish.principals from params/build.json",
    )
    parser.add_argument(
        "--launch-role",
        metavar="NAME",
        help="local name of the IAM role the LAUNCH constraint uses (default: params/build.json)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read the remote state and print the plan without writing anything",
    )
    parser.add_argument("--profile", help="AWS profile to use")


def main(
    args: argparse.Namespace,
    settings: dict[str, Any],
    dist_dir: Path,
    *,
    client_factory: ClientFactory | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publish ``dist_dir/<region>.json`` for each region; returns the process exit code."""
    dry_run = bool(getattr(args, "dry_run", False))
    try:
        regions = _regions(getattr(args, "regions", None), settings)
        version = validate_version(getattr(args, "version", None) or git_describe())
        if version.endswith("-dirty") and not dry_run:
            raise UsageError(
                f"version {version!r} comes from a work tree with uncommitted changes; "
                "commit first or pass --version"
            )
        config = PublishConfig.from_settings(
            settings,
            portfolio=getattr(args, "portfolio", None),
            principals=getattr(args, "principal", None),
            launch_role=getattr(args, "launch_role", None),
        )
        factory = client_factory or session_client_factory(getattr(args, "profile", None))
    except UsageError as exc:
        print(f"publish: error: {exc}", file=sys.stderr)
        return 2

    mode = "dry run, nothing is written" if dry_run else "publishing"
    print(f"Version {version} to {', '.join(regions)} ({mode})", file=sys.stderr)
    report = Reporter()
    results: dict[str, RegionResult] = {}
    pending: dict[str, tuple[Target, Clients]] = {}
    for region in regions:
        try:
            target = load_target(region, Path(dist_dir), version)
        except PublishError as exc:
            results[region] = RegionResult(region=region, error=describe_error(exc))
            report(region, f"failed: {results[region].error}")
            continue
        try:
            pending[region] = (target, factory(region))
        except ProfileNotFound as exc:
            print(f"publish: error: {describe_error(exc)}", file=sys.stderr)
            return 2
        except (BotoCoreError, ClientError) as exc:
            results[region] = RegionResult(region=region, target=target, error=describe_error(exc))

    if pending:
        with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:
            futures = {
                region: pool.submit(
                    publish_region,
                    region,
                    target,
                    clients,
                    config,
                    dry_run=dry_run,
                    report=report,
                    sleep=sleep,
                )
                for region, (target, clients) in pending.items()
            }
            for region, future in futures.items():
                results[region] = future.result()

    ordered = [results[region] for region in regions]
    for result in ordered:
        _print_result(result, config, dry_run)
    unreadable = [r for r in ordered if r.remote_unreadable is not None]
    if unreadable:
        which = "" if len(unreadable) == len(ordered) else f" in {_names(unreadable)}"
        print(
            f"Remote state could not be read{which} ({unreadable[0].remote_unreadable}); "
            "the plan shows the local part only."
        )
    print()
    _print_table(ordered, dry_run)
    failed = [r for r in ordered if r.failed]
    if failed:
        print(f"publish: {len(failed)} region(s) failed: {_names(failed)}", file=sys.stderr)
        return 1
    return 0


def _names(results: list[RegionResult]) -> str:
    return ", ".join(r.region for r in results)


def _regions(value: str | None, settings: dict[str, Any]) -> list[str]:
    """The regions to publish: settings' ``regions`` (a list, or a map keyed by region) or the
    subset named by ``value``."""
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
