# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as users get it: build the tarball, install it, render the docs.

Runs the real ansible-galaxy / ansible-doc of the venv that runs pytest.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tarfile

import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent

# Test machinery that must never ship in the collection.
NOT_SHIPPED = ("tests/pgtikv_double/", "tests/stack/", "tests/functional/", "tests/benchmark/", "scripts/", ".ci/")


def run(*args, **kw):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kw)
    assert proc.returncode == 0, "%s failed:\n%s" % (" ".join(str(a) for a in args), proc.stderr[-2000:])
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    run(BIN / "ansible-galaxy", "collection", "build", "--force", "--output-path", out, REPO_ROOT)
    tarballs = list(out.glob("pgtikv-cloud-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    return tarballs[0]


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    dest = tmp_path_factory.mktemp("collections")
    run(BIN / "ansible-galaxy", "collection", "install", "--force", "-p", dest, built)
    return dest


def action_group_modules():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    return runtime["action_groups"]["pg_tikv"]


def test_version_is_semver_from_galaxy_yml(built):
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    assert built.name == "pgtikv-cloud-%s.tar.gz" % galaxy["version"]
    major, minor, patch = (int(x) for x in galaxy["version"].split("."))
    assert (major, minor, patch) >= (0, 1, 0)


def test_tarball_ships_no_test_fixture(built):
    with tarfile.open(built) as tar:
        names = tar.getnames()
    leaked = [n for n in names if n.startswith(NOT_SHIPPED)]
    assert leaked == []
    assert "plugins/modules" in {os.path.dirname(n) for n in names}


def test_every_module_is_in_the_action_group():
    modules = sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert modules, "no modules"
    assert sorted(action_group_modules()) == modules


def test_ansible_doc_renders_every_module(installed):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    listed = json.loads(run(BIN / "ansible-doc", "--list", "--json", "pgtikv.cloud", env=env).stdout)
    expected = {"pgtikv.cloud." + m for m in action_group_modules()}
    assert expected <= set(listed)
    for fqcn in sorted(expected):
        doc = json.loads(run(BIN / "ansible-doc", "--json", fqcn, env=env).stdout)[fqcn]["doc"]
        assert doc["short_description"], fqcn
        assert "pd_endpoints" in doc["options"] or "pg_host" in doc["options"], fqcn
        assert "check_mode" in doc.get("attributes", {}), fqcn
