#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credentials crash harness: inject every fault that used to lose a
password, re-run, and check every declared tenant with a separate client.

    harness.py CONFIG WORKDIR [--seed N] [--tenants N] [--kills N]
               [--backend kubernetes --namespace NS]

--backend kubernetes points every trial at the Kubernetes Secret backend of
the store (one Secret per tenant in NS, a Lease as the lock) on the API server
of the integration config's kubeconfig. The store is then read by kubectl
(`kubectl get secrets -o json`), the lock by raw HTTPS requests for the Lease,
never by the collection. The trials that only make sense for a file
(default-sink, wrong-vault) are not run; store-unwritable uses a namespace
that does not exist, and store-full-at-promotion a ValidatingAdmissionPolicy
that refuses every update of the store's Secrets.

Faults (one or more trials each):
  default-sink  provision with the role's defaults (no sink configured), then again
  sigint/sigkill-provision  SIGINT or SIGKILL to ansible-playbook's process group at
                a random point of a provision of --tenants new tenants
  sigint/sigkill-rotate  the same during a rotation of all stored credentials
  lost-reply    a TCP proxy forwards ALTER ROLE ... PASSWORD to pg-tikv, lets it
                commit, then drops the reply and the connection (creation and rotation)
  store-write   the store cannot be written: its directory is a file (nothing may
                be applied), and a full filesystem when the proven passwords are
                promoted (the applied ones must stay usable)
  wrong-vault   the store is vault-encrypted and the run has the wrong vault password
  concurrent    two provisions of the same new fleet at the same time; then a
                second run with lock_timeout 1 while the first holds the lock

