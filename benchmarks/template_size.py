"""Where the bytes of the product template go, and what would shrink it (measured, not applied).

The template is rendered from the sources exactly as `python build.py` writes
dist/components-runtime.json (minified, sorted keys); a line says so if dist/ differs.
Tables: top-level sections; Resources by concern module and by type; the inlined custodian
code; the cost of one zone slot; the distance to the 51,200 bytes CloudFormation takes inline
(TemplateBody), and what each candidate compression would save on its own.

    python benchmarks/template_size.py    # from the repository root
"""

import base64
import json
import lzma
import re
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: build and templates import

INLINE_LIMIT = 51_200  # TemplateBody; larger templates go through S3 (TemplateURL)
CODE_PATH = ("Resources", "Custodian", "Properties", "Code", "ZipFile")
SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)((?:\.[^}]*)?)\}")
SHORT_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def minified(template):
    """The bytes build.py writes for a template dict."""
    return (json.dumps(template, sort_keys=True, separators=(",", ":")) + "\n").encode()


def entry_size(key, value):
    """Bytes of ``"key":value,`` in the minified template (the comma of the last entry of an
    object is not there; the tables ignore that byte)."""
    return len(minified({key: value})) - 2  # "{", "}" and the newline out, the "," in


def section_sizes(template):
    """{top-level section: bytes}, the sizes adding up to the template's bytes."""
    sizes = {key: entry_size(key, value) for key, value in template.items()}
    overhead = len(minified(template)) - sum(sizes.values())
    return {**sizes, "(braces, newline, no last comma)": overhead}


def resource_sizes(template):
    """{logical id: bytes} of every resource."""
    return {rid: entry_size(rid, r) for rid, r in template["Resources"].items()}


def grouped(sizes, group_of):
    """{group: (count, bytes)} of ``sizes`` ({key: bytes}) by ``group_of(key)``."""
    groups = {}
    for key, size in sizes.items():
        count, total = groups.get(group_of(key), (0, 0))
        groups[group_of(key)] = (count + 1, total + size)
    return groups


def code_of(template):
    node = template
    for key in CODE_PATH:
        node = node[key]
    return node


def with_code(template, code):
    """A copy of ``template`` whose custodian runs ``code`` instead."""
    copy = json.loads(json.dumps(template))
    node = copy
    for key in CODE_PATH[:-1]:
        node = node[key]
    node[CODE_PATH[-1]] = code
    return copy


def code_sizes(code):
    """Sizes of the inlined custodian source: raw UTF-8 and as the JSON string in the file."""
    return {"raw": len(code.encode()), "as JSON string": len(json.dumps(code)) - 2}


def compressed_bootstrap(code, compressor, module):
    """A ZipFile source that decompresses and runs ``code``: exec() in the module's namespace
    defines ``handler`` as the plain source does (its tracebacks would show <string>)."""
    payload = base64.b64encode(compressor(code.encode())).decode()
    return f"import base64,{module}\nexec({module}.decompress(base64.b64decode('{payload}')))"


def without_keys(node, names, depth_filter=None, depth=0):
    """A copy of ``node`` without any mapping entry whose key is in ``names`` (at depths that
    ``depth_filter`` accepts, all depths when None)."""
    if isinstance(node, dict):
        return {
            key: without_keys(value, names, depth_filter, depth + 1)
            for key, value in node.items()
            if not (key in names and (depth_filter is None or depth_filter(depth)))
        }
    if isinstance(node, list):
        return [without_keys(item, names, depth_filter, depth + 1) for item in node]
    return node


def drop_entry_keys(template, section, names):
    """A copy of ``template`` without ``names`` in each entry of ``section`` (e.g. Description
    of every parameter)."""
    copy = dict(template)
    copy[section] = {
        key: {k: v for k, v in entry.items() if k not in names}
        for key, entry in template.get(section, {}).items()
    }
    return copy


def short_ids(template):
    """{logical id: shortest free id} for resources and conditions, the most-used ids first
    (every use costs its length again). Parameters and outputs keep their names: people and
    Grand Challenge read those."""
    text = minified(template).decode()
    ids = [*template["Resources"], *template.get("Conditions", {})]
    uses = {i: len(re.findall(rf"\b{re.escape(i)}\b", text)) for i in ids}
    taken = set(template.get("Parameters", {})) | set(template.get("Outputs", {}))
    names = (n for n in _id_sequence() if n not in taken and n not in ids)
    return {i: next(names) for i in sorted(ids, key=lambda i: -uses[i] * len(i))}


