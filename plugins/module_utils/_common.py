# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option specs, validation and secret helpers.

PRIVATE: for use by this collection's modules only; may change at any time.
"""

from __future__ import annotations

import os
import re
import secrets
import string
from urllib.parse import quote

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


class TaskError(Exception):
    """Why a module's task failed, and its result so far.

    Raised by the function each module's ``main()`` calls; the module reports
    ``result`` (what was done before the failure: ``changed`` stays true after
    a write) with ``message`` as its ``msg``. ``kind`` classifies the failure;
    ``library``: the Python library whose absence caused it (kind
    ``missing_library``), reported the way Ansible reports one.
    """

    def __init__(self, message, kind="error", result=None, library=None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.result = result if result is not None else {}
        self.library = library

    def __str__(self):
        return self.message


def tenant_name_error(name):
    """Return a human message if ``name`` is not a valid tenant name, else None."""
    if not isinstance(name, str) or name == "":
        return "tenant name must be a non-empty string"
    if name in PD_PROTECTED_KEYSPACES:
        return "tenant name %r is PD's reserved keyspace and can never be a tenant" % name
    if name in RESERVED_TENANT_NAMES:
        return "tenant name %r is reserved: %s" % (name, RESERVED_TENANT_NAMES[name])
    # fullmatch: with match(), '$' also matches before a final newline, so
    # "abc\n" would pass.
    if not TENANT_NAME_PATTERN.fullmatch(name):
        return "invalid tenant name %r: use 3-64 characters, lowercase letters, digits and underscore only (e.g. acme_corp)" % name
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
        return (
            "invalid tenant name %r: PD keyspace names have only letters, digits, '-' and '_' (and never '.' "
            "or ':', which separate tenant and user in a pg-tikv login name)" % name
        )
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


def password_type_error(password, what="password"):
    """A message when ``password`` is given but is not a string, else None.

    Password options are typed ``raw`` so that this check sees the value as
    given: with ``type: str`` Ansible would silently turn a list or a
    dictionary into its Python repr and use that as the password. YAML
    numbers and booleans are refused too: ``0777`` arrives as 511 and ``yes``
    as True, so their string form is not what was typed.
    """
    if password is None or isinstance(password, str):
        return None
    return "%s must be a string, not %s; quote it in YAML so that it is used exactly as written" % (what, _type_phrase(password))


def _type_phrase(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a dictionary"
    return "a %s" % type(value).__name__


def password_error(password, what="password"):
    if password is None:
        return None
    err = password_type_error(password, what)
    if err:
        return err
    if password == "":
        return "%s must not be empty (an empty password lets any client in on pg-tikv)" % what
    if "\x00" in password:
        return "%s must not contain a NUL character" % what
    return None


def generate_password(length=GENERATED_PASSWORD_LENGTH):
    """A strong random password from the stdlib CSPRNG."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _index in range(length))


