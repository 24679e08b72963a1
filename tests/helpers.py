"""Shared by the template tests: rendered templates and CloudFormation's parameter checks."""

import json
import re
from functools import cache
from pathlib import Path

from build import load_settings, render

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = load_settings(ROOT / "params" / "build.json")
REGIONS = sorted(SETTINGS["regions"])  # the regions the template is published to


@cache
def rendered():
    """The product template dict exactly as build.py writes it (the same for every region)."""
    return json.loads(render())


def violations(definition, value):
    """Why CloudFormation would reject ``value`` for a parameter ``definition`` (empty: accepted).

    Mirrors the service's checks: Number type and Min/MaxValue, Min/MaxLength, AllowedValues,
    AllowedPattern matching the whole value, each element for a CommaDelimitedList."""
    problems = []
    kind = definition["Type"]
    items = value.split(",") if kind == "CommaDelimitedList" else [value]
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            return [f"{value!r} is not a number"]
        if "MinValue" in definition and number < float(definition["MinValue"]):
            problems.append("below MinValue")
        if "MaxValue" in definition and number > float(definition["MaxValue"]):
            problems.append("above MaxValue")
    if "MinLength" in definition and len(value) < int(definition["MinLength"]):
        problems.append("shorter than MinLength")
    if "MaxLength" in definition and len(value) > int(definition["MaxLength"]):
        problems.append("longer than MaxLength")
    for item in items:
        if "AllowedValues" in definition and item not in definition["AllowedValues"]:
            problems.append(f"{item!r} not in AllowedValues")
        pattern = definition.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, item):
            problems.append(f"{item!r} does not match AllowedPattern")
    return problems
