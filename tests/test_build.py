"""build.py as a user runs it: deterministic output, the stale-dist check, every bad-input
path (exit 2, one clear line, dist/ untouched), and the outputs env block."""

import json
import multiprocessing
import re
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

import build
from templates.outputs import GRAND_CHALLENGE_SETTINGS
from tests.helpers import ROOT

PRODUCT = build.PRODUCT_FILE


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
    settings["regions"] = ["eu-west-1", "eu-central-1"]
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
    assert sorted(line.split()[0] for line in progress) == [PRODUCT, "launch-role.json"]
    assert all(line.endswith(" 0 lint findings in 2 regions") for line in progress), progress
    assert last.startswith(f"wrote 2 templates to {dist} in ")
    written = snapshot(dist)
    assert sorted(written) == [PRODUCT, "launch-role.json"]
    second = run_build("--settings", str(settings_file), "--dist", str(dist), "--no-lint")
    assert second.returncode == 0
    assert snapshot(dist) == written
    assert written[PRODUCT] == build.render()


def test_check_reports_a_stale_template(tmp_path, settings_file):
    dist = tmp_path / "dist"
    assert (
        run_build("--settings", str(settings_file), "--dist", str(dist), "--no-lint").returncode
        == 0
    )
    stale = dist / PRODUCT
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
        ('{"regions": []}', '"regions" must list the regions to publish to, once each'),
        ('{"regions": ["eu-west-1", "eu-west-1"]}', '"regions" must list the regions'),
        ('{"regions": "eu-west-1"}', '"regions" must list the regions'),
        ('{"regions": ["eu-centrall-1"]}', "unknown AWS region 'eu-centrall-1'"),
        (
            '{"regions": {"us-east-1": ["use1-az1"], "eu-central-1": ["euc1-az1"]}}',
            'the format of "regions" changed: it is now a list of the regions to publish to, '
            "and zones are picked at deploy time (parameter AvailabilityZones): "
            'write "regions": ["eu-central-1", "us-east-1"]',
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


def test_missing_settings_file_exits_2(tmp_path):
    result = run_build("--settings", str(tmp_path / "nope.json"))
    assert result.returncode == 2 and "no such settings file" in result.stderr


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (",", "--regions ',' names no region, e.g. eu-central-1,eu-west-1 or all"),
        (" , ", "--regions ' , ' names no region, e.g. eu-central-1,eu-west-1 or all"),
        ("", "--regions '' names no region, e.g. eu-central-1,eu-west-1 or all"),
        ("eu-west-1,eu-centrall-1", "--regions: unknown AWS region 'eu-centrall-1'"),
        ("all,eu-west-1", "--regions: give all alone (every commercial region), not in a list"),
    ],
)
def test_bad_lint_regions_exit_2_with_one_line_and_write_nothing(
    tmp_path, settings_file, regions, message
):
    dist = tmp_path / "dist"
    result = run_build("--settings", str(settings_file), "--dist", str(dist), "--regions", regions)
    assert result.returncode == 2
    assert result.stderr == f"error: {message}\n"
    assert not dist.exists()


def test_lint_regions_are_any_known_region_not_only_the_publish_regions(settings_file):
    settings = build.load_settings(settings_file)
    assert build.select_regions(settings, None) == ["eu-central-1", "eu-west-1"]
    assert build.select_regions(settings, " us-east-1,ap-south-2,us-east-1 ") == [
        "ap-south-2",
        "us-east-1",
    ]
    every = build.select_regions(settings, "all")
    assert every == sorted(set(every)) and {"eu-central-1", "sa-east-1", "ap-south-2"} <= set(every)
    assert not [r for r in every if r.startswith(("cn-", "us-gov-", "us-iso"))]


def test_a_region_cfn_lint_does_not_know_is_refused_before_linting(settings_file, monkeypatch):
    monkeypatch.setattr(build, "lintable_regions", lambda: {"eu-west-1"})
    settings = build.load_settings(settings_file)
    with pytest.raises(build.BadInputError, match="cannot lint for region 'eu-central-1'"):
        build.select_regions(settings, None)
    assert build.select_regions(settings, None, run_lint=False) == ["eu-central-1", "eu-west-1"]


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


