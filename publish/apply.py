"""Apply phase: run a plan's actions in order, filling in ids from earlier results, retrying
calls that race Service Catalog's eventual consistency and waiting for asynchronous work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from .actions import Action, Plan, Ref
from .aws import Clients, all_items, error_code
from .config import PublishError

POLL_INTERVAL_SECONDS = 5.0
POLL_TIMEOUT_SECONDS = 900.0
#: Back-off for a call that references something created moments ago and is not visible yet.
NOT_VISIBLE_YET_DELAYS = (2.0, 4.0, 8.0, 16.0, 30.0)
#: Calls that create what later calls look up: they never wait for something to appear.
CREATES_FIRST = frozenset({"CreatePortfolio", "CreateProduct", "EnableAWSOrganizationsAccess"})


def resolve(value: Any, results: dict[str, str]) -> Any:
    if isinstance(value, Ref):
        if value.name not in results:
            raise PublishError(f"no {value.name} from an earlier step")
        return results[value.name]
    if isinstance(value, dict):
        return {key: resolve(item, results) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, results) for item in value]
    return value


def dig(response: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        response = (response or {}).get(key)
    return response


class Executor:
    """Runs actions with injected clients; ``sleep`` is injected so tests never wait."""

    def __init__(
        self,
        clients: Clients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] = lambda message: None,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        poll_timeout: float = POLL_TIMEOUT_SECONDS,
    ):
        self.clients = clients
        self.sleep = sleep
        self.progress = progress
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout

    def apply(self, plan: Plan) -> dict[str, str]:
        """Run every action; the first failure stops the plan.  Returns the ids it knows."""
        results = dict(plan.known)
        total = len(plan.actions)
        for number, action in enumerate(plan.actions, 1):
            self.progress(f"[{number}/{total}] {action.summary}")
            try:
                self._run(action, results)
            except (ClientError, BotoCoreError, PublishError) as exc:
                if isinstance(exc, PublishError) and exc.__cause__ is None:
                    raise PublishError(f"step {number}/{total} failed: {exc}") from None
                raise PublishError(f"step {number}/{total} ({action.summary}) failed") from exc
            plan.completed = number
        return results

    def _run(self, action: Action, results: dict[str, str]) -> None:
        params = resolve(action.params, results)
        response = self._call(action, params)
        for name, path in action.outputs.items():
            value = dig(response, path)
            if value is not None:
                results[name] = value
        for wait in action.waits:
            getattr(self, f"_wait_{wait}")(params, response, results)

    def _call(self, action: Action, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self.clients.for_service(action.service), xform_name(action.operation))
        retry = action.service == "servicecatalog" and action.operation not in CREATES_FIRST
        delays = list(NOT_VISIBLE_YET_DELAYS) if retry else []
        while True:
            try:
                return method(**params)
            except ClientError as exc:
                code = error_code(exc)
                if code in action.tolerate:
                    return {}
                if code != "ResourceNotFoundException" or not delays:
                    raise
                delay = delays.pop(0)
                self.progress(f"{action.operation}: not visible yet, retrying in {delay:.0f} s")
                self.sleep(delay)

    def _poll(self, check: Callable[[], bool], what: str) -> None:
        waited = 0.0
        while not check():
            if waited >= self.poll_timeout:
                raise PublishError(f"{what} after {waited:.0f} s")
            self.sleep(self.poll_interval)
            waited += self.poll_interval

    def _wait_version(self, params: dict, response: dict, results: dict[str, str]) -> None:
        sc = self.clients.servicecatalog
        product_id, artifact_id = results["product_id"], results["artifact_id"]
        status: list[str] = []

        def available() -> bool:
            answer = sc.describe_provisioning_artifact(
                ProductId=product_id, ProvisioningArtifactId=artifact_id
            )
            status[:] = [answer.get("Status", "")]
            if status[0] == "FAILED":
                info = answer.get("Info") or {}  # the template URL; the model names no key
                url = next((v for v in info.values() if v.startswith("http")), "the template")
                raise PublishError(
                    f"version {artifact_id} FAILED (Service Catalog gives no reason; check "
                    f"{url} with `aws cloudformation validate-template`)"
                )
            return status[0] == "AVAILABLE"

        self._poll(available, f"version {artifact_id} is still {' '.join(status)}")

    def _wait_product_searchable(self, params: dict, response: dict, results: dict) -> None:
        """A product search misses fresh products for a while; a run that followed too soon
        would create a second product.  Wait until search finds it, as the console does."""
        sc, product_id = self.clients.servicecatalog, results["product_id"]

        def listed() -> bool:
            details = all_items(
                sc,
                "search_products_as_admin",
                "ProductViewDetails",
                Filters={"FullTextSearch": [params["Name"]]},
                ProductSource="ACCOUNT",
            )
            return any(d["ProductViewSummary"]["ProductId"] == product_id for d in details)

        self._poll(listed, f"product {product_id} is not searchable yet")

    def _wait_share(self, params: dict, response: dict, results: dict) -> None:
        token = response.get("PortfolioShareToken")
        if not token:
            return
        sc = self.clients.servicecatalog

        def completed() -> bool:
            answer = sc.describe_portfolio_share_status(PortfolioShareToken=token)
            status = answer.get("Status")
            if status in ("ERROR", "COMPLETED_WITH_ERRORS"):
                errors = answer.get("ShareDetails", {}).get("ShareErrors", [])
                reasons = "; ".join(f"{e.get('Error')}: {e.get('Message')}" for e in errors)
                raise PublishError(f"share {token} ended {status}: {reasons or 'no details'}")
            return status == "COMPLETED"

        self._poll(completed, f"share {token} is still in progress")

    def _wait_stack_set_operation(self, params: dict, response: dict, results: dict) -> None:
        cfn = self.clients.cloudformation
        names = {"StackSetName": params["StackSetName"], "CallAs": params["CallAs"]}

        def succeeded() -> bool:
            operation = cfn.describe_stack_set_operation(
                OperationId=response["OperationId"], **names
            )["StackSetOperation"]
            status = operation.get("Status")
            if status in ("FAILED", "STOPPED"):
                reason = operation.get("StatusReason") or "see the StackSet's operations"
                raise PublishError(f"StackSet operation {status}: {reason}")
            return status == "SUCCEEDED"

        self._poll(succeeded, f"StackSet operation {response['OperationId']} is still running")
