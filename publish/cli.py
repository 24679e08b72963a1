"""``python build.py publish``: flags, the run across regions, and the report."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .apply import Executor
from .aws import ClientFactory, Clients, describe_error, is_credential_error, session_client_factory
from .config import (
    PublishConfig,
    PublishError,
    UsageError,
    git_describe,
    load_targets,
    regions_to_publish,
    validate_version,
)
from .member import member_view
from .run import ScopeResult, plan_catalog_region, plan_launch_role_stack_set, run_scope


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``publish`` flags to build.py's subparser."""
    parser.add_argument(
        "--regions",
        default=argparse.SUPPRESS,  # keep a --regions given before the subcommand
        help="regions to publish to, comma-separated, among params/build.json `regions` "
        "(default: all of them); each gets the same template",
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
        "publish.principals (principals not named are removed from the portfolio)",
    )
    parser.add_argument(
        "--launch-role",
        metavar="NAME",
        help="local name of the IAM role the LAUNCH constraint uses (default: params/build.json)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read the remote state and print the exact API calls a real run would make",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="publish a version built from a work tree with uncommitted changes",
    )
    parser.add_argument(
        "--allow-replacement",
        action="store_true",
        help="publish a version even if updating stacks to it replaces or removes a stateful "
        "resource",
    )
    parser.add_argument(
        "--check-member",
        action="store_true",
        help="read only, with a member account's credentials: is the shared product launchable?",
    )
    parser.add_argument("--profile", help="AWS profile to use")


class Reporter:
    """Serialised per-scope progress lines on stderr."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, scope: str, message: str) -> None:
        with self.lock:
            print(f"[{scope}] {message}", file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace, settings: dict[str, Any]):
    dry_run = bool(getattr(args, "dry_run", False))
    regions = regions_to_publish(getattr(args, "regions", None), settings)
    version = validate_version(getattr(args, "version", None) or git_describe())
    if version.endswith("-dirty") and not dry_run and not getattr(args, "allow_dirty", False):
        raise UsageError(
            f"version {version!r} comes from a work tree with uncommitted changes; commit "
            "first, pass --version, or pass --allow-dirty"
        )
    config = PublishConfig.from_settings(
        settings,
        portfolio=getattr(args, "portfolio", None),
        principals=getattr(args, "principal", None),
        launch_role=getattr(args, "launch_role", None),
        allow_replacement=bool(getattr(args, "allow_replacement", False)),
    )
    return dry_run, regions, version, config


def main(
    args: argparse.Namespace,
    settings: dict[str, Any],
    dist_dir: Path,
    *,
    client_factory: ClientFactory | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publish ``dist_dir``'s templates; returns the process exit code."""
    try:
        dry_run, regions, version, config = _settings(args, settings)
        factory = client_factory or session_client_factory(getattr(args, "profile", None))
        clients = {region: factory(region) for region in regions}
        if config.stack_set.enabled and config.stack_set.region not in clients:
            clients[config.stack_set.region] = factory(config.stack_set.region)
    except BotoCoreError as exc:  # e.g. ProfileNotFound: no clients, nothing attempted
        return _usage(describe_error(exc))
    except UsageError as exc:
        return _usage(str(exc))

    if getattr(args, "check_member", False):
        return _check_member(clients[regions[0]], config)
    results = _load_targets(regions, Path(dist_dir), version)
    try:
        identity = clients[regions[0]].sts.get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        if dry_run:  # the local half of the plan is still worth seeing
            _print_local(results.values())
        print(f"publish: error: {describe_error(exc)}", file=sys.stderr)
        return 2 if is_credential_error(exc) else 1

    mode = "dry run, nothing is written" if dry_run else "publishing"
    print(f"Version {version} to {', '.join(regions)} ({mode})", file=sys.stderr)
    jobs = _jobs(results, clients, config, identity, dist_dir)
    _run_all(jobs, dry_run, sleep)
    scopes = [job[0] for job in jobs if job[0].scope not in results]  # the StackSet
    return _report(scopes + [results[region] for region in regions], dry_run)


def _load_targets(regions: list[str], dist_dir: Path, version: str) -> dict[str, ScopeResult]:
    """One result per region, with the template, or the local reason there is none."""
    results = {region: ScopeResult(region) for region in regions}
    try:
        targets = load_targets(regions, dist_dir, version)
    except PublishError as exc:
        for result in results.values():
            result.error = describe_error(exc)
        return results
    for region, result in results.items():
        result.target = targets[region]
    return results


