#!/usr/bin/python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_tikv_tenants
short_description: Reconcile a declared list of pg-tikv tenants and their users in one task
version_added: 0.1.0
description:
  - Takes the whole desired list of tenants, each with its state, PD keyspace config, admin credential and nested
    users, and reconciles it in one invocation, in the style of Ansible's resource modules.
  - It reads PD's keyspaces with one paginated list call (not one GET per tenant), works on tenants concurrently
    with a bounded pool of O(max_workers) threads, and uses one SQL session per tenant for all of its users.
  - Per tenant it runs the same code as M(pgtikv.cloud.pg_tikv_tenant) and M(pgtikv.cloud.pg_tikv_user). It creates
    or converges the keyspace, rotates the bootstrap C(admin)/C(admin) credential at once, then creates, updates
    or drops the users.
  - A failing tenant never hides the others. Every tenant gets its own entry in RV(tenants), and the task fails
    at the end, listing the failed tenants. A re-run repairs partial state (a keyspace whose admin still has the
    bootstrap password, a missing user).
  - With O(verify=true) every present tenant is then proven usable by logins. See O(verify).
author:
  - pgtikv.cloud maintainers (!UNKNOWN)
options:
  config:
    description:
      - The declared tenants.
      - With O(state=gathered), an optional filter, and the credentials used by O(verify).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Tenant name (PD keyspace name). A new tenant is created only with 3-64 characters, lowercase letters,
            digits and underscore.
          - An existing keyspace may have any name PD accepts (letters, digits, C(-) and C(_)), for example one
            created by pg-tikv's admin CLI; it is managed like any other tenant.
        type: str
        required: true
      state:
        description:
          - V(present) creates or enables the keyspace and provisions admin and the users.
          - V(disabled) locks SQL logins (admin gets a random password and C(NOLOGIN), every listed present user
            gets C(NOLOGIN)), then disables the keyspace in PD. pg-tikv ignores the keyspace state, so the lock is
            what really cuts access.
          - V(archived) and V(tombstone) continue PD's state machine. V(tombstone) is irreversible and needs
            O(config[].confirm_tombstone).
        type: str
        choices: [present, disabled, archived, tombstone]
        default: present
      config:
        description:
          - PD keyspace config, a map of strings. Only the keys given are managed; a V(null) value deletes a key.
          - Keys that PD manages itself are never written.
          - At most 64 KiB as compact JSON, checked before any write, because larger configs make PD's keyspace list fail.
        type: dict
        aliases: [keyspace_config]
      admin_password:
        description:
          - The password of the tenant's C(admin).
          - When omitted, a new tenant (or one whose admin still has the bootstrap password) gets a generated
            password, stored in O(secret_store), or without a store returned once in RV(generated_passwords).
          - Needed to manage the users of an existing tenant.
          - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
        type: raw
      update_admin_password:
        description:
          - V(always) sets O(config[].admin_password) when admin does not log in with it (needs the current one
            in O(config[].login_password) unless admin still has the bootstrap password).
          - V(on_create) only sets it when the tenant is created or admin still has the bootstrap password.
        type: str
        choices: [always, on_create]
        default: always
      login_user:
        description: A user of the tenant that can log in now, to change a forgotten or rotated admin password.
        type: str
      login_password:
        description:
          - The current password of O(config[].login_user) (or of admin), for example the old admin password
            during a rotation.
          - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
        type: raw
      previous_admin_passwords:
        description:
          - Other passwords admin may have now, tried in order to log in when O(config[].admin_password) is refused
            (for example the one before an interrupted rotation). O(secret_store) fills this in by itself.
        type: list
        elements: str
      confirm_tombstone:
        description: Must be the tenant name for O(config[].state=tombstone).
        type: str
      users:
        description: The tenant's users. Users that are not listed are left alone (pg-tikv cannot list users).
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: User name, exactly as stored. Not C(admin), which the tenant entry manages.
            type: str
            required: true
          state:
            description: V(present) or V(absent).
            type: str
            choices: [present, absent]
            default: present
          password:
            description:
              - The user's password. When omitted for a new user, one is generated and stored in O(secret_store), or
                without a store returned once in RV(generated_passwords).
              - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
            type: raw
          update_password:
            description: V(always) checks and fixes the password of an existing user; V(on_create) sets it only at creation.
            type: str
            choices: [always, on_create]
            default: always
          login:
            description: C(LOGIN)/C(NOLOGIN). New users get C(LOGIN) unless this is V(false).
            type: bool
          superuser:
            description: C(SUPERUSER). Not readable on pg-tikv; see O(unverifiable_attributes).
            type: bool
          createdb:
            description: C(CREATEDB). Not readable on pg-tikv.
            type: bool
          createrole:
            description: C(CREATEROLE). Not readable on pg-tikv.
            type: bool
          conn_limit:
            description: C(CONNECTION LIMIT). Not readable on pg-tikv, where only V(0) or more is accepted (V(-1) is refused before anything is sent).
            type: int
          unverifiable_attributes:
            description: Overrides O(unverifiable_attributes) for this user.
            type: str
            choices: [apply, on_create]
  state:
    description:
      - V(merged) converges every listed tenant and leaves unlisted tenants alone.
      - V(overridden) does the same, then disables every ENABLED tenant that is not listed and whose name matches
        O(managed_pattern) in full. It needs O(allow_disable_unlisted=true). Unlisted tenants are disabled in PD
        only, because their credentials are unknown; pg-tikv still lets their users log in (a warning says so).
        Names that this collection could not have created (PD's C(DEFAULT), pg-tikv's C(default), names with
        upper case or C(-)) are never touched. If any listed entry is invalid, nothing unlisted is disabled.
      - V(gathered) changes nothing. It returns the tenants in PD as entries of O(config) in RV(gathered) (only the
        listed ones when O(config) is given), PD's view of them in RV(keyspaces) and, with O(verify=true), proves the
        listed present tenants usable (RV(verification)).
    type: str
    choices: [merged, overridden, gathered]
    default: merged
  allow_disable_unlisted:
    description: Confirms that O(state=overridden) may disable tenants that are not listed.
    type: bool
    default: false
  managed_pattern:
    description:
      - Python regular expression that a tenant name must match in full to be owned by this task.
      - Required by O(state=overridden). With O(state=gathered) it filters the result.
    type: str
  verify:
    description:
      - Prove every present listed tenant usable by logins, after it was reconciled. The keyspace must be ENABLED,
        admin must log in with its password, the bootstrap C(admin)/C(admin) must be refused, and every present user
        must log in with its password (a C(login=false) user must be refused as NOLOGIN).
      - A login the reconcile made after its last write to that credential counts (for an unchanged tenant with two
        users that is the whole proof, 4 logins); the rest gets a fresh test login.
      - A password that is neither declared nor generated in this run cannot be proven and counts as a problem.
      - Problems are listed per tenant in RV(incomplete), and the task fails. Skipped in check mode.
    type: bool
    default: false
  max_workers:
    description: How many tenants are reconciled at the same time.
    type: int
    default: 8
  timeout:
    description:
      - Seconds the whole run may take. Tenants whose turn comes after that are not touched and are reported failed
        with C(not_attempted); a tenant already started is finished (each PD and SQL call has its own timeout).
      - The default leaves room for about 10,000 tenants on a healthy platform and bounds a run against a frozen PD.
    type: float
    default: 1800
  rotate:
    description:
      - Give new random passwords to the credentials kept in O(secret_store) (never to declared ones).
      - V(admin) rotates every present tenant's admin, V(all) the admins and the users.
      - Needs O(secret_store). Each new password is stored as pending before it is set.
    type: str
    choices: [none, admin, all]
    default: none
  unverifiable_attributes:
    description:
      - Default of O(config[].users[].unverifiable_attributes).
      - V(on_create) (the default here, unlike M(pgtikv.cloud.pg_tikv_user)) sets superuser, createdb, createrole
        and conn_limit only when a user is created, so that a re-run of an unchanged fleet reports no change on
        pg-tikv, which cannot read them back. V(apply) sends them on every run and reports every such user changed.
    type: str
    choices: [apply, on_create]
    default: on_create
  list_page_size:
    description:
      - Page size of PD's keyspace list; the module follows C(next_page_token) until the end.
      - PD reads one page in one etcd transaction of C(limit + 1) reads, and its embedded etcd refuses transactions
        of more than 128 operations by default (C(max-txn-ops)), so 127 is the largest page a stock PD serves.
        A page that PD refuses with C(too many operations in txn request) is asked again at half the size.
    type: int
    default: 127
  details:
    description:
      - Return everything known about every tenant in RV(tenants) (keyspace view, progress, SQL statements, the
        individual verification checks, unchanged users).
      - By default an unchanged tenant reports only its status and verification, and a changed one what changed.
        AnsibleModule masks every declared password in every string of the result, so for a large fleet the full
        result costs more than the work.
    type: bool
    default: false
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
      - Check mode only reads (PD list, test logins, the existence probe) and reports what would change.
      - For a tenant that does not exist yet, its users are reported as would-be created without any login.
  diff_mode:
    support: full
    details:
      - The diff lists the tenants that change, with their keyspace state, config, admin status and users.
        Passwords never appear; they are shown as C(<hidden>) markers.
  idempotent:
    support: partial
    details:
      - A re-run of an unchanged fleet reports no change, with two exceptions by design.
      - O(rotate=admin) or O(rotate=all) gives new passwords on every run.
      - With O(unverifiable_attributes=apply), every existing user that sets superuser, createdb, createrole or
        conn_limit is reported changed on pg-tikv, which cannot read them back.
