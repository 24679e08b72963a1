"""Render, lint and publish the Grand Challenge components runtime templates.

    python build.py                      render every target region into dist/ and lint it
    python build.py --check              fail if dist/ is not what the sources render
    python build.py outputs --stack gc   print a deployed stack's Grand Challenge settings
    python build.py publish --dry-run    plan the Service Catalog publication

Bad input (unknown region, malformed params file, unwritable dist/) prints one line on
stderr and exits 2 without touching dist/; lint errors or warnings exit 1.
"""

import argparse
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_SETTINGS = ROOT / "params" / "build.json"
DEFAULT_DIST = ROOT / "dist"
ZONE_ID_PATTERN = re.compile(r"^[a-z]{2,5}[0-9]-az[0-9]+$")
MAX_TEMPLATE_BODY_BYTES = 51_200  # larger templates need an S3 bucket to deploy
README = ROOT / "README.md"
DIAGRAM_REGION = "eu-central-1"  # the README's architecture diagram is drawn from this region


class BadInputError(Exception):
    """Something the user gave us is wrong; reported in one line, exit code 2."""


def load_settings(path):
    """params/build.json, validated: {"regions": {region: [zone ids]}, ...}."""
    try:
        settings = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such settings file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read: {error}") from None
    except json.JSONDecodeError as error:
        raise BadInputError(f"{path}: not valid JSON: {error}") from None
    regions = settings.get("regions") if isinstance(settings, dict) else None
    if not isinstance(regions, dict) or not regions:
        raise BadInputError(f'{path}: "regions" must map each target region to its zone ids')
    known = known_regions()
    for region, zone_ids in regions.items():
        if region not in known:
            raise BadInputError(f"{path}: unknown AWS region {region!r}")
        if (
            not isinstance(zone_ids, list)
            or not zone_ids
            or not all(isinstance(z, str) and ZONE_ID_PATTERN.match(z) for z in zone_ids)
            or len(set(zone_ids)) != len(zone_ids)
        ):
            raise BadInputError(f"{path}: {region}: zone ids must be a list like ['use1-az1', ...]")
    return settings


def known_regions():
    import botocore.session

    session = botocore.session.get_session()
    return {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("cloudformation", partition)
    }


def select_regions(settings, wanted):
    regions = settings["regions"]
    if not wanted:
        return sorted(regions)
    chosen = [r.strip() for r in wanted.split(",") if r.strip()]
    unknown = [r for r in chosen if r not in regions]
    if unknown:
        raise BadInputError(f"region {unknown[0]!r} is not a target region in the settings file")
    return sorted(set(chosen))


def render(region, zone_ids):
    """Deployable bytes of one region's template: minified JSON with sorted keys."""
    from templates.runtime import build_template
    from templates.stack import Region

    return _minified(build_template(Region(region, tuple(zone_ids))))


def render_launch_role(settings):
    """The Service Catalog launch role template (one for every region)."""
    from templates import launch_role

    publish = settings.get("publish", {})
    return _minified(
        launch_role.build_launch_role_template(
            role_name=publish.get("launch_role_name", launch_role.DEFAULT_ROLE_NAME),
            artifact_bucket_prefix=publish.get(
                "artifact_bucket_prefix", launch_role.DEFAULT_ARTIFACT_BUCKET_PREFIX
            ),
        )
    )


def _minified(template):
    return (json.dumps(template.to_dict(), sort_keys=True, separators=(",", ":")) + "\n").encode()


