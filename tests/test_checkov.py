"""The security team's scanner: checkov on every template as rendered now, zero failed checks,
every skip justified in the resource's Metadata, and every skip needed: with the skips
stripped, each skipped check really fails on its resource. checkov lives in its own
virtualenv (.venv-checkov, made by `make test`) because it pins an older boto3 than ours.

One checkov run scans both copies (it costs ~40 s): ``templates/`` as shipped (the product
template, the same for every region, and the launch role), and ``stripped/`` with every
checkov skip removed."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from build import PRODUCT_FILE, render_launch_role
from templates.launch_role import FILE_NAME as LAUNCH_ROLE
from tests.helpers import ROOT, SETTINGS, rendered

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))


def templates():
    """{file name: template dict} of everything the build ships."""
    return {PRODUCT_FILE: rendered(), LAUNCH_ROLE: json.loads(render_launch_role(SETTINGS))}


def skips_of(template):
    """{(logical id, check id)} of every checkov skip in a template's resource Metadata."""
    return {
        (logical_id, skip["id"])
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def without_skips(template):
    stripped = json.loads(json.dumps(template))
    for resource in stripped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    return stripped


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory):
    """{"templates" | "stripped": {file name: {"failed": {(logical id, check id)}, ...}}}."""
    assert CHECKOV.exists(), f"{CHECKOV} missing: run `make test` (or set CHECKOV=path)"
    root = tmp_path_factory.mktemp("checkov")
    for name, template in templates().items():
        for folder, body in {"templates": template, "stripped": without_skips(template)}.items():
            (root / folder).mkdir(exist_ok=True)
            (root / folder / name).write_text(json.dumps(body))
    result = subprocess.run(
        [str(CHECKOV), "--framework", "cloudformation", "--skip-download",
         "--output", "json", "-d", str(root)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    reports = json.loads(result.stdout)
    return _by_file(reports if isinstance(reports, list) else [reports])


def _by_file(reports):
    found = {}
    for report in reports:
        results = report["results"]
        assert results["parsing_errors"] == []
        for outcome in ("failed", "passed", "skipped"):
            for check in results[f"{outcome}_checks"]:
                path = Path(check["file_path"])
                entry = found.setdefault(path.parent.name, {}).setdefault(
                    path.name, {"failed": set(), "passed": set(), "skipped": set()}
                )
                entry[outcome].add((check["resource"].split(".", 1)[1], check["check_id"]))
    return found


def test_checkov_has_zero_failed_checks(checkov_results):
    shipped = checkov_results["templates"]
    assert set(shipped) == {PRODUCT_FILE, LAUNCH_ROLE}
    failed = [(name, *check) for name, results in shipped.items() for check in results["failed"]]
    assert failed == []


def test_every_skip_is_needed_each_skipped_check_fails_without_it(checkov_results):
    shipped = templates()
    assert set(checkov_results["stripped"]) == {PRODUCT_FILE, LAUNCH_ROLE}
    for name, results in checkov_results["stripped"].items():
        assert results["failed"] == skips_of(shipped[name]), name
        assert checkov_results["templates"][name]["skipped"] == skips_of(shipped[name]), name


def test_every_checkov_skip_has_a_reason():
    skips = 0
    for logical_id, resource in rendered()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips += 1
            assert skip.get("id", "").startswith("CKV"), (logical_id, skip)
            assert len(skip.get("comment", "").strip()) >= 15, f"{logical_id}: {skip} has no reason"
    assert skips > 0
