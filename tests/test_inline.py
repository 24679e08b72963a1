"""inline: a handler module and its sibling imports become one compact, self-contained source."""

import ast
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from templates import inline
from templates.inline import InlineError, inline_source

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "templates" / "functions"


def run(source, *args):
    """exec ``source`` as Lambda would (a fresh module namespace); returns that namespace."""
    namespace = {"__name__": "index"}
    exec(compile(source, "index.py", "exec"), namespace)
    return namespace


def top_level_defs(tree):
    return Counter(
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)
    )


def top_level_bindings(tree):
    """Names a module defines or assigns at the top level (not imports)."""
    names = set(top_level_defs(tree))
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def reachable(entry):
    """{module: tree} of ``entry`` and every sibling it imports, read from the real files."""
    found, pending = {}, [entry]
    while pending:
        name = pending.pop()
        if name not in found:
            found[name] = ast.parse((FUNCTIONS / f"{name}.py").read_text())
            pending += [
                node.module
                for node in found[name].body
                if isinstance(node, ast.ImportFrom) and node.level
            ]
    return found


@pytest.fixture(scope="module")
def custodian():
    return inline_source("custodian")


@pytest.fixture
def functions_dir(tmp_path, monkeypatch):
    """Point the inliner at a temporary package; returns ``write(module, source)``."""
    monkeypatch.setattr(inline, "FUNCTIONS_DIR", tmp_path)

    def write(module, source):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))

    return write


def test_sibling_imports_are_replaced_by_their_bodies(custodian):
    tree = ast.parse(custodian)
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert relative == []
    modules = reachable("custodian")
    assert {"custodian", "custom_resource", "s3_network_acl"} <= modules.keys()
    # a function or class keeps its name unless another module binds it too
    bound = Counter(name for original in modules.values() for name in top_level_bindings(original))
    assert top_level_defs(tree) == Counter(
        name if module == "custodian" or bound[name] == 1 else f"{module}_{name}"
        for module, original in modules.items()
        for name in top_level_defs(original)
    )


def test_each_sibling_is_inlined_once(custodian):
    tree = ast.parse(custodian)
    # custom_resource is imported by both custodian and s3_network_acl
    assert [name for name, count in top_level_defs(tree).items() if count > 1] == []
    assert top_level_defs(tree)["Invocation"] == 1
    assert custodian.count("MAX_REASON_BYTES = ") == 1


def test_imports_are_hoisted_and_deduplicated(custodian):
    body = ast.parse(custodian).body
    texts = [ast.unparse(n) for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(isinstance(n, ast.Import | ast.ImportFrom) for n in body[: len(texts)])
    assert len(texts) == len(set(texts))
    wanted = {
        ast.unparse(node)
        for tree in reachable("custodian").values()
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0)
    }
    assert set(texts) == wanted
    assert {"import boto3", "import json", "import os"} <= wanted


def test_docstrings_are_gone(custodian):
    tree = ast.parse(custodian)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef):
            assert ast.get_docstring(node) is None, getattr(node, "name", "module")
    assert '"""' not in custodian
    assert "CloudFormation custom-resource protocol" not in custodian


