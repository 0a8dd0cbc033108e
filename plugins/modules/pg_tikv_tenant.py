#!/usr/bin/python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_tikv_tenant
short_description: Manage a pg-tikv tenant (a TiKV keyspace in PD) and its admin credential
version_added: 0.1.0
description:
  - A pg-tikv tenant is a TiKV keyspace, created and retired through PD's HTTP API (C(/pd/api/v2/keyspaces)).
    Clients log in to pg-tikv as C(<tenant>.<user>).
  - On the first login attempt to a new keyspace pg-tikv creates the superuser C(admin) with the password
    C(admin). This module creates the keyspace, logs in with that bootstrap credential and rotates it at once,
    then proves the new password logs in and C(admin)/C(admin) no longer does.
  - PD has no delete. Retiring a tenant walks PD's state machine ENABLED -> DISABLED -> ARCHIVED -> TOMBSTONE;
    the module plans the whole path and refuses an impossible one (for example O(state=present) for an archived
    tenant) before it changes anything.
  - pg-tikv does not enforce the keyspace state (a DISABLED tenant still accepts logins), so every decommission
    state (O(state=disabled), V(archived), V(tombstone)) also locks the SQL logins of O(lock_users).
author:
  - pgtikv.cloud maintainers (!UNKNOWN)
options:
  name:
    description:
      - Tenant (keyspace) name.
      - A keyspace that already exists may have any name PD accepts (letters, digits, C(-) and C(_)), for example
        one created by pg-tikv's admin CLI or the PD API; it can be read, rotated and locked. PD's reserved C(DEFAULT) is
        refused.
      - A new tenant is created only with 3-64 characters, lowercase letters, digits and underscore (the pg-tikv
        admin CLI's rule), and never as pg-tikv's startup keyspace C(default) or C(id); otherwise the module fails
        before anything is written. PD's own rule for the connected version is checked too (PD v26.3 and later
        allow at most 20 characters).
    type: str
    required: true
  state:
    description:
      - V(present) - the keyspace exists and is ENABLED (created if missing, re-enabled if DISABLED) and its
        admin does not have the bootstrap password.
      - V(disabled) - the keyspace is DISABLED and O(lock_users) cannot log in.
      - V(archived) - the keyspace is ARCHIVED (walking through DISABLED). B(ARCHIVED cannot be undone), only
        V(tombstone) can follow. O(lock_users) cannot log in.
      - V(tombstone) - the keyspace is TOMBSTONE, PD's final state; its name can never be reused. Needs
        O(confirm_tombstone). O(lock_users) cannot log in.
      - The decommission states never create a keyspace; for a tenant that does not exist they do nothing and
        warn.
    type: str
    choices: [present, disabled, archived, tombstone]
    default: present
  config:
    description:
      - Keyspace config to converge, with PD's merge-patch semantics. A key with a string value is set; a key
        with value V(null) is deleted; keys not named are left alone.
      - Numbers are sent as strings; booleans, lists and dictionaries are refused (quote them).
      - At most 64 KiB as compact JSON, checked before any write, because larger configs make PD's keyspace list fail.
      - Server-managed keys (V(region_bound_type), V(gc_management_type), V(tso_keyspace_group_id), V(user_kind),
        V(meta_service_group_id), V(meta_service_group_addrs)) are never written; they are reported in
        RV(keyspace.server_managed_config) and a warning says they were ignored.
      - PD changes config only while the keyspace is ENABLED or DISABLED; a config change for an archived or
        tombstoned tenant fails before anything is changed. When a tenant is retired, the config is changed
        before the state walk.
    type: dict
  admin_password:
    description:
      - Desired password of the tenant's C(admin) user.
      - "When the tenant is created without it, a strong password is generated and returned once in
        RV(generated_admin_password) (with RV(admin_password_generated=true)). Use task-level C(no_log: true)
        then, and store the value: Ansible only hides option values marked secret, not returned ones."
      - Must not be C(admin), the bootstrap password.
      - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
    type: raw
  update_admin_password:
    description:
      - V(always) - for an existing tenant, log in with O(admin_password); if that works nothing changes. If the
        bootstrap password still works, rotate it (repair). Otherwise change it using O(login_password), or fail
        with "wrong admin password".
      - V(on_create) - set O(admin_password) only when the tenant is created, or to repair an admin that still
        has the bootstrap password; never change or check an admin password that was already rotated.
      - Without O(admin_password) both behave like V(on_create), and a repair generates the password.
    type: str
    choices: [always, on_create]
    default: always
  login_user:
    description:
      - An existing user of the tenant used to log in when O(admin_password) does not work yet, for example to
        change admin's password (O(login_user=admin) with the current password in O(login_password)), to unlock
        an admin that O(state=disabled) locked (a user that was not locked), or to lock users.
      - pg-tikv does not enforce privileges, so any user that can log in can change admin.
      - Defaults to C(admin) when O(login_password) is given.
    type: str
  login_password:
    description:
      - Password of O(login_user).
      - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
    type: raw
  previous_admin_passwords:
    description:
      - Other passwords admin may have now, tried in order to log in when O(admin_password) is refused (for example
        the one before an interrupted rotation). O(secret_store) fills this in by itself.
    type: list
    elements: str
  lock_users:
    description:
      - Users whose SQL login is locked by the decommission states (V(disabled), V(archived), V(tombstone)).
        Each gets NOLOGIN; C(admin) also gets a random password that nobody knows.
      - Users that do not exist are skipped with a warning. Locking needs a working login (O(admin_password),
        O(login_user)/O(login_password), or the bootstrap credential if it was never rotated).
      - Set to V([]) to change only the PD state.
      - Locking C(admin) is effectively permanent unless another user of the tenant can still log in and is given
        as O(login_user) to unlock it later with O(state=present).
    type: list
    elements: str
    default: [admin]
  confirm_tombstone:
    description:
      - Confirmation for O(state=tombstone), which cannot be undone. Must be exactly the tenant O(name).
    type: str
