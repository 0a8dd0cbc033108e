# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes Secret backend of the write-ahead secret store.

PRIVATE: for use by this collection's plugins only; may change at any time.

One Secret per tenant in one namespace, a Lease as the store's lock. It
implements what the protocol of ``_secret_store`` asks of a backend:
``load()``, ``save(data)`` and the ``locked()`` context.

- **Names.** A tenant name may hold ``_`` and upper case, a Secret name may
  not (DNS-1123). The Secret of tenant T is
  ``<name_prefix><slug(T)>-<first 10 hex digits of sha256(T)>``: the slug is
  T lowercased with every other character turned into ``-`` (readable), the
  hash tells apart names that the slug folds together (``Foo``/``foo``,
  ``a_b``/``a-b``). The real name is in the annotation ``pgtikv.cloud/tenant``
  and in the record, and ``load`` refuses a Secret whose annotation does not
  give back its own name.
- **Writes.** ``load`` lists the store's Secrets (one read, one
  resourceVersion per Secret). ``save`` writes only the Secrets whose record
  changed: a *create* (refused by the API server when the Secret exists) for
  a tenant that had none, a *replace* carrying the resourceVersion read
  (refused when anyone wrote it since) for the others. The first refusal
  stops the save: nothing further is written and the error says which
  Secret. The API server answers a write once etcd committed it (a quorum
  wrote it to its log): that answer is the commit point of the protocol.
- **Lock.** A ``coordination.k8s.io/v1`` Lease ``<name_prefix>lock``, taken by
  create, or by replace (on its resourceVersion) when its holder is empty or
  let it expire: unchanged for ``lease_duration`` seconds as seen by the
  waiter's own monotonic clock, so that no two clocks are compared. The
  holder renews it every third of the duration from a thread and releases it
  by a delete on its resourceVersion. A holder that lost its lease (frozen
  longer than the duration, then overtaken) writes nothing more.

The API is reached through a small adapter (``KubeApi``) over the official
``kubernetes`` Python client, imported only when this backend is used, so
that tests can give a fake with the same methods.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid

from ansible_collections.pgtikv.cloud.plugins.module_utils._secret_store import STORE_FORMAT, SecretStoreError, StoreLocked, normalize

MANAGED_BY = ("app.kubernetes.io/managed-by", "pgtikv.cloud")
STORE_LABEL = "pgtikv.cloud/secret-store"
TENANT_ANNOTATION = "pgtikv.cloud/tenant"
HOLDER_ANNOTATION = "pgtikv.cloud/holder"
DATA_KEY = "record.json"
DEFAULT_PREFIX = "pgtikv-tenant-"
DEFAULT_LEASE_DURATION = 30
_MAX_NAME = 253
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*)?$")


class Conflict(SecretStoreError):
    """The API server refused a write: the object exists, or changed since it was read.
    The store turns it into a message naming the object; it never escapes as it is."""

    def __init__(self, message="the Kubernetes API refused a write: the object changed since it was read"):
        super().__init__(message)


class NotFound(SecretStoreError):
    """The object does not exist."""

    def __init__(self, message="the Kubernetes object of the secret store does not exist"):
        super().__init__(message)


# ---------------------------------------------------------------------------
# Names


def check_prefix(prefix):
    """An error message when ``prefix`` cannot start a Secret name, else None."""
    if not isinstance(prefix, str) or not prefix or len(prefix) > 100 or not _PREFIX_RE.match(prefix):
        return "secret_store.name_prefix must be lowercase letters, digits, '-' or '.', start with a letter or digit, at most 100 characters (got %r)" % (
            prefix,
        )
    return None


def secret_name(prefix, tenant):
    """The Secret of ``tenant``: deterministic, DNS-1123, told apart by a hash of the exact name."""
    digest = hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", tenant.lower()).strip("-")
    room = _MAX_NAME - len(prefix) - len(digest) - 1
    slug = slug[: max(room, 0)].strip("-")
    return "%s%s-%s" % (prefix, slug, digest) if slug else "%s%s" % (prefix, digest)