notes:
  - B(Secrets.) With O(secret_store), generated passwords are written to the store before they are used and never
    returned. Without it, RV(generated_passwords) holds every password generated in the run; set C(no_log) on the
    task and store them yourself. Declared passwords never appear in the result.
  - Check mode logs in to existing tenants to read their state (test logins). pg-tikv creates C(admin)/C(admin)
    on the first login attempt to a keyspace that has never been used, so checking a keyspace created outside this
    collection and never logged in to gives it that bootstrap credential; a normal run then rotates it.
  - On pg-tikv, password and login checks are test logins; they are meaningful only while the server's fallback
    password C(PG_PASSWORD) is unset.
  - The modules run where the task runs. Use C(hosts=localhost) or C(delegate_to=localhost), so that the
    environment fallbacks (for example an AWX credential) apply.
seealso:
  - module: pgtikv.cloud.pg_tikv_tenant
  - module: pgtikv.cloud.pg_tikv_user
  - ref: ansible_collections.pgtikv.cloud.docsite.guide_pgtikv_limits
    description: pg-tikv's behaviour and limits, and what the collection does about each one.
  - name: The tenants role
    description: Drives this module, stores generated passwords and fails with a readable list of what is incomplete.
    link: https://example.invalid/pgtikv/cloud/roles/tenants
