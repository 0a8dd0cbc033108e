# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The write-ahead secret store: records, the fleet planning, the file backend."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import stat
import time

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _secret_store as ss


def counter():
    numbers = itertools.count(1)
    return lambda: "gen%d" % next(numbers)


# -- records ----------------------------------------------------------------


def test_format1_file_of_the_tenants_role_is_read_as_current_and_previous():
    data = {"tenants": {"t1": {"admin": "a1", "admin_previous": "a0", "users": {"u": "p"}}}}
    assert ss.normalize(data) == {"t1": {"admin": {"current": "a1", "previous": "a0"}, "users": {"u": {"current": "p"}}}}


def test_prepare_adds_pending_only_when_needed_and_never_replaces_one():
    gen = counter()
    rec, new = ss.prepare({}, gen)
    assert new and rec == {"pending": "gen1"}
    rec, new = ss.prepare({"current": "c"}, gen)
    assert not new and rec == {"current": "c"}
    rec, new = ss.prepare({"current": "c"}, gen, rotate=True)
    assert new and rec == {"current": "c", "pending": "gen2"}
    # An interrupted change is finished with the password it stored.
    rec, new = ss.prepare({"current": "c", "pending": "p"}, gen, rotate=True)
    assert not new and rec["pending"] == "p"


def test_target_and_candidates():
    rec = {"current": "c", "pending": "p", "previous": "o"}
    assert ss.target_password(rec) == "p"
    assert ss.login_candidates(rec) == ["c", "o"]
    assert ss.target_password({"current": "c"}) == "c"
    assert ss.login_candidates({"current": "c"}) == []


def test_promote_moves_current_to_previous():
    assert ss.promote({"current": "c", "pending": "p", "previous": "o"}) == {"current": "p", "previous": "c"}
    assert ss.promote({"pending": "p"}) == {"current": "p"}
    assert ss.promote({"current": "c"}) == {"current": "c"}


def test_fill_fleet_stores_pending_for_undeclared_only_and_uses_it():
    store = {"t2": {"admin": {"current": "a2"}, "users": {"u": {"current": "u2"}}}}
    items = [
        {"name": "t1", "users": [{"name": "u"}, {"name": "v", "password": "declared"}]},
        {"name": "t2", "users": [{"name": "u"}]},
        {"name": "t3", "admin_password": "mine"},
        {"name": "t4", "state": "disabled"},
    ]
    out, added = ss.fill_fleet(store, items, counter())
    assert added == 2
    assert out[0]["admin_password"] == "gen1" and out[0]["previous_admin_passwords"] == []
    assert out[0]["users"][0]["password"] == "gen2" and out[0]["users"][1]["password"] == "declared"
    assert out[1]["admin_password"] == "a2" and out[1]["users"][0]["password"] == "u2"
    assert out[2]["admin_password"] == "mine" and "t3" not in store
    assert "admin_password" not in out[3] and "t4" not in store  # decommission never generates
    assert store["t1"] == {"admin": {"pending": "gen1"}, "users": {"u": {"pending": "gen2"}}}
    assert "password" not in items[0]["users"][0], "the caller's list must not be changed"


def test_fill_fleet_rotation_and_check_mode():
    store = {"t": {"admin": {"current": "a"}, "users": {"u": {"current": "p"}}}}
    items = [{"name": "t", "users": [{"name": "u"}]}]
    out, added = ss.fill_fleet(store, items, counter(), rotate="all", check_mode=True)
    assert added == 0 and out[0]["admin_password"] == "a"
    out, added = ss.fill_fleet(store, items, counter(), rotate="admin")
    assert added == 1 and out[0]["admin_password"] == "gen1" and out[0]["previous_admin_passwords"] == ["a"]
    assert out[0]["users"][0]["password"] == "p"


def test_promote_fleet_only_what_was_proven():
    store = {"t": {"admin": {"current": "a", "pending": "n"}, "users": {"u": {"pending": "x"}, "v": {"pending": "y"}}}}
    items = [{"name": "t", "users": [{"name": "u"}, {"name": "v"}]}]
    n = ss.promote_fleet(store, items, [{"name": "t", "proven": {"admin": True, "users": ["u"]}}])
    assert n == 2
    assert store["t"]["admin"] == {"current": "n", "previous": "a"}
    assert store["t"]["users"] == {"u": {"current": "x"}, "v": {"pending": "y"}}


# -- the file backend ---------------------------------------------------------


