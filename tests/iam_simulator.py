"""Runs IAM cases through @cloud-copilot/iam-simulate (tests/iam_simulate.mjs), in one Node
process per call: build every case of a test module first, then ``simulate`` them together.

Checked against AWS's documented semantics before relying on it (see test_isolation.py's
``test_the_simulator_evaluates_what_these_tests_rely_on``): ``?`` matches exactly one
character, resource ARNs match case-sensitively, ``ForAllValues`` is true for an absent key
(hence the ``Null`` checks), and Numeric/Bool/Arn operators behave as IAM's."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cfn_resolve import ACCOUNT

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "iam_simulate.mjs"
SIMULATOR = ROOT / "node_modules" / "@cloud-copilot" / "iam-simulate"


def simulate(cases):
    """``{id: result}`` for ``{id: case}``; result is Allowed, ImplicitlyDenied,
    ExplicitlyDenied or ``Error: ...`` when the simulator refused the request or a policy."""
    if not shutil.which("node") or not SIMULATOR.exists():
        pytest.fail("the IAM simulator needs Node and `npm ci` at the repository root")
    payload = [{"id": case_id, **case} for case_id, case in cases.items()]
    finished = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=300,
    )
    if finished.returncode:
        pytest.fail(f"iam_simulate.mjs failed: {finished.stderr.strip()}")
    results = json.loads(finished.stdout)
    return {
        case_id: (
            outcome["result"]
            if outcome["result"] != "Error"
            else f"Error: {json.dumps(outcome['errors'])}"
        )
        for case_id, outcome in results.items()
    }


def request(principal, action, resource, identity=(), resource_policy=None, context=None):
    """One case: identity policies, an optional resource policy, request context keys."""
    case = {
        "principal": principal,
        "action": action,
        "resource": resource,
        "accountId": ACCOUNT,
        "identityPolicies": list(identity),
        "context": context or {},
    }
    if resource_policy is not None:
        case["resourcePolicy"] = resource_policy
    return case
