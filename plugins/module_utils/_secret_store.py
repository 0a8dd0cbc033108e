# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The write-ahead secret store: credentials that are never lost.

PRIVATE: for use by this collection's plugins only; may change at any time.

Every credential the collection generates or rotates goes through a two-phase
protocol, so that at every instant the store holds a password that logs in:

1. generate, and store it as *pending* (durably: fsync + atomic rename)
   before any server can accept it;
2. apply it (create the keyspace and rotate admin/admin, ALTER ROLE ...);
3. prove it by a login;
4. promote it: *previous* <- *current* <- *pending*.

A run interrupted anywhere leaves *pending* beside *current*. The next run
takes *pending* as the password to converge to and tries *current* and
*previous* to log in, so an interrupted creation or rotation is finished and
a lost reply (the server committed, the client never heard) is recovered.

The record of one credential is ``{"current": str, "pending": str,
"previous": str}``, each key optional. A store holds
``{tenant: {"admin": record, "users": {user: record}}}``.

What is here has no Ansible dependency beyond PyYAML (which ansible-core
requires), so that both the controller-side action plugins and tests use it.
Encryption is a pair of callables given by the caller (ansible-vault on the
controller). A backend implements ``load()``, ``save(data)`` and the
``locked()`` context: the file backend below, and the Kubernetes Secret
backend in ``_kube_store``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import tempfile
import time

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML; the store runs on the controller
    yaml = None
    _LOADER = _DUMPER = None
else:
    # libyaml's loader and dumper when PyYAML has them: a store of 10,000
    # tenants reads and writes in a fraction of the pure-Python time.
    _LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    _DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

STORE_FORMAT = 2

_HEADER = (
    "# pgtikv.cloud secret store: passwords of pg-tikv tenants. Keep this file secret.\n"
    "# tenants.<tenant>.admin is the admin credential (log in as <tenant>.admin), users.<user> the users'.\n"
    "# current: the password in use; pending: a new one being applied (the next run finishes it);\n"
    "# previous: the one before the last rotation. Written by pgtikv.cloud; edit only as the README says.\n"
)


class SecretStoreError(Exception):
    """The store cannot be read, written or locked. The message stands alone."""


class StoreLocked(SecretStoreError):
    """Another run holds the store's lock."""


# ---------------------------------------------------------------------------
# Records: pure functions on the store's data


def _record(value):
    """A credential record from what a file holds (a plain string is the
    format-1 file of the tenants role: the current password)."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"current": value}
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in ("current", "pending", "previous") and isinstance(v, str) and v}
    raise SecretStoreError("the secret store holds a credential that is neither a password nor a record")


def normalize(data):
    """The store's data in format 2, whatever format the file had."""
    tenants = (data or {}).get("tenants") or {}
    if not isinstance(tenants, dict):
        raise SecretStoreError("the secret store's 'tenants' is not a mapping")
    out = {}
    for name, entry in tenants.items():
        entry = entry or {}
        if not isinstance(entry, dict):
            raise SecretStoreError("the secret store's entry for tenant %r is not a mapping" % name)
        admin = _record(entry.get("admin"))
        if "admin_previous" in entry and entry["admin_previous"]:  # format 1
            admin.setdefault("previous", entry["admin_previous"])
        users = {}
        for uname, value in (entry.get("users") or {}).items():
            rec = _record(value)
            if rec:
                users[str(uname)] = rec
        tenant = {}
        if admin:
            tenant["admin"] = admin
        if users:
            tenant["users"] = users
        if tenant:
            out[str(name)] = tenant
    return out


def get_record(store, tenant, user=None):
    """The record of ``tenant``'s admin (user None) or of one of its users."""
    entry = store.get(tenant) or {}
    if user is None:
        return dict(entry.get("admin") or {})
    return dict((entry.get("users") or {}).get(user) or {})


def set_record(store, tenant, record, user=None):
    """Store ``record`` (dropping empty ones)."""
    entry = store.setdefault(tenant, {})
    record = {k: v for k, v in record.items() if v}
    if user is None:
        if record:
            entry["admin"] = record
        else:
            entry.pop("admin", None)
    else:
        users = entry.setdefault("users", {})
        if record:
            users[user] = record
        else:
            users.pop(user, None)
        if not users:
            entry.pop("users", None)
    if not entry:
        store.pop(tenant, None)