def test_inlined_custodian_has_one_handler_the_dispatcher(custodian):
    tree = ast.parse(custodian)
    handlers = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name == "handler")
        or (isinstance(node, ast.Assign) and "handler" in {ast.unparse(t) for t in node.targets})
    ]
    assert len(handlers) == 1
    original = next(
        node
        for node in ast.parse((FUNCTIONS / "custodian.py").read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name == "handler"
    )
    if ast.get_docstring(original) is not None:
        original.body = original.body[1:]
    assert ast.dump(handlers[0]) == ast.dump(original)
    namespace = run(custodian)
    assert namespace["s3_network_acl"] is namespace["s3_network_acl_handler"]
    assert namespace["handler"] is not namespace["s3_network_acl_handler"]


def test_result_compiles_and_keeps_behaviour(functions_dir):
    functions_dir(
        "shared",
        '''
        """Module docstring."""
        import json

        MESSAGE = """first line
            indented four spaces
                and eight"""


        class Empty:
            """Only a docstring."""


        def nothing():
            """Only a docstring."""


        def describe(value):
            """Docstring."""
            "not a docstring: the second statement"
            for item in [value]:
                if item:
                    while True:
                        return json.dumps({"v": item, "m": MESSAGE})
            return None
        ''',
    )
    functions_dir(
        "entry",
        """
        import json

        from .shared import Empty, describe, nothing


        def handler(event, context):
            return [json.loads(describe(event)), nothing(), type(Empty()).__name__]
        """,
    )
    source = inline_source("entry")
    assert "docstring" not in source.replace("not a docstring", "")
    assert "not a docstring: the second statement" in source
    assert source.count("import json") == 1
    assert run(source)["handler"](7, None) == [
        {"v": 7, "m": "first line\n    indented four spaces\n        and eight"},
        None,
        "Empty",
    ]


def test_indentation_is_one_space(custodian):
    lines = [line for line in custodian.splitlines() if line]
    widths = [len(line) - len(line.lstrip(" ")) for line in lines]
    assert "\t" not in custodian
    # a block opens one level at a time, so one space per level means steps of at most 1
    assert all(now <= before + 1 for before, now in zip([0, *widths], widths, strict=False))
    assert {1, 2, 3} <= set(widths)
    start = lines.index("def handler(event, context):")  # top level stays at column 0
    assert widths[start + 1] == 1


COLLIDING = {
    "common": """
        import json


        def describe(name, limit):
            return json.dumps([name, limit])
        """,
    "alpha": """
        '''Alpha.'''
        import json
        from types import SimpleNamespace

        from .common import describe

        LIMIT = 1


        def helper():
            return "alpha"


        def handler(event, context):
            # attributes and keywords spelled like a renamed name stay as they are
            extra = SimpleNamespace(helper=json.dumps(dict(helper=1))).helper
            return describe(helper(), LIMIT) + extra
        """,
    "beta": """
        from .common import describe

        LIMIT = 2


        def helper():
            return "beta"


        def handler(event, context):
            return describe(helper(), LIMIT)
        """,
    "main": """
        from .alpha import handler as alpha
        from .beta import LIMIT
        from .beta import handler as beta


        def handler(event, context):
            return [alpha(event, context), beta(event, context), LIMIT]
        """,
}


def test_colliding_names_are_renamed_and_aliased(functions_dir):
    for module, source in COLLIDING.items():
        functions_dir(module, source)

    source = inline_source("main")
    tree = ast.parse(source)

    assert top_level_defs(tree) == Counter(
        ["describe", "alpha_helper", "alpha_handler", "beta_helper", "beta_handler", "handler"]
    )
    assigned = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Assign)]
    assert assigned == [
        "alpha_LIMIT = 1",
        "alpha = alpha_handler",
        "beta_LIMIT = 2",
        "LIMIT = beta_LIMIT",
        "beta = beta_handler",
    ]
    assert source.count("import json") == 1
    assert "SimpleNamespace(helper=json.dumps(dict(helper=1))).helper" in source
    namespace = run(source)
    assert namespace["handler"](None, None) == [
        '["alpha", 1]{"helper": 1}',
        '["beta", 2]',
        2,
    ]


@pytest.mark.parametrize(
    "local",
    [
        "def handler(event, context):\n    helper = 1\n    return helper\n",
        "def handler(event, helper):\n    return helper\n",
        "def handler(event, context):\n    return (lambda helper: helper)(1)\n",
        "def handler(event, context):\n    for helper in [1]:\n        return helper\n",
        "def handler(event, context):\n    return [helper for helper in [1]]\n",
        "def handler(event, context):\n    try:\n        return 1\n    except ValueError as helper:\n        return helper\n",
        "def handler(event, context):\n    def helper():\n        return 1\n    return helper()\n",
        "def handler(event, context):\n    import json as helper\n    return helper\n",
        "class Box:\n    def helper(self):\n        return 1\n\n\ndef handler(event, context):\n    return Box().helper()\n",
        "class Box:\n    helper = 1\n\n\ndef handler(event, context):\n    return Box.helper\n",
    ],
    ids=[
        "assignment",
        "argument",
        "lambda argument",
        "loop variable",
        "comprehension variable",
        "except as",
        "nested function",
        "local import",
        "method",
        "class attribute",
    ],
)
def test_renaming_refuses_a_name_also_bound_below_the_top_level(functions_dir, local):
    functions_dir("alpha", f"def helper():\n    return 'alpha'\n\n\n{local}")
    functions_dir("beta", "def helper():\n    return 'beta'\n")
    functions_dir("main", "from .alpha import handler\nfrom .beta import helper\n")

    with pytest.raises(InlineError, match=r"alpha: cannot rename \['helper'\]"):
        inline_source("main")