def pd_argument_spec():
    """Options of the PD connection; documented in doc fragment pgtikv.cloud.pd."""
    return dict(
        pd_endpoints=dict(type="list", elements="str", fallback=(env_fallback, ["PD_ENDPOINTS"]), default=["127.0.0.1:2379"]),
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
        ssl_mode=dict(type="str", default="prefer", choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
        connect_timeout=dict(type="int", default=10),
    )


def secret_store_argument_spec():
    """secret_store; documented in doc fragment pgtikv.cloud.secret_store. The
    action plugins handle it on the controller; the modules never see it."""
    return dict(
        secret_store=dict(
            type="dict",
            no_log=False,
            options=dict(
                backend=dict(type="str", choices=["file", "kubernetes"], default="file"),
                path=dict(type="path"),
                lock_timeout=dict(type="int", default=120),
                vault_encrypt=dict(type="str", choices=["auto", "always", "never"], default="auto"),
                vault_id=dict(type="str"),
                namespace=dict(type="str"),
                kubeconfig=dict(type="path"),
                context=dict(type="str"),
                name_prefix=dict(type="str", default="pgtikv-tenant-"),
                lease_duration=dict(type="int", default=30),
            ),
            required_if=[("backend", "file", ["path"]), ("backend", "kubernetes", ["namespace"])],
        )
    )


def option_errors(argument_spec, params):
    """Errors of the options every module shares, found before any work
    (list of messages; the module fails with them and changes nothing):

    - every secret option (``no_log: true``, nested ones included, e.g. the
      bulk module's users[].password) must be a string (password_type_error);
    - timeouts must be positive: libpq reads 0 or a negative connect_timeout
      as "wait forever", and a negative socket timeout is a Python error;
    - pd_retries must be 0 or more;
    - the PD TLS files must exist and be readable (requests would raise a bare
      OSError on the first request).
    """
    errors = []
    _secret_type_errors(argument_spec, params, "", errors)
    for key in ("pd_timeout", "connect_timeout"):
        value = params.get(key)
        if key in argument_spec and value is not None and value <= 0:
            errors.append("%s must be a positive number of seconds, not %s (0 or less would wait forever or is invalid)" % (key, value))
    retries = params.get("pd_retries")
    if "pd_retries" in argument_spec and retries is not None and retries < 0:
        errors.append("pd_retries must be 0 or more, not %s" % retries)
    for key in ("pd_ca_cert", "pd_client_cert", "pd_client_key"):
        path = params.get(key)
        if key in argument_spec and path:
            if not os.path.isfile(path):
                errors.append("%s: no such file: %s" % (key, path))
            elif not os.access(path, os.R_OK):
                errors.append("%s: the file is not readable: %s" % (key, path))
    return errors


def _secret_values(spec, params, prefix=""):
    """(container, key, label, value) of every secret option (``no_log``)
    that is set, nested options included; ``label`` names it for a person,
    e.g. ``config[0] (acme).users[1] (app).password``."""
    for key, option in spec.items():
        value = (params or {}).get(key)
        if value is None:
            continue
        if option.get("no_log"):
            if option.get("type") == "list" and isinstance(value, list):
                # A list of secrets (previous_admin_passwords): each must be a string.
                for index, item in enumerate(value):
                    yield value, index, "%s%s[%d]" % (prefix, key, index), item
            else:
                yield params, key, prefix + key, value
        suboptions = option.get("options")
        if suboptions:
            entries = value if isinstance(value, list) else [value]
            for index, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    continue
                label = "%s%s[%d]" % (prefix, key, index) if isinstance(value, list) else prefix + key
                if isinstance(entry.get("name"), str):
                    label += " (%s)" % entry["name"]
                yield from _secret_values(suboptions, entry, label + ".")


def _secret_type_errors(spec, params, prefix, errors):
    for _container, _key, label, value in _secret_values(spec, params, prefix):
        err = password_type_error(value, label)
        if err:
            errors.append(err)


def hide_non_string_secrets(argument_spec, params):
    """Replace, in ``params``, every secret option whose value is not a string
    by Ansible's no_log placeholder. Ansible masks the values inside a list or
    dictionary given to a no_log option but echoes the keys of a dictionary
    (``password: {Secret}`` in YAML is the dictionary {"Secret": null}), so a
    module refusing such a value scrubs it before its arguments are echoed."""
    for container, key, _label, value in list(_secret_values(argument_spec, params)):
        if not isinstance(value, str):
            container[key] = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def sql_params_from(params):
    """The dict _sql_client expects: the options of sql_argument_spec(), from module params."""
    return {key: params.get(key) for key in sql_argument_spec()}


def build_dsn(host, port, login, password=None, ssl_mode=None, dbname="postgres", ca_cert=None):
    """A libpq URI. Every part is percent-encoded with ``safe=''``, so ``@``,
    ``:``, ``/``, ``%``, ``#``, ``?`` and quotes in a password cannot break it
    (the seed CLI's bug 2, reference/pg-tikv-server.md §6.1)."""
    host = str(host)
    if ":" in host and not host.startswith("["):
        host_part = "[%s]" % host
    else:
        host_part = quote(host, safe="[]")
    user_part = quote(login, safe="")
    if password is not None:
        user_part += ":" + quote(password, safe="")
    dsn = "postgresql://%s@%s:%s/%s" % (user_part, host_part, int(port), quote(dbname, safe=""))
    query = []
    if ssl_mode:
        query.append("sslmode=" + quote(ssl_mode, safe=""))
    if ca_cert:
        query.append("sslrootcert=" + quote(ca_cert, safe=""))
    if query:
        dsn += "?" + "&".join(query)
    return dsn


def connection_info(sql_params, tenant, user=BOOTSTRAP_ADMIN_USER, password=None):
    """host, port, login name, a password-less DSN and, only when ``password``
    is given, ``full_dsn`` (percent-encoded)."""
    host = sql_params.get("pg_host") or "127.0.0.1"
    port = int(sql_params.get("pg_port") or 5433)
    login = "%s.%s" % (tenant, user)
    info = {
        "host": host,
        "port": port,
        "user": login,
        "database": "postgres",
        "dsn": build_dsn(host, port, login, None, sql_params.get("ssl_mode"), ca_cert=sql_params.get("ca_cert")),
    }
    if password is not None:
        info["full_dsn"] = build_dsn(host, port, login, password, sql_params.get("ssl_mode"), ca_cert=sql_params.get("ca_cert"))
    return info