def target_password(record):
    """The password to converge to: pending if a change is under way, else current."""
    return record.get("pending") or record.get("current")


def login_candidates(record):
    """Other passwords the credential may have now, best first (never the target)."""
    target = target_password(record)
    out = []
    for key in ("current", "previous"):
        value = record.get(key)
        if value and value != target and value not in out:
            out.append(value)
    return out


def prepare(record, generate, rotate=False):
    """Give ``record`` a pending password when it needs a new one: none is
    known, or ``rotate`` and no change is under way already (an interrupted
    change is finished with the password it stored, never a fresh one that
    would orphan it). Returns (record, True when a pending was added)."""
    record = dict(record)
    if record.get("pending"):
        return record, False
    if not record.get("current") or rotate:
        record["pending"] = generate()
        return record, True
    return record, False


def promote(record):
    """After the pending password was proven to log in."""
    record = dict(record)
    pending = record.pop("pending", None)
    if not pending:
        return record
    if record.get("current") and record["current"] != pending:
        record["previous"] = record["current"]
    record["current"] = pending
    return record


def settle(record):
    """After ``current`` was proven to log in while a pending one was not
    applied (only when the caller stopped wanting the change): drop pending."""
    record = dict(record)
    record.pop("pending", None)
    return record


def counts(store):
    """How many credentials are current and how many pending (no secrets)."""
    current = pending = 0
    for entry in store.values():
        records = [entry.get("admin") or {}] + list((entry.get("users") or {}).values())
        for rec in records:
            current += 1 if rec.get("current") else 0
            pending += 1 if rec.get("pending") else 0
    return {"current": current, "pending": pending}


# ---------------------------------------------------------------------------
# The file backend


def _holder_text(what):
    return json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "what": what or "a pgtikv.cloud run"}
    )


def _describe_holder(raw):
    try:
        info = json.loads(raw)
        return "%s (pid %s on %s, since %s)" % (info.get("what"), info.get("pid"), info.get("host"), info.get("since"))
    except (ValueError, AttributeError):
        return "an unknown process"