"""

EXAMPLES = r"""
- name: Provision two tenants with their users, and prove them usable
  pgtikv.cloud.pg_tikv_tenants:
    config:
      - name: acme_corp
        admin_password: "{{ vault_acme_admin }}"
        config: {owner: team-a}
        users:
          - name: app
            password: "{{ vault_acme_app }}"
          - name: reporting
      - name: beta_inc
        users:
          - name: app
    verify: true
    max_workers: 16
  register: fleet
  no_log: true   # generated_passwords holds the generated ones

- name: Decommission a tenant (lock admin and its users, disable the keyspace)
  pgtikv.cloud.pg_tikv_tenants:
    config:
      - name: old_corp
        state: disabled
        admin_password: "{{ vault_old_admin }}"
        users:
          - name: app

- name: Disable every tenant named team_* that is not in the list
  pgtikv.cloud.pg_tikv_tenants:
    state: overridden
    managed_pattern: "team_[a-z0-9_]+"
    allow_disable_unlisted: true
    config: "{{ declared_tenants }}"

- name: Read back what PD has
  pgtikv.cloud.pg_tikv_tenants:
    state: gathered
  register: current

- name: Its entries are config entries - in check mode, declaring them again changes nothing
  pgtikv.cloud.pg_tikv_tenants:
    config: "{{ current.gathered | selectattr('state', 'equalto', 'present') | list }}"
  check_mode: true
