# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module-level unit tests: bad input fails before any network call, and the
failure output never carries a password."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.pgtikv.cloud.plugins.module_utils import _pd_client
from ansible_collections.pgtikv.cloud.plugins.modules import pg_tikv_tenant, pg_tikv_tenant_info


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a PD client was built before the input was validated")
    monkeypatch.setattr(_pd_client.PDClient, "__init__", refuse)


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args,text", [
    ({"name": "Bad.Name"}, "invalid tenant name"),
    ({"name": "acme\n"}, "invalid tenant name"),  # fullmatch: no trailing newline
    ({"name": "DEFAULT", "state": "disabled"}, "PD's reserved keyspace"),
    ({"name": "acme_corp", "config": {"x": {"y": "z"}}}, "strings or null"),
    ({"name": "acme_corp", "state": "tombstone", "confirm_tombstone": "other"}, "confirm_tombstone"),
    ({"name": "acme_corp", "admin_password": "admin"}, "bootstrap password"),
])
def test_tenant_validation_before_network(args, text, capsys, no_network):
    result = run(pg_tikv_tenant, args, capsys)
    assert result["failed"] is True
    assert result["changed"] is False
    assert text in result["msg"]


def test_tenant_failure_output_has_no_password(capsys, no_network):
    secret = "Zq9'Secret\"Value"
    result = run(pg_tikv_tenant, {"name": "acme_corp", "admin_password": secret, "login_user": "bob",
                                  "config": {"flag": True}}, capsys)
    assert result["failed"] is True
    assert secret not in json.dumps(result)


def test_info_validation_before_network(capsys, no_network):
    result = run(pg_tikv_tenant_info, {"name": "Bad.Name"}, capsys)
    assert result["failed"] is True and "invalid tenant name" in result["msg"]


def test_info_page_size(capsys, no_network):
    result = run(pg_tikv_tenant_info, {"page_size": 0}, capsys)
    assert result["failed"] is True and "page_size must be at least 1" in result["msg"]