class FileStore:
    """A YAML file, mode 0600 in a 0700 directory, optionally encrypted,
    replaced atomically on every save, with an exclusive lock beside it.

    ``encrypt``/``decrypt``: callables text -> text (ansible-vault), or None.
    ``is_encrypted``: callable text -> bool, telling an encrypted file.
    """

    def __init__(self, path, encrypt=None, decrypt=None, is_encrypted=None, lock_timeout=60, what=None):
        if not path:
            raise SecretStoreError("the secret store needs a path")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.lock_path = self.path + ".lock"
        self.encrypt = encrypt
        self.decrypt = decrypt
        self.is_encrypted = is_encrypted or (lambda text: text.startswith("$ANSIBLE_VAULT;"))
        self.lock_timeout = lock_timeout
        self.what = what
        self._lock_fd = None
        self.was_encrypted = None

    def describe(self):
        return self.path

    # -- lock ---------------------------------------------------------------

    def _ensure_dir(self):
        directory = os.path.dirname(self.path)
        if os.path.isdir(directory):
            return
        try:
            os.makedirs(directory, mode=0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise SecretStoreError("cannot create the secret store's directory %s: %s" % (directory, exc.strerror or exc)) from None

    @contextlib.contextmanager
    def locked(self):
        """Hold the store's exclusive lock; wait up to lock_timeout seconds,
        then fail naming the holder. The kernel releases it if we die."""
        self._ensure_dir()
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SecretStoreError("cannot open the secret store's lock file %s: %s" % (self.lock_path, exc.strerror or exc)) from None
        deadline = time.monotonic() + max(0, self.lock_timeout)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise SecretStoreError("cannot lock the secret store %s: %s" % (self.path, exc.strerror or exc)) from None
                if time.monotonic() >= deadline:
                    try:
                        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                    except OSError:
                        holder = ""
                    raise StoreLocked(
                        "the secret store %s is locked by %s; waited %ss. Another run is using these credentials: "
                        "let it finish, or raise lock_timeout. Nothing was changed" % (self.path, _describe_holder(holder), self.lock_timeout)
                    )
                time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text(self.what).encode(), 0)
            self._lock_fd = fd
            yield self
        finally:
            self._lock_fd = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing releases the flock

    # -- read / write ---------------------------------------------------------

    def load(self):
        """The store's data (format 2); {} when the file does not exist yet."""
        if yaml is None:
            raise SecretStoreError("the secret store needs PyYAML")
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.was_encrypted = None
            return {}
        except OSError as exc:
            raise SecretStoreError("cannot read the secret store %s: %s" % (self.path, exc.strerror or exc)) from None
        if st.st_mode & 0o077:
            raise SecretStoreError("the secret store %s has mode %04o: others may read the passwords; run chmod 600 on it" % (self.path, st.st_mode & 0o777))
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise SecretStoreError("cannot read the secret store %s: %s" % (self.path, exc.strerror or exc)) from None
        self.was_encrypted = self.is_encrypted(text)
        if self.was_encrypted:
            if self.decrypt is None:
                raise SecretStoreError(
                    "the secret store %s is vault-encrypted and no vault password is available; "
                    "give one (--vault-password-file, --ask-vault-pass or "
                    "ANSIBLE_VAULT_PASSWORD_FILE). Nothing was changed" % self.path
                )
            try:
                text = self.decrypt(text)
            except Exception as exc:  # pylint: disable=broad-except  # vault raises several types
                raise SecretStoreError(
                    "cannot decrypt the secret store %s (wrong vault password?): %s. Nothing was changed" % (self.path, type(exc).__name__)
                ) from None
        try:
            data = yaml.load(text, Loader=_LOADER) or {}  # nosec B506 - a safe loader
        except yaml.YAMLError:
            raise SecretStoreError(
                "the secret store %s is not valid YAML; nothing was changed. Restore it from a backup or fix it by hand" % self.path
            ) from None
        if not isinstance(data, dict):
            raise SecretStoreError("the secret store %s does not hold a mapping" % self.path)
        return normalize(data)

    def save(self, store):
        """Replace the file atomically and durably: a temporary file in the same
        directory, fsync, rename over the old one, fsync the directory."""
        if self._lock_fd is None:
            raise SecretStoreError("internal error: the secret store was written without its lock")
        # Through JSON first: the names may be str subclasses (Ansible's tagged
        # strings) that a safe YAML dumper refuses.
        plain = json.loads(json.dumps({"version": STORE_FORMAT, "tenants": store}))
        body = _HEADER + yaml.dump(plain, Dumper=_DUMPER, default_flow_style=False, sort_keys=True)
        encrypt = self.encrypt if (self.was_encrypted or self.was_encrypted is None) else None
        if self.was_encrypted and self.encrypt is None:
            raise SecretStoreError("the secret store %s is vault-encrypted but no vault password is available to write it" % self.path)
        if encrypt is not None:
            body = encrypt(body)
            self.was_encrypted = True
        elif self.was_encrypted is None:
            self.was_encrypted = False
        directory = os.path.dirname(self.path)
        self._ensure_dir()
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(self.path), suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            tmp = None
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise SecretStoreError("cannot write the secret store %s: %s" % (self.path, exc.strerror or exc)) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


# ---------------------------------------------------------------------------
# A fleet (the pg_tikv_tenants ``config`` list) against the store

ROTATE_CHOICES = ("none", "admin", "all")


def _stored_record(store, tenant, user, generate, may_generate, rotate):
    """The record of one credential; when ``may_generate``, first given a
    pending password if it needs one (see prepare). Returns (record, added)."""
    record = get_record(store, tenant, user)
    if not may_generate:
        return record, 0
    record, new = prepare(record, generate, rotate=rotate)
    if new:
        set_record(store, tenant, record, user)
    return record, int(new)


def _fill_admin(store, params, generate, may_generate, rotate):
    """``params`` (a tenant entry or pg_tikv_tenant's arguments, copied) with the
    stored admin credential unless admin_password is declared."""
    params = dict(params)
    name = params.get("name")
    if params.get("admin_password") or not isinstance(name, str):
        return params, 0
    present = (params.get("state") or "present") == "present"
    record, added = _stored_record(store, name, None, generate, may_generate and present, rotate)
    target = target_password(record)
    if target:
        params["admin_password"] = target
        params["update_admin_password"] = "always"
        params["previous_admin_passwords"] = login_candidates(record)
    return params, added