"""

RETURN = r"""
tenants:
  description:
    - One entry per listed tenant (in list order), then one per unlisted tenant that O(state=overridden) handled.
    - Unless O(details=true), an unchanged tenant reports only C(name), C(status), C(changed), C(failed) and
      C(verification), and a changed one adds what changed (C(state_path), C(config_patch), C(admin_rotated),
      C(keyspace) with C(id) and C(config), its C(users) with their status).
  returned: when O(state) is not V(gathered)
  type: list
  elements: dict
  contains:
    name:
      description: Tenant name.
      type: str
    status:
      description: V(created), V(changed), V(unchanged) or V(failed).
      type: str
    changed:
      description: Whether anything of this tenant changed (or would, in check mode).
      type: bool
    failed:
      description: Whether this tenant failed.
      type: bool
    msg:
      description: Why it failed, including what had been done before.
      type: str
      returned: when failed
    keyspace:
      description: The keyspace after the run (C(id) and C(config); with O(details=true) also name, state, created, state_changed).
      type: dict
    state_path:
      description: The PD states set, in order.
      type: list
      elements: str
    config_patch:
      description: The config merge patch sent to PD.
      type: dict
    admin_rotated:
      description: Whether the admin password was set.
      type: bool
    users:
      description: Per user, V(status) (created, changed, unchanged, removed, locked, skipped, failed), C(changed),
        C(password_changed), C(queries) (passwords masked) and C(msg) on failure.
      type: list
      elements: dict
    verification:
      description: With O(verify), C(complete), C(problems) and the individual C(checks).
      type: dict
      returned: when O(verify=true), not in check mode
    queries:
      description: With O(details=true), the SQL statements run for the admin (passwords masked).
      type: list
      elements: str
    warnings:
      description: Warnings of this tenant.
      type: list
      elements: str
    seconds:
      description: Time spent on this tenant.
      type: float
    proven:
      description:
        - Which passwords given for this tenant were proven by a login in this run, C(admin) (bool) and C(users)
          (names). O(secret_store) promotes a pending password only when it is proven here.
      type: dict
      returned: for present tenants, not in check mode
    not_attempted:
      description: The run's O(timeout) was reached before this tenant's turn; nothing was done to it.
      type: bool
      returned: when true
    drift:
      description:
        - In check mode, what differs from the declaration (what a run would change), one readable line per item,
          for example V(keyspace state ENABLED, declared DISABLED) or V(user app missing). The tenants role's audit
          reports these lines.
      type: list
      elements: str
      returned: in check mode, when something differs (with O(details=true) or in diff mode also empty)
  sample:
    - name: acme_corp
      status: created
      changed: true
      failed: false
      state_path: [ENABLED]
      admin_rotated: true
      users:
        - {name: app, status: created, changed: true, password_changed: true}
summary:
  description:
    - Counts of the run. In check mode also C(drifted) (tenants with a RV(tenants[].drift)) and C(drift_items).
  returned: always
  type: dict
  sample: {total: 2, created: 1, changed: 0, unchanged: 1, failed: 0, users_created: 2, users_changed: 0,
           users_failed: 0, verified: 2, incomplete: 0}
generated_passwords:
  description:
    - Passwords generated in this run, by tenant. Each value is a dict with C(admin) and C(users) (user name to
      password). Returned only here, once.
    - Set C(no_log) to V(true) on the task.
  returned: when O(state) is not V(gathered) and O(secret_store) is not set
  type: dict
secret_store:
  description:
    - With O(secret_store), what the store holds after the task (counts only, never a password) and what this task
      did to it.
  returned: when O(secret_store) is set
  type: dict
  contains:
    path:
      description: The store file.
      type: str
    current:
      description: Credentials with a current password.
      type: int
    pending:
      description: Credentials with a pending password (a change that the next run finishes).
      type: int
    generated:
      description: Pending passwords generated and stored by this task.
      type: int
    promoted:
      description: Pending passwords proven and promoted to current by this task.
      type: int
  sample: {path: /home/ops/.local/share/pgtikv-cloud/secrets.yml, current: 6, pending: 0, generated: 6, promoted: 6}
report:
  description:
    - A readable report without secrets. The first line counts everything, then one line per tenant that changed,
      failed or is not proven (at most 50).
  returned: when O(state) is not V(gathered)
  type: list
  elements: str
  sample:
    - "2 tenants: 1 created, 0 changed, 1 unchanged, 0 failed; users: 2 created, 0 changed; 2 tenants verified, 0 incomplete"
    - "acme_corp                created   state ENABLED; admin rotated; users: app created, reporting created"
problems:
  description: Every reason the run is not complete (a failed tenant, a verification problem), one line each.
  returned: when O(state) is not V(gathered)
  type: list
  elements: str
incomplete:
  description: With O(verify), the tenants that are not proven usable, each with its C(problems).
  returned: always
  type: list
  elements: dict
