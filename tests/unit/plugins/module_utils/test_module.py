# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the module plumbing every module shares (_module) and of the
SQL connection options taken from module params (_common.sql_params_from)."""

from __future__ import annotations

import random

import pytest
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.pgtikv.cloud.plugins.module_utils import _module as m
from ansible_collections.pgtikv.cloud.plugins.module_utils import _pd_client, _sql_client
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import TaskError, sql_argument_spec, sql_params_from


class Answered(Exception):
    def __init__(self, failed, result):
        super().__init__(failed, result)
        self.failed = failed
        self.result = result


class FakeModule:
    def __init__(self, diff=False, params=None):
        self._diff = diff
        self.params = params or {}
        self.warnings = []
        self.no_log_values = set()

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        raise Answered(False, result)

    def fail_json(self, msg, **result):
        raise Answered(True, dict(result, msg=msg))


def answer(func, *args, **kwargs):
    with pytest.raises(Answered) as exc:
        func(*args, **kwargs)
    return exc.value


def test_finish_warns_and_drops_the_diff_unless_asked():
    module = FakeModule()
    got = answer(m.finish, module, {"changed": True, "warnings": ["second"], "diff": {"before": {}}}, ["first"])
    echo = {"invocation": {"module_args": {}}}
    assert not got.failed and got.result == dict(echo, changed=True)
    assert module.warnings == ["first", "second"]
    got = answer(m.finish, FakeModule(diff=True), {"changed": True, "diff": {"before": {}}})
    assert got.result == dict(echo, changed=True, diff={"before": {}})
    got = answer(m.finish, FakeModule(diff=True), {"changed": False, "diff": None})
    assert got.result == dict(echo, changed=False)


def test_finish_fails_with_the_message_and_the_result():
    module = FakeModule()
    got = answer(m.finish, module, {"changed": False, "warnings": ["w"]}, failed_msg="it broke")
    assert got.failed and got.result == {"changed": False, "msg": "it broke", "invocation": {"module_args": {}}}
    assert module.warnings == ["w"]


@pytest.mark.parametrize(
    "library,where,flag",
    [
        ("requests", _pd_client, "HAS_REQUESTS"),
        ("psycopg2", _sql_client, "HAS_PSYCOPG2"),
    ],
)
def test_require_libraries(monkeypatch, library, where, flag):
    monkeypatch.setattr(_pd_client, "HAS_REQUESTS", True)
    monkeypatch.setattr(_sql_client, "HAS_PSYCOPG2", True)
    assert m.require_libraries(FakeModule(), "requests", "psycopg2") is None
    monkeypatch.setattr(where, flag, False)
    got = answer(m.require_libraries, FakeModule(), "requests", "psycopg2")
    assert got.failed and library in got.result["msg"] and "exception" in got.result


def test_failure_is_the_partial_result_and_the_message(monkeypatch):
    assert m.failure(TaskError("it broke", result={"changed": True})) == ({"changed": True}, "it broke")
    monkeypatch.setattr(_sql_client, "PSYCOPG2_IMPORT_ERROR", ImportError("no psycopg2"))
    result, msg = m.failure(TaskError("psycopg2 is required", kind="missing_library", result={"changed": False}, library="psycopg2"))
    assert "psycopg2" in msg and "Failed to import the required Python library" in msg
    assert result == {"changed": False, "exception": "no psycopg2"}


def test_sql_params_are_the_sql_options():
    params = {
        "pg_host": "db",
        "pg_port": 5000,
        "ssl_mode": "require",
        "ca_cert": "/ca.pem",
        "connect_timeout": 3,
        "login_password": "secret",
        "pd_endpoints": ["pd:1"],
    }
    assert sql_params_from(params) == {"pg_host": "db", "pg_port": 5000, "ssl_mode": "require", "ca_cert": "/ca.pem", "connect_timeout": 3}
    assert set(sql_params_from({})) == set(sql_argument_spec())


# ---------------------------------------------------------------- masking the answer


def test_only_the_no_log_values_that_occur_are_handed_to_ansible_masking():
    secrets = {"s3cret-one", "another-secret", "short", "x*y", "VALUE"}
    result = {
        "tenants": [{"name": "acme", "msg": "login with s3cret-one failed"}, {"name": "b", "n": 12345}],
        "echo": "short",
        "keys": {"another-secret": True},
    }
    assert m.occurring_no_log_values(secrets, result) == {"s3cret-one", "short", "x*y", "VALUE"}
    # A number whose text holds a value, bytes, a value inside a longer one.
    assert m.occurring_no_log_values({"2345", "abc"}, {"n": 12345, "b": b"xxabcxx"}) == {"2345", "abc"}
    assert m.occurring_no_log_values(set(), result) == set()


def test_ansible_masks_exactly_as_with_every_no_log_value():
    rng = random.Random(7)
    alphabet = "ab'\\*é x"
    secrets = {"".join(rng.choice(alphabet) for _i in range(rng.randint(1, 6))) for _j in range(40)}
    texts = ["".join(rng.choice(alphabet) for _i in range(rng.randint(0, 30))) for _j in range(300)]
    result = {"strings": texts, "nested": [{"k": t, "n": rng.randint(0, 99999)} for t in texts[:50]], "flags": [True, None, 1.5]}
    # Lists in one order: Ansible tries values of equal length in the order it
    # is given them, and with overlapping values the order decides the text.
    found = m.occurring_no_log_values(secrets, result)
    assert found < secrets
    assert remove_values(result, sorted(found)) == remove_values(result, sorted(secrets))


def test_finish_hands_ansible_only_the_occurring_values():
    module = FakeModule(params={"login_password": "pw-in-args"})
    module.no_log_values = {"pw-in-args", "pw-elsewhere"}
    res = answer(m.finish, module, {"changed": False})
    assert res.result["invocation"] == {"module_args": {"login_password": "pw-in-args"}}
    assert module.no_log_values == {"pw-in-args"}


def test_a_no_log_value_in_a_warning_is_still_masked():
    # Ansible masks the warnings of the answer too: a value found only there stays.
    module = FakeModule()
    module.no_log_values = {"pw-in-warning", "pw-nowhere"}
    answer(m.finish, module, {"changed": False}, ["could not use pw-in-warning"])
    assert module.no_log_values == {"pw-in-warning"}