def _fill_user_password(store, tenant, entry, generate, may_generate, rotate):
    """``entry`` (a user entry or pg_tikv_user's arguments, copied) with the
    stored password unless one is declared or the user is to be absent."""
    entry = dict(entry)
    name = entry.get("name")
    if entry.get("password") or (entry.get("state") or "present") != "present" or not isinstance(name, str):
        return entry, 0
    record, added = _stored_record(store, tenant, name, generate, may_generate, rotate)
    target = target_password(record)
    if target:
        entry["password"] = target
        entry["update_password"] = "always"
    return entry, added


def fill_fleet(store, items, generate, rotate="none", check_mode=False):
    """The ``config`` list to hand to the module, with every credential that is
    not declared taken from the store: the password to converge to (pending
    if a change is under way, else current) and the others as login
    candidates. Outside check mode, a credential of a present tenant that
    needs a new password (none known, or ``rotate``) gets a pending one here,
    BEFORE the module runs. Declared passwords are the caller's and never stored.

    Returns (items, added): ``added`` counts the pending passwords added, so
    that the caller saves the store before it runs anything when it is > 0.
    """
    out = []
    added = 0
    for item in items:
        item, n = _fill_admin(store, item, generate, not check_mode, rotate in ("admin", "all"))
        added += n
        present = (item.get("state") or "present") == "present"
        if "users" in item:
            users = []
            for entry in item.get("users") or []:
                entry, n = _fill_user_password(store, item.get("name"), entry, generate, present and not check_mode, rotate == "all")
                added += n
                users.append(entry)
            item["users"] = users
        out.append(item)
    return out, added


def _promote_if_proven(store, tenant, user, proven):
    """Promote the pending password of one credential when ``proven``; 1 if it was."""
    record = get_record(store, tenant, user)
    if not proven or not record.get("pending"):
        return 0
    set_record(store, tenant, promote(record), user)
    return 1


def promote_fleet(store, declared, results):
    """Promote every pending password that the module proved by a login.

    ``declared``: the caller's own ``config`` list (to skip declared
    passwords); ``results``: the module's per-tenant results with their
    ``proven`` entry. Returns how many credentials were promoted."""
    proven = {t.get("name"): t.get("proven") or {} for t in results or [] if isinstance(t, dict)}
    promoted = 0
    for item in declared:
        name = item.get("name")
        seen = proven.get(name) or {}
        if not item.get("admin_password"):
            promoted += _promote_if_proven(store, name, None, seen.get("admin"))
        proven_users = set(seen.get("users") or [])
        for entry in item.get("users") or []:
            if not entry.get("password"):
                promoted += _promote_if_proven(store, name, entry.get("name"), entry.get("name") in proven_users)
    return promoted


# ---------------------------------------------------------------------------
# One tenant's admin (pg_tikv_tenant) and one user (pg_tikv_user)


def fill_admin(store, params, generate, check_mode=False):
    """pg_tikv_tenant's arguments with the stored admin credential when
    admin_password is not declared. Returns (params, pending added)."""
    return _fill_admin(store, params, generate, not check_mode, False)


def promote_admin(store, declared, result):
    """Promote the tenant's pending admin password when the module proved it."""
    name = declared.get("name")
    if declared.get("admin_password") or not isinstance(name, str):
        return 0
    return _promote_if_proven(store, name, None, (result or {}).get("admin_login_proven"))


def fill_user(store, params, generate, check_mode=False):
    """pg_tikv_user's arguments with the stored password of the user when none
    is declared, and (when no login is given) the tenant's stored admin to log
    in with. Returns (params, pending added)."""
    params = dict(params)
    tenant = params.get("tenant")
    if not isinstance(tenant, str):
        return params, 0
    if not params.get("login_password"):
        admin = target_password(get_record(store, tenant))
        if admin and params.get("login_user") in (None, "admin"):
            params["login_user"] = "admin"
            params["login_password"] = admin
    return _fill_user_password(store, tenant, params, generate, not check_mode, False)


def promote_user(store, declared, result):
    """Promote the user's pending password when the module proved it."""
    tenant, name = declared.get("tenant"), declared.get("name")
    if declared.get("password") or not isinstance(tenant, str) or not isinstance(name, str):
        return 0
    return _promote_if_proven(store, tenant, name, (result or {}).get("password_proven"))
