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


@pytest.mark.parametrize(
    "args,text",
    [
        ({"name": "Bad.Name"}, "invalid tenant name"),
        ({"name": "acme\n"}, "invalid tenant name"),  # fullmatch: no trailing newline
        ({"name": "DEFAULT", "state": "disabled"}, "PD's reserved keyspace"),
        ({"name": "acme_corp", "config": {"x": {"y": "z"}}}, "strings or null"),
        ({"name": "acme_corp", "state": "tombstone", "confirm_tombstone": "other"}, "confirm_tombstone"),
        ({"name": "acme_corp", "admin_password": "admin"}, "bootstrap password"),
    ],
)
def test_tenant_validation_before_network(args, text, capsys, no_network):
    result = run(pg_tikv_tenant, args, capsys)
    assert result["failed"] is True
    assert result["changed"] is False
    assert text in result["msg"]


def test_tenant_failure_output_has_no_password(capsys, no_network):
    secret = "Zq9'Secret\"Value"
    result = run(pg_tikv_tenant, {"name": "acme_corp", "admin_password": secret, "login_user": "bob", "config": {"flag": True}}, capsys)
    assert result["failed"] is True
    assert secret not in json.dumps(result)


def test_info_validation_before_network(capsys, no_network):
    result = run(pg_tikv_tenant_info, {"name": "Bad.Name"}, capsys)
    assert result["failed"] is True and "invalid tenant name" in result["msg"]


def test_info_page_size(capsys, no_network):
    result = run(pg_tikv_tenant_info, {"page_size": 0}, capsys)
    assert result["failed"] is True and "page_size must be at least 1" in result["msg"]


# ---------------------------------------------------------------- shared options, every module

from ansible_collections.pgtikv.cloud.plugins.modules import pg_tikv_tenants, pg_tikv_user, pg_tikv_user_info  # noqa: E402

ALL_MODULES = {
    "pg_tikv_tenant": (pg_tikv_tenant, {"name": "acme_corp"}),
    "pg_tikv_tenant_info": (pg_tikv_tenant_info, {}),
    "pg_tikv_tenants": (pg_tikv_tenants, {"config": [{"name": "acme_corp"}]}),
    "pg_tikv_user": (pg_tikv_user, {"tenant": "acme_corp", "name": "app", "login_password": "Pw-1"}),
    "pg_tikv_user_info": (pg_tikv_user_info, {"tenant": "acme_corp", "names": ["app"], "login_password": "Pw-1"}),
}


@pytest.mark.parametrize("module_name", sorted(ALL_MODULES))
@pytest.mark.parametrize(
    "extra,text",
    [
        ({"connect_timeout": -5}, "connect_timeout must be a positive number of seconds, not -5"),
        ({"connect_timeout": 0}, "connect_timeout must be a positive number of seconds, not 0"),
        ({"pd_timeout": -5}, "pd_timeout must be a positive number of seconds"),
        ({"pd_ca_cert": "/nonexistent/ca.pem"}, "pd_ca_cert: no such file: /nonexistent/ca.pem"),
        ({"pd_client_cert": "/nonexistent/c.pem", "pd_client_key": "/nonexistent/k.pem"}, "pd_client_cert: no such file"),
    ],
)
def test_shared_options_are_checked_by_every_module(module_name, extra, text, capsys, no_network):
    module, args = ALL_MODULES[module_name]
    result = run(module, dict(args, **extra), capsys)
    assert result["failed"] is True and result["changed"] is False
    assert text in result["msg"]


@pytest.mark.parametrize(
    "module_name,args,option",
    [
        ("pg_tikv_tenant", {"name": "acme_corp", "admin_password": ["Zq9-list", "x"]}, "admin_password"),
        ("pg_tikv_tenant", {"name": "acme_corp", "login_password": {"k": "Zq9-dict"}}, "login_password"),
        (
            "pg_tikv_tenants",
            {"config": [{"name": "acme_corp", "users": [{"name": "app", "password": ["Zq9-list"]}]}]},
            "config[0] (acme_corp).users[0] (app).password",
        ),
        ("pg_tikv_user", {"tenant": "acme_corp", "name": "app", "login_password": "Pw-1", "password": ["Zq9-list"]}, "password"),
        ("pg_tikv_user", {"tenant": "acme_corp", "name": "app", "login_password": {"Zq9-dict": 1}}, "login_password"),
        (
            "pg_tikv_user_info",
            {"tenant": "acme_corp", "login_password": "Pw-1", "users": [{"name": "app", "password": {"k": "Zq9-dict"}}]},
            "users[0] (app).password",
        ),
    ],
)
def test_non_string_passwords_are_refused_by_every_module(module_name, args, option, capsys, no_network):
    result = run(ALL_MODULES[module_name][0], args, capsys)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(option + " must be a string, not a ")
    assert "Zq9" not in json.dumps(result)


@pytest.mark.parametrize("module_name", sorted(ALL_MODULES))
def test_endpoint_password_is_refused_and_never_echoed(module_name, capsys, no_network):
    module, args = ALL_MODULES[module_name]
    result = run(module, dict(args, pd_endpoints=["127.0.0.1:1", "https://ops:Zq9-pd-secret@pd:2379"]), capsys)
    assert result["failed"] is True and result["changed"] is False
    assert "invalid PD endpoint 'https://***@pd:2379'" in result["msg"]
    assert "Zq9-pd-secret" not in json.dumps(result)