def lease_name(prefix):
    """The store's Lease (no tenant's Secret ends this way: theirs end in a hash)."""
    return prefix + "lock"


def store_label(prefix):
    """A label value telling this store's Secrets from those of another prefix."""
    return hashlib.sha256(prefix.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Records in Secrets


def _canonical(tenant, entry):
    return json.dumps(
        {"version": STORE_FORMAT, "tenant": tenant, "admin": entry.get("admin") or {}, "users": entry.get("users") or {}}, sort_keys=True, separators=(",", ":")
    )


def _decode(namespace, name, obj):
    """(tenant, entry) of a Secret of the store, or SecretStoreError (never quoting its data)."""
    where = "the Secret %s/%s of the secret store" % (namespace, name)
    raw = (obj.get("data") or {}).get(DATA_KEY)
    if not raw:
        raise SecretStoreError("%s has no %s key; restore it from a backup or delete it" % (where, DATA_KEY))
    try:
        record = json.loads(base64.b64decode(raw).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise SecretStoreError("%s does not hold a JSON record; restore it from a backup" % where) from None
    if not isinstance(record, dict) or not isinstance(record.get("tenant"), str):
        raise SecretStoreError("%s does not hold a tenant's record" % where)
    tenant = record["tenant"]
    annotated = ((obj.get("metadata") or {}).get("annotations") or {}).get(TENANT_ANNOTATION)
    if annotated != tenant:
        raise SecretStoreError("%s is annotated %s=%r but holds tenant %r; it was edited by hand: fix it" % (where, TENANT_ANNOTATION, annotated, tenant))
    entry = normalize({"tenants": {tenant: {"admin": record.get("admin"), "users": record.get("users")}}})
    return tenant, entry.get(tenant) or {}


def _holder(what, token):
    return {
        "what": what or "a pgtikv.cloud run",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "token": token,
    }


def _describe(lease):
    meta = lease.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(HOLDER_ANNOTATION)
    try:
        info = json.loads(raw)
        return "%s (pid %s on %s, since %s)" % (info.get("what"), info.get("pid"), info.get("host"), info.get("since"))
    except (TypeError, ValueError, AttributeError):
        return "%r" % ((lease.get("spec") or {}).get("holderIdentity") or "an unknown holder")


def _micro_time():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------
# The backend


class KubeSecretStore:
    """One Secret per tenant in ``namespace``, locked by a Lease.

    ``api``: an object with the methods of ``KubeApi`` (list_secrets,
    create_secret, replace_secret, delete_secret, get_lease, create_lease,
    replace_lease, delete_lease), each taking and returning plain dicts and
    raising Conflict, NotFound or SecretStoreError.
    """

    def __init__(self, api, namespace, name_prefix=DEFAULT_PREFIX, lock_timeout=120, lease_duration=DEFAULT_LEASE_DURATION, what=None, poll=0.5):
        if not namespace:
            raise SecretStoreError("the Kubernetes secret store needs a namespace")
        err = check_prefix(name_prefix)
        if err:
            raise SecretStoreError(err)
        self.api = api
        self.namespace = namespace
        self.prefix = name_prefix
        self.lock_timeout = lock_timeout
        self.lease_duration = max(3, int(lease_duration))
        self.what = what
        self.poll = poll
        self.lease = lease_name(name_prefix)
        self._seen = {}  # tenant -> (secret name, resourceVersion, canonical record)
        self._held = None  # the Lease as we last wrote it, while held
        self._lost = None  # why the lease was lost, when it was
        self._guard = threading.Lock()

    def describe(self):
        return "kubernetes:%s/%s*" % (self.namespace, self.prefix)

    # -- read / write ---------------------------------------------------------------

    def load(self):
        """Every tenant's record of the store; {} when it has no Secret yet."""
        selector = "%s=%s,%s=%s" % (MANAGED_BY[0], MANAGED_BY[1], STORE_LABEL, store_label(self.prefix))
        items = self.api.list_secrets(self.namespace, selector)
        out, seen = {}, {}
        for obj in items:
            meta = obj.get("metadata") or {}
            name = meta.get("name") or ""
            if not name.startswith(self.prefix):
                continue
            tenant, entry = _decode(self.namespace, name, obj)
            if secret_name(self.prefix, tenant) != name:
                raise SecretStoreError(
                    "the Secret %s/%s of the secret store holds tenant %r, whose Secret is %s; it "
                    "was renamed or copied by hand: fix it" % (self.namespace, name, tenant, secret_name(self.prefix, tenant))
                )
            seen[tenant] = (name, meta.get("resourceVersion"), _canonical(tenant, entry))
            if entry:
                out[tenant] = entry
        self._seen = seen
        return out

    def _body(self, tenant, name, canonical, resource_version=None):
        meta = {
            "name": name,
            "namespace": self.namespace,
            "labels": {MANAGED_BY[0]: MANAGED_BY[1], STORE_LABEL: store_label(self.prefix)},
            "annotations": {TENANT_ANNOTATION: tenant},
        }
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": meta,
            "data": {DATA_KEY: base64.b64encode(canonical.encode("utf-8")).decode("ascii")},
        }

    def _written_anyway(self, name, canonical):
        """After a refused write: the resourceVersion when the Secret already holds
        exactly ``canonical`` (our own write, retried after a lost reply), else None."""
        try:
            for obj in self.api.list_secrets(self.namespace, None, name=name):
                if (obj.get("data") or {}).get(DATA_KEY) == self._body("", name, canonical)["data"][DATA_KEY]:
                    return (obj.get("metadata") or {}).get("resourceVersion")
        except (SecretStoreError, NotFound):
            return None
        return None

    def save(self, store):
        """Write the Secrets whose record changed, each on the resourceVersion read."""
        self._check_lease()
        plain = json.loads(json.dumps(store))  # Ansible's tagged strings -> plain ones
        wanted = {tenant: _canonical(tenant, entry) for tenant, entry in plain.items()}
        for tenant in sorted(set(wanted) | set(self._seen)):
            canonical = wanted.get(tenant)
            name, version, before = self._seen.get(tenant, (secret_name(self.prefix, tenant), None, None))
            if canonical == before:
                continue
            self._check_lease()
            try:
                if canonical is None:
                    self.api.delete_secret(self.namespace, name, version)
                    self._seen.pop(tenant, None)
                    continue
                if version is None:
                    obj = self.api.create_secret(self.namespace, self._body(tenant, name, canonical))
                else:
                    obj = self.api.replace_secret(self.namespace, name, self._body(tenant, name, canonical, version))
                version = (obj.get("metadata") or {}).get("resourceVersion")
            except Conflict:
                version = self._written_anyway(name, canonical) if canonical is not None else None
                if version is None:
                    raise SecretStoreError(
                        "the Secret %s/%s of the secret store (tenant %r) %s since this run read the store; nothing "
                        "further was written. Another run or a person changed it: run again, the next run reads what "
                        "it holds now" % (self.namespace, name, tenant, "was created" if before is None else "was changed or deleted")
                    ) from None
            except NotFound:
                if canonical is None:
                    self._seen.pop(tenant, None)
                    continue
                raise SecretStoreError(
                    "the Secret %s/%s of the secret store (tenant %r) was deleted since this run "
                    "read the store; nothing further was written. Run again" % (self.namespace, name, tenant)
                ) from None
            self._seen[tenant] = (name, version, canonical)

    # -- lock ---------------------------------------------------------------------------

    def _check_lease(self):
        if self._held is None:
            raise SecretStoreError("internal error: the secret store was written without its lock")
        if self._lost:
            raise SecretStoreError(
                "this run lost the secret store's lock (the Lease %s/%s): %s; nothing further was written. Run again" % (self.namespace, self.lease, self._lost)
            )

    def _lease_body(self, holder, resource_version=None, acquire_time=None):
        meta = {
            "name": self.lease,
            "namespace": self.namespace,
            "labels": {MANAGED_BY[0]: MANAGED_BY[1], STORE_LABEL: store_label(self.prefix)},
            "annotations": {HOLDER_ANNOTATION: json.dumps(holder, sort_keys=True)},
        }
        if resource_version:
            meta["resourceVersion"] = resource_version
        now = _micro_time()
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": "%s/%s/%s" % (holder["host"], holder["pid"], holder["token"]),
                "leaseDurationSeconds": self.lease_duration,
                "acquireTime": acquire_time or now,
                "renewTime": now,
            },
        }

    def _acquire(self, holder):
        """Take the Lease, or StoreLocked after lock_timeout seconds."""
        deadline = time.monotonic() + max(0, self.lock_timeout)
        observed = None  # (resourceVersion, monotonic time we first saw it)
        last = None
        while True:
            try:
                lease = self.api.get_lease(self.namespace, self.lease)
            except NotFound:
                lease = None
            if lease is None:
                try:
                    return self.api.create_lease(self.namespace, self._lease_body(holder))
                except Conflict:
                    continue  # another run created it in between: look again
            last = lease
            meta, spec = lease.get("metadata") or {}, lease.get("spec") or {}
            version = meta.get("resourceVersion")
            if observed is None or observed[0] != version:
                observed = (version, time.monotonic())
            duration = spec.get("leaseDurationSeconds") or self.lease_duration
            free = not spec.get("holderIdentity")
            expired = time.monotonic() - observed[1] >= duration
            if free or expired:
                try:
                    return self.api.replace_lease(self.namespace, self.lease, self._lease_body(holder, version))
                except (Conflict, NotFound):
                    continue  # someone was faster, or it was released: look again
            if time.monotonic() >= deadline:
                raise StoreLocked(
                    "the secret store %s is locked by %s; waited %ss. Another run is using these credentials: let it "
                    "finish, or raise lock_timeout (a crashed run's lock expires %ss after its last renewal). Nothing "
                    "was changed" % (self.describe(), _describe(last), self.lock_timeout, duration)
                )
            time.sleep(min(self.poll, max(0.05, deadline - time.monotonic())))

    def _renew(self, holder, stop):
        """Renew the Lease every third of its duration until ``stop``."""
        while not stop.wait(self.lease_duration / 3.0):
            with self._guard:
                current = self._held
                if current is None or self._lost:
                    return
                body = self._lease_body(holder, current["metadata"].get("resourceVersion"), current["spec"].get("acquireTime"))
            try:
                renewed = self.api.replace_lease(self.namespace, self.lease, body)
            except (Conflict, NotFound):
                with self._guard:
                    self._lost = "another run took it over or it was deleted"
                return
            except SecretStoreError:
                continue  # the API server is unreachable for a moment: try again before it expires
            with self._guard:
                if self._held is not None:
                    self._held = renewed

    @contextlib.contextmanager
    def locked(self):
        """Hold the store's Lease for the whole block."""
        holder = _holder(self.what, uuid.uuid4().hex[:12])
        lease = self._acquire(holder)
        self._held, self._lost = lease, None
        stop = threading.Event()
        thread = threading.Thread(target=self._renew, args=(holder, stop), name="pgtikv-lease", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(5)
            with self._guard:
                held, lost, self._held = self._held, self._lost, None
            if held is not None and not lost:
                with contextlib.suppress(SecretStoreError, Conflict, NotFound):
                    self.api.delete_lease(self.namespace, self.lease, held["metadata"].get("resourceVersion"))


# ---------------------------------------------------------------------------
# The adapter over the official client


def _api_error(exc, what):
    """A SecretStoreError for an ApiException: its status and reason, never its body's data."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    message = ""
    try:
        message = json.loads(getattr(exc, "body", None) or "{}").get("message") or ""
    except (TypeError, ValueError, AttributeError):
        message = ""
    # The API server's messages name objects and permissions, not data; keep them short anyway.
    detail = ": %s" % message[:300] if message and status in (401, 403, 404, 422) else ""
    return SecretStoreError("the Kubernetes API refused to %s (HTTP %s %s)%s" % (what, status, reason, detail))


class KubeApi:
    """The few calls the store makes, through the ``kubernetes`` Python client."""

    def __init__(self, kubeconfig=None, context=None, timeout=30):
        try:
            from kubernetes import client, config  # pylint: disable=import-outside-toplevel
            from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel
            from kubernetes.config.config_exception import ConfigException  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise SecretStoreError(
                "secret_store backend 'kubernetes' needs the Python library 'kubernetes' on the "
                "controller (pip install kubernetes); it is not needed for the file backend"
            ) from None
        self._exc = ApiException
        self.timeout = timeout
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        default = os.path.expanduser("~/.kube/config")
        try:
            if path or os.path.exists(default) or context:
                if path and not all(os.path.exists(p) for p in path.split(os.pathsep) if p):
                    raise SecretStoreError("secret_store.kubeconfig: no such file: %s" % path)
                api_client = config.new_client_from_config(config_file=path, context=context)
            else:
                cfg = client.Configuration()
                config.load_incluster_config(client_configuration=cfg)
                api_client = client.ApiClient(cfg)
        except ConfigException as exc:
            raise SecretStoreError("cannot configure the Kubernetes client of the secret store: %s" % exc) from None
        self.core = client.CoreV1Api(api_client)
        self.coord = client.CoordinationV1Api(api_client)
        self.api_client = api_client

    def _call(self, what, fn, *args, **kwargs):
        kwargs["_request_timeout"] = self.timeout
        try:
            out = fn(*args, **kwargs)
        except self._exc as exc:
            if exc.status == 409:
                raise Conflict() from None
            if exc.status == 404:
                try:
                    kind = (json.loads(exc.body or "{}").get("details") or {}).get("kind")
                except (TypeError, ValueError, AttributeError):
                    kind = None
                if kind == "namespaces":
                    raise SecretStoreError("cannot %s: the namespace does not exist (create it, or give another secret_store.namespace)" % what) from None
                raise NotFound() from None
            raise _api_error(exc, what) from None
        except Exception as exc:  # pylint: disable=broad-except  # urllib3 raises many connection errors
            raise SecretStoreError("cannot reach the Kubernetes API to %s: %s" % (what, type(exc).__name__)) from None
        return self.api_client.sanitize_for_serialization(out) if out is not None else {}

    def list_secrets(self, namespace, selector, name=None):
        kwargs = {"label_selector": selector} if selector else {}
        if name:
            kwargs["field_selector"] = "metadata.name=%s" % name
        body = self._call("list the Secrets of namespace %s" % namespace, self.core.list_namespaced_secret, namespace, **kwargs)
        return body.get("items") or []

    def create_secret(self, namespace, body):
        return self._call("create a Secret in namespace %s" % namespace, self.core.create_namespaced_secret, namespace, body)

    def replace_secret(self, namespace, name, body):
        return self._call("replace the Secret %s/%s" % (namespace, name), self.core.replace_namespaced_secret, name, namespace, body)

    def delete_secret(self, namespace, name, resource_version):
        return self._call(
            "delete the Secret %s/%s" % (namespace, name),
            self.core.delete_namespaced_secret,
            name,
            namespace,
            body={"preconditions": {"resourceVersion": resource_version}},
        )

    def get_lease(self, namespace, name):
        return self._call("read the lease %s/%s" % (namespace, name), self.coord.read_namespaced_lease, name, namespace)

    def create_lease(self, namespace, body):
        return self._call("create the lease in namespace %s" % namespace, self.coord.create_namespaced_lease, namespace, body)

    def replace_lease(self, namespace, name, body):
        return self._call("replace the lease %s/%s" % (namespace, name), self.coord.replace_namespaced_lease, name, namespace, body)

    def delete_lease(self, namespace, name, resource_version):
        return self._call(
            "delete the lease %s/%s" % (namespace, name),
            self.coord.delete_namespaced_lease,
            name,
            namespace,
            body={"preconditions": {"resourceVersion": resource_version}},
        )
