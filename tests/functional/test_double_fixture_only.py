# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double is a test fixture only, never part of the collection."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
# An import (or path hack / dynamic load) that names the double.
IMPORT_RE = re.compile(
    r"(\bimport\b|\bfrom\b|sys\.path|importlib|runpy|__import__|exec\(|spec_from_file)"
    r".*pgtikv_double|pgtikv_double.*\bimport\b"
)


def test_nothing_in_the_collection_imports_the_double():
    """Issue #3 (no reference section; packaging): nothing under plugins/, roles/ or playbooks/ imports tests/pgtikv_double."""
    offenders = []
    for top in ("plugins", "roles", "playbooks"):
        for path in (ROOT / top).rglob("*"):
            if not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if IMPORT_RE.search(line):
                    offenders.append("%s:%d: %s" % (path.relative_to(ROOT), number, line.strip()))
    assert not offenders, "\n".join(offenders)


def test_galaxy_build_ignores_the_double():
    """Issue #3 (no reference section; packaging): galaxy.yml build_ignore excludes tests/pgtikv_double."""
    entries, inside = [], False
    for line in (ROOT / "galaxy.yml").read_text(encoding="utf-8").splitlines():
        if re.match(r"^build_ignore:\s*$", line):
            inside = True
            continue
        if inside:
            match = re.match(r"^\s+-\s+['\"]?([^'\"#]+?)['\"]?\s*(#.*)?$", line)
            if match:
                entries.append(match.group(1))
            elif line.strip() and not line.startswith((" ", "\t")):
                break
    assert "tests/pgtikv_double" in entries, entries
