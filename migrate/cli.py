"""``build.py migrate``: move a Terraform module deployment (``--tfstate``) or a stack made
from a per-region template (``--from-stack``) onto this product without re-creating it.

Bad input prints one line (``error: ...``, as build.py's other commands) and exits 2, writing
nothing.
"""

import sys
from pathlib import Path

from . import MigrationError


def command_migrate(args):
    """Write the migration's files into ``args.out`` and name the runbook to follow."""
    try:
        files = _files(args)
        args.out.mkdir(parents=True, exist_ok=True)
        for file_name, body in files.items():
            (args.out / file_name).write_bytes(body)
    except MigrationError as error:
        return _refuse(str(error))
    except OSError as error:
        return _refuse(f"{args.out}: cannot write: {error.strerror or error}")
    runbook = next(name for name in files if name.endswith(".md"))
    print(f"wrote {len(files)} files to {args.out}: follow {args.out / runbook}")
    return 0


def _files(args):
    if args.from_stack is not None:
        from .from_stack import from_stack_files

        return from_stack_files(args.from_stack)
    from .plan import migration_files

    try:
        text = args.tfstate.read_text()
    except OSError as error:
        raise MigrationError(f"{args.tfstate}: cannot read: {error.strerror or error}") from None
    return migration_files(text, str(args.tfstate), args.stack_name)


def _refuse(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def add_migrate(commands):
    migrate = commands.add_parser(
        "migrate",
        help="write what moves a Terraform module deployment or a per-region stack onto this "
        "product (no recreation)",
        description="--tfstate: from the JSON of `terraform state pull` (the module used "
        "directly or as module.<name>), write for the state's region: the product's "
        "parameters, the IMPORT template and --resources-to-import, the product template "
        "keeping the module's names, and <region>-MIGRATION.md with the commands in order. "
        "--from-stack DIR: from a stack made from a per-region template (releases up to "
        "f1cf291), described by template.json, stack.json, resources.json and zones.json in "
        "DIR, write the templates of the four steps that rename its zone resources by import, "
        "and <region>-FROM-STACK.md. Exit 2: something it cannot move.",
    )
    source = migrate.add_mutually_exclusive_group(required=True)
    source.add_argument("--tfstate", type=Path, help="`terraform state pull` JSON")
    source.add_argument(
        "--from-stack",
        type=Path,
        metavar="DIR",
        help="directory with the stack's template.json, stack.json, resources.json, zones.json",
    )
    migrate.add_argument(
        "--out",
        type=Path,
        default=Path("migration"),
        help="output directory (default: %(default)s)",
    )
    migrate.add_argument(
        "--stack-name", help="--tfstate: stack to create (default: <prefix>-components)"
    )
    migrate.set_defaults(command=command_migrate)
