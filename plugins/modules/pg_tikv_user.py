#!/usr/bin/python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_tikv_user
short_description: Manage a user inside a pg-tikv tenant (or a PostgreSQL role)
version_added: 0.1.0
description:
  - Creates, updates and removes one user in the user store of a pg-tikv tenant, logging in as
    C(<tenant>.<login_user>).
  - The same module manages a role on real PostgreSQL, or on any server that has a role catalog.
  - The module detects what the server can do after logging in. It does not guess from the version string.
  - B(With a role catalog) (C(pg_catalog.pg_roles) is readable, as on PostgreSQL), the module reads the current
    attributes and changes only what differs, in one C(ALTER ROLE).
    It checks passwords against the stored SCRAM-SHA-256 or MD5 verifier when C(pg_authid) is readable,
    and otherwise with a test login.
    It computes the new password's verifier itself, following the server's C(password_encryption),
    and sends only the verifier, so the cleartext never reaches the server or its logs.
  - B(Without a role catalog) (pg-tikv today), no SQL can read roles. The module checks existence with
    C(ALTER ROLE "name" RESET ALL), which looks the role up and does nothing else.
    It checks O(login) and the password with a test login as C(<tenant>.<name>).
    It cannot read O(superuser), O(createdb), O(createrole) or O(conn_limit); see O(unverifiable_attributes).
    Passwords go out as plain C('...') literals, the only form pg-tikv accepts.
  - When O(tenant) is set, the module first checks over PD's HTTP API that the tenant exists.
    A login to a missing tenant fails exactly like a wrong password.
  - The module refuses to remove the tenant's C(admin) user. pg-tikv re-creates a missing C(admin) as
    C(admin)/C(admin) on the next login attempt.
author:
  - pgtikv.cloud maintainers (!UNKNOWN)
options:
  tenant:
    description:
      - The tenant (PD keyspace) that holds the user. The module logs in as C(<tenant>.<login_user>).
      - Omit it for plain PostgreSQL, or for pg-tikv's default keyspace. Without a tenant, no PD check is made
        and the module logs in as O(login_user) as given.
      - On pg-tikv without a tenant, the server reads any C(.) or C(:) in a user name as a tenant separator.
        Such users cannot be test-logged-in, so their password and O(login) cannot be checked.
    type: str
  name:
    description:
      - Name of the user, exactly as stored. It is always double-quoted, so case is kept and any character
        except NUL is allowed. It may be at most 63 bytes long.
    type: str
    required: true
    aliases: [user]
  state:
    description:
      - V(present) creates or updates the user, V(absent) drops it.
      - V(absent) for C(admin) in a tenant, or on a server without a role catalog, is refused.
        Set O(login=false) or rotate its password instead.
    type: str
    choices: [present, absent]
    default: present
  password:
    description:
      - The user's password in cleartext. It must not be empty and must not contain NUL.
      - When it is omitted while the user is created, the module generates a 32-character password and returns it
        once in RV(generated_password).
        An existing user's password is left alone when this is omitted.
      - Pre-hashed values (C(md5...), C(SCRAM-SHA-256$...)) are not accepted as hashes. pg-tikv would store them as
        the literal password.
      - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
    type: raw
  update_password:
    description:
      - V(always) checks an existing user's password and changes it when it differs.
      - V(on_create) sets O(password) only when the module creates the user.
      - Where the password cannot be checked, V(always) sets it again and reports a change with a warning.
        This happens for a NOLOGIN user on pg-tikv, or on a server with a catalog whose C(pg_authid) is unreadable
        and where a test login is impossible.
    type: str
    choices: [always, on_create]
    default: always
  login:
    description:
      - Whether the user may log in (C(LOGIN)/C(NOLOGIN)).
      - A created user gets C(LOGIN) unless this is V(false). An existing user is changed only when this is set.
      - Readable on both kinds of server. On pg-tikv the module reads it with a test login, because pg-tikv checks
        NOLOGIN before the password.
    type: bool
  superuser:
    description:
      - C(SUPERUSER)/C(NOSUPERUSER). Not read back on pg-tikv, and pg-tikv enforces no privileges at all.
    type: bool
  createdb:
    description: C(CREATEDB)/C(NOCREATEDB). Not read back on pg-tikv.
    type: bool
  createrole:
    description: C(CREATEROLE)/C(NOCREATEROLE). Not read back on pg-tikv.
    type: bool
  conn_limit:
    description:
      - C(CONNECTION LIMIT). V(-1) means no limit on PostgreSQL.
      - pg-tikv stores it but never checks it, and cannot read it back. pg-tikv accepts only V(0) or more, so
        V(-1) is refused there before anything is sent; leave it unset for no limit.
    type: int
  unverifiable_attributes:
    description:
      - What to do with O(superuser), O(createdb), O(createrole) and O(conn_limit) for an B(existing) user on a
        server without a role catalog, where they cannot be read back.
      - V(apply) sends them in the one C(ALTER ROLE) on every run. The task then reports C(changed), because the
        module cannot know whether they differed, and it warns.
      - V(on_create) sets them only when the module creates the user. Afterwards they are not sent, no change is
        reported, and they are listed in RV(unverifiable_attributes).
      - Has no effect on servers with a role catalog, where they are compared precisely.
    type: str
    choices: [apply, on_create]
    default: apply
