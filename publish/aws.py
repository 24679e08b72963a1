"""AWS edges shared by the readers and the executor: clients, error classes, small lookups."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoAuthTokenError,
    NoCredentialsError,
    PartialCredentialsError,
    SSOError,
    TokenRetrievalError,
)

from .config import PublishError

BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=60,
)
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
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
NOT_FOUND_CODES = frozenset({"404", "NoSuchBucket", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class Clients:
    """One region's clients (each built from its own session: sessions are not thread-safe)."""

    s3: Any
    sts: Any
    servicecatalog: Any
    iam: Any = None
    cloudformation: Any = None

    def for_service(self, service: str) -> Any:
        return getattr(self, service)


ClientFactory = Callable[[str], Clients]


def session_client_factory(profile: str | None) -> ClientFactory:
    def make(region: str) -> Clients:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        names = ("s3", "sts", "servicecatalog", "iam", "cloudformation")
        return Clients(
            **{name: session.client(name, region_name=region, config=BOTO_CONFIG) for name in names}
        )

    return make


def error_code(exc: BaseException) -> str:
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def is_credential_error(exc: BaseException) -> bool:
    return isinstance(exc, CREDENTIAL_EXCEPTIONS) or error_code(exc) in CREDENTIAL_CODES


def describe_error(exc: BaseException) -> str:
    """A clear one-line reason for an exception raised while publishing."""
    cause = exc.__cause__ if isinstance(exc, PublishError) else None
    if cause is not None and not isinstance(cause, PublishError):
        return f"{one_line(str(exc))}: {describe_error(cause)}"
    if isinstance(exc, PublishError):
        return one_line(str(exc))
    if is_credential_error(exc):
        return f"no usable AWS credentials ({one_line(str(exc))})"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        operation = getattr(exc, "operation_name", "request")
        message = one_line(exc.response.get("Error", {}).get("Message", "") or str(exc))
        if code in ACCESS_DENIED_CODES:
            return f"access denied calling {operation}: {message}"
        if code in THROTTLING_CODES:
            return f"throttled by AWS on {operation} even after retries: {message}"
        return f"{operation} failed: {code}: {message}"
    if isinstance(exc, BotoCoreError):
        return one_line(str(exc))
    return f"unexpected {type(exc).__name__}: {one_line(str(exc))}"


def get_or_none(call: Callable[..., dict[str, Any]], missing: Iterable[str], **kwargs: Any):
    """``call(**kwargs)``, or None when AWS answers with one of the ``missing`` error codes."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if error_code(exc) in frozenset(missing):
            return None
        raise


def all_items(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item under ``key`` across all pages of ``operation``."""
    pages = client.get_paginator(operation).paginate(**kwargs)
    return [item for page in pages for item in page.get(key, [])]


def find_one_by_name(
    items: Iterable[dict[str, Any]], name: str, *, what: str, name_of: Callable, id_of: Callable
) -> dict[str, Any] | None:
    """The one item whose exact name is ``name``; several are an error a person must resolve."""
    matches = [item for item in items if name_of(item) == name]
    if len(matches) > 1:
        ids = ", ".join(id_of(item) for item in matches)
        raise PublishError(f"{len(matches)} {what}s are named {name!r} ({ids})")
    return matches[0] if matches else None


def all_token_pages(
    call: Callable[..., dict[str, Any]], key: str, token: str = "PageToken", **kwargs: Any
) -> list[dict[str, Any]]:
    """Every item under ``key`` for operations botocore has no paginator for."""
    items: list[dict[str, Any]] = []
    next_token = None
    while True:
        page = call(**kwargs, **({token: next_token} if next_token else {}))
        items.extend(page.get(key, []))
        next_token = page.get("NextPageToken") or page.get("NextToken")
        if not next_token:
            return items
