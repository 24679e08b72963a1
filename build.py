"""Render, lint and publish the Grand Challenge components runtime templates.

    python build.py                      render the template into dist/ and lint it
    python build.py --regions all        ... linted for every commercial region
    python build.py --check              fail if dist/ is not what the sources render
    python build.py outputs --stack gc   print a deployed stack's Grand Challenge settings
    python build.py publish --dry-run    plan the Service Catalog publication
    python build.py diff HEAD~1 dist/components-runtime.json   preview an update (exit 3: data at risk)
    python build.py migrate --tfstate state.json   move a Terraform module deployment here
    python build.py migrate --from-stack DIR       move a stack of a per-region template here

dist/ holds one product template, the same bytes for every region, and the launch role.
Each template's line is printed as soon as it is rendered and linted; dist/ (and the README's
diagram, which only the default dist/ updates) is written once both are. Bad input (unknown
region, malformed params file, unwritable dist/, a publish.py that cannot be imported) prints
one line on stderr and exits 2 without touching dist/; lint errors or warnings exit 1.
"""

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from migrate.cli import add_migrate

ROOT = Path(__file__).resolve().parent
DEFAULT_SETTINGS = ROOT / "params" / "build.json"
DEFAULT_DIST = ROOT / "dist"
MAX_TEMPLATE_BODY_BYTES = 51_200  # larger templates need an S3 bucket to deploy
README = ROOT / "README.md"
PRODUCT_FILE = "components-runtime.json"
LINT_CHUNK = 4  # cfn-lint's time grows faster than linearly with the regions of one call


class BadInputError(Exception):
    """Something the user gave us is wrong; reported in one line, exit code 2."""


def load_settings(path):
    """params/build.json, validated: {"regions": [publish regions], "publish": {...}}."""
    try:
        settings = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such settings file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read: {error}") from None
    except json.JSONDecodeError as error:
        raise BadInputError(f"{path}: not valid JSON: {error}") from None
    regions = settings.get("regions") if isinstance(settings, dict) else None
    if isinstance(regions, dict):  # the per-region format: {region: [zone ids]}
        raise BadInputError(
            f'{path}: the format of "regions" changed: it is now a list of the regions to '
            "publish to, and zones are picked at deploy time (parameter AvailabilityZones): "
            f'write "regions": {json.dumps(sorted(regions))}'
        )
    if (
        not isinstance(regions, list)
        or not regions
        or not all(isinstance(region, str) for region in regions)
        or len(set(regions)) != len(regions)
    ):
        raise BadInputError(f'{path}: "regions" must list the regions to publish to, once each')
    known = known_regions()
    for region in regions:
        if region not in known:
            raise BadInputError(f"{path}: unknown AWS region {region!r}")
    return settings


def known_regions():
    import botocore.session

    session = botocore.session.get_session()
    return {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("cloudformation", partition)
    }


def commercial_regions():
    """Every region of the ``aws`` partition that botocore knows (cfn-lint: select_regions)."""
    import botocore.session

    return sorted(botocore.session.get_session().get_available_regions("cloudformation", "aws"))


def lintable_regions():
    """The regions this cfn-lint has specifications for (it refuses any other)."""
    from cfnlint.helpers import REGIONS

    return set(REGIONS)


def select_regions(settings, wanted, run_lint=True):
    """The regions to lint for: the settings' publish regions, a list, or ``all``."""
    listed = sorted({r.strip() for r in (wanted or "").split(",") if r.strip()})
    chosen = sorted(settings["regions"]) if wanted is None else listed
    if listed == ["all"]:
        chosen = commercial_regions()
    elif "all" in listed:
        raise BadInputError("--regions: give all alone (every commercial region), not in a list")
    elif not chosen:
        raise BadInputError(
            f"--regions {wanted!r} names no region, e.g. eu-central-1,eu-west-1 or all"
        )
    unknown = sorted(set(chosen) - known_regions())
    if unknown:
        raise BadInputError(f"--regions: unknown AWS region {unknown[0]!r}")
    if run_lint:
        from cfnlint.version import __version__ as cfn_lint_version

        unlintable = sorted(set(chosen) - lintable_regions())
        if unlintable:
            raise BadInputError(
                f"cfn-lint {cfn_lint_version} cannot lint for region {unlintable[0]!r}: upgrade "
                "cfn-lint, or pass --regions without it"
            )
    return chosen


def render():
    """Deployable bytes of the product template: minified JSON with sorted keys."""
    from templates.runtime import build_template

    return _minified(build_template())


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