def _report(ordered: list[ScopeResult], dry_run: bool) -> int:
    for result in ordered:
        _print_result(result, dry_run)
    print()
    _print_table(ordered, dry_run)
    failed = [r for r in ordered if r.failed]
    if failed:
        names = ", ".join(r.scope for r in failed)
        verb = "would fail" if dry_run else "failed"
        print(f"publish: {len(failed)} scope(s) {verb}: {names}", file=sys.stderr)
        return 1
    return 0


def _check_member(clients: Clients, config: PublishConfig) -> int:
    try:
        for line in member_view(clients.servicecatalog, clients.iam, config):
            print(f"ok: {line}")
    except (PublishError, BotoCoreError, ClientError) as exc:
        print(f"publish: error: {describe_error(exc)}", file=sys.stderr)
        return 2 if is_credential_error(exc) else 1
    return 0


def _usage(message: str) -> int:
    print(f"publish: error: {message}", file=sys.stderr)
    return 2


def _jobs(results, clients: dict[str, Clients], config, identity, dist_dir) -> list[tuple]:
    """(result, planner, clients) for every scope that has something to plan."""
    jobs = []
    if config.stack_set.enabled:
        stack_set = config.stack_set
        result = ScopeResult(f"StackSet {stack_set.name} ({stack_set.region})")
        planner = partial(plan_launch_role_stack_set, clients[stack_set.region], config, dist_dir)
        jobs.append((result, planner, clients[stack_set.region]))
    for region, result in results.items():
        if result.target is not None:
            planner = partial(plan_catalog_region, clients[region], config, result.target, identity)
            jobs.append((result, planner, clients[region]))
    return jobs


def _run_all(jobs: list[tuple], dry_run: bool, sleep: Callable[[float], None]) -> None:
    report = Reporter()
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
        futures = []
        for result, planner, clients in jobs:
            progress = partial(report, result.scope)
            executor = Executor(clients, sleep=sleep, progress=progress)
            futures.append(
                pool.submit(run_scope, result, planner, executor, dry_run=dry_run, report=progress)
            )
        for future in futures:
            future.result()


def _print_local(results) -> None:
    """What can be said without reading AWS: the templates and their content addresses."""
    for result in results:
        target = result.target
        if target is not None:
            print(
                f"== {result.scope}: {target.template} ({len(target.body)} bytes) sha256:{target.sha256}"
            )
        else:
            print(f"== {result.scope}: ERROR: {result.error}")


def _print_result(result: ScopeResult, dry_run: bool) -> None:
    target = result.target
    heading = f"== {result.scope}"
    if target is not None:
        heading += (
            f": {target.template} ({len(target.body)} bytes) sha256:{target.sha256} "
            f"version {target.version}"
        )
    print(heading)
    if result.context is not None:
        print(f"   account {result.context.account}, template URL {result.context.url}")
    if result.plan is not None:
        _print_plan(result, dry_run)
    if result.error is not None:
        print(f"   ERROR: {result.error}")


def _print_plan(result: ScopeResult, dry_run: bool) -> None:
    plan = result.plan
    for note in plan.notes:
        print(f"   = {note}")
    for number, action in enumerate(plan.actions, 1):
        print(f"   {_mark(number, plan, result, dry_run)} {action.summary}")
        if dry_run:
            print(f"       {action.render()}")
    if not plan.actions:
        print("   nothing to do")
    for warning in plan.warnings:
        print(f"   ! warning: {warning}")
    for blocker in plan.blockers:
        print(f"   ! blocked: {blocker}")


def _mark(number: int, plan, result: ScopeResult, dry_run: bool) -> str:
    if dry_run or plan.blockers:
        return "+ would" if dry_run else "- not done:"
    if number <= plan.completed:
        return "+"
    if number == plan.completed + 1 and result.error is not None:
        return "x (failed)"
    return "- not done:"


def _action(result: ScopeResult, dry_run: bool) -> str:
    plan = result.plan
    if result.error is not None:
        return "FAILED"
    if plan is None:
        return "-"
    if plan.blockers:
        return "BLOCKED"
    would = "would " if dry_run else ""
    if plan.creates_product:
        return f"{would}create product and version {plan.version}"
    if plan.creates_version:
        return f"{would}create version {plan.version}"
    suffix = f"; offers version {plan.version}" if plan.version else ""
    if plan.actions:
        return f"{would}apply {len(plan.actions)} change(s){suffix}"
    return f"unchanged{suffix}"


def _print_table(results: list[ScopeResult], dry_run: bool) -> None:
    rows = [("SCOPE", "PRODUCT ID", "VERSION ID", "ACTION")]
    for result in results:
        ids = {**(result.plan.known if result.plan else {}), **result.ids}
        new = "(new)" if result.plan and result.target else "-"
        rows.append(
            (
                result.scope,
                ids.get("product_id", new),
                ids.get("artifact_id", new),
                _action(result, dry_run),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
