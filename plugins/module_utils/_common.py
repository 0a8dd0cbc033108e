# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option specs, validation and secret helpers.

PRIVATE: for use by this collection's modules only; may change at any time.
"""

from __future__ import annotations

import re
import secrets
import string

from ansible.module_utils.basic import env_fallback

# The rule for tenants this collection CREATES: the seed CLI's documented rule
# (3-64 characters, lowercase letters, digits, underscore). Stricter than PD
# and never '.' or ':', which pg-tikv uses to split '<tenant>.<user>'
# (reference/pg-tikv-server.md §1.1). Always used with fullmatch: re.match
# with '$' would accept a trailing newline.
TENANT_NAME_PATTERN = re.compile(r"[a-z0-9_]{3,64}")

# The rule for keyspaces that EXIST already (read, rotate, lock, users): any
# name PD itself accepts on create, letters, digits, '-' and '_' (unbounded
# on PD v8.x, at most 20 characters on recent PD; reference/pd-keyspace-api.md
# §2, pg-tikv-server.md §1.3). Such names never hold '.' or ':'. The seed CLI
# and plain PD clients create names like 'Upper_T' that the creation rule
# refuses; their bootstrap admin/admin must still be rotatable.
PD_KEYSPACE_NAME_PATTERN = re.compile(r"[-A-Za-z0-9_]+")

# Names that are legal by the pattern but must never be managed as tenants:
# - 'default': pg-tikv's own startup keyspace, used for logins without a
#   tenant prefix (reference/pg-tikv-server.md §1.2);
# - 'id': shares a route prefix with GET /pd/api/v2/keyspaces/id/{id}
#   (reference/pd-keyspace-api.md §1.5).
RESERVED_TENANT_NAMES = {
    "default": "it is pg-tikv's own startup keyspace, used by logins without a tenant prefix",
    "id": "GET /pd/api/v2/keyspaces/id collides with PD's /id/{id} route",
}

# PD's reserved keyspace (reference/pd-keyspace-api.md §2, §3): any state PUT
# on it fails, even a no-op.
PD_PROTECTED_KEYSPACES = ("DEFAULT", "SYSTEM")

BOOTSTRAP_ADMIN_USER = "admin"
BOOTSTRAP_ADMIN_PASSWORD = "admin"  # nosec - pg-tikv's documented bootstrap credential (reference/pg-tikv-server.md §2.2)

# Generated passwords: letters and digits plus punctuation that needs no
# quoting in a shell, a YAML scalar or a URI userinfo after percent-encoding.
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.~+!*"
GENERATED_PASSWORD_LENGTH = 32


def tenant_name_error(name):
    """Return a human message if ``name`` is not a valid tenant name, else None."""
    if not isinstance(name, str) or name == "":
        return "tenant name must be a non-empty string"
    if name in PD_PROTECTED_KEYSPACES:
        return "tenant name %r is PD's reserved keyspace and can never be a tenant" % name
    if name in RESERVED_TENANT_NAMES:
        return "tenant name %r is reserved: %s" % (name, RESERVED_TENANT_NAMES[name])
    if not TENANT_NAME_PATTERN.fullmatch(name):
        return (
            "invalid tenant name %r: use 3-64 characters, lowercase letters, digits "
            "and underscore only (e.g. acme_corp)" % name
        )
    return None


def existing_tenant_name_error(name):
    """Return a human message if ``name`` cannot be an existing tenant, else None.

    Lenient on purpose: a keyspace created outside this collection (seed CLI,
    raw PD API) may have any name PD accepts, and it can be read, rotated,
    locked and get users. Only PD's own reserved keyspaces are refused. Creating
    a tenant still needs :func:`tenant_name_error`.
    """
    if not isinstance(name, str) or name == "":
        return "tenant name must be a non-empty string"
    if name in PD_PROTECTED_KEYSPACES:
        return "tenant name %r is PD's reserved keyspace and can never be a tenant" % name
    if not PD_KEYSPACE_NAME_PATTERN.fullmatch(name):
        return ("invalid tenant name %r: PD keyspace names have only letters, digits, '-' and '_' (and never '.' "
                "or ':', which separate tenant and user in a pg-tikv login name)" % name)
    return None


def user_name_error(name):
    """Return a human message if ``name`` cannot be a user name, else None.

    Any text is allowed and is quoted as an identifier; NUL cannot cross the
    wire, and PostgreSQL truncates identifiers above 63 bytes silently.
    """
    if not isinstance(name, str) or name == "":
        return "user name must be a non-empty string"
    if "\x00" in name:
        return "user name must not contain a NUL character"
    if len(name.encode("utf-8")) > 63:
        return "user name %r is longer than 63 bytes (PostgreSQL would truncate it)" % name
    return None


def password_error(password, what="password"):
    if password is None:
        return None
    if password == "":
        return "%s must not be empty (an empty password lets any client in on pg-tikv, reference/pg-tikv-server.md §2.6)" % what
    if "\x00" in password:
        return "%s must not contain a NUL character" % what
    return None


def generate_password(length=GENERATED_PASSWORD_LENGTH):
    """A strong random password from the stdlib CSPRNG."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _index in range(length))


def pd_argument_spec():
    """Options of the PD connection; documented in doc fragment pgtikv.cloud.pd."""
    return dict(
        pd_endpoints=dict(type="list", elements="str", fallback=(env_fallback, ["PD_ENDPOINTS"]),
                          default=["127.0.0.1:2379"]),
        pd_timeout=dict(type="float", default=10.0),
        pd_retries=dict(type="int", default=3),
        pd_ca_cert=dict(type="path", fallback=(env_fallback, ["PD_CA_CERT"])),
        pd_client_cert=dict(type="path", fallback=(env_fallback, ["PD_CLIENT_CERT"])),
        pd_client_key=dict(type="path", no_log=False, fallback=(env_fallback, ["PD_CLIENT_KEY"])),
        pd_validate_certs=dict(type="bool", default=True),
    )


def sql_argument_spec():
    """Options of the SQL connection; documented in doc fragment pgtikv.cloud.sql."""
    return dict(
        pg_host=dict(type="str", fallback=(env_fallback, ["PG_HOST"]), default="127.0.0.1"),
        pg_port=dict(type="int", fallback=(env_fallback, ["PG_PORT"]), default=5433),
        ssl_mode=dict(type="str", default="prefer",
                      choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
        connect_timeout=dict(type="int", default=10),
    )


def sql_params_from(params):
    """The dict _sql_client expects: the options of sql_argument_spec(), from module params."""
    return {key: params.get(key) for key in sql_argument_spec()}