def lint(regions, body):
    """cfn-lint findings (errors and warnings) for one template in ``regions``, in-process."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    regions = [regions] if isinstance(regions, str) else list(regions)  # not its letters
    matches = cfn_lint(body.decode(), config=ManualArgs(regions=regions))
    return sorted({f"{m.rule.id} {m.message} ({m.path_string})" for m in matches})


def lint_chunks(regions):
    """``regions`` split, in order, into the cfn-lint calls made for each template."""
    return [list(regions[i : i + LINT_CHUNK]) for i in range(0, len(regions), LINT_CHUNK)]


def render_all(settings, regions, run_lint=True, on_done=None):
    """{file name: (bytes, lint findings or None)}: the product template and the launch role,
    each linted for ``regions``. Rendering takes a fraction of a second and happens here,
    once; linting takes seconds, so the regions go to forked workers in chunks (one cfn-lint
    call grows faster than linearly with its regions). ``on_done(name, bytes, findings)`` is
    called here as each template's last chunk finishes, so the caller can report progress."""
    from templates.launch_role import FILE_NAME as LAUNCH_ROLE

    bodies = {PRODUCT_FILE: render(), LAUNCH_ROLE: render_launch_role(settings)}
    results = {}

    def finish(name, findings):
        results[name] = (bodies[name], findings)
        if on_done is not None:
            on_done(name, bodies[name], findings)

    if not run_lint:
        for name in bodies:
            finish(name, None)
        return dict(sorted(results.items()))
    if not regions:
        raise ValueError("linting needs at least one region")
    jobs = [(name, chunk) for name in bodies for chunk in lint_chunks(regions)]
    add = _findings_collector(jobs, finish)
    if min(len(jobs), os.cpu_count() or 1) <= 1:
        for name, chunk in jobs:
            add(name, lint(chunk, bodies[name]))
    else:
        _lint_in_workers(bodies, jobs, add)
    return dict(sorted(results.items()))


def _findings_collector(jobs, finish):
    """``add(name, findings)`` per finished chunk; ``finish(name, sorted findings)`` once a
    template's last chunk is in (a finding of any one chunk is a finding of the template)."""
    findings = {name: set() for name, _ in jobs}
    chunks_left = {name: sum(1 for n, _ in jobs if n == name) for name in findings}

    def add(name, found):
        findings[name].update(found)
        chunks_left[name] -= 1
        if not chunks_left[name]:
            finish(name, sorted(findings[name]))

    return add


def _lint_in_workers(bodies, jobs, add):
    import gc

    import cfnlint.api  # noqa: F401 - imported once, before the workers fork

    # The workers inherit this process's heap; frozen, their garbage collections skip it
    # (measured: about 10% less CPU for a build).
    gc.freeze()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(len(jobs), os.cpu_count()), mp_context=context) as pool:
        linting = {pool.submit(lint, chunk, bodies[name]): name for name, chunk in jobs}
        for done in as_completed(linting):
            add(linting[done], done.result())