def lint(region, body):
    """cfn-lint findings (errors and warnings) for one template, in-process."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    matches = cfn_lint(body.decode(), config=ManualArgs(regions=[region]))
    return [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches]


def _render_and_lint(job):
    file_name, lint_region, render_function, render_args, run_lint = job
    body = render_function(*render_args)
    return file_name, body, lint(lint_region, body) if run_lint else None


def render_all(settings, regions, run_lint=True):
    """{file name: (bytes, lint findings or None)}: one template per region plus the launch
    role (linted for the first region: it has none of its own), in parallel processes."""
    from templates.launch_role import FILE_NAME as LAUNCH_ROLE

    zone_ids = settings["regions"]
    # Lint time grows with the zones: the biggest go first so the workers finish together.
    jobs = [
        (f"{region}.json", region, render, (region, zone_ids[region]), run_lint)
        for region in sorted(regions, key=lambda region: -len(zone_ids[region]))
    ]
    jobs.append((LAUNCH_ROLE, regions[0], render_launch_role, (settings,), run_lint))
    workers = min(len(jobs), os.cpu_count() or 1) if run_lint else 1
    if workers <= 1:
        results = map(_render_and_lint, jobs)
    else:
        import cfnlint.api  # noqa: F401 - loaded once, shared by the forked workers

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            results = list(pool.map(_render_and_lint, jobs))
    return {name: (body, findings) for name, body, findings in sorted(results)}


def write_dist(dist, files):
    """Replace dist/ files atomically: write everything to a temp dir beside it, then move."""
    try:
        dist.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=dist))
    except OSError as error:
        raise BadInputError(f"{dist}: cannot write: {error.strerror or error}") from None
    try:
        for name, body in files.items():
            (staging / name).write_bytes(body)
        for name in files:
            os.replace(staging / name, dist / name)
    except OSError as error:
        raise BadInputError(f"{dist}: cannot write: {error.strerror or error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def command_render(args):
    settings = load_settings(args.settings)
    regions = select_regions(settings, args.regions)
    started = time.perf_counter()
    rendered = render_all(settings, regions, run_lint=not args.no_lint)
    files = {name: body for name, (body, _) in rendered.items()}
    readme = readme_with_diagram(rendered)
    if args.check:
        stale = [n for n, body in files.items() if _read(args.dist / n) != body]
        for name in stale:
            print(
                f"stale: {args.dist / name} differs from what the sources render", file=sys.stderr
            )
        if readme is not None and readme != README.read_text():
            print("stale: README.md diagram differs from the template's", file=sys.stderr)
            stale.append(README.name)
        findings = [f"{n}: {f}" for n, (_, found) in rendered.items() for f in found or []]
        for finding in findings:
            print(f"lint: {finding}", file=sys.stderr)
        if not (stale or findings):
            linted = "" if args.no_lint else " and lint-clean"
            print(f"dist is up to date{linted} ({len(files)} templates)")
        return 1 if stale or findings else 0
    failed = False
    for file_name, (body, findings) in rendered.items():
        resources = len(json.loads(body)["Resources"])
        too_big = len(body) > MAX_TEMPLATE_BODY_BYTES
        verdict = "lint skipped" if findings is None else f"{len(findings)} lint findings"
        print(
            f"{file_name:20} {resources:3} resources {len(body):6} bytes"
            f"{' (over 51,200: deploy via --s3-bucket)' if too_big else ''}  {verdict}"
        )
        for finding in findings or []:
            print(f"  {finding}")
        failed = failed or bool(findings)
    if failed:
        print("lint failed: dist/ left unchanged", file=sys.stderr)
        return 1
    write_dist(args.dist, files)
    if readme is not None and readme != README.read_text():
        README.write_text(readme)
        print("updated the architecture diagram in README.md")
    print(f"wrote {len(files)} templates to {args.dist} in {time.perf_counter() - started:.1f}s")
    return 0


def readme_with_diagram(rendered):
    """README.md with the diagram of the DIAGRAM_REGION template (None if not rendered)."""
    from templates.diagram import embed, mermaid

    if f"{DIAGRAM_REGION}.json" not in rendered:
        return None
    template = json.loads(rendered[f"{DIAGRAM_REGION}.json"][0])
    try:
        return embed(README.read_text(), mermaid(template), source=f"dist/{DIAGRAM_REGION}.json")
    except (OSError, ValueError) as error:
        raise BadInputError(f"{README.name}: {error}") from None


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return None


def command_outputs(args):
    """The stack's outputs as the env block Grand Challenge reads."""
    import boto3
    import botocore.exceptions

    from templates.outputs import GRAND_CHALLENGE_SETTINGS

    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        client = session.client("cloudformation")
        stacks = client.describe_stacks(StackName=args.stack)["Stacks"]
    except botocore.exceptions.NoCredentialsError:
        raise BadInputError("no AWS credentials: configure a profile or set AWS_PROFILE") from None
    except botocore.exceptions.NoRegionError:
        raise BadInputError("no AWS region: pass --region or set AWS_DEFAULT_REGION") from None
    except botocore.exceptions.ProfileNotFound as error:
        raise BadInputError(str(error)) from None
    except botocore.exceptions.ClientError as error:
        raise BadInputError(f"stack {args.stack}: {error.response['Error']['Message']}") from None
    except botocore.exceptions.BotoCoreError as error:
        raise BadInputError(f"stack {args.stack}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in GRAND_CHALLENGE_SETTINGS.values() if key not in outputs]
    if missing:
        raise BadInputError(f"stack {args.stack} lacks outputs {missing}: is it this product?")
    for setting, key in GRAND_CHALLENGE_SETTINGS.items():
        print(f"{setting}={outputs[key]}")
    return 0


def command_publish(args):
    """Publish dist/ as it is, but never a dist/ that no longer matches the sources."""
    import publish

    settings = load_settings(args.settings)
    rendered = render_all(settings, sorted(settings["regions"]), run_lint=False)
    stale = sorted(n for n, (body, _) in rendered.items() if _read(args.dist / n) != body)
    if stale:
        raise BadInputError(f"{args.dist}/{stale[0]} is stale: run `python build.py` first")
    return publish.main(args, settings, args.dist)


def parser():
    top = argparse.ArgumentParser(
        prog="build.py",
        description="Render the Grand Challenge components runtime templates into dist/ "
        "(one per target region), lint them with cfn-lint, and publish them.",
    )
    top.add_argument(
        "--settings",
        type=Path,
        default=DEFAULT_SETTINGS,
        help="build settings: target regions and their zone ids, publishing (default: %(default)s)",
    )
    top.add_argument(
        "--dist", type=Path, default=DEFAULT_DIST, help="output directory (default: %(default)s)"
    )
    top.add_argument(
        "--regions", help="comma-separated subset of the target regions (default: all)"
    )
    top.add_argument("--no-lint", action="store_true", help="render without running cfn-lint")
    top.add_argument(
        "--check",
        action="store_true",
        help="render and lint in memory; exit 1 if dist/ is stale or lint finds anything; "
        "writes nothing",
    )
    top.set_defaults(command=command_render)
    commands = top.add_subparsers(title="commands", metavar="{outputs,publish}")

    outputs = commands.add_parser(
        "outputs", help="print a deployed stack's outputs as Grand Challenge settings (env lines)"
    )
    outputs.add_argument("--stack", required=True, help="stack name or id")
    outputs.add_argument("--region", help="the stack's region (default: from the AWS config)")
    outputs.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    outputs.set_defaults(command=command_outputs)

    publish_parser = commands.add_parser(
        "publish", help="publish the rendered templates as a Service Catalog product"
    )
    try:
        import publish

        publish.add_arguments(publish_parser)
    except ImportError:
        pass
    publish_parser.set_defaults(command=command_publish)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.command(args)
    except BadInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