After each trial the fault is removed and provision runs once more to the end.
Then every declared tenant is checked by plain psycopg2 logins (not the
collection): the stored admin password logs in, admin/admin is refused, every
stored user password logs in. A tenant that fails any of these is LOCKED OUT.
Prints one line per trial and a final `credentials_crash: N passed, M failed`.
"""

import argparse
import base64
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import requests
import yaml

BOOTSTRAP = "admin"


class Harness:
    def __init__(self, config, work, seed, tenants, kills, backend="file", namespace=None):
        self.cfg = yaml.safe_load(open(config))
        self.config_path = config
        self.work = work
        self.rng = random.Random(seed)
        self.seed = seed
        self.n_tenants = tenants
        self.kills = kills
        self.logs = os.path.join(work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        # A pass per backend with the same seed: the backend in the prefix keeps their tenants apart.
        self.prefix = "%s%s" % ("ck" if backend == "kubernetes" else "cc", format(self.rng.getrandbits(24), "06x"))
        self.fleets = 0
        self.vars_files = 0
        self.trials = []
        self.locked_out_total = 0
        self.all_passwords = set()
        self.pd = "http://" + self.cfg["pd_endpoints"][0].replace("http://", "")
        self.run_no = 0
        self.backend = backend
        self.namespace = namespace
        self.stores = 0
        self.kube = KubeClient(self.cfg, namespace) if backend == "kubernetes" else None

    # -- fleets and runs -----------------------------------------------------

    def fleet(self, n, users=2):
        """A new fleet of n tenants with `users` users each, no declared password."""
        self.fleets += 1
        names = ["%s_%d_%d" % (self.prefix, self.fleets, i) for i in range(n)]
        return [{"name": t, "config": {"owner": "crash"}, "users": [{"name": "u%d" % j} for j in range(users)]} for t in names]

    def new_store(self):
        """A fresh store: a file path, or a Secret name prefix in the namespace."""
        self.stores += 1
        if self.kube:
            return "%s-s%d-" % (self.prefix, self.stores)
        return os.path.join(self.work, "store-%d" % self.fleets, "secrets.yml")

    def write_vars(self, fleet, store, extra=None, namespace=None):
        self.vars_files += 1
        path = os.path.join(self.work, "vars-%03d.yml" % self.vars_files)
        data = {"pgtikv_tenants": fleet, "tenants_max_workers": 8}
        if store is not None and self.kube:
            data.update(
                tenants_secret_backend="kubernetes",
                tenants_secret_namespace=namespace or self.namespace,
                tenants_secret_kubeconfig=self.cfg["kubeconfig"],
                tenants_secret_name_prefix=store,
            )
        elif store is not None:
            data["tenants_secrets_file"] = store
        data.update(extra or {})
        with open(path, "w") as fh:
            yaml.safe_dump(data, fh)
        return path

    def env(self, pg_port=None, home=None, vault_file=None):
        env = dict(os.environ)
        env.update(
            PD_ENDPOINTS=",".join(self.cfg["pd_endpoints"]),
            PG_HOST=self.cfg["pg_host"],
            PG_PORT=str(pg_port or self.cfg["pg_port"]),
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        )
        env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
        if vault_file:
            env["ANSIBLE_VAULT_PASSWORD_FILE"] = vault_file
        if home:
            env["HOME"] = home
            env.pop("XDG_DATA_HOME", None)
        return env

    def start(self, name, playbook, vars_file, env, extra=()):
        self.run_no += 1
        log = os.path.join(self.logs, "%03d-%s.log" % (self.run_no, name))
        fh = open(log, "w")
        proc = subprocess.Popen(
            ["ansible-playbook", "-vvv", "pgtikv.cloud." + playbook, "-e", "pgtikv_tenants_file=" + vars_file] + list(extra),
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        proc.log_path = log
        proc.log_handle = fh
        return proc

    def finish(self, proc, timeout=900):
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        proc.log_handle.close()
        return rc

    def run(self, name, playbook, vars_file, env, extra=()):
        proc = self.start(name, playbook, vars_file, env, extra)
        rc = self.finish(proc)
        return rc, open(proc.log_path, errors="replace").read()

    def lock_held(self, store):
        """Whether a run holds the store's lock: the lock file names a holder,
        or the Lease has a holder (read by raw HTTPS)."""
        if self.kube:
            return self.kube.lease_held(store + "lock")
        lock = store + ".lock"
        return os.path.exists(lock) and os.path.getsize(lock) > 0

    def wait_locked(self, proc, store, timeout=120):
        """Wait until the run holds the store's lock (its module phase began)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if self.lock_held(store):
                return True
            time.sleep(0.01)
        return False

    def timed(self, name, playbook, vars_file, store):
        """Run to the end; return (rc, seconds the store's lock was held)."""
        proc = self.start(name, playbook, vars_file, self.env())
        self.wait_locked(proc, store)
        t0 = time.monotonic()
        while proc.poll() is None and self.lock_held(store):
            time.sleep(0.01)
        window = time.monotonic() - t0
        return self.finish(proc), window

    def kill_at(self, proc, delay, sig):
        """After delay seconds (if still running): SIGINT to ansible-playbook's
        process group, as Ctrl-C in a terminal; any other signal to every
        process of the run (Ansible's workers call setsid, so they are not in
        that group), as a crash of the controller. Then wait until every
        process of the run is gone. Returns whether the signal was sent."""
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            time.sleep(0.02)
        tree = process_tree(proc.pid)
        try:
            if sig == signal.SIGINT:
                os.killpg(proc.pid, sig)
            else:
                signal_all(tree, sig)
        except ProcessLookupError:
            return False
        wait_gone(tree | process_tree(proc.pid), 120)
        return True

    # -- the separate client ---------------------------------------------------

    def login(self, tenant, user, password):
        try:
            conn = psycopg2.connect(
                host=self.cfg["pg_host"],
                port=self.cfg["pg_port"],
                user="%s.%s" % (tenant, user),
                password=password,
                dbname="postgres",
                connect_timeout=10,
                sslmode="disable",
            )
        except psycopg2.Error as exc:
            return "refused" if "authentication failed" in str(exc).lower() else "error: %s" % str(exc).strip()[:80]
        conn.close()
        return "ok"

    def load_store(self, path, vault_file=None):
        if self.kube:
            return self.kube.load_store(path)
        if not os.path.exists(path):
            return {}
        text = open(path).read()
        if text.startswith("$ANSIBLE_VAULT"):
            text = subprocess.run(["ansible-vault", "view", "--vault-password-file", vault_file, path], capture_output=True, text=True, check=True).stdout
        return (yaml.safe_load(text) or {}).get("tenants") or {}

    def keyspaces(self):
        """{name: state} of every keyspace, by raw HTTP to PD (pages of 50)."""
        out, token, tries = {}, None, 0
        while True:
            params = {"limit": 50}
            if token:
                params["page_token"] = token
            body = requests.get(self.pd + "/pd/api/v2/keyspaces", params=params, timeout=30).json()
            if not isinstance(body, dict):
                tries += 1
                if tries > 5:
                    raise RuntimeError("PD keeps refusing the keyspace list: %r" % body)
                time.sleep(1)
                continue
            for ks in body.get("keyspaces") or []:
                out[ks["name"]] = ks["state"]
            token = body.get("next_page_token")
            if not token:
                return out

    def check(self, fleet, store_path, vault_file=None):
        """Locked-out tenants of the fleet: (count, reasons)."""
        store = self.load_store(store_path, vault_file)
        for entry in store.values():
            for rec in [entry.get("admin") or {}] + list((entry.get("users") or {}).values()):
                self.all_passwords.update(v for v in rec.values() if v)

        def one(item):
            t = item["name"]
            rec = store.get(t) or {}
            problems = []
            admin = (rec.get("admin") or {}).get("current")
            if (rec.get("admin") or {}).get("pending"):
                problems.append("a pending admin password is left after the final run")
            if not admin or self.login(t, "admin", admin) != "ok":
                problems.append("stored admin password does not log in")
            if self.login(t, "admin", BOOTSTRAP) == "ok":
                problems.append("admin/admin logs in")
            for u in item["users"]:
                pw = ((rec.get("users") or {}).get(u["name"]) or {}).get("current")
                if not pw or self.login(t, u["name"], pw) != "ok":
                    problems.append("stored password of %s does not log in" % u["name"])
            return t, problems

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, fleet))
        bad = [(t, p) for t, p in results if p]
        return len(bad), bad

    # -- trials ------------------------------------------------------------------

    def record(self, name, ok, detail, locked_out):
        self.trials.append({"trial": name, "ok": ok, "detail": detail, "locked_out": locked_out, "kill_landed": "run had ended" not in detail})
        self.locked_out_total += locked_out
        print("  %-34s %s  locked out: %d  %s" % (name, "PASS" if ok else "FAIL", locked_out, detail), flush=True)

    def settle(self, name, fleet, vars_file, store, env, vault_file=None, extra_ok=True, detail=""):
        """Re-run to the end, then check every tenant with the separate client."""
        rc, log = self.run(name + "-rerun", "provision", vars_file, env)
        locked, bad = self.check(fleet, store, vault_file)
        ok = rc == 0 and locked == 0 and extra_ok
        if rc != 0:
            detail += " re-run rc=%d" % rc
        if bad:
            detail += " e.g. %s: %s" % (bad[0][0], "; ".join(bad[0][1]))
        self.record(name, ok, detail.strip(), locked)

    def trial_default_sink(self):
        home = os.path.join(self.work, "home")
        os.makedirs(home, exist_ok=True)
        fleet = self.fleet(3)
        vars_file = self.write_vars(fleet, None)
        env = self.env(home=home)
        store = os.path.join(home, ".local/share/pgtikv-cloud/secrets.yml")
        rc, _log = self.run("default-sink", "provision", vars_file, env)
        exists = os.path.exists(store)
        self.settle(
            "default-sink",
            fleet,
            vars_file,
            store,
            env,
            extra_ok=rc == 0 and exists,
            detail="first run rc=%d, store at the default path: %s" % (rc, "yes" if exists else "NO"),
        )

    def kill_point(self, window):
        """A random moment within the locked phase (store, module, promotion) of
        an uninterrupted run of this size, counted from when the lock is taken."""
        return self.rng.uniform(0.0, window)

    def trial_kill_provision(self, sig, baseline):
        fleet = self.fleet(self.n_tenants)
        store = self.new_store()
        vars_file = self.write_vars(fleet, store)
        env = self.env()
        delay = self.kill_point(baseline)
        proc = self.start("kill-provision", "provision", vars_file, env)
        self.wait_locked(proc, store)
        sent = self.kill_at(proc, delay, sig)
        self.finish(proc)
        existing = self.keyspaces()
        created = sum(1 for t in fleet if t["name"] in existing)
        name = "%s-provision" % signal.Signals(sig).name.lower()
        self.settle(
            name,
            fleet,
            vars_file,
            store,
            env,
            detail="%.2fs into the locked phase%s: %d/%d keyspaces existed" % (delay, "" if sent else " (run had ended)", created, len(fleet)),
        )
        return fleet, store, vars_file

    def trial_kill_rotate(self, sig, fleet, store, vars_file, baseline):
        env = self.env()
        before = self.load_store(store)
        delay = self.kill_point(baseline)
        proc = self.start("kill-rotate", "rotate_credentials", vars_file, env)
        self.wait_locked(proc, store)
        sent = self.kill_at(proc, delay, sig)
        self.finish(proc)
        mid = self.load_store(store)
        pending = sum(1 for e in mid.values() for r in [e.get("admin") or {}] + list((e.get("users") or {}).values()) if r.get("pending"))
        name = "%s-rotate" % signal.Signals(sig).name.lower()
        rc, _log = self.run(name + "-finish", "rotate_credentials", vars_file, env)
        after = self.load_store(store)
        rotated = sum(
            1 for t in fleet if (after.get(t["name"]) or {}).get("admin", {}).get("current") != (before.get(t["name"]) or {}).get("admin", {}).get("current")
        )
        self.settle(
            name,
            fleet,
            vars_file,
            store,
            env,
            extra_ok=rc == 0,
            detail="%.2fs into the locked phase%s: %d pending after the kill, %d/%d admins rotated"
            % (delay, "" if sent else " (run had ended)", pending, rotated, len(fleet)),
        )

    def trial_lost_reply(self):
        fleet = self.fleet(4, users=1)
        store = self.new_store()
        vars_file = self.write_vars(fleet, store)
        proxy = DropAlterProxy(self.cfg["pg_host"], self.cfg["pg_port"])
        proxy.start()
        try:
            rc, log = self.run("lost-reply-create", "provision", vars_file, self.env(pg_port=proxy.port))
            dropped_create = proxy.dropped
            wrong_claim = "still has the bootstrap password" in log
            self.settle(
                "lost-reply-create",
                fleet,
                vars_file,
                store,
                self.env(),
                extra_ok=rc != 0 and dropped_create >= len(fleet) and not wrong_claim,
                detail="first run rc=%d, %d replies dropped after commit, bootstrap claimed: %s" % (rc, dropped_create, wrong_claim),
            )
            proxy.dropped = 0
            rc, log = self.run("lost-reply-rotate", "rotate_credentials", vars_file, self.env(pg_port=proxy.port), extra=("-e", "tenants_rotate=admin"))
            self.settle(
                "lost-reply-rotate",
                fleet,
                vars_file,
                store,
                self.env(),
                extra_ok=rc != 0 and proxy.dropped >= 1,
                detail="rotation rc=%d, %d replies dropped after commit" % (rc, proxy.dropped),
            )
        finally:
            proxy.stop()

    def trial_store_unwritable(self):
        fleet = self.fleet(3)
        if self.kube:  # a namespace that does not exist: no Secret can be created
            good_store = self.new_store()
            vars_file = self.write_vars(fleet, good_store, namespace="%s-absent" % self.prefix)
        else:
            blocker = os.path.join(self.work, "not-a-dir-%d" % self.fleets)
            open(blocker, "w").close()
            vars_file = self.write_vars(fleet, os.path.join(blocker, "secrets.yml"))
            good_store = os.path.join(self.work, "store-%d" % self.fleets, "secrets.yml")
        rc, log = self.run("store-unwritable", "provision", vars_file, self.env())
        existing = self.keyspaces()
        touched = [t["name"] for t in fleet if t["name"] in existing]
        vars_file = self.write_vars(fleet, good_store)
        self.settle(
            "store-unwritable",
            fleet,
            vars_file,
            good_store,
            self.env(),
            extra_ok=rc != 0 and not touched and "cannot" in log,
            detail="first run rc=%d, keyspaces created while the store was unwritable: %d" % (rc, len(touched)),
        )

    def trial_store_refused_at_promotion(self):
        """Kubernetes: a ValidatingAdmissionPolicy refuses every update of the
        store's Secrets (creates pass): the pending passwords are written, the
        promotion is refused. Then the policy is removed and a re-run promotes."""
        fleet = self.fleet(20)
        store = self.new_store()
        vars_file = self.write_vars(fleet, store)
        armed = self.kube.deny_updates(store)
        try:
            rc, log = self.run("store-refused", "provision", vars_file, self.env())
            pending = self.load_store(store)
        finally:
            self.kube.allow_updates(store)
        n_pending = sum(1 for e in pending.values() if (e.get("admin") or {}).get("pending"))
        refused = "refused to replace the Secret" in log
        self.settle(
            "store-refused-at-promotion",
            fleet,
            vars_file,
            store,
            self.env(),
            extra_ok=armed and rc != 0 and n_pending == len(fleet) and refused,
            detail="policy armed: %s, first run rc=%d, %d/%d admins left pending (applied, not promoted), "
            "refusal reported: %s" % (armed, rc, n_pending, len(fleet), refused),
        )

    def trial_store_full_at_promotion(self):
        """A tmpfs just big enough for the pending write (a new file) but not for
        the promotion (old file + its replacement at the same time)."""
        fleet = self.fleet(20)
        mnt = os.path.join(self.work, "tmpfs")
        os.makedirs(mnt, exist_ok=True)
        size = self.store_size(fleet)
        pages = -(-size // 4096)
        if (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % ((pages + 1) * 4096), "tmpfs", mnt], capture_output=True, check=False
            ).returncode
            != 0
        ):
            self.record("store-full-at-promotion", False, "cannot mount a tmpfs here: not run", 0)
            return
        try:
            store = os.path.join(mnt, "secrets.yml")
            vars_file = self.write_vars(fleet, store)
            rc, log = self.run("store-full", "provision", vars_file, self.env())
            pending = self.load_store(store)
            n_pending = sum(1 for e in pending.values() if (e.get("admin") or {}).get("pending"))
            # What an operator does: move the store where there is room, re-run.
            moved = os.path.join(self.work, "store-%d" % self.fleets, "secrets.yml")
            os.makedirs(os.path.dirname(moved), mode=0o700, exist_ok=True)
            subprocess.run(["cp", "-p", store, moved], check=True)
        finally:
            subprocess.run(["umount", mnt], check=False)
        vars_file = self.write_vars(fleet, moved)
        self.settle(
            "store-full-at-promotion",
            fleet,
            vars_file,
            moved,
            self.env(),
            extra_ok=rc != 0 and n_pending == len(fleet) and "No space left" in log,
            detail="first run rc=%d, %d/%d admins left pending (applied, not promoted)" % (rc, n_pending, len(fleet)),
        )

    def store_size(self, fleet):
        """The size of this fleet's store with every credential pending (32-character passwords)."""
        # The collection under test: this file lies below <root>/ansible_collections/.
        root = os.path.abspath(os.path.dirname(__file__))
        while os.path.basename(root) != "ansible_collections" and root != os.path.dirname(root):
            root = os.path.dirname(root)
        sys.path.insert(0, os.environ.get("HARNESS_COLLECTIONS_ROOT") or os.path.dirname(root))
        from ansible_collections.pgtikv.cloud.plugins.module_utils import _secret_store as ss

        data = {}
        ss.fill_fleet(data, fleet, lambda: "x" * 32)
        probe_dir = os.path.join(self.work, "size-probe")
        store = ss.FileStore(os.path.join(probe_dir, "s.yml"))
        with store.locked():
            store.save(data)
        return os.path.getsize(store.path)

    def trial_wrong_vault(self):
        fleet = self.fleet(3)
        store = self.new_store()
        vars_file = self.write_vars(fleet[:1], store)
        good = os.path.join(self.work, "vault-good")
        bad = os.path.join(self.work, "vault-bad")
        for path, text in ((good, "right-%d" % self.seed), (bad, "wrong-%d" % self.seed)):
            with open(path, "w") as fh:
                fh.write(text + "\n")
            os.chmod(path, 0o600)
        rc0, _log = self.run("vault-first", "provision", vars_file, self.env(vault_file=good))
        encrypted = open(store).read().startswith("$ANSIBLE_VAULT")
        vars_file = self.write_vars(fleet, store)
        rc, log = self.run("vault-wrong", "provision", vars_file, self.env(vault_file=bad))
        existing = self.keyspaces()
        touched = [t["name"] for t in fleet[1:] if t["name"] in existing]
        self.settle(
            "wrong-vault",
            fleet,
            vars_file,
            store,
            self.env(vault_file=good),
            vault_file=good,
            extra_ok=rc0 == 0 and encrypted and rc != 0 and not touched,
            detail="store encrypted: %s, wrong-password run rc=%d, keyspaces it created: %d" % (encrypted, rc, len(touched)),
        )

    def trial_concurrent(self):
        fleet = self.fleet(max(10, self.n_tenants // 2))
        store = self.new_store()
        vars_file = self.write_vars(fleet, store)
        env = self.env()
        a = self.start("concurrent-a", "provision", vars_file, env)
        b = self.start("concurrent-b", "provision", vars_file, env)
        rca, rcb = self.finish(a), self.finish(b)
        self.settle("concurrent", fleet, vars_file, store, env, extra_ok=rca == 0 and rcb == 0, detail="both runs rc=%d,%d" % (rca, rcb))
        # Fail fast: lock_timeout 1 while another run holds the lock. The holder
        # (a rotation of this fleet) is frozen with SIGSTOP once it holds the lock,
        # so that the overlap does not depend on timing; SIGCONT lets it finish.
        holder_vars = self.write_vars(fleet, store)
        waiter_vars = self.write_vars(fleet, store, {"tenants_lock_timeout": 1})
        holder = self.start("lock-holder", "rotate_credentials", holder_vars, env)
        deadline = time.monotonic() + 60
        held = False
        while time.monotonic() < deadline and holder.poll() is None:
            if self.lock_held(store):
                held = True
                break
            time.sleep(0.02)
        frozen = process_tree(holder.pid) if held else set()
        signal_all(frozen, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            rcb, log_b = self.run("lock-waiter", "provision", waiter_vars, env)
            waited = time.monotonic() - t0
        finally:
            signal_all(frozen, signal.SIGCONT)
        rca = self.finish(holder)
        named = "is locked by pgtikv.cloud.pg_tikv_tenants task" in log_b
        self.settle(
            "lock-fail-fast",
            fleet,
            holder_vars,
            store,
            env,
            extra_ok=held and rca == 0 and rcb != 0 and named,
            detail="holder rc=%d, second run rc=%d after %.1fs, its message names the holder: %s" % (rca, rcb, waited, named),
        )

    # -- main ----------------------------------------------------------------------

    def main(self):
        print(
            "credentials crash harness: seed %d, %d tenants per kill trial, %d kills of each kind, %s backend"
            % (self.seed, self.n_tenants, self.kills, "file" if not self.kube else "kubernetes (namespace %s)" % self.namespace),
            flush=True,
        )
        if self.kube:
            self.kube.ensure_namespace()
        else:
            self.trial_default_sink()
        # The length of an uninterrupted provision and rotation of this size: kill points are drawn within it.
        fleet = self.fleet(self.n_tenants)
        store = self.new_store()
        vars_file = self.write_vars(fleet, store)
        rc, provision_s = self.timed("baseline-provision", "provision", vars_file, store)
        rc2, rotate_s = self.timed("baseline-rotate", "rotate_credentials", vars_file, store)
        locked, _bad = self.check(fleet, store)
        self.record(
            "baseline",
            rc == 0 and rc2 == 0 and locked == 0,
            "store locked for %.1fs by a provision, %.1fs by a rotation (kill points drawn within these)" % (provision_s, rotate_s),
            locked,
        )
        signals = [signal.SIGINT, signal.SIGKILL]
        last = None
        for i in range(2 * self.kills):
            last = self.trial_kill_provision(signals[i % 2], provision_s)
        fleet, store, vars_file = last
        for i in range(2 * self.kills):
            self.trial_kill_rotate(signals[i % 2], fleet, store, vars_file, rotate_s)
        self.trial_lost_reply()
        self.trial_store_unwritable()
        if self.kube:
            self.trial_store_refused_at_promotion()
        else:
            self.trial_store_full_at_promotion()
            self.trial_wrong_vault()
        self.trial_concurrent()
        passed = sum(1 for t in self.trials if t["ok"])
        failed = len(self.trials) - passed
        with open(os.path.join(self.work, "all-secrets.json"), "w") as fh:
            json.dump(sorted(self.all_passwords), fh)
        with open(os.path.join(self.work, "trials.json"), "w") as fh:
            json.dump({"seed": self.seed, "trials": self.trials, "locked_out": self.locked_out_total}, fh, indent=1)
        kills = [t for t in self.trials if t["trial"].startswith(("sigint", "sigkill"))]
        landed = sum(1 for t in kills if t["kill_landed"])
        print(
            "tenants locked out: %d over %d trials (%d kill points, %d of them while the run was still going), %s backend"
            % (self.locked_out_total, len(self.trials), len(kills), landed, self.backend)
        )
        print("credentials_crash: %d passed, %d failed" % (passed, failed), flush=True)
        return 0 if failed == 0 and self.locked_out_total == 0 else 1


def process_tree(root):
    """root and every process descended from it (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return out


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if os.path.exists("/proc/%d" % p) and not _zombie(p)]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class KubeClient:
    """The harness's own view of the Kubernetes store: kubectl for the Secrets
    and the policies, raw HTTPS (the kubeconfig's client certificate) for the
    Lease, which is polled every few milliseconds."""

    def __init__(self, cfg, namespace):
        self.kubectl = [cfg["kubectl_bin"], "--kubeconfig", cfg["kubeconfig"]]
        self.namespace = namespace
        kc = yaml.safe_load(open(cfg["kubeconfig"]))
        ctx = next(c["context"] for c in kc["contexts"] if c["name"] == kc["current-context"])
        cluster = next(c["cluster"] for c in kc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in kc["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"]
        self.http = requests.Session()
        # Per request: REQUESTS_CA_BUNDLE in the environment would override a session's verify.
        self.tls = {"verify": cluster["certificate-authority"], "cert": (user["client-certificate"], user["client-key"])}

    def run(self, *args, stdin=None, check=True):
        return subprocess.run(self.kubectl + list(args), input=stdin, capture_output=True, text=True, check=check)

    def ensure_namespace(self):
        if self.run("get", "namespace", self.namespace, check=False).returncode != 0:
            self.run("create", "namespace", self.namespace)

    def lease_held(self, name):
        url = "%s/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (self.server, self.namespace, name)
        try:
            answer = self.http.get(url, timeout=5, **self.tls)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and bool((answer.json().get("spec") or {}).get("holderIdentity"))

    def load_store(self, prefix):
        """{tenant: {admin, users}} from the store's Secrets, decoded here."""
        out = self.run("get", "secrets", "-n", self.namespace, "-l", "app.kubernetes.io/managed-by=pgtikv.cloud", "-o", "json").stdout
        store = {}
        for item in json.loads(out)["items"]:
            if not item["metadata"]["name"].startswith(prefix):
                continue
            record = json.loads(base64.b64decode(item["data"]["record.json"]))
            store[record["tenant"]] = {"admin": record.get("admin") or {}, "users": record.get("users") or {}}
        return store

    def _policy(self, prefix):
        name = "pgtikv-crash-deny-" + prefix.rstrip("-")
        return name, json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "admissionregistration.k8s.io/v1",
                        "kind": "ValidatingAdmissionPolicy",
                        "metadata": {"name": name},
                        "spec": {
                            "failurePolicy": "Fail",
                            "matchConstraints": {
                                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["secrets"]}]
                            },
                            "matchConditions": [{"name": "this-store", "expression": "object.metadata.name.startsWith('%s')" % prefix}],
                            "validations": [{"expression": "false", "message": "the crash harness refuses updates of this store"}],
                        },
                    },
                    {
                        "apiVersion": "admissionregistration.k8s.io/v1",
                        "kind": "ValidatingAdmissionPolicyBinding",
                        "metadata": {"name": name},
                        "spec": {"policyName": name, "validationActions": ["Deny"]},
                    },
                ],
            }
        )

    def deny_updates(self, prefix):
        """Arm the policy and wait until the API server enforces it (a probe Secret's update is refused)."""
        _name, body = self._policy(prefix)
        self.run("apply", "-f", "-", stdin=body)
        probe = prefix + "probe"
        self.run("create", "secret", "generic", probe, "-n", self.namespace, "--from-literal=k=v")
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                tried = self.run("label", "secret", probe, "-n", self.namespace, "--overwrite", "probe=%d" % int(time.monotonic() * 1000), check=False)
                if tried.returncode != 0 and "denied" in tried.stderr:
                    return True
                time.sleep(0.5)
            return False
        finally:
            self.run("delete", "secret", probe, "-n", self.namespace, "--wait=false", check=False)

    def allow_updates(self, prefix):
        name, _body = self._policy(prefix)
        self.run("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)
        # Wait until an update passes again.
        probe = prefix + "probe2"
        self.run("create", "secret", "generic", probe, "-n", self.namespace, "--from-literal=k=v", check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.run("label", "secret", probe, "-n", self.namespace, "--overwrite", "probe=%d" % int(time.monotonic() * 1000), check=False).returncode == 0:
                break
            time.sleep(0.5)
        self.run("delete", "secret", probe, "-n", self.namespace, "--wait=false", check=False)


class DropAlterProxy:
    """A loopback TCP proxy to pg-tikv that forwards every message, but after a
    client Query containing ALTER ROLE ... PASSWORD, waits for the server's
    answer (the statement is committed then), drops it and closes both sides:
    the client sees a lost connection after the server committed."""

    def __init__(self, host, port):
        self.target = (host, int(port))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.dropped = 0
        self.stopping = False
        self.lock = threading.Lock()

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                client, _addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        server = socket.create_connection(self.target)
        buf = b""
        started = False
        try:
            while True:
                ready = select.select([client, server], [], [], 30)[0]
                if not ready:
                    return
                if server in ready:
                    data = server.recv(65536)
                    if not data:
                        return
                    client.sendall(data)
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                    # Messages after the untyped startup/SSL request: type byte + int32 length.
                    if not started:
                        server.sendall(data)
                        if len(buf) >= 8 and buf[4:8] == b"\x04\xd2\x16\x2f":  # SSLRequest
                            buf = b""
                            continue
                        started = True
                        buf = b""
                        continue
                    server.sendall(data)
                    if buf[:1] == b"Q" and b"ALTER ROLE" in buf.upper() and b"PASSWORD" in buf.upper():
                        # Wait for the server's answer (committed), then drop it.
                        server.settimeout(10)
                        try:
                            server.recv(65536)
                        except OSError:
                            pass
                        with self.lock:
                            self.dropped += 1
                        return
                    buf = b""
        except OSError:
            return
        finally:
            for s in (client, server):
                try:
                    s.close()
                except OSError:
                    pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("work")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--backend", choices=["file", "kubernetes"], default="file")
    parser.add_argument("--namespace", default="pgtikv-crash")
    args = parser.parse_args()
    sys.exit(Harness(args.config, args.work, args.seed, args.tenants, args.kills, args.backend, args.namespace).main())


if __name__ == "__main__":
    main()