@pytest.mark.parametrize(
    "order", [(PRODUCT, "launch-role.json"), ("launch-role.json", PRODUCT)], ids=["had", "new"]
)
def test_a_failed_write_leaves_dist_as_it_was(tmp_path, monkeypatch, order):
    """Files are staged inside dist/ and moved in; when a move fails, those already moved go
    back: the replaced file's old bytes return, a file that did not exist is removed."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / PRODUCT).write_bytes(b"old")
    calls = []
    real_replace = build.os.replace

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(build.os, "replace", failing_replace)
    with pytest.raises(build.BadInputError, match="No space left on device"):
        build.write_dist(dist, dict.fromkeys(order, b"new"))
    assert snapshot(dist) == {PRODUCT: b"old"}  # no staging dir, nothing half-written


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


def aws_cli_overrides(example, monkeypatch):
    """``example`` as `aws cloudformation deploy --parameter-overrides file://` reads it."""
    from awscli.clidriver import create_clidriver
    from awscli.customizations.cloudformation.deploy import DeployCommand

    parsed = {}

    def capture(self, parsed_args, parsed_globals):
        parsed["overrides"] = self.parse_key_value_arg(
            parsed_args.parameter_overrides, self.PARAMETER_OVERRIDE_CMD
        )
        return 0

    monkeypatch.setattr(DeployCommand, "_run_main", capture)
    code = create_clidriver().main(
        [
            "cloudformation", "deploy", "--region", "eu-central-1",
            "--template-file", str(ROOT / "dist" / PRODUCT),
            "--stack-name", "gc", "--parameter-overrides", f"file://{example}",
        ]
    )  # fmt: skip
    assert code == 0 and parsed.get("overrides"), example.name
    return parsed["overrides"]


def region_problems(template, overrides):
    """What CloudFormation or the zone plan would refuse across values: zones of one known
    region, each with a letter the template has a subnet slot for (UseZone<LETTER>), and
    every ARN given naming that same region."""
    zone_keys = [
        k for k, v in template["Parameters"].items() if "AvailabilityZone::Name" in v["Type"]
    ]
    slots = {c[len("UseZone") :].lower() for c in template["Conditions"] if c.startswith("UseZone")}
    zones = [zone for key in zone_keys for zone in overrides.get(key, "").split(",")]
    regions = {zone[:-1] for zone in zones}
    problems = [f"zone {zone!r} has no subnet slot" for zone in zones if zone[-1:] not in slots]
    if len(zones) != len(set(zones)):
        problems.append(f"a zone picked twice: {zones}")
    if len(regions) != 1 or not regions <= build.known_regions():
        return [*problems, f"zones {zones} are not of one known region"]
    arn_regions = {
        m
        for v in overrides.values()
        for m in re.findall(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):", v)
    }
    return problems + [f"an ARN in {r} for zones in {regions}" for r in arn_regions - regions]


def test_aws_cli_reads_every_example_parameter_file(monkeypatch):
    """Each params/*.json goes through the AWS CLI's own `deploy --parameter-overrides file://`
    parsing; every key is a parameter of the product template, every value passes its
    constraints, the required ones are given, and the zones and ARNs agree on one region."""
    from tests.helpers import rendered, violations

    template = rendered()
    parameters = template["Parameters"]
    required = {key for key, definition in parameters.items() if "Default" not in definition}
    examples = sorted(p for p in (ROOT / "params").glob("*.json") if p.name != "build.json")
    assert examples
    for example in examples:
        overrides = aws_cli_overrides(example, monkeypatch)
        undeclared = set(overrides) - set(parameters)
        assert not undeclared, f"{example.name}: the template declares no {undeclared}"
        for key, value in overrides.items():
            assert violations(parameters[key], value) == [], (example.name, key, value)
        assert required <= set(overrides), f"{example.name} misses {required - set(overrides)}"
        assert region_problems(template, overrides) == [], example.name


def test_the_region_check_of_parameter_files_can_fail():
    from tests.helpers import rendered

    template, good = rendered(), "eu-central-1a,eu-central-1b"
    queue = "arn:aws:sqs:{}:123456789012:q"
    assert region_problems(template, {"AvailabilityZones": good}) == []
    assert region_problems(template, {"AvailabilityZones": "eu-central-1a,us-east-1b"})
    assert region_problems(template, {"AvailabilityZones": "us-east-1g"})
    assert region_problems(template, {"AvailabilityZones": "eu-central-1a,eu-central-1a"})
    assert region_problems(template, {"AvailabilityZones": "eu-centrall-1a"})
    mixed = {"AvailabilityZones": good, "StoppedEventsQueueArn": queue.format("us-east-1")}
    assert region_problems(template, mixed) == ["an ARN in us-east-1 for zones in {'eu-central-1'}"]
    same = {"AvailabilityZones": good, "StoppedEventsQueueArn": queue.format("eu-central-1")}
    assert region_problems(template, same) == []


def test_lint_findings_exit_1_and_leave_dist_unwritten(tmp_path, settings_file, monkeypatch):
    dist = tmp_path / "dist"
    monkeypatch.setattr(build, "lint", lambda regions, body: ["W0000 injected finding"])
    monkeypatch.setattr(build.os, "cpu_count", lambda: 1)  # in-process, so the patch applies
    code = build.main(["--settings", str(settings_file), "--dist", str(dist)])
    assert code == 1
    assert snapshot(dist) == {}


def test_all_regions_are_linted_in_chunks_of_four_each_once_per_template(
    tmp_path, settings_file, monkeypatch, capsys
):
    calls = []

    def record(regions, body):
        calls.append((json.loads(body)["Description"], tuple(regions)))
        return []

    monkeypatch.setattr(build, "lint", record)
    monkeypatch.setattr(build.os, "cpu_count", lambda: 1)  # in-process, so the patch applies
    dist = tmp_path / "dist"
    assert (
        build.main(["--settings", str(settings_file), "--dist", str(dist), "--regions", "all"]) == 0
    )
    every = build.commercial_regions()
    assert len(every) > 2 * build.LINT_CHUNK  # several chunks, or this proves little
    by_template = {}
    for description, chunk in calls:
        by_template.setdefault(description, []).append(chunk)
    assert len(by_template) == 2  # the product template and the launch role
    for chunks in by_template.values():
        assert all(1 <= len(chunk) <= build.LINT_CHUNK for chunk in chunks)
        assert len(chunks) == -(-len(every) // build.LINT_CHUNK)
        assert sorted(r for chunk in chunks for r in chunk) == every  # each region once
    out = capsys.readouterr().out
    assert f"0 lint findings in {len(every)} regions" in out
    assert sorted(snapshot(dist)) == [PRODUCT, "launch-role.json"]


def test_a_finding_in_one_chunk_fails_the_build_and_leaves_dist_untouched(
    tmp_path, settings_file, monkeypatch, capsys
):
    def one_bad_chunk(regions, body):
        bad = b"ZonePlan" in body and "sa-east-1" in regions
        return ["E3000 injected in sa-east-1 (Resources)"] if bad else []

    monkeypatch.setattr(build, "lint", one_bad_chunk)
    monkeypatch.setattr(build.os, "cpu_count", lambda: 1)
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / PRODUCT).write_bytes(b"the previous build")
    code = build.main(["--settings", str(settings_file), "--dist", str(dist), "--regions", "all"])
    captured = capsys.readouterr()
    assert code == 1
    assert snapshot(dist) == {PRODUCT: b"the previous build"}
    assert "  E3000 injected in sa-east-1 (Resources)" in captured.out
    assert captured.err == "lint failed: dist/ left unchanged\n"


def lint_names_its_chunk(regions, body):
    """A fake cfn-lint for forked workers: one finding naming the chunk it was given."""
    return [f"{'product' if b'ZonePlan' in body else 'role'} {','.join(regions)}"]


def test_forked_workers_merge_every_chunk_of_a_template(settings_file, monkeypatch):
    monkeypatch.setattr(build, "lint", lint_names_its_chunk)
    monkeypatch.setattr(build.os, "cpu_count", lambda: 2)
    settings = build.load_settings(settings_file)
    regions = build.commercial_regions()[:9]  # three chunks: 4, 4 and 1
    rendered = build.render_all(settings, regions)
    chunks = [",".join(chunk) for chunk in build.lint_chunks(regions)]
    assert [len(chunk.split(",")) for chunk in chunks] == [4, 4, 1]
    assert rendered[PRODUCT][1] == sorted(f"product {chunk}" for chunk in chunks)
    assert rendered["launch-role.json"][1] == sorted(f"role {chunk}" for chunk in chunks)


RELEASED = None  # set by the parent when a later template is reported; read by forked workers


def lint_first_waits_for_a_later_one(regions, body):
    if b"ZonePlan" in body:  # the product template, submitted first (the launch role has none)
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

    assert reported[0][0] != PRODUCT
    assert sorted(reported) == [(name, []) for name in sorted(rendered)]
    assert list(rendered) == [PRODUCT, "launch-role.json"]


def test_readme_diagram_is_drawn_from_the_current_template():
    from templates.diagram import embed, mermaid
    from tests.helpers import rendered

    readme = (ROOT / "README.md").read_text()
    diagram = mermaid(rendered())
    assert embed(readme, diagram, source=f"dist/{PRODUCT}") == readme, (
        "README.md's diagram is stale: run `python build.py` and commit README.md"
    )
    assert "res_StoppedTrainingJobsRule" in readme


def test_publish_refuses_a_stale_dist_before_any_aws_call(tmp_path, settings_file):
    dist = tmp_path / "dist"
    assert (
        run_build("--settings", str(settings_file), "--dist", str(dist), "--no-lint").returncode
        == 0
    )
    (dist / PRODUCT).write_bytes(b"{}")
    result = run_build(
        "--settings", str(settings_file), "--dist", str(dist),
        "publish", "--dry-run", "--version", "v1.0.0",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {dist}/{PRODUCT} is stale: run `python build.py` first"
    assert result.stdout == ""


PER_REGION_RELEASE = "f1cf291"  # the last commit whose dist/ held one template per region


@pytest.fixture
def product_file(tmp_path):
    if build._git("rev-parse", "--verify", "--quiet", f"{PER_REGION_RELEASE}^{{commit}}") is None:
        pytest.skip(f"{PER_REGION_RELEASE} is not in this clone's history")
    path = tmp_path / PRODUCT
    path.write_bytes(build.render())
    return path


def test_diff_against_a_revision_without_the_product_template_names_its_files(product_file, capsys):
    assert build.main(["diff", PER_REGION_RELEASE, str(product_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: {PER_REGION_RELEASE} has dist/eu-central-1.json, dist/eu-west-1.json, "
        "dist/launch-role.json, dist/us-east-1.json, dist/us-west-2.json, not "
        f"dist/{PRODUCT}: pass --template <name>, or {PER_REGION_RELEASE}:dist/<name> for that "
        "side alone\n"
    )


@pytest.mark.parametrize(
    "old",
    [
        [PER_REGION_RELEASE, "--template", "eu-west-1.json"],
        [f"{PER_REGION_RELEASE}:dist/eu-west-1.json"],
    ],
)
def test_diff_from_a_per_region_revision_to_the_product_template(
    product_file, capsys, monkeypatch, old
):
    """Either way of naming the old file works, and its name gives the stack's region."""
    from templates import preview

    regions, real_plan = [], preview.plan

    def plan(*arguments):
        regions.append(arguments[-1])
        return real_plan(*arguments)

    monkeypatch.setattr(preview, "plan", plan)
    assert build.main(["diff", old[0], str(product_file), *old[1:], "--json"]) == 3
    assert regions and set(regions) == {"eu-west-1"}
    changes = json.loads(capsys.readouterr().out)["changes"]
    removed = {c["logical_id"] for c in changes if c["action"] == "remove"}
    assert "PrivateSubnetEuw1Az1" in removed
