#!/usr/bin/python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_tikv_user_info
short_description: Report users of a pg-tikv tenant (or PostgreSQL roles)
version_added: 0.1.0
description:
  - Reads users without changing anything. The result depends on what the server can do; the module detects this
    after logging in and does not guess from the version string.
  - B(With a role catalog) (PostgreSQL), it lists every role with its attributes, or only the roles named in
    O(names) and O(users).
    For entries of O(users) that have a password, it also reports whether that password is the stored one.
  - B(Without a role catalog) (pg-tikv today), users B(cannot be listed), and SUPERUSER, CREATEDB, CREATEROLE and
    CONNECTION LIMIT cannot be read. For each name asked, the module reports whether the user exists, using the
    C(ALTER ROLE "name" RESET ALL) probe, and whether it may log in, using a test login.
    Given a password, it also reports whether the user can log in with it.
  - When O(tenant) is set, the module first checks over PD's HTTP API that the tenant exists.
author:
  - pgtikv.cloud maintainers (!UNKNOWN)
options:
  tenant:
    description:
      - The tenant (PD keyspace). The module logs in as C(<tenant>.<login_user>).
      - Omit it for plain PostgreSQL or pg-tikv's default keyspace.
    type: str
  names:
    description:
      - Users to report.
      - On a server with a role catalog, an empty list reports every role.
      - On pg-tikv only the users named here and in O(users) are reported.
    type: list
    elements: str
    default: []
  users:
    description: Users to report, each optionally with a password to check.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      password:
        description:
          - Password to check. The result is in C(password_valid).
          - On pg-tikv the check is a test login. It is possible only for LOGIN users, and meaningful only while the
            server's C(PG_PASSWORD) fallback is unset.
          - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
        type: raw
extends_documentation_fragment:
  - pgtikv.cloud.sql
  - pgtikv.cloud.sql.login
  - pgtikv.cloud.pd
  - pgtikv.cloud.attributes
  - pgtikv.cloud.attributes.action_group
  - pgtikv.cloud.attributes.info_module
notes:
  - On pg-tikv every reported user costs one or two test logins. Failed test logins are expected and may appear in
    the server log.
  - pg-tikv creates C(admin)/C(admin) on the first login attempt to a keyspace that has never been used, whatever
    user and password are sent. Reading users of a keyspace that was created outside this collection and never
    logged in to therefore gives it that bootstrap credential; run M(pgtikv.cloud.pg_tikv_tenant) (or the
    C(pgtikv.cloud.tenants) role) on it to rotate it.
seealso:
  - module: pgtikv.cloud.pg_tikv_user
  - ref: ansible_collections.pgtikv.cloud.docsite.guide_pgtikv_limits
    description: pg-tikv's behaviour and limits, and what the collection does about each one.
"""

EXAMPLES = r"""
- name: Which of these users exist in tenant acme, and does app's password work?
  pgtikv.cloud.pg_tikv_user_info:
    tenant: acme
    names: [reporting, batch]
    users:
      - name: app
        password: "{{ app_password }}"
    login_password: "{{ acme_admin_password }}"
  register: acme_users

- name: List every role of a PostgreSQL server
  pgtikv.cloud.pg_tikv_user_info:
    login_user: postgres
    login_password: "{{ postgres_password }}"
    pg_host: db.example.com
    pg_port: 5432
  register: roles
"""

RETURN = r"""
listable:
  description: Whether the server can list users (it has a role catalog).
  returned: always
  type: bool
limitations:
  description: What this server cannot report, in plain words. Empty when nothing is missing.
  returned: always
  type: str
  sample: pg-tikv has no role catalog, so users cannot be listed ...
users:
  description:
    - One entry per user reported. On a server with a role catalog and no names given, every role is listed.
    - Attributes that cannot be read are null, and are listed in C(unreadable).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: User name.
      type: str
    exists:
      description: Whether the user exists.
      type: bool
    login:
      description: Whether the user may log in. Null when unknown.
      type: bool
    superuser:
      description: SUPERUSER. Null when unreadable.
      type: bool
    createdb:
      description: CREATEDB. Null when unreadable.
      type: bool
    createrole:
      description: CREATEROLE. Null when unreadable.
      type: bool
    conn_limit:
      description: CONNECTION LIMIT (-1 means no limit). Null when unreadable.
      type: int
    password_valid:
      description:
        - For entries of O(users) that have a password, whether the user can log in with it (pg-tikv), or whether
          it matches the stored verifier (PostgreSQL).
        - Null when no password was given or it could not be checked.
      type: bool
    unreadable:
      description: Attributes this server cannot report.
      type: list
      elements: str
server:
  description: What the module detected about the server (see pgtikv.cloud.pg_tikv_user).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgtikv.cloud.plugins.module_utils._common import (
    pd_argument_spec,
    sql_argument_spec,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._module import run_module
from ansible_collections.pgtikv.cloud.plugins.module_utils._user import login_argument_spec, read_users


def argument_spec():
    spec = dict(
        tenant=dict(type="str"),
        names=dict(type="list", elements="str", default=[]),
        users=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                name=dict(type="str", required=True),
                password=dict(type="raw", no_log=True),
            ),
        ),
    )
    spec.update(login_argument_spec())
    spec.update(sql_argument_spec())
    spec.update(pd_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, ("psycopg2",), lambda warnings: read_users(module.params, warnings))


if __name__ == "__main__":
    main()
