"""Move a stack made from a per-region template (releases up to f1cf291) onto the one template
without re-creating its subnets: resource import, as ``migrate --tfstate`` does for Terraform.

The per-region templates name each zone's subnet, route table and both associations after the
zone id (``PrivateSubnetEuc1Az1``), the one template after the zone letter (``PrivateSubnetA``).
A renamed logical id is a new resource, so the resources change names in four steps instead of
one update: (1) the deployed template with Retain on them; (2) without them, references to
them written as the ids they resolve to; (3) an IMPORT of them under the letter ids; (4) the
product. ``stack_inputs`` reads the four files, ``stack_zones`` decides which zones move and
where, ``stack_steps`` writes the templates, ``stack_runbook`` the commands.
"""

import json

from .product import minified, render_product
from .stack_inputs import read_inputs
from .stack_runbook import runbook
from .stack_steps import (
    imported_resources,
    importing,
    product_parameters,
    released,
    resources_to_import,
    retained,
)
from .stack_zones import moving_zones, old_zones


def from_stack_files(directory, product=None):
    """``{file name: bytes}`` for the stack described in ``directory``. ``product``: the
    product template (dict), rendered when not given."""
    inputs = read_inputs(directory)
    zones = old_zones(inputs.template)
    moving = moving_zones(inputs, zones)
    product = product or render_product()
    parameters = product_parameters(inputs, moving, product)
    step1 = retained(inputs.template, moving)
    step2 = released(step1, moving)
    imported = imported_resources(inputs.template, moving, product)
    base = inputs.region
    files = {
        "step1": f"{base}-step1-retain.json",
        "step2": f"{base}-step2-release.json",
        "import": f"{base}-step3-import.json",
        "resources": f"{base}-step3-resources-to-import.json",
        "import_parameters": f"{base}-step3-parameters.json",
        "product": f"{base}-step4-product.json",
        "parameters": f"{base}-step4-parameters.json",
        "old_parameters": f"{base}-old-parameters.json",
    }
    kept = [{"ParameterKey": key, "UsePreviousValue": True} for key in inputs.parameters]
    return {
        files["step1"]: _template(step1),
        files["step2"]: _template(step2),
        files["import"]: _template(importing(step2, imported)),
        files["resources"]: _json(resources_to_import(imported)),
        files["import_parameters"]: _json(kept),
        files["product"]: minified(product),
        files["parameters"]: _json([f"{key}={value}" for key, value in parameters.items()]),
        files["old_parameters"]: _json([f"{k}={v}" for k, v in inputs.parameters.items()]),
        f"{base}-FROM-STACK.md": runbook(inputs, moving, files).encode(),
    }


def _template(template):
    # Over 51,200 bytes either way (the deploy goes through S3): readable, in the stack's order.
    return json.dumps(template, indent=1).encode() + b"\n"


def _json(value):
    return (json.dumps(value, indent=2) + "\n").encode()