extends_documentation_fragment:
  - pgtikv.cloud.sql
  - pgtikv.cloud.sql.login
  - pgtikv.cloud.pd
  - pgtikv.cloud.secret_store
  - pgtikv.cloud.attributes
  - pgtikv.cloud.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - Check mode runs no write statement at all, with no execute-then-rollback.
      - It runs only reads, the C(RESET ALL) existence probe on pg-tikv, and test logins. RV(queries) lists the
        statements that would run.
  diff_mode:
    support: full
    details:
      - The diff shows the attributes before and after. The password appears only as C(<hidden>) or
        C(<hidden, changed>).
      - Attributes that cannot be read are shown as C(<unreadable>).
  idempotent:
    support: partial
    details:
      - A re-run with the same values reports no change, except where a value cannot be read back.
      - On pg-tikv with O(unverifiable_attributes=apply), a task that sets O(superuser), O(createdb), O(createrole)
        or O(conn_limit) reports a change on every run.
      - With O(update_password=always), a password that cannot be checked (a NOLOGIN user on pg-tikv, or a server
        whose C(pg_authid) is unreadable where a test login is impossible) is set again on every run.
notes:
  - "How C(changed) is decided on pg-tikv (no role catalog): existence, O(login) and the password are read, so a
    re-run with the same values reports no change. O(superuser), O(createdb), O(createrole) and O(conn_limit) are
    unreadable, so with O(unverifiable_attributes=apply) every run that sets them reports a change.
    C(changed: false) is never reported after a write statement ran."
  - The password and O(login) checks on pg-tikv rely on test logins. They are meaningful only while the server's
    fallback password C(PG_PASSWORD) is unset, because with it set, that password opens any user.
  - With psycopg2, pg-tikv receives C(CREATE/ALTER ROLE ... PASSWORD '...') as a simple query. pg-tikv logs every
    simple query at INFO, so the cleartext password appears in the pg-tikv server log. Protect that log.
    PostgreSQL receives only a verifier.
  - pg-tikv intercepts any statement text containing C(COPY ... FROM STDIN). Names and passwords that would put such
    text in a statement are refused.
  - The module connects with autocommit. Each statement stands alone.
  - "A returned RV(generated_password) is visible in the task result. Use C(no_log: true) on the task, and register
    the result to store the password."
seealso:
  - module: pgtikv.cloud.pg_tikv_user_info
  - module: pgtikv.cloud.pg_tikv_tenant
  - ref: ansible_collections.pgtikv.cloud.docsite.guide_pgtikv_limits
    description: pg-tikv's behaviour and limits, and what the collection does about each one.
"""

EXAMPLES = r"""
- name: Create an application user in tenant acme
  pgtikv.cloud.pg_tikv_user:
    tenant: acme
    name: app
    password: "{{ app_password }}"
    login_password: "{{ acme_admin_password }}"
    pd_endpoints: [pd-0.pd:2379, pd-1.pd:2379]
    pg_host: pg-tikv.example.com

- name: Create a user with a generated password and keep it
  pgtikv.cloud.pg_tikv_user:
    tenant: acme
    name: reporting
    login_password: "{{ acme_admin_password }}"
  register: reporting
  no_log: true

- name: Set the password only when the user is created; never touch it afterwards
  pgtikv.cloud.pg_tikv_user:
    tenant: acme
    name: batch
    password: "{{ initial_password }}"
    update_password: on_create
    login_password: "{{ acme_admin_password }}"

- name: Retire the bootstrap admin without dropping it (dropping would resurrect admin/admin)
  pgtikv.cloud.pg_tikv_user:
    tenant: acme
    name: admin
    login: false
    login_user: ops
    login_password: "{{ acme_ops_password }}"

- name: Remove a user
  pgtikv.cloud.pg_tikv_user:
    tenant: acme
    name: old_app
    state: absent
    login_password: "{{ acme_admin_password }}"

