"""Values of the upgrade preview (templates/preview.py) that it could only partly resolve.

A reference it cannot resolve offline (a resource's id, a custom resource's answer, an unknown
parameter or region) stays a symbol: a dict like ``{"Ref": "Vpc"}``, or inside a Sub string
its repr between two "\\0". ``differs`` tells whether two such values certainly differ,
certainly do not, or cannot be told apart before deploy time; ``shown`` writes one for a
reader. Pure functions, no imports of the preview itself.
"""

import ast
import json
import re

NO_VALUE = "\0NoValue"  # Ref AWS::NoValue: the property or list item disappears
MISSING = "\0missing"  # a create-only property the resource does not set


def symbol_text(value):
    """An unresolved value inside a Sub string, kept recognisable ("\0" marks it symbolic)."""
    return "\0" + repr(value) + "\0"


def concrete(value):
    """Fully resolved: no intrinsic function or reference left anywhere inside."""
    if isinstance(value, str):
        return "\0" not in value
    if isinstance(value, list):
        return all(map(concrete, value))
    if isinstance(value, dict):
        return not any(k == "Ref" or k.startswith("Fn::") for k in value) and all(
            map(concrete, value.values())
        )
    return True


def differs(before, after):
    """Whether a create-only value changes: True, False, or None when it cannot be told
    offline (one side holds a value known only at deploy time, such as a custom resource's
    answer, that may or may not turn out equal). A reference that only gained the mark of a
    replaced resource certainly changes: the new resource has a new id."""
    if before == after:
        return False
    if unmarked(after) == before:
        return True
    if all(value == MISSING or concrete(value) for value in (before, after)):
        return True
    texts = [literal_parts(value) for value in (before, after)]
    if None not in texts:
        return None if could_match(*texts) else True
    pairs = None
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = zip(before, after, strict=True)
    elif plain_dicts(before, after) and set(before) == set(after):
        pairs = ((before[key], after[key]) for key in before)
    if pairs is None:
        return None
    verdicts = [differs(*pair) for pair in pairs]
    return True if True in verdicts else None if None in verdicts else False


def literal_parts(value):
    """A string split at its symbols: literal, symbol, literal, ... (``["gc-",
    "{'Ref': 'AWS::AccountId'}", "-inputs"]``); None for anything else."""
    if isinstance(value, dict) and list(value) == ["Fn::Sub"]:
        value = value["Fn::Sub"]
    if not isinstance(value, str) or value == MISSING or value.count("\0") % 2:
        return None
    return value.split("\0")


def could_match(first, second):
    """Whether two strings, split by literal_parts, can be the same string. With the same
    symbols in the same order (one stack: the same values) only equal literals match."""
    if first[1::2] == second[1::2]:
        return first == second
    first, second = first[0::2], second[0::2]
    if len(first) == 1 or len(second) == 1:  # one is a plain string: match the other's shape
        (text,), parts = (first, second) if len(first) == 1 else (second, first)
        shape = ".*".join(map(re.escape, parts))
        return re.fullmatch(shape, text, re.DOTALL) is not None
    head, other_head, tail, other_tail = first[0], second[0], first[-1], second[-1]
    heads_agree = head.startswith(other_head) or other_head.startswith(head)
    tails_agree = tail.endswith(other_tail) or other_tail.endswith(tail)
    return heads_agree and tails_agree


def plain_dicts(*values):
    return all(isinstance(v, dict) and concrete({k: "" for k in v}) for v in values)


def unmarked(value):
    """``value`` without the marks of replaced resources."""
    if isinstance(value, str):
        return re.sub(r", 'Replaced': '[a-z]+'", "", value)
    if isinstance(value, list):
        return [unmarked(item) for item in value]
    if isinstance(value, dict):
        return {key: unmarked(item) for key, item in value.items() if key != "Replaced"}
    return value


def unresolved_reason(path, before, after, region):
    """Why a replacement is conditional: CloudFormation's change set says "Replacement:
    Conditional" and compares the resolved values only while it executes the update."""
    (first, first_known), (second, second_known) = (
        (shown(v), concrete(v)) for v in (before, after)
    )
    name = f"create-only {'/'.join(path)}"
    if first_known == second_known:
        return f"{name}: replaced if {first} and {second} differ once resolved at deploy time"
    unknown, known = (second, first) if first_known else (first, second)
    where = "unknown here: give --region" if region is None and "AWS::Region" in unknown else ""
    return f"{name}: replaced if {unknown} ({where or 'known only at deploy time'}) is not {known}"


def shown(value):
    """A value for a reader: references as ``Name``, ``Resource.Attribute`` or ``${...}``."""
    value = unmarked(value)
    if value == MISSING:
        return "(not set)"
    if isinstance(value, str):
        return re.sub(r"\0([^\0]*)\0", _shown_symbol, value).replace("\0", "")
    if isinstance(value, dict) and len(value) == 1:
        ((function, args),) = value.items()
        if function == "Ref":
            return args
        if function == "Fn::GetAtt" and isinstance(args, list):
            return ".".join(map(str, args))
        if function == "Fn::Sub" and isinstance(args, str):
            return shown(args)
    return json.dumps(value, separators=(",", ":"))


def _shown_symbol(match):
    """A symbol inside a Sub string: ``${Name}``, or a nested Sub's own text."""
    try:
        symbol = ast.literal_eval(match[1])
    except (SyntaxError, ValueError):
        return match[1]
    nested = isinstance(symbol, dict) and "Fn::Sub" in symbol
    return shown(symbol) if nested else "${" + shown(symbol) + "}"