def test_save_is_0600_in_0700_dir_and_round_trips(tmp_path):
    path = tmp_path / "sub" / "s.yml"
    store = ss.FileStore(str(path))
    with store.locked():
        assert store.load() == {}
        store.save({"t": {"admin": {"current": "pw"}}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    with store.locked():
        assert store.load() == {"t": {"admin": {"current": "pw"}}}
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text("tenants: {}\n")
    os.chmod(path, 0o644)
    with pytest.raises(ss.SecretStoreError, match="chmod 600"):
        ss.FileStore(str(path)).load()


def test_encrypted_store_needs_the_vault_and_stays_encrypted(tmp_path):
    path = tmp_path / "s.yml"
    enc = ss.FileStore(str(path), encrypt=lambda t: "$ANSIBLE_VAULT;" + t[::-1], decrypt=lambda t: t[len("$ANSIBLE_VAULT;") :][::-1])
    with enc.locked():
        enc.load()
        enc.save({"t": {"admin": {"current": "pw"}}})
    assert path.read_text().startswith("$ANSIBLE_VAULT;") and "pw" not in path.read_text()
    with pytest.raises(ss.SecretStoreError, match="vault-encrypted and no vault password"):
        ss.FileStore(str(path)).load()

    def bad(text):
        raise ValueError("nope")

    with pytest.raises(ss.SecretStoreError, match="wrong vault password"):
        ss.FileStore(str(path), decrypt=bad).load()


def test_save_without_the_lock_is_a_bug(tmp_path):
    with pytest.raises(ss.SecretStoreError, match="without its lock"):
        ss.FileStore(str(tmp_path / "s.yml")).save({})


def test_unwritable_directory_fails_cleanly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ss.SecretStoreError, match="cannot"):
        with ss.FileStore(str(blocker / "s.yml")).locked():
            pass


def _hold(path, seconds, ready):
    store = ss.FileStore(path, what="the holder test")
    with store.locked():
        ready.set()
        time.sleep(seconds)


def test_second_run_waits_then_fails_naming_the_holder(tmp_path):
    path = str(tmp_path / "s.yml")
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(path, 3, ready))
    holder.start()
    try:
        assert ready.wait(10)
        started = time.monotonic()
        with pytest.raises(ss.StoreLocked, match=r"locked by the holder test \(pid %d" % holder.pid):
            with ss.FileStore(path, lock_timeout=1).locked():
                pass
        assert time.monotonic() - started >= 1
        # A waiter with enough patience gets it once the holder is done.
        with ss.FileStore(path, lock_timeout=10).locked():
            pass
    finally:
        holder.join(10)


def test_a_killed_holder_releases_the_lock(tmp_path):
    path = str(tmp_path / "s.yml")
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(path, 60, ready))
    holder.start()
    assert ready.wait(10)
    holder.kill()
    holder.join(10)
    with ss.FileStore(path, lock_timeout=2).locked():
        pass


def test_single_tenant_admin_fill_and_promote():
    store = {}
    params, added = ss.fill_admin(store, {"name": "t", "state": "present"}, counter())
    assert added == 1 and params["admin_password"] == "gen1" and params["update_admin_password"] == "always"
    assert ss.promote_admin(store, {"name": "t"}, {"admin_login_proven": False}) == 0
    assert store["t"]["admin"] == {"pending": "gen1"}
    assert ss.promote_admin(store, {"name": "t"}, {"admin_login_proven": True}) == 1
    assert store["t"]["admin"] == {"current": "gen1"}
    # Declared passwords and decommission states never generate or promote.
    assert ss.fill_admin(store, {"name": "u", "admin_password": "mine"}, counter())[1] == 0
    assert ss.fill_admin(store, {"name": "u", "state": "disabled"}, counter())[1] == 0 and "u" not in store


def test_single_user_fill_logs_in_with_the_stored_admin_and_promotes():
    store = {"t": {"admin": {"current": "adm"}}}
    params, added = ss.fill_user(store, {"tenant": "t", "name": "app"}, counter())
    assert added == 1 and params["password"] == "gen1" and params["update_password"] == "always"
    assert params["login_user"] == "admin" and params["login_password"] == "adm"
    assert ss.promote_user(store, {"tenant": "t", "name": "app"}, {"password_proven": True}) == 1
    assert store["t"]["users"]["app"] == {"current": "gen1"}
    # A login given by the caller is kept.
    params, _added = ss.fill_user(store, {"tenant": "t", "name": "app", "login_user": "ops", "login_password": "o"}, counter())
    assert params["login_user"] == "ops" and params["login_password"] == "o" and params["password"] == "gen1"