- name: The same module on plain PostgreSQL (no tenant, no PD check)
  pgtikv.cloud.pg_tikv_user:
    name: app
    password: "{{ app_password }}"
    createdb: true
    login_user: postgres
    login_password: "{{ postgres_password }}"
    pg_host: db.example.com
    pg_port: 5432
    ssl_mode: verify-full
    ca_cert: /etc/ssl/certs/db-ca.pem

- name: Set connection options once for every module of the collection
  module_defaults:
    group/pgtikv.cloud.pg_tikv:
      pd_endpoints: [pd-0.pd:2379]
      pg_host: pg-tikv.example.com
  block:
    - name: Ensure a user
      pgtikv.cloud.pg_tikv_user:
        tenant: acme
        name: app
        password: "{{ app_password }}"
        login_password: "{{ acme_admin_password }}"
"""

RETURN = r"""
user:
  description: The user name.
  returned: always
  type: str
  sample: app
tenant:
  description: The tenant, or null without one.
  returned: always
  type: str
  sample: acme
state:
  description: The requested state.
  returned: always
  type: str
  sample: present
created:
  description: Whether the user was created (or would be, in check mode).
  returned: always
  type: bool
removed:
  description: Whether the user was dropped (or would be, in check mode).
  returned: always
  type: bool
password_changed:
  description: Whether a password was set (or would be, in check mode).
  returned: always
  type: bool
password_proven:
  description: Whether the user's password is known to be O(password) after the task (it matched, or it was set and confirmed).
  returned: always
  type: bool
secret_store:
  description: With O(secret_store), what the store holds after the task (counts only, never a password) and what this task did to it.
  returned: when O(secret_store) is set
  type: dict
  sample: {path: /home/ops/.local/share/pgtikv-cloud/secrets.yml, current: 1, pending: 0, generated: 1, promoted: 1}
password_verified:
  description:
    - After a password was set, whether it was confirmed from the verifier read back or with a test login.
    - Null when it was not checked, for example for a NOLOGIN user.
    - A password that cannot be confirmed makes the task fail.
  returned: always
  type: bool
generated_password:
  description:
    - The password generated for a new user when O(password) was omitted. It is returned only here, once.
    - "Use C(no_log: true) on the task."
  returned: when a user was created without O(password), not in check mode
  type: str
password_generated:
  description: Whether a password was (or, in check mode, would be) generated.
  returned: when the user is created
  type: bool
queries:
  description:
    - The write statements that ran, or that would run in check mode. Every password or verifier is replaced by
      C('********').
    - Reads and probes are not listed.
  returned: always
  type: list
  elements: str
  sample: ['CREATE ROLE "app" WITH LOGIN PASSWORD ''********''']
unverifiable_attributes:
  description: Requested attributes that this server cannot read back (pg-tikv) for an existing user.
  returned: always
  type: list
  elements: str
  sample: [createdb]
server:
  description: What the module detected about the server.
  returned: always
  type: dict
  contains:
    version:
      description: The result of C(SELECT version()), recorded for information only.
      type: str
    role_catalog:
      description: Whether C(pg_catalog.pg_roles) is readable.
      type: bool
    password_readable:
      description: Whether stored password verifiers (C(pg_authid)) are readable.
      type: bool
    password_form:
      description: How passwords are sent. V(scram) and V(md5) are verifiers computed by the module; V(plain) is the cleartext literal.
      type: str
    standard_conforming_strings:
      description: The server's setting, or null when the server does not report it (pg-tikv).
      type: str
    pg_tikv:
      description: Whether C(version()) names pg-tikv. This is informational only.
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgtikv.cloud.plugins.module_utils._common import (
    pd_argument_spec,
    secret_store_argument_spec,
    sql_argument_spec,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._module import run_module
from ansible_collections.pgtikv.cloud.plugins.module_utils._user import login_argument_spec, manage_user


def argument_spec():
    spec = dict(
        tenant=dict(type="str"),
        name=dict(type="str", required=True, aliases=["user"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        password=dict(type="raw", no_log=True),
        update_password=dict(type="str", default="always", choices=["always", "on_create"], no_log=False),
        login=dict(type="bool"),
        superuser=dict(type="bool"),
        createdb=dict(type="bool"),
        createrole=dict(type="bool"),
        conn_limit=dict(type="int"),
        unverifiable_attributes=dict(type="str", default="apply", choices=["apply", "on_create"]),
    )
    spec.update(login_argument_spec())
    spec.update(secret_store_argument_spec())
    spec.update(sql_argument_spec())
    spec.update(pd_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, ("psycopg2",), lambda warnings: manage_user(module.params, module.check_mode, warnings))


if __name__ == "__main__":
    main()
