# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests answer the SQL client's logins with a fake: the production code
calls the real _sql_client, whose network functions are patched here."""

from __future__ import annotations

from unittest import mock

from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client

# The functions of _sql_client that reach the server.
NETWORK_CALLS = ("connect", "probe_login", "probe_server")


def _unexpected(name):
    def call(*args, **kwargs):
        raise AssertionError("SQL was used: " + name)

    return call


def patched_sql(fake):
    """A context manager: every caller of _sql_client (_tenant, _bulk, _user)
    gets ``fake``'s connect/probe_login/probe_server; a call the fake does not
    define fails the test. psycopg2 counts as installed."""
    calls = {name: getattr(fake, name, None) or _unexpected(name) for name in NETWORK_CALLS}
    return mock.patch.multiple(_sql_client, HAS_PSYCOPG2=True, **calls)


class NoSQL:
    """Fails the test on any SQL call."""
