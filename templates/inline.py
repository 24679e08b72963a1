"""Turn a module under templates/functions into one self-contained, compact Lambda source.

``Code.ZipFile`` gives the Lambda a single ``index.py``, so every sibling import
(``from .custom_resource import run``) is replaced by the sibling's body, each sibling once.
A sibling's top-level name that is already taken (every handler module has a ``handler``)
is renamed ``<module>_<name>`` inside that sibling, and the importer gets an alias.
Imports are hoisted and de-duplicated, docstrings dropped, indentation cut to one space;
the result is re-parsed and must be the same program, so minifying can never break it.
"""

import ast
from collections import Counter
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).parent / "functions"


class InlineError(Exception):
    pass


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


def _top_level_names(statements):
    names = set()
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _local_names(statements):
    """Names bound below the top level (arguments, assignments, ``except ... as``, imports,
    nested functions, methods and class attributes): renaming must not touch them."""
    local = set()
    for node in statements:
        for inner in ast.walk(node):
            if isinstance(inner, ast.FunctionDef | ast.ClassDef) and inner is not node:
                local.add(inner.name)
            elif isinstance(inner, ast.arg):
                local.add(inner.arg)
            elif isinstance(inner, ast.ExceptHandler) and inner.name:
                local.add(inner.name)
            elif isinstance(inner, ast.alias):
                local.add((inner.asname or inner.name).split(".")[0])
            if isinstance(inner, ast.FunctionDef | ast.ClassDef | ast.Lambda):
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        local.add(sub.id)
    return local


def _rename(statements, renames, module_name):
    clashes = renames.keys() & _local_names(statements)
    if clashes:
        raise InlineError(f"{module_name}: cannot rename {sorted(clashes)}, also used as locals")
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in renames:
            node.name = renames[node.name]
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and inner.id in renames:
                inner.id = renames[inner.id]


def _parse(module_name):
    source = (FUNCTIONS_DIR / f"{module_name}.py").read_text()
    return _strip_docstrings(ast.parse(source, module_name)).body


def _is_sibling_import(node):
    return isinstance(node, ast.ImportFrom) and node.level == 1


def _reachable(entry):
    """Every module ``entry`` imports from its siblings, directly or not, with its statements."""
    modules, pending = {}, [entry]
    while pending:
        name = pending.pop()
        if name not in modules:
            modules[name] = _parse(name)
            pending.extend(n.module for n in modules[name] if _is_sibling_import(n))
    return modules


def _flatten(module_name, modules, shared, entry, inlined):
    """``module_name`` with sibling imports expanded; returns (statements, renames)."""
    statements, own = [], []
    for node in modules[module_name]:
        if not _is_sibling_import(node):
            statements.append(node)
            own.append(node)
            continue
        if node.module not in inlined:
            inlined[node.module] = None  # guards against import cycles
            sibling, renames = _flatten(node.module, modules, shared, entry, inlined)
            inlined[node.module] = renames
            statements.extend(sibling)
        sibling_renames = inlined[node.module] or {}
        for alias in node.names:
            bound, wanted = sibling_renames.get(alias.name, alias.name), alias.asname or alias.name
            if bound != wanted:
                alias_statement = ast.parse(f"{wanted} = {bound}").body[0]
                statements.append(alias_statement)
                own.append(alias_statement)
    renames = {}
    if module_name != entry:
        renames = {n: f"{module_name}_{n}" for n in _top_level_names(own) & shared}
        _rename(own, renames, module_name)
    return statements, renames


def _one_space_indent(source):
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip(" ")
        lines.append(" " * ((len(line) - len(stripped)) // 4) + stripped)
    return "\n".join(lines) + "\n"


def _check_imports(imports, defined, module_name):
    """Hoisted imports share one namespace: a name bound to two things would be silently wrong."""
    bound = {}
    for node in imports:
        for alias in node.names:
            name = alias.asname or alias.name.split(".")[0]
            if isinstance(node, ast.ImportFrom):
                what = f"{node.module}:{alias.name}"
            else:
                what = alias.name if alias.asname else name
            if name in defined or bound.setdefault(name, what) != what:
                raise InlineError(f"{module_name}: top-level name {name!r} is bound twice")


def inline_source(module_name):
    """Source of ``templates/functions/<module_name>.py`` ready for ``Code.ZipFile``."""
    modules = _reachable(module_name)
    defined_by = Counter(
        name
        for statements in modules.values()
        for name in _top_level_names([n for n in statements if not _is_sibling_import(n)])
    )
    shared = {name for name, count in defined_by.items() if count > 1}
    statements, _ = _flatten(module_name, modules, shared, module_name, {module_name: {}})
    imports, body, seen_imports = [], [], set()
    for node in statements:
        if isinstance(node, ast.Import | ast.ImportFrom):
            text = ast.unparse(node)
            if text not in seen_imports:
                seen_imports.add(text)
                imports.append(node)
        else:
            body.append(node)
    _check_imports(imports, _top_level_names(body), module_name)
    program = ast.Module(body=imports + body, type_ignores=[])
    source = _one_space_indent(ast.unparse(program))
    if ast.dump(ast.parse(source)) != ast.dump(ast.parse(ast.unparse(program))):
        raise InlineError(f"{module_name}: minified source is not the same program")
    return source
