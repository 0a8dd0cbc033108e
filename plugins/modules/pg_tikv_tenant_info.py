#!/usr/bin/python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_tikv_tenant_info
short_description: List pg-tikv tenants (TiKV keyspaces in PD) or get one
version_added: 0.1.0
description:
  - Reads keyspaces from PD's HTTP API (C(/pd/api/v2/keyspaces)), following PD's pagination, and returns them
    with the same fields as M(pgtikv.cloud.pg_tikv_tenant) plus connection information for each.
  - Only reads PD. It never logs in to pg-tikv (a login attempt would create the bootstrap admin of a keyspace
    that has none yet) and never changes anything.
author:
  - pgtikv.cloud maintainers (!UNKNOWN)
options:
  name:
    description:
      - Get only this tenant (one GET). Without it, all keyspaces are listed.
      - Any keyspace name PD accepts (letters, digits, C(-) and C(_)), also for keyspaces created outside this
        collection. PD's reserved C(DEFAULT) is refused.
    type: str
  states:
    description: Return only tenants in these states. All states by default (TOMBSTONE included).
    type: list
    elements: str
    choices: [enabled, disabled, archived, tombstone]
  name_pattern:
    description: Shell-style pattern (C(fnmatch), case-sensitive) the tenant name must match, for example V(acme_*).
    type: str
  include_reserved:
    description:
      - Also return PD's reserved keyspace C(DEFAULT) (id 0) and the names this collection never manages as
        tenants (pg-tikv's startup keyspace C(default), and C(id)).
    type: bool
    default: false
  page_size:
    description: How many keyspaces to ask PD for per request while listing.
    type: int
    default: 100
  pg_host:
    description:
      - Host of the pg-tikv server, used only to build RV(tenants[].connection). If not set, the environment
        variable E(PG_HOST) is used.
    type: str
    default: 127.0.0.1
  pg_port:
    description:
      - Port of the pg-tikv server, used only to build RV(tenants[].connection). If not set, the environment
        variable E(PG_PORT) is used.
    type: int
    default: 5433
  ssl_mode:
    description: libpq C(sslmode) written into RV(tenants[].connection).
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA bundle path written into RV(tenants[].connection) as C(sslrootcert).
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description: Accepted for symmetry with M(pgtikv.cloud.pg_tikv_tenant) in C(module_defaults); unused.
    type: int
    default: 10
seealso:
  - module: pgtikv.cloud.pg_tikv_tenant
  - ref: ansible_collections.pgtikv.cloud.docsite.guide_pgtikv_limits
    description: pg-tikv's behaviour and limits, and what the collection does about each one.
extends_documentation_fragment:
  - pgtikv.cloud.pd
  - pgtikv.cloud.attributes
  - pgtikv.cloud.attributes.action_group
  - pgtikv.cloud.attributes.info_module
"""

EXAMPLES = r"""
- name: All enabled tenants whose name starts with acme_
  pgtikv.cloud.pg_tikv_tenant_info:
    states: [enabled]
    name_pattern: "acme_*"
  register: acme

- name: One tenant
  pgtikv.cloud.pg_tikv_tenant_info:
    name: acme_corp
  register: one

- name: Fail when it does not exist
  ansible.builtin.assert:
    that: one.count == 1
"""

RETURN = r"""
tenants:
  description: The matching tenants, ascending by keyspace ID.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Keyspace ID.
      type: int
      sample: 7
    name:
      description: Keyspace name.
      type: str
      sample: acme_corp
    state:
      description: V(ENABLED), V(DISABLED), V(ARCHIVED) or V(TOMBSTONE).
      type: str
      sample: ENABLED
    created_at:
      description: Creation time, Unix seconds.
      type: int
    state_changed_at:
      description: Time of the last state change, Unix seconds.
      type: int
    created:
      description: Creation time as ISO 8601 UTC.
      type: str
      sample: "2025-08-21T07:57:58Z"
    state_changed:
      description: Time of the last state change as ISO 8601 UTC.
      type: str
    config:
      description: The whole config map (an empty dictionary when PD omits it).
      type: dict
    server_managed_config:
      description: The server-managed keys found in the config.
      type: dict
    connection:
      description: Host, port, login name C(<tenant>.admin), database and a password-less DSN.
      type: dict
      sample:
        host: db.example.com
        port: 5433
        user: acme_corp.admin
        database: postgres
        dsn: postgresql://acme_corp.admin@db.example.com:5433/postgres?sslmode=prefer
count:
  description: Number of tenants returned.
  returned: always
  type: int
scanned:
  description: Number of keyspaces PD returned before filtering.
  returned: always
  type: int
pd_requests:
  description: The HTTP requests sent to PD (method, path, endpoint, status, seconds, error).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgtikv.cloud.plugins.module_utils._common import pd_argument_spec, sql_argument_spec
from ansible_collections.pgtikv.cloud.plugins.module_utils._module import run_module
from ansible_collections.pgtikv.cloud.plugins.module_utils._tenant import read_tenants


def argument_spec():
    spec = dict(
        name=dict(type="str"),
        states=dict(type="list", elements="str", choices=["enabled", "disabled", "archived", "tombstone"]),
        name_pattern=dict(type="str"),
        include_reserved=dict(type="bool", default=False),
        page_size=dict(type="int", default=100),
    )
    spec.update(pd_argument_spec())
    # The SQL options only describe how to connect (RV tenants[].connection);
    # documented here rather than through pgtikv.cloud.sql, whose psycopg2
    # requirement does not apply to a module that never logs in.
    spec.update(sql_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, ("requests",), lambda warnings: read_tenants(module.params))


if __name__ == "__main__":
    main()
