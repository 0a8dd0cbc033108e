# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes Secret backend of the secret store, against a fake API that
keeps resourceVersions the way the API server does (a write carrying a stale
one is refused, a create of an existing name is refused)."""

from __future__ import annotations

import base64
import copy
import json
import re
import sys
import threading
import time

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _kube_store as ks
from ansible_collections.pgtikv.cloud.plugins.module_utils._secret_store import SecretStoreError, StoreLocked

NS = "tenants-store"
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class FakeApi:
    """Secrets and Leases of one namespace, with resourceVersion checks."""

    def __init__(self):
        self.objects = {}  # (kind, name) -> object
        self.version = 100
        self.writes = []  # (verb, kind, name)
        self.guard = threading.Lock()
        self.fail_next_reply = None  # verb whose next reply is lost after the write is done

    def _stamp(self, obj):
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.version)
        return obj

    def _create(self, kind, body):
        with self.guard:
            name = body["metadata"]["name"]
            if (kind, name) in self.objects:
                raise ks.Conflict()
            self.objects[(kind, name)] = self._stamp(body)
            self.writes.append(("create", kind, name))
            return copy.deepcopy(self.objects[(kind, name)])

    def _replace(self, kind, name, body):
        with self.guard:
            current = self.objects.get((kind, name))
            if current is None:
                raise ks.NotFound()
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise ks.Conflict()
            self.objects[(kind, name)] = self._stamp(body)
            self.writes.append(("replace", kind, name))
            out = copy.deepcopy(self.objects[(kind, name)])
        if self.fail_next_reply == "replace":
            self.fail_next_reply = None
            raise ks.Conflict()  # as a client that retried a PUT whose first reply was lost
        return out

    def _delete(self, kind, name, version):
        with self.guard:
            current = self.objects.get((kind, name))
            if current is None:
                raise ks.NotFound()
            if version and version != current["metadata"]["resourceVersion"]:
                raise ks.Conflict()
            del self.objects[(kind, name)]
            self.writes.append(("delete", kind, name))
            return {}

    def list_secrets(self, namespace, selector, name=None):
        wanted = dict(pair.split("=") for pair in selector.split(",")) if selector else {}
        with self.guard:
            return [
                copy.deepcopy(o)
                for (kind, n), o in sorted(self.objects.items())
                if kind == "Secret" and (name is None or n == name) and all(o["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
            ]

    def create_secret(self, namespace, body):
        return self._create("Secret", body)

    def replace_secret(self, namespace, name, body):
        return self._replace("Secret", name, body)

    def delete_secret(self, namespace, name, version):
        return self._delete("Secret", name, version)

    def get_lease(self, namespace, name):
        with self.guard:
            if ("Lease", name) not in self.objects:
                raise ks.NotFound()
            return copy.deepcopy(self.objects[("Lease", name)])

    def create_lease(self, namespace, body):
        return self._create("Lease", body)

    def replace_lease(self, namespace, name, body):
        return self._replace("Lease", name, body)

    def delete_lease(self, namespace, name, version):
        return self._delete("Lease", name, version)

    def secret_writes(self):
        return [w for w in self.writes if w[1] == "Secret"]


def store(api, **kwargs):
    kwargs.setdefault("lock_timeout", 1)
    kwargs.setdefault("poll", 0.02)
    return ks.KubeSecretStore(api, NS, **kwargs)


def record_of(api, name):
    obj = api.objects[("Secret", name)]
    return json.loads(base64.b64decode(obj["data"][ks.DATA_KEY]))


# -- names -------------------------------------------------------------------------


def test_secret_names_are_dns1123_deterministic_and_tell_folded_names_apart():
    names = ["Foo_Bar", "foo_bar", "foo-bar", "foo.bar", "FOO__BAR", "_", "x" * 300, "ü_ñ"]
    secrets = [ks.secret_name("pgtikv-tenant-", n) for n in names]
    assert len(set(secrets)) == len(names)
    for secret in secrets:
        assert DNS1123.match(secret) and len(secret) <= 253, secret
    assert ks.secret_name("pgtikv-tenant-", "Foo_Bar") == ks.secret_name("pgtikv-tenant-", "Foo_Bar")
    assert ks.secret_name("pgtikv-tenant-", "Foo_Bar").startswith("pgtikv-tenant-foo-bar-")
    # No tenant's Secret can be named like the Lease: theirs end in a hash.
    assert ks.lease_name("p-") not in [ks.secret_name("p-", n) for n in ("lock", "LOCK", "")]


@pytest.mark.parametrize("prefix", ["", "Upper-", "-lead", "has_underscore-", "a" * 101, None])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(SecretStoreError, match="name_prefix"):
        ks.KubeSecretStore(FakeApi(), NS, name_prefix=prefix)


# -- load / save -----------------------------------------------------------------------


def test_round_trip_one_secret_per_tenant_with_labels_and_the_real_name():
    api = FakeApi()
    s = store(api)
    with s.locked():
        assert s.load() == {}
        data = {"Acme_Corp": {"admin": {"pending": "pw-a"}, "users": {"app": {"current": "pw-u"}}}, "beta": {"admin": {"current": "pw-b"}}}
        s.save(data)
    name = ks.secret_name(ks.DEFAULT_PREFIX, "Acme_Corp")
    obj = api.objects[("Secret", name)]
    assert obj["metadata"]["labels"][ks.MANAGED_BY[0]] == "pgtikv.cloud"
    assert obj["metadata"]["annotations"][ks.TENANT_ANNOTATION] == "Acme_Corp"
    assert record_of(api, name)["admin"] == {"pending": "pw-a"}
    again = store(api)
    with again.locked():
        assert again.load() == data
    # Another prefix is another store.
    other = store(api, name_prefix="other-")
    with other.locked():
        assert other.load() == {}


def test_save_writes_only_what_changed_on_the_version_read():
    api = FakeApi()
    s = store(api)
    with s.locked():
        data = s.load()
        data.update({"a": {"admin": {"pending": "1"}}, "b": {"admin": {"pending": "2"}}})
        s.save(data)
        assert [w[0] for w in api.secret_writes()] == ["create", "create"]
        s.save(data)
        assert len(api.secret_writes()) == 2  # nothing changed: nothing written
        data["b"]["admin"] = {"current": "2"}
        s.save(data)
        assert api.secret_writes()[-1] == ("replace", "Secret", ks.secret_name(ks.DEFAULT_PREFIX, "b"))
        assert len(api.secret_writes()) == 3


def test_a_secret_changed_since_the_load_stops_the_save_and_nothing_further_is_written():
    api = FakeApi()
    s = store(api)
    with s.locked():
        data = s.load()
        data.update({"a": {"admin": {"current": "a1"}}, "b": {"admin": {"current": "b1"}}, "c": {"admin": {"current": "c1"}}})
        s.save(data)
    first, meddler = store(api), store(api, name_prefix=ks.DEFAULT_PREFIX)
    with first.locked():
        data = first.load()
        # Someone writes b's Secret behind the lock's back (by hand, or a run that lost its lease).
        meddler._held = {"metadata": {}}
        theirs = meddler.load()
        theirs["b"]["admin"] = {"current": "b-theirs"}
        meddler.save(theirs)
        before = len(api.secret_writes())
        for tenant in data:
            data[tenant]["admin"]["pending"] = "secret-new-" + tenant
        with pytest.raises(SecretStoreError) as err:
            first.save(data)
    text = str(err.value)
    assert "tenant 'b'" in text and "was changed or deleted" in text and "nothing further was written" in text
    assert "secret-new" not in text and "b-theirs" not in text
    # a (before b) was written, b was refused, c (after b) was not attempted.
    assert api.secret_writes()[before:] == [("replace", "Secret", ks.secret_name(ks.DEFAULT_PREFIX, "a"))]
    assert record_of(api, ks.secret_name(ks.DEFAULT_PREFIX, "b"))["admin"] == {"current": "b-theirs"}
    assert "pending" not in record_of(api, ks.secret_name(ks.DEFAULT_PREFIX, "c"))["admin"]


def test_a_secret_created_by_someone_else_since_the_load_is_a_conflict():
    api = FakeApi()
    s = store(api)
    with s.locked():
        data = s.load()
        other = store(api)
        other._held = {"metadata": {}}
        other.save({"new": {"admin": {"current": "theirs"}}})
        data["new"] = {"admin": {"pending": "mine"}}
        with pytest.raises(SecretStoreError, match="was created since this run read the store"):
            s.save(data)


def test_a_refused_write_that_did_land_is_taken_as_written():
    """A PUT retried after its reply was lost is refused (stale version) although
    the first one was committed: the Secret holds exactly what we wrote."""
    api = FakeApi()
    s = store(api)
    with s.locked():
        data = s.load()
        data["a"] = {"admin": {"pending": "p"}}
        s.save(data)
        data["a"]["admin"] = {"current": "p"}
        api.fail_next_reply = "replace"
        s.save(data)
        data["a"]["admin"] = {"current": "p", "pending": "q"}
        s.save(data)  # the version it remembered is the one of its own write
    assert record_of(api, ks.secret_name(ks.DEFAULT_PREFIX, "a"))["admin"] == {"current": "p", "pending": "q"}


def test_a_secret_whose_annotation_was_edited_is_refused():
    api = FakeApi()
    s = store(api)
    with s.locked():
        s.save({"a": {"admin": {"current": "x"}}})
    api.objects[("Secret", ks.secret_name(ks.DEFAULT_PREFIX, "a"))]["metadata"]["annotations"][ks.TENANT_ANNOTATION] = "b"
    with store(api).locked() as again, pytest.raises(SecretStoreError, match="edited by hand"):
        again.load()


def test_save_without_the_lock_is_a_bug():
    with pytest.raises(SecretStoreError, match="without its lock"):
        store(FakeApi()).save({})


# -- the lease ---------------------------------------------------------------------------


def test_the_lease_is_released_at_the_end():
    api = FakeApi()
    with store(api).locked():
        assert ("Lease", ks.lease_name(ks.DEFAULT_PREFIX)) in api.objects
    assert ("Lease", ks.lease_name(ks.DEFAULT_PREFIX)) not in api.objects


def test_a_second_run_waits_then_fails_naming_the_holder():
    api = FakeApi()
    with store(api, what="pgtikv.cloud.pg_tikv_tenants task 'one'").locked():
        t0 = time.monotonic()
        with pytest.raises(StoreLocked) as err:
            with store(api, lock_timeout=1).locked():
                pass
        assert 0.9 < time.monotonic() - t0 < 3
    text = str(err.value)
    assert "is locked by pgtikv.cloud.pg_tikv_tenants task 'one' (pid " in text and "since 20" in text
    assert "Nothing was changed" in text


def test_a_renewed_lease_is_never_taken_over_and_a_dead_one_is():
    api = FakeApi()
    holder = store(api, lease_duration=3)
    released = threading.Event()

    def hold():
        with holder.locked():
            released.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        # Renewed every second: still held after 4.5 s, more than its duration.
        with pytest.raises(StoreLocked):
            with store(api, lock_timeout=4.5).locked():
                pass
        assert time.monotonic() - t0 >= 4.4
    finally:
        released.set()
        thread.join()
    # A holder that died: its lease stays, unchanged; it is taken over after its duration.
    dead = store(api, lease_duration=3)
    dead._acquire(ks._holder("a run that was killed", "dead"))
    t0 = time.monotonic()
    with store(api, lock_timeout=10).locked():
        waited = time.monotonic() - t0
    assert 2.9 < waited < 5


def test_a_run_that_lost_its_lease_writes_nothing_more():
    api = FakeApi()
    s = store(api, lease_duration=3)
    with s.locked():
        data = s.load()
        data["a"] = {"admin": {"pending": "p"}}
        # Another run took the lease over (this one was frozen longer than the duration).
        lease = api.get_lease(NS, ks.lease_name(ks.DEFAULT_PREFIX))
        api.replace_lease(NS, lease["metadata"]["name"], lease)
        time.sleep(1.5)  # the next renewal finds it changed
        with pytest.raises(SecretStoreError, match="lost the secret store's lock"):
            s.save(data)
    assert api.secret_writes() == []


# -- the adapter and the options -------------------------------------------------------------


def test_without_the_kubernetes_library_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(SecretStoreError, match="needs the Python library 'kubernetes' on the controller"):
        ks.KubeApi()
