# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two tenant name rules of _common: creating vs. managing an existing keyspace."""

from __future__ import annotations

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _common as m


@pytest.mark.parametrize("name", ["acme_corp", "abc", "a" * 64, "t_0123"])
def test_creation_rule_accepts(name):
    assert m.tenant_name_error(name) is None and m.existing_tenant_name_error(name) is None


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "\nabc", "Upper_T", "acme-corp", "ab", "a" * 65, "default",
                                  "id", "DEFAULT", "", None, 5])
def test_creation_rule_refuses(name):
    assert m.tenant_name_error(name)


@pytest.mark.parametrize("name", ["Upper_T", "acme-corp", "x", "A" * 21, "default", "id", "-_-"])
def test_existing_rule_accepts_what_pd_accepts(name):
    assert m.existing_tenant_name_error(name) is None


@pytest.mark.parametrize("name,text", [
    ("abc\n", "only letters"), ("Upper_T\n", "only letters"), ("a.b", "only letters"), ("a:b", "only letters"),
    ("a b", "only letters"), ("é", "only letters"), ("DEFAULT", "reserved"), ("SYSTEM", "reserved"),
    ("", "non-empty"), (None, "non-empty"),
])
def test_existing_rule_refuses(name, text):
    assert text in m.existing_tenant_name_error(name)