def write_dist(dist, files):
    """Replace dist/ files all or nothing: write everything to a staging dir inside dist/, then
    move each file in (each move is atomic); a failure part-way moves the replaced ones back,
    so dist/ never mixes a new product template with an old launch role."""
    try:
        dist.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=dist))
    except OSError as error:
        raise BadInputError(f"{dist}: cannot write: {error.strerror or error}") from None
    moved = []
    try:
        for name, body in files.items():
            (staging / name).write_bytes(body)
            if (dist / name).exists():
                os.link(dist / name, staging / f"{name}.previous")
        for name in files:
            os.replace(staging / name, dist / name)
            moved.append(name)
    except OSError as error:
        for name in moved:  # back: the previous file, or none if there was none
            previous = staging / f"{name}.previous"
            with contextlib.suppress(OSError):  # the first error is the one to report
                os.replace(previous, dist / name) if previous.exists() else (dist / name).unlink()
        raise BadInputError(f"{dist}: cannot write: {error.strerror or error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def command_render(args):
    settings = load_settings(args.settings)
    regions = select_regions(settings, args.regions, run_lint=not args.no_lint)
    started = time.perf_counter()
    progress = functools.partial(print_progress, lint_regions=len(regions))
    rendered = render_all(settings, regions, run_lint=not args.no_lint, on_done=progress)
    files = {name: body for name, (body, _) in rendered.items()}
    # The README's diagram shows dist/: another --dist (a test's, say) leaves README.md alone.
    readme = readme_with_diagram(rendered) if args.dist.resolve() == DEFAULT_DIST else None
    if args.check:
        stale = [n for n, body in files.items() if _read(args.dist / n) != body]
        for name in stale:
            found = (args.dist / name).exists()
            state = "differs from what the sources render" if found else "is missing"
            print(f"stale: {args.dist / name} {state}", file=sys.stderr)
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
    if any(findings for _, findings in rendered.values()):
        print("lint failed: dist/ left unchanged", file=sys.stderr)
        return 1
    write_dist(args.dist, files)
    if readme is not None and readme != README.read_text():
        README.write_text(readme)
        print("updated the architecture diagram in README.md")
    print(f"wrote {len(files)} templates to {args.dist} in {time.perf_counter() - started:.1f}s")
    return 0


def print_progress(file_name, body, findings, lint_regions=None):
    """One template's line and lint findings, printed as soon as it is done (in the order
    they finish): linting for every region takes a while."""
    resources = len(json.loads(body)["Resources"])
    too_big = len(body) > MAX_TEMPLATE_BODY_BYTES
    verdict = "lint skipped" if findings is None else f"{len(findings)} lint findings"
    if findings is not None and lint_regions:
        verdict += f" in {lint_regions} region{'s' if lint_regions > 1 else ''}"
    lines = [
        f"{file_name:24} {resources:3} resources {len(body):6} bytes"
        f"{' (over 51,200: deploy via --s3-bucket)' if too_big else ''}  {verdict}",
        *(f"  {finding}" for finding in findings or []),
    ]
    print("\n".join(lines), flush=True)


def readme_with_diagram(rendered):
    """README.md with the diagram of the product template."""
    from templates.diagram import embed, mermaid

    template = json.loads(rendered[PRODUCT_FILE][0])
    try:
        return embed(README.read_text(), mermaid(template), source=f"dist/{PRODUCT_FILE}")
    except (OSError, ValueError) as error:
        raise BadInputError(f"{README.name}: {error}") from None


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return None


def command_outputs(args):
    """The stack's outputs as the env block Grand Challenge reads, then operator notes."""
    import boto3
    import botocore.exceptions

    from templates.outputs import GRAND_CHALLENGE_SETTINGS, env_block

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
    print("\n".join(env_block(outputs)))
    return 0


def command_publish(args):
    """Publish dist/ as it is, but never a dist/ that no longer matches the sources."""
    import publish

    settings = load_settings(args.settings)
    rendered = render_all(settings, [], run_lint=False)
    stale = sorted(n for n, (body, _) in rendered.items() if _read(args.dist / n) != body)
    if stale:
        state = "is missing" if _read(args.dist / stale[0]) is None else "is stale"
        raise BadInputError(f"{args.dist}/{stale[0]} {state}: run `python build.py` first")
    return publish.main(args, settings, args.dist)


def command_diff(args):
    """Preview the update of a stack from template OLD to NEW (templates/preview.py): exit 3
    when a stateful resource would be replaced or removed, 0 otherwise."""
    from templates import preview

    name = args.template or _diff_template_name(args)
    (old, old_where), (new, new_where) = (_diff_template(s, name) for s in (args.old, args.new))
    region = args.region or _region_of(old_where, new_where)
    values = [None, None]
    if args.parameters:
        values = [_diff_parameters(path) for path in args.parameters]
    result = preview.plan(old, new, *values, region)
    effects = None if args.parameters else preview.parameter_effects(new, region)
    if args.json:
        print(json.dumps(result.to_dict() | {"parameter_effects": effects}, indent=2))
    else:
        print("\n".join(preview.report_lines(result, effects)))
    return 3 if result.destructive else 0


REGION_FILE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]\.json$")


def _region_of(*wheres):
    """The region a per-region template's name gives (dist/eu-central-1.json), if any."""
    for where in wheres:
        file_name = Path(where.rsplit(":", 1)[-1]).name
        if REGION_FILE.match(file_name):
            return file_name[: -len(".json")]
    return None


def _diff_template_name(args):
    """The dist/ file a git revision stands for: named like the file given on the other side,
    else the product template (a release before the one template: --template <region>.json)."""
    for spec in (args.new, args.old):
        if Path(spec).is_file():
            return Path(spec).name
    return PRODUCT_FILE


def _diff_template(spec, name):
    """(template, where it came from): a file, dist/<name> at a git revision, or git's
    <revision>:<path>."""
    from templates.preview import TemplateError, check_template

    if Path(spec).is_file():
        text, where = _read(Path(spec)), spec
        if text is None:
            raise BadInputError(f"{spec}: cannot read")
    else:
        where, text = _revision_file(spec, name)
    try:
        template = json.loads(text)
        check_template(template)
    except (UnicodeDecodeError, json.JSONDecodeError, TemplateError) as error:
        raise BadInputError(f"{where}: {error}") from None
    return template, where


