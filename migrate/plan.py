"""One migration, from the state's text to the files ``build.py migrate`` writes."""

import json

from . import MigrationError
from .facts import read_facts, subnet_zones
from .fates import fates
from .importing import import_resources, import_template, resources_to_import
from .product import (
    acl_switch_waits_for_entries,
    check_subnet_layout,
    minified,
    parameter_values,
    render_product,
)
from .runbook import runbook
from .tfstate import attribute, parse_state

MAX_TEMPLATE_BODY_BYTES = 51_200  # --template-body limit: the import template must fit


def migration_files(state_text, source, stack_name=None):
    """``{file name: bytes}`` for the state's region (the product is the same in every one)."""
    state = parse_state(state_text, source)
    facts = read_facts(state)
    check_subnet_layout(facts, subnet_zones(state))
    product = render_product()
    parameters = parameter_values(facts, product)
    imported = import_resources(state, facts, product)
    importing = import_template(imported)
    body = json.dumps(importing, indent=1, sort_keys=True).encode() + b"\n"
    if len(body) > MAX_TEMPLATE_BODY_BYTES:
        body = minified(importing)
    stack = stack_name or f"{facts.prefix}-components"
    base = facts.region
    files = {
        "import": f"{base}-import.json",
        "resources": f"{base}-resources-to-import.json",
        "product": f"{base}-product.json",
        "parameters": f"{base}-parameters.json",
        "backup": f"{base}-terraform-backup.tfstate",
    }
    imported_ids = {logical_id for _, logical_id, *_ in imported}
    created = sorted(
        logical_id
        for logical_id, resource in product["Resources"].items()
        if logical_id not in imported_ids and _exists(product, resource, parameters)
    )
    text = runbook(
        facts,
        stack,
        files,
        fates(state, imported),
        created,
        acl_switch_waits_for_entries(product),
        [attribute(i, "id") for _, i in sorted(state.each("aws_network_acl", "private").items())],
    )
    return {
        files["import"]: body,
        files["resources"]: _json(resources_to_import(imported)),
        files["product"]: minified(product),
        files["parameters"]: _json([f"{key}={value}" for key, value in parameters.items()]),
        f"{base}-MIGRATION.md": text.encode(),
    }


def _json(value):
    return (json.dumps(value, indent=2) + "\n").encode()


def _exists(product, resource, parameters):
    """Whether a conditional resource exists with these parameters (the conditions the
    product's optional resources use compare one parameter with a literal)."""
    condition = resource.get("Condition")
    if condition is None:
        return True
    return _evaluate(product["Conditions"][condition], product, parameters)


def _evaluate(expression, product, parameters):
    [(function, argument)] = expression.items()
    if function == "Condition":
        return _evaluate(product["Conditions"][argument], product, parameters)
    if function == "Fn::Not":
        return not _evaluate(argument[0], product, parameters)
    if function in ("Fn::And", "Fn::Or"):
        values = [_evaluate(item, product, parameters) for item in argument]
        return all(values) if function == "Fn::And" else any(values)
    if function == "Fn::Equals":
        left, right = (_value(side, product, parameters) for side in argument)
        return left == right
    raise MigrationError(f"cannot evaluate condition function {function}")


def _value(side, product, parameters):
    if not isinstance(side, dict):
        return side
    [(function, argument)] = side.items()
    if function == "Ref":
        definition = product["Parameters"].get(argument, {})
        value = parameters.get(argument, definition.get("Default", ""))
        listed = definition.get("Type", "").startswith(("CommaDelimitedList", "List<"))
        return value.split(",") if listed else value
    if function == "Fn::Join":
        separator, items = argument
        items = _value(items, product, parameters)  # a list, or a function giving one
        return separator.join(_value(item, product, parameters) for item in items)
    if function == "Fn::Select":
        index, items = argument
        return _value(items, product, parameters)[int(index)]
    if function == "Fn::Split":
        separator, text = argument
        return _value(text, product, parameters).split(separator)
    raise MigrationError(f"cannot evaluate {function} in a condition")