@pytest.mark.parametrize(
    ("alpha", "beta"),
    [
        ("from concurrent.futures import wait\n", "def wait():\n    return 1\n"),
        ("from os import path\n", "from sys import path\n"),
        ("import json as codec\n", "import pickle as codec\n"),
    ],
    ids=["import shadowed by a definition", "two imports, one name", "two aliases, one name"],
)
def test_hoisted_imports_may_not_bind_a_name_twice(functions_dir, alpha, beta):
    functions_dir("alpha", alpha)
    functions_dir("beta", beta)
    functions_dir("main", "from .alpha import *\nfrom .beta import *\n")

    with pytest.raises(InlineError, match="is bound twice"):
        inline_source("main")


def test_imports_binding_the_same_thing_are_fine(functions_dir):
    functions_dir("alpha", "import urllib.request\nfrom os import path\n")
    functions_dir("beta", "import urllib.parse\nfrom os import path\n")
    functions_dir("main", "from .alpha import *\nfrom .beta import *\nimport urllib.request\n")

    source = inline_source("main")
    assert source.splitlines() == [
        "import urllib.request",
        "from os import path",
        "import urllib.parse",
    ]


def test_inlining_is_deterministic(custodian):
    assert inline_source("custodian") == custodian
    # set iteration order depends on the hash seed; the output must not
    for seed in ("0", "1"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from templates.inline import inline_source; "
                "sys.stdout.write(inline_source('custodian'))",
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout == custodian


def test_output_does_not_come_from_ast_unparse(functions_dir, monkeypatch):
    """ast.unparse writes f-strings differently on 3.11 and 3.12: the inliner must not use it
    (tests/test_python_versions.py compares the bytes each supported Python renders)."""
    functions_dir("entry", "def handler(event, context):\n    return f\"{event['a']!r:.9}\"\n")

    def unparse(node):
        raise AssertionError("ast.unparse called")

    monkeypatch.setattr(ast, "unparse", unparse)
    source = inline_source("entry")
    assert source == "def handler(event, context):\n return f\"{event['a']!r:.9}\"\n"


TEXT_EDITS = {
    "shared": """
        import functools

        GREETING = "héllo"  # comment with "quotes" and 'apostrophes'
        HASH = "#not a comment"


        def helper(value):
            return f"{GREETING} {value}"


        @functools.cache
        def handler(event, context):
            text = "é" + helper(event)  # "é" is two bytes: parser columns count bytes
            return {
                "shout": f"{helper(event)!r}!",
                "text": text,
                "hash": HASH,  # the value keeps its '#'
                "it's": [
                    helper(1),
                    helper(
                        2
                    ),
                ],
            }
        """,
    "entry": """
        from .shared import handler as shared


        def helper(value):
            return value


        def handler(event, context):
            return shared(helper(event), context)
        """,
}


def test_text_edits_keep_strings_and_rename_by_position(functions_dir):
    for module, source in TEXT_EDITS.items():
        functions_dir(module, source)

    source = inline_source("entry")

    assert "quotes" not in source and "two bytes" not in source and "keeps" not in source
    assert "HASH = '#not a comment'" in source  # single quotes: half the JSON escaping
    assert "return f'{GREETING} {value}'" in source
    assert "@functools.cache\ndef shared_handler(event, context):" in source
    assert " text = 'é' + shared_helper(event)" in source
    # a bracketed statement is one line; a string with a ' keeps its double quotes
    assert (
        " return {'shout': f'{shared_helper(event)!r}!','text': text,'hash': HASH,"
        '"it\'s": [shared_helper(1),shared_helper(2),],}' in source
    )
    namespace = run(source)
    assert namespace["handler"](3, None) == {
        "shout": "'héllo 3'!",
        "text": "éhéllo 3",
        "hash": "#not a comment",
        "it's": ["héllo 1", "héllo 2"],
    }


def test_a_multi_line_string_keeps_its_lines_even_inside_brackets(functions_dir):
    lines = [
        "def handler(event, context):",
        "    return [",
        '        f"""{event}  ',  # trailing spaces inside the string are part of it
        '    # not a comment""",',
        '        "two",',
        "    ]",
    ]
    functions_dir("entry", "\n".join(lines) + "\n")
    source = inline_source("entry")
    assert source.splitlines()[1:] == [
        ' return [f"""{event}  ',
        '    # not a comment""",\'two\',]',
    ]
    assert run(source)["handler"](1, None) == ["1  \n    # not a comment", "two"]