def _revision_file(spec, name):
    """(<revision>:<path>, its bytes), or one line saying which templates the revision has."""
    revision, path = spec.split(":", 1) if ":" in spec else (spec, f"dist/{name}")
    if _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}") is None:
        raise BadInputError(f"{spec}: no such file, nor a git revision with {path}")
    text = _git("show", f"{revision}:{path}")
    if text is not None:
        return f"{revision}:{path}", text
    listed = (_git("ls-tree", "--name-only", revision, "dist/") or b"").decode().split()
    templates = [file for file in listed if file.endswith(".json")]
    if not templates:
        raise BadInputError(f"{revision} has no {path}, nor any dist/*.json")
    raise BadInputError(
        f"{revision} has {', '.join(templates)}, not {path}: pass --template <name>, or "
        f"{revision}:dist/<name> for that side alone"
    )


def _diff_parameters(path):
    from templates.preview import TemplateError, parse_parameters

    try:
        return parse_parameters(json.loads(Path(path).read_text()))
    except OSError as error:
        raise BadInputError(f"{path}: cannot read: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, TemplateError) as error:
        raise BadInputError(f"{path}: {error}") from None


def _git(*arguments):
    """stdout of a read-only git command in this repository, None if it fails."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *arguments], capture_output=True, check=False
        )
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def parser():
    top = argparse.ArgumentParser(
        prog="build.py",
        description="Render the Grand Challenge components runtime templates into dist/ "
        "(one product template for every region, and the launch role), lint them with "
        "cfn-lint, and publish them.",
    )
    top.add_argument(
        "--settings",
        type=Path,
        default=DEFAULT_SETTINGS,
        help="build settings: regions to publish to, publishing (default: %(default)s)",
    )
    top.add_argument(
        "--dist", type=Path, default=DEFAULT_DIST, help="output directory (default: %(default)s)"
    )
    top.add_argument(
        "--regions",
        help="regions to lint for: comma-separated, or 'all' for every commercial region "
        "(default: the settings' publish regions)",
    )
    top.add_argument("--no-lint", action="store_true", help="render without running cfn-lint")
    top.add_argument(
        "--check",
        action="store_true",
        help="render and lint in memory; exit 1 if dist/ is stale or lint finds anything; "
        "writes nothing",
    )
    top.set_defaults(command=command_render)
    commands = top.add_subparsers(title="commands", metavar="{outputs,diff,migrate,publish}")
    outputs = commands.add_parser(
        "outputs", help="print a deployed stack's outputs as Grand Challenge settings (env lines)"
    )
    outputs.add_argument("--stack", required=True, help="stack name or id")
    outputs.add_argument("--region", help="the stack's region (default: from the AWS config)")
    outputs.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    outputs.set_defaults(command=command_outputs)
    _add_diff(commands)
    add_migrate(commands)
    _add_publish(commands)
    return top


def _add_diff(commands):
    diff = commands.add_parser(
        "diff",
        help="preview a stack update: resources added, modified, replaced, removed; "
        "exit 3 if a stateful one is replaced or removed",
        description="List what updating a stack from template OLD to NEW adds, modifies, "
        "replaces and removes, decided from each type's create-only properties. Exit 0: no "
        "stateful resource (bucket, repository, key, log group, queue, VPC, subnet, a role or "
        "policy Grand Challenge uses) is replaced or removed; exit 3: at least one is (or may "
        "be); exit 2: bad input.",
    )
    for side in ("OLD", "NEW"):
        diff.add_argument(
            side.lower(),
            metavar=side,
            help="template file, git revision (its dist/), or REVISION:PATH",
        )
    diff.add_argument(
        "--template", help=f"dist/ file a revision stands for (default: {PRODUCT_FILE})"
    )
    diff.add_argument("--region", help="the stack's region (default: from a <region>.json name)")
    diff.add_argument(
        "--parameters",
        nargs=2,
        metavar=("OLD_FILE", "NEW_FILE"),
        help='parameter values before and after, each a JSON list of "Key=Value"',
    )
    diff.add_argument("--json", action="store_true", help="print the plan as JSON")
    diff.set_defaults(command=command_diff)


def _add_publish(commands):
    publish_parser = commands.add_parser(
        "publish", help="publish the rendered templates as a Service Catalog product"
    )
    try:
        import publish

        publish.add_arguments(publish_parser)
    except (ImportError, SyntaxError) as error:
        # Rendering must not need publish.py; using publish reports why it cannot load.
        reason = " ".join(str(error).split())  # one line
        publish_parser.set_defaults(command=publish_unavailable, publish_import_error=reason)
    else:
        publish_parser.set_defaults(command=command_publish)


def publish_unavailable(args):
    raise BadInputError(f"publish cannot load publish.py: {args.publish_import_error}")


def main(argv=None):
    top = parser()
    args, unrecognized = top.parse_known_args(argv)
    if unrecognized and args.command is not publish_unavailable:
        top.error(f"unrecognized arguments: {' '.join(unrecognized)}")  # as parse_args does
    try:
        return args.command(args)
    except BadInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
