"""dist/ is the same bytes whichever supported Python renders it (pyproject.toml's classifiers):
two operators publishing one release must get one sha256, and `build.py --check` must pass
on Ubuntu 24.04's 3.12 and Homebrew's 3.13 as on 3.11.

Each version runs as pyenv's interpreter with this venv's site-packages on PYTHONPATH: what
rendering imports (troposphere, awacs, botocore) is pure Python, so no venv per version."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

import build
from tests.helpers import ROOT

# What dist/ holds, the product template and the launch role, as sha256 digests: run as is by
# each interpreter, and in this one for the reference.
DIGESTS = """
import hashlib
import build
from templates.launch_role import FILE_NAME as LAUNCH_ROLE
settings = build.load_settings(build.DEFAULT_SETTINGS)
bodies = {build.PRODUCT_FILE: build.render(), LAUNCH_ROLE: build.render_launch_role(settings)}
digests = {name: hashlib.sha256(body).hexdigest() for name, body in bodies.items()}
"""
RENDER_EVERYTHING = (
    DIGESTS
    + """
import json, sys
json.dump({"python": "%d.%d" % sys.version_info[:2], "templates": digests}, sys.stdout)
"""
)


def supported_versions():
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    pattern = re.compile(r"Programming Language :: Python :: (3\.\d+)")
    return [match[1] for match in map(pattern.fullmatch, classifiers) if match]


def interpreter(version):
    """pyenv's newest ``version``.x (not a dev or free-threaded build), else ``python<version>``
    on PATH, else None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    patches = {
        int(match[1]): path / "bin" / "python"
        for path in (pyenv.glob(f"{version}.*") if pyenv.is_dir() else [])
        if (match := re.fullmatch(rf"{re.escape(version)}\.(\d+)", path.name))
    }
    if patches:
        return patches[max(patches)]
    found = shutil.which(f"python{version}")
    return Path(found) if found else None


def render_with(python):
    """{"python": "3.x", "templates": {file name: sha256}} as ``python`` renders dist/."""
    search_path = [str(ROOT), sysconfig.get_paths()["purelib"]]
    result = subprocess.run(
        [str(python), "-c", RENDER_EVERYTHING],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(search_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{python} cannot render: {result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def reference():
    """What this test run's own Python renders."""
    namespace = {}
    exec(DIGESTS, namespace)  # the very code the other interpreters run
    assert set(namespace["digests"]) == {build.PRODUCT_FILE, "launch-role.json"}
    return namespace["digests"]


def test_this_python_is_supported():
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in supported_versions()


@pytest.mark.parametrize("version", supported_versions())
def test_every_supported_python_renders_the_same_bytes(version, reference):
    python = interpreter(version)
    if python is None:
        missing = f"no Python {version} to render with: `pyenv install {version}` (or put python{version} on PATH)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    assert render_with(python) == {"python": version, "templates": reference}