notes:
  - PD has no authentication other than mutual TLS; use O(pd_ca_cert), O(pd_client_cert) and O(pd_client_key)
    wherever the network is not trusted.
  - "Login tests are reads, but pg-tikv creates C(admin)/C(admin) on the first login attempt to a keyspace that
    has no admin yet. The module never logs in to a tenant that does not exist; for a keyspace created outside
    this module and never logged in to, even check mode creates that bootstrap admin (and a real run then
    rotates it)."
  - pg-tikv's fallback password C(PG_PASSWORD) must be unset on the server; with it set, login tests cannot tell
    passwords apart and the module refuses to lock users.
  - pg-tikv ignores the keyspace state. Locking logins closes new SQL sessions only; sessions that are already
    open stay open until they disconnect.
  - Passwords never appear in RV(queries), the diff, warnings or error messages.
seealso:
  - module: pgtikv.cloud.pg_tikv_tenant_info
  - ref: ansible_collections.pgtikv.cloud.docsite.guide_pgtikv_limits
    description: pg-tikv's behaviour and limits, and what the collection does about each one.
extends_documentation_fragment:
  - pgtikv.cloud.pd
  - pgtikv.cloud.sql
  - pgtikv.cloud.secret_store
  - pgtikv.cloud.attributes
  - pgtikv.cloud.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads PD and tests logins but writes nothing to PD or pg-tikv.
  diff_mode:
    support: full
    details:
      - Shows the state, the config and the admin credential status (V(bootstrap), V(rotated), V(locked)) before
        and after; never a password.
  idempotent:
    support: full
    details:
      - An admin password is generated only when the tenant is created, or when its admin still has the bootstrap
        password; a re-run finds admin rotated (or locked) and changes nothing.
"""

EXAMPLES = r"""
- name: Create a tenant; the password is generated and returned once
  pgtikv.cloud.pg_tikv_tenant:
    name: acme_corp
    config:
      plan: gold
  register: acme
  no_log: true  # the result carries the generated password

- name: Store it somewhere safe (example)
  ansible.builtin.copy:
    content: "{{ acme.generated_admin_password }}"
    dest: /root/secrets/acme_corp.admin
    mode: "0600"
  when: acme.admin_password_generated
  no_log: true

- name: Manage the admin password from a vault
  pgtikv.cloud.pg_tikv_tenant:
    name: beta_inc
    admin_password: "{{ vault_beta_admin_password }}"
    config:
      plan: silver
      trial: null  # delete the key
  module_defaults:
    group/pgtikv.cloud.pg_tikv:
      pd_endpoints: [pd1.example.com:2379, pd2.example.com:2379]
      pd_ca_cert: /etc/pki/pd/ca.pem
      pd_client_cert: /etc/pki/pd/client.pem
      pd_client_key: /etc/pki/pd/client-key.pem
      pg_host: db.example.com

- name: Change the admin password (the current one is needed once)
  pgtikv.cloud.pg_tikv_tenant:
    name: beta_inc
    admin_password: "{{ new_password }}"
    login_password: "{{ old_password }}"

- name: Decommission - DISABLED in PD and no SQL logins for these users
  pgtikv.cloud.pg_tikv_tenant:
    name: beta_inc
    state: disabled
    admin_password: "{{ vault_beta_admin_password }}"
    lock_users: [admin, app, reporting]

- name: Retire for good (irreversible)
  pgtikv.cloud.pg_tikv_tenant:
    name: beta_inc
    state: tombstone
    confirm_tombstone: beta_inc
"""

RETURN = r"""
exists:
  description: Whether the keyspace exists (after the task; in check mode, before it).
  returned: always
  type: bool
