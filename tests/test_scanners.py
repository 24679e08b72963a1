"""The outside scanners on the rendered templates: cfripper, cfn-lint (with the serverless rules,
experimental and informational findings), cfn-guard (the Control Tower rules the npm package
ships), parliament and cloudsplaining (on every IAM policy document, resolved).

Each runs once per session, all at the same time (tests/scan_iam_policies.py runs the two IAM
ones in one process). A finding fails the test unless tests/scanners_allowlist.json names it
(scanner, rule, resource = logical id, optional detail) with the reason it is a false
positive; an entry that matches no finding fails too, so the list stays honest. The Python
scanners live in .venv-scanners (`make test` makes it from requirements-scanners.txt; they pin
conflicting dependencies), cfn-guard in node_modules/ (`npm ci`)."""

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build import PRODUCT_FILE, render_launch_role
from templates.launch_role import FILE_NAME as LAUNCH_ROLE
from templates.network import ZONE_LETTERS, ZONES_PARAMETER
from tests.cfn_resolve import ACCOUNT, Deployment
from tests.helpers import ROOT, SETTINGS, rendered

SCANNERS_BIN = Path(os.environ.get("SCANNERS_BIN", ROOT / ".venv-scanners" / "bin"))
GUARD_PACKAGE = ROOT / "node_modules" / "@cdklabs" / "cdk-validator-cfnguard"
CFN_GUARD = GUARD_PACKAGE / "bin" / "ubuntu" / "x86_64" / "cfn-guard"
GUARD_RULES = GUARD_PACKAGE / "rules" / "control-tower" / "cfn-guard"
ALLOW_LIST = Path(__file__).with_name("scanners_allowlist.json")
SCANNERS = ("cfripper", "cfn-lint", "cfn-guard", "parliament", "cloudsplaining")
# The IAM scanners read policies resolved for one deployment: in a six-zone region with every
# zone picked, so each subnet slot's grants are in them (the other scanners read the template).
SCANNED_REGION = "us-east-1"
SCANNED_ZONES = ",".join(f"{SCANNED_REGION}{letter}" for letter in ZONE_LETTERS)
STANDARD_RULES = [f"{kind}{digit}" for kind in "EW" for digit in range(1, 10)]
# Where each resource type keeps its policy document, and whether it is an identity policy.
POLICY_DOCUMENTS = {
    "AWS::IAM::Policy": ("PolicyDocument", True),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument", True),
    "AWS::KMS::Key": ("KeyPolicy", False),
    "AWS::S3::BucketPolicy": ("PolicyDocument", False),
    "AWS::SQS::QueuePolicy": ("PolicyDocument", False),
    "AWS::EC2::VPCEndpoint": ("PolicyDocument", False),
}


@dataclass(frozen=True)
class Finding:
    scanner: str
    rule: str
    resource: str
    detail: str
    template: str = ""

    def __str__(self):
        return f"{self.scanner} {self.rule} {self.resource} [{self.template}]: {self.detail}"


# --- Parsing each scanner's output (pure) --------------------------------------------------


def cfripper_findings(name, report):
    return [
        Finding("cfripper", failure["rule"], resource, failure["reason"], name)
        for failure in report["failures"]
        for resource in failure["resource_ids"] or ["-"]
    ]


def cfn_lint_findings(report):
    found = []
    for match in report:
        path = match["Location"]["Path"]
        resource = path[1] if len(path) > 1 and path[0] == "Resources" else str(path[:1])
        template = Path(match["Filename"]).stem
        found.append(Finding("cfn-lint", match["Rule"]["Id"], resource, match["Message"], template))
    return found


def _resources_in(value):
    """Logical ids of every /Resources/<id> path cfn-guard mentions in a report."""
    text = json.dumps(value)
    return sorted(set(re.findall(r'"path": "/Resources/([^/"]+)', text))) or ["-"]


def cfn_guard_findings(text):
    decoder, position, found = json.JSONDecoder(), 0, []
    while position < len(text.rstrip()):
        report, position = decoder.raw_decode(text, position)
        position += len(text[position:]) - len(text[position:].lstrip())
        for entry in report.get("not_compliant", []):
            rule = entry.get("Rule", entry)
            control = re.search(r"\[(CT\.[A-Z0-9.]+)\]", json.dumps(rule))
            for resource in _resources_in(rule):
                detail = control.group(1) if control else rule["name"]
                found.append(Finding("cfn-guard", rule["name"], resource, detail, report["name"]))
    return [Finding(f.scanner, f.rule, f.resource, f.detail, Path(f.template).stem) for f in found]


def iam_findings(report):
    return [
        Finding(
            item["scanner"], item["rule"], item["file"].split("~")[1], item["detail"],
            item["file"].split("~")[0],
        )
        for item in report
    ]  # fmt: skip


# --- The allow-list ----------------------------------------------------------------------


def matches(entry, finding):
    return (
        entry["scanner"] == finding.scanner
        and entry["rule"] == finding.rule
        and entry["resource"] == finding.resource
        and entry.get("detail", finding.detail) == finding.detail
    )


def judge(findings, entries):
    """(findings no entry allows, entries that allow no finding)."""
    unlisted = sorted({str(f) for f in findings if not any(matches(e, f) for e in entries)})
    stale = [e for e in entries if not any(matches(e, f) for f in findings)]
    return unlisted, stale


def allow_list():
    return json.loads(ALLOW_LIST.read_text())["allow"]