gathered:
  description:
    - With O(state=gathered), PD's keyspaces (not C(DEFAULT)) as entries of O(config) (C(name), C(state) as a module
      state, C(config) with the user-owned keys only), so that the list can be given back as O(config) unchanged, as
      with a resource module. Credentials and C(users) are not included; PD knows no users and pg-tikv cannot list
      its roles.
    - PD's own view of each keyspace is in RV(keyspaces), and the proofs are in RV(verification), so that no entry
      carries a key that O(config) would refuse.
  returned: when O(state=gathered)
  type: list
  elements: dict
  contains:
    name:
      description: Tenant name.
      type: str
    state:
      description: V(present), V(disabled), V(archived) or V(tombstone) (PD's C(ENABLED), C(DISABLED), C(ARCHIVED), C(TOMBSTONE)).
      type: str
    config:
      description: The keyspace config without the keys PD manages.
      type: dict
  sample:
    - {name: acme_corp, state: present, config: {tier: gold}}
    - {name: old_corp, state: disabled, config: {}}
keyspaces:
  description:
    - With O(state=gathered), PD's view of each keyspace in RV(gathered), in the same order, C(id), C(name), C(state)
      (PD's), C(created), C(state_changed), C(config) and C(server_managed_config).
  returned: when O(state=gathered)
  type: list
  elements: dict
verification:
  description:
    - With O(state=gathered) and O(verify=true), the proof of each listed present tenant by name (tenants missing in PD
      included), each with C(complete), C(problems) and C(checks).
  returned: when O(state=gathered) and O(verify=true)
  type: dict
missing:
  description: With O(state=gathered), listed tenants that do not exist in PD.
  returned: when O(state=gathered)
  type: list
  elements: str
pd_calls:
  description:
    - How many requests of each kind were sent to PD, by C(METHOD kind). (pgtikv.cloud.pg_tikv_tenant's
      C(pd_requests) is the list of the calls themselves.)
  sample: {"GET list": 1, "GET version": 1, "POST create": 5}
  returned: always
  type: dict
notes:
  description: Remarks on the run (for example why nothing unlisted was disabled).
  returned: when O(state=overridden)
  type: list
  elements: str
seconds:
  description: Wall time of the module's work.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgtikv.cloud.plugins.module_utils._bulk import manage_fleet
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import (
    pd_argument_spec,
    secret_store_argument_spec,
    sql_argument_spec,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._module import run_module
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import MAX_PAGE_SIZE

USER_OPTIONS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    password=dict(type="raw", no_log=True),
    update_password=dict(type="str", choices=["always", "on_create"], default="always", no_log=False),
    login=dict(type="bool"),
    superuser=dict(type="bool"),
    createdb=dict(type="bool"),
    createrole=dict(type="bool"),
    conn_limit=dict(type="int"),
    unverifiable_attributes=dict(type="str", choices=["apply", "on_create"]),
)

TENANT_OPTIONS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "disabled", "archived", "tombstone"], default="present"),
    config=dict(type="dict", aliases=["keyspace_config"]),
    admin_password=dict(type="raw", no_log=True),
    update_admin_password=dict(type="str", choices=["always", "on_create"], default="always", no_log=False),
    login_user=dict(type="str"),
    login_password=dict(type="raw", no_log=True),
    confirm_tombstone=dict(type="str"),
    previous_admin_passwords=dict(type="list", elements="str", no_log=True),
    users=dict(type="list", elements="dict", default=[], options=USER_OPTIONS),
)


def argument_spec():
    spec = dict(
        config=dict(type="list", elements="dict", default=[], options=TENANT_OPTIONS),
        state=dict(type="str", choices=["merged", "overridden", "gathered"], default="merged"),
        allow_disable_unlisted=dict(type="bool", default=False),
        managed_pattern=dict(type="str"),
        verify=dict(type="bool", default=False),
        max_workers=dict(type="int", default=8),
        timeout=dict(type="float", default=1800),
        rotate=dict(type="str", choices=["none", "admin", "all"], default="none"),
        unverifiable_attributes=dict(type="str", choices=["apply", "on_create"], default="on_create"),
        list_page_size=dict(type="int", default=MAX_PAGE_SIZE),
        details=dict(type="bool", default=False),
    )
    spec.update(secret_store_argument_spec())
    spec.update(pd_argument_spec())
    spec.update(sql_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, ("requests", "psycopg2"), lambda warnings: manage_fleet(module.params, module.check_mode, module._diff, warnings))


if __name__ == "__main__":
    main()
