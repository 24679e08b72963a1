"""The security team's scanner: checkov on every rendered template, zero failed checks, and
every skip justified in the resource's Metadata. checkov lives in its own virtualenv
(.venv-checkov, made by `make test`) because it pins an older boto3 than ours."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from templates.launch_role import FILE_NAME as LAUNCH_ROLE
from tests.helpers import REGIONS, ROOT, rendered

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))


@pytest.fixture(scope="module")
def checkov_results():
    assert CHECKOV.exists(), f"{CHECKOV} missing: run `make test` (or set CHECKOV=path)"
    result = subprocess.run(
        [str(CHECKOV), "--framework", "cloudformation", "--skip-download",
         "--output", "json", "-d", str(ROOT / "dist")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_checkov_has_zero_failed_checks(checkov_results):
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for report in checkov_results
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert [e for r in checkov_results for e in r["results"]["parsing_errors"]] == []
    scanned = {
        Path(c["file_path"]).name for r in checkov_results for c in r["results"]["passed_checks"]
    }
    assert scanned == {f"{region}.json" for region in REGIONS} | {LAUNCH_ROLE}


@pytest.mark.parametrize("region", REGIONS)
def test_every_checkov_skip_has_a_reason(region):
    skips = 0
    for logical_id, resource in rendered(region)["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips += 1
            assert skip.get("id", "").startswith("CKV"), (logical_id, skip)
            assert len(skip.get("comment", "").strip()) >= 15, f"{logical_id}: {skip} has no reason"
    assert skips > 0
