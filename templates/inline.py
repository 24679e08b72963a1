"""Turn a handler module under templates/functions into one self-contained, compact source.

The Lambda gets a single ``index.py`` from ``Code.ZipFile``, so sibling imports
(``from .custom_resource import run``) are replaced by the sibling's body, imports are
hoisted and de-duplicated, and docstrings are dropped (``ast.unparse`` drops comments),
keeping the rendered template small and byte-for-byte deterministic.
"""

import ast
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).parent / "functions"


def _is_docstring(node):
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _strip_docstrings(tree):
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _flatten(module_name, seen):
    """Statements of ``module_name`` with sibling imports expanded, each sibling once."""
    tree = ast.parse((FUNCTIONS_DIR / f"{module_name}.py").read_text(), module_name)
    statements = []
    for node in _strip_docstrings(tree).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module not in seen:
                seen.add(node.module)
                statements.extend(_flatten(node.module, seen))
            continue
        statements.append(node)
    return statements


def inline_source(module_name):
    """Source of ``templates/functions/<module_name>.py`` ready for ``Code.ZipFile``."""
    statements = _flatten(module_name, {module_name})
    imports, body, seen_imports = [], [], set()
    for node in statements:
        if isinstance(node, ast.Import | ast.ImportFrom) and node.col_offset == 0:
            text = ast.unparse(node)
            if text not in seen_imports:
                seen_imports.add(text)
                imports.append(node)
        else:
            body.append(node)
    return ast.unparse(ast.Module(body=imports + body, type_ignores=[])) + "\n"