def test_the_allow_list_is_judged_both_ways():
    finding = Finding("cfripper", "R", "Bucket", "why", "components-runtime")
    entry = {"scanner": "cfripper", "rule": "R", "resource": "Bucket", "reason": "x" * 20}
    assert judge([finding], [entry]) == ([], [])
    assert judge([finding], []) == ([str(finding)], [])
    assert judge([], [entry]) == ([], [entry])
    assert judge([finding], [{**entry, "detail": "other"}])[0] == [str(finding)]


def test_every_allow_list_entry_names_a_scanner_a_resource_and_a_reason():
    for entry in allow_list():
        assert entry["scanner"] in SCANNERS, entry
        assert entry["rule"] and entry["resource"], entry
        assert len(entry.get("reason", "").strip()) >= 20, f"say why: {entry}"
        assert set(entry) <= {"scanner", "rule", "resource", "detail", "reason"}, entry


# --- Running the scanners ------------------------------------------------------------------


def _write_inputs(root):
    templates, policies, rules = root / "templates", root / "policies", root / "rules"
    for directory in (templates, policies, rules):
        directory.mkdir()
    documents = {
        Path(PRODUCT_FILE).stem: rendered(),
        Path(LAUNCH_ROLE).stem: json.loads(render_launch_role(SETTINGS)),
    }
    for name, template in documents.items():
        (templates / f"{name}.json").write_text(json.dumps(template, indent=1))
        picked = (
            {ZONES_PARAMETER: SCANNED_ZONES} if ZONES_PARAMETER in template["Parameters"] else {}
        )
        deployment = Deployment(template, SCANNED_REGION, {"NamePrefix": "gc", **picked})
        for logical_id, resource in template["Resources"].items():
            document, identity = POLICY_DOCUMENTS.get(resource["Type"], (None, False))
            properties = resource.get("Properties", {})
            if document in properties and deployment.exists(logical_id):
                policy = {
                    "identity": identity,
                    "document": deployment.resolve(properties[document]),
                }
                (policies / f"{name}~{logical_id}.json").write_text(json.dumps(policy))
    # Only the guard rules about types the templates use: the rest would only be skipped.
    types = {r["Type"] for t in documents.values() for r in t["Resources"].values()}
    for rule in GUARD_RULES.rglob("*.guard"):
        if any(kind in rule.read_text() for kind in types):
            (rules / rule.name).write_text(rule.read_text())
    return templates, policies, rules


def _commands(templates, policies, rules, reports):
    files = sorted(path.name for path in templates.glob("*.json"))  # run in templates/
    return {
        # cfripper names its reports after the template path as given: relative names only.
        "cfripper": [SCANNERS_BIN / "cfripper", "--format", "json", "--output-folder", reports,
                     "--aws-account-id", ACCOUNT, "--logging", "ERROR", *files],
        # The standard E/W rules: build.py lints with them already (E0: the template parses).
        "cfn-lint": [SCANNERS_BIN / "cfn-lint", "--append-rules", "cfn_lint_serverless.rules",
                     "--include-experimental", "-c", "I", "--format", "json",
                     "--ignore-checks", *STANDARD_RULES, "--", *files],
        "cfn-guard": [CFN_GUARD, "validate", "--rules", rules, "--data", templates,
                      "--output-format", "json", "--show-summary", "none"],
        "iam": [SCANNERS_BIN / "python", Path(__file__).with_name("scan_iam_policies.py"),
                policies],
    }  # fmt: skip


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    for tool in (SCANNERS_BIN / "cfripper", CFN_GUARD):
        assert tool.exists(), f"{tool} missing: run `make test` (scanners venv, npm ci)"
    root = tmp_path_factory.mktemp("scanners")
    reports = root / "reports"
    reports.mkdir()
    commands = _commands(*_write_inputs(root), reports)
    running = {
        name: subprocess.Popen(
            [str(part) for part in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, cwd=root / "templates",
        )
        for name, command in commands.items()
    }  # fmt: skip
    outputs = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode in {"cfripper": (0, 2), "cfn-lint": range(0, 33),
                                      "cfn-guard": (0, 19), "iam": (0,)}[name], (name, stderr)  # fmt: skip
        outputs[name] = stdout
    found = cfn_lint_findings(json.loads(outputs["cfn-lint"]))
    found += cfn_guard_findings(outputs["cfn-guard"])
    found += iam_findings(json.loads(outputs["iam"]))
    for report in sorted(reports.glob("*.json")):
        name = report.name.split(".json")[0]
        found += cfripper_findings(name, json.loads(report.read_text()))
    assert len(list(reports.glob("*.json"))) == 2, "cfripper scanned no template"
    return found


@pytest.mark.parametrize("scanner", SCANNERS)
def test_every_finding_is_allow_listed_and_every_entry_still_matches(findings, scanner):
    entries = [entry for entry in allow_list() if entry["scanner"] == scanner]
    unlisted, stale = judge([f for f in findings if f.scanner == scanner], entries)
    assert not unlisted, "fix these, or allow-list a false positive with its reason:\n" + "\n".join(
        unlisted
    )
    assert not stale, f"these entries match nothing any more, remove them: {stale}"


def test_the_scanners_would_flag_a_bad_template(findings):
    """The scanners really read our inputs: each reports something on the product (the
    allow-list is not empty for any of them), so a silent scanner fails here; each reports
    on the product's one template, and nothing but it and the launch role was scanned."""
    product, launch_role = Path(PRODUCT_FILE).stem, Path(LAUNCH_ROLE).stem
    assert {f.scanner for f in findings} == set(SCANNERS)
    for scanner in SCANNERS:
        assert product in {f.template for f in findings if f.scanner == scanner}, scanner
    assert {f.template for f in findings} == {product, launch_role}