keyspace:
  description: The keyspace as PD reports it after the task (in check mode, as it would be). V(null) if it does not exist.
  returned: always
  type: dict
  contains:
    id:
      description: Keyspace ID (V(null) in check mode for a tenant that would be created).
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
      sample: 1755763078
    state_changed_at:
      description: Time of the last state change, Unix seconds.
      type: int
      sample: 1755763078
    created:
      description: RV(keyspace.created_at) as ISO 8601 UTC.
      type: str
      sample: "2025-08-21T07:57:58Z"
    state_changed:
      description: RV(keyspace.state_changed_at) as ISO 8601 UTC.
      type: str
      sample: "2025-08-21T07:57:58Z"
    config:
      description: The whole config map (an empty dictionary when PD omits it).
      type: dict
      sample: {plan: gold}
    server_managed_config:
      description: The server-managed keys found in RV(keyspace.config); never written by the module.
      type: dict
      sample: {}
state_path:
  description: The states that were PUT to PD, in order (or would be, in check mode). V([ENABLED]) for a create.
  returned: always
  type: list
  elements: str
  sample: [DISABLED, ARCHIVED]
config_patch:
  description: The merge patch sent to PD (V(null) values delete keys), or for a create the config sent with it.
  returned: always
  type: dict
  sample: {plan: gold, trial: null}
admin_login_proven:
  description: Whether a login with O(admin_password) succeeded in this run (before or after setting it).
  returned: always
  type: bool
secret_store:
  description: With O(secret_store), what the store holds after the task (counts only, never a password) and what this task did to it.
  returned: when O(secret_store) is set
  type: dict
  sample: {path: /home/ops/.local/share/pgtikv-cloud/secrets.yml, current: 1, pending: 0, generated: 1, promoted: 1}
admin_rotated:
  description: Whether the admin password was set in this run (would be, in check mode). Locking is reported in RV(locked_users).
  returned: always
  type: bool
admin_password_generated:
  description: True when the module generated the admin password; it is then in RV(generated_admin_password).
  returned: always
  type: bool
generated_admin_password:
  description:
    - "The generated admin password. Returned only once, when it was generated. Use task-level C(no_log: true)."
  returned: when admin_password_generated
  type: str
fully_provisioned:
  description:
    - For O(state=present), whether the admin no longer has the bootstrap password after the task
      (V(null) for the decommission states).
  returned: always
  type: bool
fully_provisioned_before:
  description: For an existing tenant with O(state=present), whether it was fully provisioned before the task.
  returned: when the tenant existed and state is present
  type: bool
locked_users:
  description: Users that were locked in this run (would be, in check mode).
  returned: always
  type: list
  elements: str
connection:
  description: How clients reach the tenant's admin.
  returned: always
  type: dict
  contains:
    host:
      description: pg-tikv host.
      type: str
    port:
      description: pg-tikv port.
      type: int
    user:
      description: Login name C(<tenant>.admin).
      type: str
      sample: acme_corp.admin
    database:
      description: Database name for clients (pg-tikv ignores it).
      type: str
      sample: postgres
    dsn:
      description: A libpq URI without password.
      type: str
      sample: postgresql://acme_corp.admin@db.example.com:5433/postgres?sslmode=verify-full
    full_dsn:
      description:
        - "The URI with the generated password, every special character percent-encoded. Only when
          RV(admin_password_generated). Use task-level C(no_log: true)."
      type: str
      returned: when admin_password_generated
queries:
  description: SQL statements run in the tenant, passwords masked.
  returned: always
  type: list
  elements: str
  sample: ['ALTER ROLE "admin" WITH PASSWORD ''********''']
progress:
  description: The steps that were done, in order (also returned on failure, to show what state the tenant is in).
  returned: always
  type: list
  elements: str
pd_version:
  description: PD's version string when it was read (before a create); V(null) if PD does not report one.
  returned: when a create was planned
  type: str
pd_requests:
  description: The HTTP requests sent to PD (method, path, endpoint, status, seconds, error).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgtikv.cloud.plugins.module_utils._common import (
    pd_argument_spec,
    secret_store_argument_spec,
    sql_argument_spec,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._module import run_module
from ansible_collections.pgtikv.cloud.plugins.module_utils._tenant import manage_tenant


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "disabled", "archived", "tombstone"]),
        config=dict(type="dict"),
        admin_password=dict(type="raw", no_log=True),
        update_admin_password=dict(type="str", default="always", choices=["always", "on_create"], no_log=False),
        login_user=dict(type="str"),
        login_password=dict(type="raw", no_log=True),
        lock_users=dict(type="list", elements="str", default=["admin"]),
        confirm_tombstone=dict(type="str"),
        previous_admin_passwords=dict(type="list", elements="str", no_log=True),
    )
    spec.update(secret_store_argument_spec())
    spec.update(pd_argument_spec())
    spec.update(sql_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    # psycopg2 only when a step logs in: decommissioning a missing keyspace needs PD alone.
    run_module(module, ("requests",), lambda warnings: manage_tenant(module.params, module.check_mode))


if __name__ == "__main__":
    main()
