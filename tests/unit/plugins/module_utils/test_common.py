# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the shared option checks (_common.option_errors), the password type check and
the two tenant name rules (creating vs. managing an existing keyspace)."""

from __future__ import annotations

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _common as c
from ansible_collections.pgtikv.cloud.plugins.modules import pg_tikv_tenants


def spec():
    return dict(c.pd_argument_spec(), **c.sql_argument_spec())


@pytest.mark.parametrize("name", ["abc\n", "abc\r", "\nabc", "ab c"])
def test_tenant_name_with_whitespace_is_refused(name):
    assert "invalid tenant name" in c.tenant_name_error(name)


@pytest.mark.parametrize(
    "value,phrase",
    [
        (["a", "b"], "a list"),
        ({"a": "b"}, "a dictionary"),
        (511, "a number"),
        (1.5, "a number"),
        (True, "a boolean"),
    ],
)
def test_password_must_be_a_string(value, phrase):
    err = c.password_error(value, "admin_password")
    assert err == ("admin_password must be a string, not %s; quote it in YAML so that it is used exactly as written" % phrase)
    assert c.password_error("s3cret", "admin_password") is None


@pytest.mark.parametrize(
    "params,text",
    [
        (dict(connect_timeout=-5), "connect_timeout must be a positive number of seconds, not -5"),
        (dict(connect_timeout=0), "connect_timeout must be a positive number of seconds, not 0"),
        (dict(pd_timeout=-1.0), "pd_timeout must be a positive number of seconds, not -1.0"),
        (dict(pd_timeout=0.0), "pd_timeout must be a positive number of seconds"),
        (dict(pd_retries=-1), "pd_retries must be 0 or more"),
        (dict(pd_ca_cert="/nonexistent/ca.pem"), "pd_ca_cert: no such file: /nonexistent/ca.pem"),
        (dict(pd_client_cert="/nonexistent/c.pem"), "pd_client_cert: no such file"),
        (dict(pd_client_key="/nonexistent/k.pem"), "pd_client_key: no such file"),
    ],
)
def test_option_errors(params, text):
    errors = c.option_errors(spec(), params)
    assert any(text in e for e in errors), errors


def test_option_errors_accepts_good_options(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    params = dict(connect_timeout=1, pd_timeout=0.5, pd_retries=0, pd_ca_cert=str(ca), pd_endpoints=["pd:1"])
    assert c.option_errors(spec(), params) == []
    assert c.option_errors(spec(), {}) == []


def test_option_errors_unreadable_file(tmp_path, monkeypatch):
    key = tmp_path / "k.pem"
    key.write_text("x")
    monkeypatch.setattr(c.os, "access", lambda path, mode: False)  # as a non-root user without read permission
    assert c.option_errors(spec(), dict(pd_client_key=str(key))) == ["pd_client_key: the file is not readable: %s" % key]


def test_nested_passwords_of_the_bulk_module_are_checked_and_never_echoed():
    secret = "Zq9-value"
    params = {
        "config": [
            {"name": "acme", "admin_password": ["x", secret], "users": [{"name": "app", "password": {"k": secret}}, {"name": "ok", "password": "fine"}]},
            {"name": "beta", "login_password": 7},
        ]
    }
    errors = c.option_errors(pg_tikv_tenants.argument_spec(), params)
    assert errors == [
        "config[0] (acme).admin_password must be a string, not a list; quote it in YAML so that it is used exactly as written",
        "config[0] (acme).users[0] (app).password must be a string, not a dictionary; quote it in YAML so that it is used exactly as written",
        "config[1] (beta).login_password must be a string, not a number; quote it in YAML so that it is used exactly as written",
    ]
    assert all(secret not in e for e in errors)


@pytest.mark.parametrize("name", ["acme_corp", "abc", "a" * 64, "t_0123"])
def test_creation_rule_accepts(name):
    assert c.tenant_name_error(name) is None and c.existing_tenant_name_error(name) is None


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "\nabc", "Upper_T", "acme-corp", "ab", "a" * 65, "default", "id", "DEFAULT", "", None, 5])
def test_creation_rule_refuses(name):
    assert c.tenant_name_error(name)


@pytest.mark.parametrize("name", ["Upper_T", "acme-corp", "x", "A" * 21, "default", "id", "-_-"])
def test_existing_rule_accepts_what_pd_accepts(name):
    assert c.existing_tenant_name_error(name) is None


@pytest.mark.parametrize(
    "name,text",
    [
        ("abc\n", "only letters"),
        ("Upper_T\n", "only letters"),
        ("a.b", "only letters"),
        ("a:b", "only letters"),
        ("a b", "only letters"),
        ("é", "only letters"),
        ("DEFAULT", "reserved"),
        ("SYSTEM", "reserved"),
        ("", "non-empty"),
        (None, "non-empty"),
    ],
)
def test_existing_rule_refuses(name, text):
    assert text in c.existing_tenant_name_error(name)


def test_a_list_of_secrets_is_checked_element_by_element():
    """previous_admin_passwords is a no_log list: a list of strings is right
    (the secret store hands one over on every run), a number inside is not."""
    tenants_spec = pg_tikv_tenants.argument_spec()
    good = dict(
        config=[
            dict(name="acme", admin_password="new", previous_admin_passwords=["old", "older"]),
            dict(name="beta", admin_password="new", previous_admin_passwords=[]),
        ]
    )
    assert c.option_errors(tenants_spec, good) == []
    bad = dict(config=[dict(name="acme", admin_password="new", previous_admin_passwords=["old", 511])])
    assert c.option_errors(tenants_spec, bad) == [
        "config[0] (acme).previous_admin_passwords[1] must be a string, not a number; quote it in YAML so that it is used exactly as written"
    ]
    c.hide_non_string_secrets(tenants_spec, bad)
    assert bad["config"][0]["previous_admin_passwords"] == ["old", "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"]
