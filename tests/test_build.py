"""build.py as a user runs it: deterministic output, the stale-dist check, every bad-input
path (exit 2, one clear line, dist/ untouched), and the outputs env block."""

import json
import multiprocessing
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

import build
from templates.outputs import GRAND_CHALLENGE_SETTINGS
from tests.helpers import ROOT


def run_build(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "build.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def snapshot(directory):
    return (
        {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}
    )


@pytest.fixture
def settings_file(tmp_path):
    """A copy of the build settings limited to two regions, to keep the runs short."""
    settings = json.loads((ROOT / "params" / "build.json").read_text())
    settings["regions"] = {r: settings["regions"][r] for r in ("eu-central-1", "eu-west-1")}
    path = tmp_path / "build.json"
    path.write_text(json.dumps(settings))
    return path


def test_committed_dist_is_what_the_sources_render():
    result = run_build("--check", "--no-lint")  # lint has its own tests
    assert result.returncode == 0, result.stderr + "\nrun `python build.py` and commit dist/"


def test_render_writes_linted_templates_identically_twice(tmp_path, settings_file):
    dist = tmp_path / "dist"
    first = run_build("--settings", str(settings_file), "--dist", str(dist))
    assert first.returncode == 0, first.stderr
    *progress, last = first.stdout.splitlines()
    # one line per template, in the order they finish, then the summary
    assert sorted(line.split()[0] for line in progress) == [
        "eu-central-1.json",
        "eu-west-1.json",
        "launch-role.json",
    ]
    assert all(line.endswith(" 0 lint findings") for line in progress), progress
    assert last.startswith(f"wrote 3 templates to {dist} in ")
    written = snapshot(dist)
    assert sorted(written) == ["eu-central-1.json", "eu-west-1.json", "launch-role.json"]
    second = run_build("--settings", str(settings_file), "--dist", str(dist), "--no-lint")
    assert second.returncode == 0
    assert snapshot(dist) == written
    assert written["eu-central-1.json"] == build.render(
        "eu-central-1", ["euc1-az1", "euc1-az2", "euc1-az3"]
    )


def test_check_reports_a_stale_template(tmp_path, settings_file):
    dist = tmp_path / "dist"
    assert (
        run_build("--settings", str(settings_file), "--dist", str(dist), "--no-lint").returncode
        == 0
    )
    stale = dist / "eu-west-1.json"
    stale.write_bytes(stale.read_bytes().replace(b"Grand Challenge", b"Grand Challenge!", 1))
    result = run_build(
        "--settings", str(settings_file), "--dist", str(dist), "--check", "--no-lint"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"stale: {stale} differs from what the sources render"


def test_check_says_missing_for_a_template_not_in_dist(tmp_path, settings_file):
    dist = tmp_path / "dist"
    assert (
        run_build("--settings", str(settings_file), "--dist", str(dist), "--no-lint").returncode
        == 0
    )
    (dist / "launch-role.json").unlink()
    result = run_build(
        "--settings", str(settings_file), "--dist", str(dist), "--check", "--no-lint"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"stale: {dist / 'launch-role.json'} is missing"


def bad_settings(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "settings_text, message",
    [
        ("{not json", "not valid JSON"),
        ('{"regions": ["eu-central-1"]}', '"regions" must map each target region to its zone ids'),
        ('{"regions": {"eu-centrall-1": ["euc1-az1"]}}', "unknown AWS region 'eu-centrall-1'"),
        ('{"regions": {"eu-central-1": []}}', "eu-central-1: zone ids must be a list"),
        (
            '{"regions": {"eu-central-1": ["eu-central-1a"]}}',
            "eu-central-1: zone ids must be a list",
        ),
    ],
)
def test_bad_settings_exit_2_with_one_line_and_leave_dist_alone(tmp_path, settings_text, message):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "keep.json").write_text("{}")
    before = snapshot(dist)
    result = run_build(
        "--settings", str(bad_settings(tmp_path, settings_text)), "--dist", str(dist)
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert snapshot(dist) == before


def test_missing_settings_file_and_unknown_region_flag(tmp_path, settings_file):
    result = run_build("--settings", str(tmp_path / "nope.json"))
    assert result.returncode == 2 and "no such settings file" in result.stderr
    result = run_build("--settings", str(settings_file), "--regions", "us-east-1")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: region 'us-east-1' is not a target region in the settings file"
    )


@pytest.mark.parametrize("regions", [",", " , ", ""])
def test_regions_flag_naming_no_region_exits_2(tmp_path, settings_file, regions):
    dist = tmp_path / "dist"
    result = run_build("--settings", str(settings_file), "--dist", str(dist), "--regions", regions)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: --regions {regions!r} names no region, e.g. eu-central-1,eu-west-1\n"
    )
    assert not dist.exists()


def test_a_publish_that_cannot_be_imported_says_why(monkeypatch, capsys, settings_file):
    monkeypatch.setitem(sys.modules, "publish", None)  # any import of it raises ImportError
    assert build.main(["publish", "--dry-run", "--version", "v1.0.0"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: publish cannot load publish.py: import of publish halted; None in sys.modules\n"
    )
    # the other commands do not need publish.py, and still reject unknown arguments
    with pytest.raises(SystemExit) as exit_:
        build.main(["--settings", str(settings_file), "--no-lint", "--dry-run"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith("error: unrecognized arguments: --dry-run\n")
    assert build.main(["--settings", str(settings_file), "--regions", ","]) == 2


def test_unwritable_dist_exits_2_and_writes_nothing(tmp_path, settings_file):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where dist/ should be")
    result = run_build(
        "--settings", str(settings_file), "--dist", str(blocker / "dist"), "--no-lint"
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "cannot write" in result.stderr
    assert blocker.read_text() == "a file where dist/ should be"


def test_a_failed_write_leaves_no_partial_files(tmp_path, settings_file, monkeypatch):
    """Files are staged beside dist/ and moved in; a failure mid-way leaves dist/ as it was."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "eu-central-1.json").write_bytes(b"old")
    calls = []
    real_replace = build.os.replace

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(build.os, "replace", failing_replace)
    with pytest.raises(build.BadInputError, match="No space left on device"):
        build.write_dist(dist, {"eu-central-1.json": b"new", "eu-west-1.json": b"new"})
    assert sorted(p.name for p in dist.iterdir()) == ["eu-central-1.json"]  # no staging left


def test_help_documents_every_option():
    result = run_build("--help")
    assert result.returncode == 0
    for option in (
        "--settings",
        "--dist",
        "--regions",
        "--no-lint",
        "--check",
        "outputs",
        "publish",
    ):
        assert option in result.stdout
    outputs_help = run_build("outputs", "--help").stdout
    for option in ("--stack", "--region", "--profile"):
        assert option in outputs_help


def test_outputs_without_credentials_is_one_clear_line(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "build.py"),
            "outputs",
            "--stack",
            "gc",
            "--region",
            "eu-central-1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: no AWS credentials: configure a profile or set AWS_PROFILE"
    )


def test_outputs_prints_the_env_block_of_a_deployed_stack(capsys):
    values = {
        "Region": "eu-central-1",
        "RegistryUrl": "123456789012.dkr.ecr.eu-central-1.amazonaws.com",
        "RegistryPrefix": "gc-prod",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/SAGEMAKER_gc-prod-eu-central-1_EXECUTION",
        "SecurityGroupId": "sg-0123456789abcdef0",
        "PrivateSubnetIds": "subnet-0a,subnet-0b,subnet-0c",
        "InputsBucketName": "gc-prod-123456789012-eu-central-1-inputs",
        "OutputsBucketName": "gc-prod-components-outputs",
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in values.items()},
    }
    with mock_aws():
        boto3.client("cloudformation", region_name="eu-central-1").create_stack(
            StackName="gc", TemplateBody=json.dumps(template)
        )
        code = build.main(["outputs", "--stack", "gc", "--region", "eu-central-1"])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{setting}={values[key]}" for setting, key in GRAND_CHALLENGE_SETTINGS.items()
    ]


def test_outputs_of_a_missing_stack_exit_2(capsys):
    with mock_aws():
        code = build.main(["outputs", "--stack", "nope", "--region", "eu-central-1"])
    assert code == 2
    assert "stack nope:" in capsys.readouterr().err


def test_aws_cli_reads_every_example_parameter_file(monkeypatch):
    """Each params/*.json goes through the AWS CLI's own `deploy --parameter-overrides file://`
    parsing, and every value passes the matching template's parameter constraints."""
    from awscli.clidriver import create_clidriver
    from awscli.customizations.cloudformation.deploy import DeployCommand

    from tests.helpers import REGIONS, rendered, violations

    parsed = {}

    def capture(self, parsed_args, parsed_globals):
        parsed["overrides"] = self.parse_key_value_arg(
            parsed_args.parameter_overrides, self.PARAMETER_OVERRIDE_CMD
        )
        return 0

    monkeypatch.setattr(DeployCommand, "_run_main", capture)
    examples = sorted(p for p in (ROOT / "params").glob("*.json") if p.name != "build.json")
    assert examples
    for example in examples:
        parsed.clear()
        code = create_clidriver().main(
            [
                "cloudformation", "deploy", "--region", "eu-central-1",
                "--template-file", str(ROOT / "dist" / "eu-central-1.json"),
                "--stack-name", "gc", "--parameter-overrides", f"file://{example}",
            ]
        )  # fmt: skip
        assert code == 0 and parsed["overrides"], example.name
        regions = [r for r in REGIONS if set(parsed["overrides"]) <= set(rendered(r)["Parameters"])]
        assert regions, f"{example.name}: keys match no target region's template"
        parameters = rendered(regions[0])["Parameters"]
        for key, value in parsed["overrides"].items():
            assert violations(parameters[key], value) == [], (example.name, key, value)
        required = {k for k, p in parameters.items() if "Default" not in p}
        assert required <= set(parsed["overrides"]), f"{example.name} misses {required}"


def test_lint_findings_exit_1_and_leave_dist_unwritten(tmp_path, settings_file, monkeypatch):
    dist = tmp_path / "dist"
    monkeypatch.setattr(build, "lint", lambda region, body: ["W0000 injected finding"])
    monkeypatch.setattr(build.os, "cpu_count", lambda: 1)  # in-process, so the patch applies
    code = build.main(["--settings", str(settings_file), "--dist", str(dist)])
    assert code == 1
    assert snapshot(dist) == {}


RELEASED = None  # set by the parent when a later template is reported; read by forked workers


def lint_first_waits_for_a_later_one(region, body):
    if b"euc1-az1" in body:  # eu-central-1, submitted first (the launch role has no zones)
        # the first template submitted: reported only after another one has been
        return [] if RELEASED.wait(timeout=30) else ["never released: reports in submit order"]
    return []


def test_each_template_is_reported_as_soon_as_its_lint_finishes(settings_file, monkeypatch):
    context = multiprocessing.get_context("fork")
    monkeypatch.setattr(sys.modules[__name__], "RELEASED", context.Event())
    monkeypatch.setattr(build, "lint", lint_first_waits_for_a_later_one)
    monkeypatch.setattr(build.os, "cpu_count", lambda: 2)
    settings = build.load_settings(settings_file)
    reported = []

    def on_done(name, body, findings):
        reported.append((name, findings))
        RELEASED.set()

    rendered = build.render_all(settings, ["eu-central-1", "eu-west-1"], on_done=on_done)

    assert reported[0][0] != "eu-central-1.json"
    assert sorted(reported) == [(name, []) for name in sorted(rendered)]
    assert list(rendered) == ["eu-central-1.json", "eu-west-1.json", "launch-role.json"]


def test_readme_diagram_is_drawn_from_the_current_template():
    from templates.diagram import embed, mermaid
    from tests.helpers import rendered

    readme = (ROOT / "README.md").read_text()
    diagram = mermaid(rendered(build.DIAGRAM_REGION))
    assert embed(readme, diagram, source=f"dist/{build.DIAGRAM_REGION}.json") == readme, (
        "README.md's diagram is stale: run `python build.py` and commit README.md"
    )
    assert "res_StoppedTrainingJobsRule" in readme


def test_publish_refuses_a_stale_dist_before_any_aws_call(tmp_path, settings_file):
    dist = tmp_path / "dist"
    assert (
        run_build("--settings", str(settings_file), "--dist", str(dist), "--no-lint").returncode
        == 0
    )
    (dist / "eu-west-1.json").write_bytes(b"{}")
    result = run_build(
        "--settings", str(settings_file), "--dist", str(dist),
        "publish", "--dry-run", "--version", "v1.0.0",
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {dist}/eu-west-1.json is stale: run `python build.py` first"
    )
    assert result.stdout == ""
