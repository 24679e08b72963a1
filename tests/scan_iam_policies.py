"""Run parliament and cloudsplaining over resolved IAM policy documents, in one process.

Runs in the scanners' virtualenv (.venv-scanners: they pin their own dependencies), called by
tests/test_scanners.py:  python scan_iam_policies.py <dir>  where <dir> holds
<template>~<logical id>.json files: {"identity": bool, "document": {...}}. Prints one JSON list
of findings {"scanner", "rule", "file", "detail", "message"}.

cloudsplaining runs twice per identity policy: with -aR semantics (every risky action, even
scoped by resource ARNs or conditions) for the high-risk categories, and without for
InfrastructureModification (which would otherwise list every write action of the launch role).
"""

import json
import sys
from pathlib import Path

from cloudsplaining.command.scan_policy_file import scan_policy
from parliament import analyze_policy_string

HIGH_RISK = (
    "PrivilegeEscalation",
    "ResourceExposure",
    "DataExfiltration",
    "CredentialsExposure",
    "ServiceWildcard",
)


def _parliament_detail(finding):
    """What a parliament finding is about, stable from run to run (its actions come as a set)."""
    location, detail = finding.location, finding.detail
    if location.get("actions"):
        return ", ".join(sorted(location["actions"]))
    if location.get("string"):
        return location["string"]
    if isinstance(detail, list):
        return json.dumps(sorted(detail, key=json.dumps), sort_keys=True)
    return str(detail)


def parliament_findings(name, document):
    policy = analyze_policy_string(json.dumps(document), include_community_auditors=True)
    for finding in policy.findings:
        yield {
            "scanner": "parliament",
            "rule": finding.issue,
            "file": name,
            "detail": _parliament_detail(finding),
            "message": finding.title,
        }


def _risky(result, categories):
    for category in categories:
        for item in (result.get(category) or {}).get("findings", []):
            if isinstance(item, dict):  # privilege escalation: a method and its actions
                yield category, item.get("type", ""), ", ".join(item.get("actions", []))
            else:
                yield category, item, item


def cloudsplaining_findings(name, document):
    flagged = scan_policy(
        document, flag_conditional_statements=True, flag_resource_arn_statements=True
    )
    unscoped = scan_policy(document)
    found = [*_risky(flagged, HIGH_RISK), *_risky(unscoped, ["InfrastructureModification"])]
    for category, detail, message in found:
        yield {
            "scanner": "cloudsplaining",
            "rule": category,
            "file": name,
            "detail": detail,
            "message": message,
        }


def main(directory):
    findings = []
    for path in sorted(Path(directory).glob("*.json")):
        policy = json.loads(path.read_text())
        findings.extend(parliament_findings(path.stem, policy["document"]))
        if policy["identity"]:
            findings.extend(cloudsplaining_findings(path.stem, policy["document"]))
    print(json.dumps(findings))


if __name__ == "__main__":
    main(sys.argv[1])
