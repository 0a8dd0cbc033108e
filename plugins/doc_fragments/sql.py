# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection to the pg-tikv SQL endpoint (PostgreSQL wire protocol).
    DOCUMENTATION = r"""
options:
  pg_host:
    description:
      - Host of the pg-tikv server. If not set, the environment variable E(PG_HOST) is used.
    type: str
    default: 127.0.0.1
  pg_port:
    description:
      - Port of the pg-tikv server. If not set, the environment variable E(PG_PORT) is used.
    type: int
    default: 5433
  ssl_mode:
    description:
      - libpq C(sslmode) for the SQL connection.
      - pg-tikv cannot require TLS and silently serves plaintext when its certificate fails to load, so use
        V(verify-full) with O(ca_cert) wherever the network is not trusted.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA bundle used to verify the server certificate (libpq C(sslrootcert)).
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description: Seconds to wait for a SQL connection. Must be more than 0 (libpq would wait forever with 0 or less).
    type: int
    default: 10
requirements:
  - psycopg2 (C(psycopg2-binary)) on the host that runs the module
notes:
  - pg-tikv authenticates with a cleartext password only; the password crosses the network unencrypted unless TLS is used.
  - Connections always use autocommit, because pg-tikv answers C(BEGIN) with an empty response that breaks
    drivers' implicit transactions.
  - The connection names the database C(postgres). pg-tikv ignores the name, and on PostgreSQL that database must exist.
"""

    # Who the user modules log in as inside the tenant (login_argument_spec in
    # module_utils/_user.py). pg_tikv_tenant documents its own, optional pair.
    LOGIN = r"""
options:
  login_user:
    description:
      - User to log in as, inside O(tenant) (as C(<tenant>.<login_user>)); without O(tenant), exactly as given.
      - On PostgreSQL, changing roles needs C(CREATEROLE) or a superuser, and comparing a password with the stored
        verifier needs a superuser (C(pg_authid)); otherwise passwords are checked with a test login. pg-tikv enforces
        no privileges, so there any user of the tenant that can log in will do.
    type: str
    default: admin
  login_password:
    description:
      - Password of O(login_user).
      - Must be a string (quote it in YAML); a number, boolean, list or dictionary is refused, never converted.
    type: raw
    required: true
"""