def _id_sequence():
    for first in SHORT_ID_ALPHABET[:52]:  # a logical id starts with a letter
        yield first
    for first in SHORT_ID_ALPHABET[:52]:
        for second in SHORT_ID_ALPHABET:
            yield first + second


def renamed(node, ids, sub_variables=frozenset()):
    """``node`` with every reference to a logical id in ``ids`` renamed: Ref, Fn::GetAtt,
    DependsOn, Condition, Fn::If and ``${Id}`` / ``${Id.Attr}`` in Fn::Sub."""
    if isinstance(node, list):
        return [renamed(item, ids) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key in ("Ref", "Condition", "DependsOn") and not isinstance(value, dict | list):
            result[key] = ids.get(value, value)
        elif key == "DependsOn":
            result[key] = [ids.get(v, v) for v in value]
        elif key in ("Fn::GetAtt", "Fn::If"):
            result[key] = [ids.get(value[0], value[0]), *renamed(value[1:], ids)]
        elif key == "Fn::Sub":
            result[key] = _renamed_sub(value, ids)
        else:
            result[key] = renamed(value, ids)
    return result


def _renamed_sub(value, ids):
    text, variables = (value, {}) if isinstance(value, str) else value

    def rename(match):
        name = match.group(1)
        new = name if name in variables else ids.get(name, name)
        return f"${{{new}{match.group(2)}}}"

    text = SUB_REFERENCE.sub(rename, text)
    return text if isinstance(value, str) else [text, renamed(variables, ids)]


def with_short_ids(template):
    ids = short_ids(template)
    copy = renamed(template, ids)
    for section in ("Resources", "Conditions"):
        copy[section] = {ids[k]: v for k, v in copy.get(section, {}).items()}
    return copy


def _without(section):
    return lambda template: {k: v for k, v in template.items() if k != section}


def _bootstrapped(compressor, module):
    return lambda t: with_code(t, compressed_bootstrap(code_of(t), compressor, module))


COMPRESSIONS = {
    "custodian code as lzma+base64 bootstrap": _bootstrapped(
        lambda b: lzma.compress(b, preset=9), "lzma"
    ),
    "custodian code as zlib+base64 bootstrap": _bootstrapped(lambda b: zlib.compress(b, 9), "zlib"),
    "short logical ids (resources, conditions)": with_short_ids,
    "no resource Metadata (checkov skips)": lambda t: {
        **t,
        "Resources": without_keys(t["Resources"], {"Metadata"}, lambda depth: depth == 1),
    },
    "no top-level Metadata (console groups, labels)": _without("Metadata"),
    "no parameter Description/ConstraintDescription": lambda t: drop_entry_keys(
        t, "Parameters", {"Description", "ConstraintDescription"}
    ),
    "no output Descriptions": lambda t: drop_entry_keys(t, "Outputs", {"Description"}),
    "no template Description": _without("Description"),
}


def compression_savings(template):
    """[(what, bytes saved)]: each candidate alone, then all of them together (lzma, the
    better bootstrap, instead of zlib), measured on ``template``."""
    size = len(minified(template))
    savings = [(what, size - len(minified(f(template)))) for what, f in COMPRESSIONS.items()]
    combined = template
    for what, shrink in COMPRESSIONS.items():
        if not what.startswith("custodian code as zlib"):
            combined = shrink(combined)
    return [*savings, ("all of the above together (lzma)", size - len(minified(combined)))]


def zone_slot_entries(template, letter="A"):
    """{section/key: bytes} of the entries named after one zone slot's letter."""
    entries = {}
    for section in ("Conditions", "Resources", "Outputs"):
        for key, value in template.get(section, {}).items():
            if key.endswith(letter) and key[:-1] + "F" in template[section]:
                entries[f"{section}/{key}"] = entry_size(key, value)
    return entries


def table(title, rows, total=None):
    """Aligned text: a title, rows of (label, *numbers), the numbers right-aligned; with
    ``total``, a share column (percent of it) after the last number."""
    lines = [title]
    width = max([len(str(row[0])) for row in rows] + [10])
    for label, *numbers in rows:
        cells = "".join(f"{n:>10,}" for n in numbers)
        share = f"{100 * numbers[-1] / total:>7.1f}%" if total else ""
        lines.append(f"  {label:<{width}}{cells}{share}")
    return "\n".join(lines)


def render_with_origins(zone_letters=None):
    """(template dict, {logical id: "module.function"}): the product template rendered from
    the sources, each resource attributed to the concern function ``build_template`` called
    (so alarms and custom resources count where they are asked for). ``zone_letters``
    overrides the zone slots (to measure one slot's cost)."""
    from troposphere import Template

    from templates import network, runtime

    origins = {}
    original_add, original_letters = Template.add_resource, network.ZONE_LETTERS

    def add_resource(self, resource):
        frame = sys._getframe(1)
        while (
            frame.f_back is not None and frame.f_back.f_code is not runtime.build_template.__code__
        ):
            frame = frame.f_back
        module = frame.f_globals["__name__"].removeprefix("templates.")
        origins[resource.title] = f"{module}.{frame.f_code.co_name}"
        return original_add(self, resource)

    Template.add_resource = add_resource
    network.ZONE_LETTERS = zone_letters or original_letters
    try:
        template = runtime.build_template().to_dict()
    finally:
        Template.add_resource, network.ZONE_LETTERS = original_add, original_letters
    return json.loads(json.dumps(template)), origins


def report(template, origins, five_slot_template):
    size = len(minified(template))
    resources = resource_sizes(template)
    by_function = grouped(resources, origins.__getitem__)
    by_type = grouped(resources, lambda rid: template["Resources"][rid]["Type"])
    code = code_of(template)
    slot = zone_slot_entries(template)
    marginal = size - len(minified(five_slot_template))
    sections = sorted(section_sizes(template).items(), key=lambda item: -item[1])
    print(
        f"components-runtime.json as build.py renders it: {size:,} bytes, {len(resources)} resources"
    )
    print(table("Top-level sections (bytes):", sections, size))
    rows = sorted(((f, n, b) for f, (n, b) in by_function.items()), key=lambda r: -r[2])
    print(table("Resources by concern (count, bytes):", rows, size))
    rows = sorted(((t, n, b) for t, (n, b) in by_type.items()), key=lambda r: -r[2])
    print(table("Resources by type (count, bytes):", rows, size))
    rows = [(f"custodian code {k}", v) for k, v in code_sizes(code).items()]
    rows.append(("Custodian resource without its code", resources["Custodian"] - rows[1][1]))
    print(table("Inlined custodian code (bytes):", rows, size))
    rows = [*sorted(slot.items()), ("one slot's own entries", sum(slot.values()))]
    rows.append(("one slot, marginal (6 slots vs 5: with every If of it)", marginal))
    rows.append(("all six slots (6 x marginal)", 6 * marginal))
    print(table("Zone slot (slot A; each of A-F costs the same):", rows, size))
    without_code = size - code_sizes(code)["as JSON string"]
    rows = [
        ("TemplateBody limit", INLINE_LIMIT),
        ("over it by", size - INLINE_LIMIT),
        ("the template with no custodian code at all", without_code),
        ("... still over by", without_code - INLINE_LIMIT),
    ]
    print(table("Inline limit (bytes):", rows))
    savings = sorted(compression_savings(template), key=lambda row: -row[1])
    rows = [(what, saved, size - saved) for what, saved in savings]
    print(table("Compressions, each alone (bytes saved, size after):", rows))
    return size


def main():
    from build import PRODUCT_FILE, render

    template, origins = render_with_origins()
    if minified(template) != render():
        sys.exit("template_size: the tracked render differs from build.render(): fix the script")
    five_slots, _ = render_with_origins(zone_letters="abcde")
    dist = ROOT / "dist" / PRODUCT_FILE
    if not dist.exists() or dist.read_bytes() != render():
        print(f"note: {dist.relative_to(ROOT)} differs from the sources; measuring the sources")
    report(template, origins, five_slots)


if __name__ == "__main__":
    main()
