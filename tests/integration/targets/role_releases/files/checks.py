#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifiers of the role_releases target, none of them the collection's code:
kubectl and helm (their JSON), raw HTTP to PD, plain psycopg2 (pgcheck.py).

  checks.py declare WORK STEP         WORK/releases-STEP.yml (vars file of the playbooks); steps: base (3 releases),
                                      koku (base + release d, PD unreachable), bad (a refused declaration)
  checks.py pd WORK STATE NAME...     raw HTTP: each tenant NAME exists in PD in STATE (ENABLED, DISABLED), with the
                                      declared config; NONE: it does not exist
  checks.py secrets WORK LABEL        kubectl: every declared credentials Secret exists with exactly the 6 keys and
                                      PGUSER <tenant>.<user>; its DATABASE_URL (host and port turned to the stack's)
                                      and PGUSER/PGPASSWORD log in (psycopg2); keeps WORK/state-LABEL.json (resourceVersions
                                      and passwords) and adds the passwords to WORK/secrets.json
  checks.py same-rv WORK A B          the Secrets' resourceVersions of A and B are equal (no write)
  checks.py rotated WORK A B          every password of B differs from A's; A's are refused, B's log in; the store's
                                      record holds B's as current and A's as previous
  checks.py refused WORK LABEL REL    the passwords of release REL recorded at LABEL are refused
  checks.py releases WORK REV...      helm: release i is deployed at revision REV[i] (a, b, c)
  checks.py rollout WORK A B REL      the Deployment of REL: its pod-template checksum changed from A to B, a new
                                      ReplicaSet holds every replica, the old one none
  checks.py helm-leaks WORK REL...    no password in `helm get values --all`, `helm get manifest`, or any decoded
                                      sh.helm.release.v1.* Secret; the Secret name and the checksum are there
  checks.py break WORK REL USER       ALTER ROLE USER PASSWORD <random> as the tenant's admin (password from the store)
  checks.py gone WORK REL             helm has no release REL; its Secrets are gone
"""

import base64
import gzip
import json
import os
import secrets as pysecrets
import subprocess
import sys
import urllib.parse
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "setup_verifiers", "files"))
from pgcheck import connect, login_outcome  # noqa: E402  pylint: disable=wrong-import-position

KEYS = ["DATABASE_URL", "PGDATABASE", "PGHOST", "PGPASSWORD", "PGPORT", "PGUSER"]


def load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh) if path.endswith(".json") else yaml.safe_load(fh)


def dump(path, data, private=False):
    opener = (lambda p, f: os.open(p, f, 0o600)) if private else None
    with open(path, "w", encoding="utf-8", opener=opener) as fh:
        json.dump(data, fh)


def state(work):
    st = load(os.path.join(work, "state.json"))
    st["cfg"] = load(st["config"])
    return st


def pd_url(cfg):
    pd = cfg["pd_endpoints"][0]
    return pd if "://" in pd else "http://" + pd


def releases_of(st, sfx_only=False):
    sfx, fl = st["sfx"], st["flavor"]
    out = []
    for key, users, replicas in (("a", ["app"], 2), ("b", ["api", "worker"], 2), ("c", ["app"], 1)):
        out.append(
            {
                "name": "rr-%s" % key,
                "namespace": "rr-%s-%s-%s" % (fl, sfx, key),
                "chart_ref": st["chart"],
                "values": {"replicaCount": replicas, "podAnnotations": {"example.com/team": key}},
                "tenant": {"name": "rr%s_%s_%s" % (fl[-1], sfx, key), "config": {"owner": "team-" + key}, "users": [{"name": u} for u in users]},
                "credentials": {"secret_name": "db-%s" % key, "values_path": "database.existingSecret"},
            }
        )
    return out


def secret_names(rel):
    base = rel["credentials"]["secret_name"]
    users = [u["name"] for u in rel["tenant"]["users"]]
    return [(base if i == 0 else "%s-%s" % (base, u), u) for i, u in enumerate(users)]


def declare(work, step):
    st = state(work)
    cfg = st["cfg"]
    releases = releases_of(st)
    doc = {
        "releases_secret_namespace": st["store_ns"],
        "releases_helm_binary": st["helm"],
        "releases_helm_timeout": "2m",
        "releases_pd_endpoints": [pd_url(cfg)],
        # The controller reaches the stack; the applications would reach the
        # platform release's Service (nothing in a kwok pod runs).
        "releases_pg_host": cfg["pg_host"],
        "releases_pg_port": int(cfg["pg_port"]),
        "releases_app_pg_host": "pg-tikv.pgtikv.svc",
        "releases_app_pg_port": 5433,
        "releases_max_workers": 4,
        "pgtikv_releases": releases,
    }
    if step == "koku":
        d = json.loads(json.dumps(releases[0]))
        d.update(name="rr-d", namespace="rr-%s-%s-d" % (st["flavor"], st["sfx"]))
        d["tenant"].update(name="rr%s_%s_d" % (st["flavor"][-1], st["sfx"]))
        d["credentials"]["secret_name"] = "db-d"
        doc["pgtikv_releases"] = releases + [d]
        doc["releases_pd_endpoints"] = ["http://127.0.0.1:1"]
    if step == "bad":
        bad = json.loads(json.dumps(releases[0]))
        bad.update(name="rr-bad", namespace="rr-%s-%s-bad" % (st["flavor"], st["sfx"]))
        bad["credentials"]["values_path"] = "database..existingSecret"
        doc["pgtikv_releases"] = [bad, dict(releases[1], name="rr-dup", tenant=releases[1]["tenant"])] + releases[1:2]
    with open(os.path.join(work, "releases-%s.yml" % step), "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh)


def kubectl(st, *args):
    out = subprocess.run([st["kubectl"], "--kubeconfig", st["kubeconfig"]] + list(args), capture_output=True, text=True, check=False)
    return out


def helm(st, *args):
    return subprocess.run([st["helm"], "--kubeconfig", st["kubeconfig"]] + list(args), capture_output=True, text=True, check=False)


def get_secret(st, namespace, name):
    res = kubectl(st, "get", "secret", name, "-n", namespace, "-o", "json")
    return json.loads(res.stdout) if res.returncode == 0 else None


def record_secrets(work, label):
    st = state(work)
    cfg = st["cfg"]
    snap, all_pw = {}, []
    logins = 0
    for rel in releases_of(st):
        for name, user in secret_names(rel):
            obj = get_secret(st, rel["namespace"], name)
            assert obj, "Secret %s/%s is missing" % (rel["namespace"], name)
            data = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
            assert sorted(data) == KEYS, "Secret %s has keys %s" % (name, sorted(data))
            login = "%s.%s" % (rel["tenant"]["name"], user)
            assert data["PGUSER"] == login, (name, data["PGUSER"])
            assert data["PGHOST"] == "pg-tikv.pgtikv.svc" and data["PGPORT"] == "5433", name
            assert data["PGDATABASE"] == "postgres", name
            url = urllib.parse.urlsplit(data["DATABASE_URL"])
            assert urllib.parse.unquote(url.username) == login, "DATABASE_URL user of %s" % name
            assert urllib.parse.unquote(url.password) == data["PGPASSWORD"], "DATABASE_URL password of %s" % name
            # The same URL, pointed at the stack: what an application would connect with.
            dsn = url._replace(netloc=url.netloc.rsplit("@", 1)[0] + "@%s:%s" % (cfg["pg_host"], cfg["pg_port"]))
            got = login_outcome(None, None, None, None, dsn=urllib.parse.urlunsplit(dsn) + "?sslmode=disable")
            assert got["outcome"] == "ok", "DATABASE_URL of %s: %s" % (name, got)
            got = login_outcome(cfg["pg_host"], cfg["pg_port"], data["PGUSER"], data["PGPASSWORD"])
            assert got["outcome"] == "ok", "PGUSER/PGPASSWORD of %s: %s" % (name, got)
            logins += 2
            snap["%s/%s" % (rel["namespace"], name)] = {
                "rv": obj["metadata"]["resourceVersion"],
                "password": data["PGPASSWORD"],
                "login": login,
                "release": rel["name"],
                "tenant": rel["tenant"]["name"],
                "user": user,
            }
            all_pw.append(data["PGPASSWORD"])
    # The store's passwords too (admins included), for the leak checks.
    for rec in store_records(st).values():
        for cred in [rec.get("admin") or {}] + list((rec.get("users") or {}).values()):
            all_pw.extend(v for v in cred.values() if v)
    dump(os.path.join(work, "state-%s.json" % label), snap, private=True)
    path = os.path.join(work, "secrets.json")
    known = load(path) if os.path.exists(path) else []
    dump(path, sorted(set(known) | set(all_pw)), private=True)
    print("   kubectl: %d Secrets with exactly %s; psycopg2: %d logins ok (DATABASE_URL and PGUSER/PGPASSWORD)" % (len(snap), ",".join(KEYS), logins))


def store_records(st):
    res = kubectl(st, "get", "secrets", "-n", st["store_ns"], "-l", "app.kubernetes.io/managed-by=pgtikv.cloud", "-o", "json")
    assert res.returncode == 0, res.stderr
    out = {}
    for obj in json.loads(res.stdout)["items"]:
        rec = json.loads(base64.b64decode(obj["data"]["record.json"]))
        out[rec["tenant"]] = rec
    return out


def main():  # pylint: disable=too-many-branches,too-many-statements,too-many-locals
    cmd, work = sys.argv[1], sys.argv[2]
    if cmd == "declare":
        declare(work, sys.argv[3])
        return
    st = state(work)
    cfg = st["cfg"]
    if cmd == "pd":
        want, names = sys.argv[3], sys.argv[4:]
        declared = {r["tenant"]["name"]: r["tenant"]["config"] for r in releases_of(st)}
        for name in names:
            try:
                with urllib.request.urlopen(pd_url(cfg) + "/pd/api/v2/keyspaces/" + name, timeout=10) as resp:
                    ks = json.load(resp)
            except urllib.error.HTTPError:
                ks = None
            if want == "NONE":
                assert ks is None, "%s exists in PD" % name
                continue
            assert ks and ks["state"] == want, "%s: %s" % (name, ks and ks.get("state"))
            for key, value in (declared.get(name) or {}).items():
                assert ks.get("config", {}).get(key) == value, "%s config %s" % (name, key)
        print("   PD (raw HTTP): %s %s" % (", ".join(names), "absent" if want == "NONE" else want + " with their config"))
    elif cmd == "secrets":
        record_secrets(work, sys.argv[3])
    elif cmd == "same-rv":
        a, b = load(os.path.join(work, "state-%s.json" % sys.argv[3])), load(os.path.join(work, "state-%s.json" % sys.argv[4]))
        assert {k: v["rv"] for k, v in a.items()} == {k: v["rv"] for k, v in b.items()}, "a Secret was written"
        print("   kubectl: the %d Secrets' resourceVersions are unchanged (no write)" % len(a))
    elif cmd == "rotated":
        a, b = load(os.path.join(work, "state-%s.json" % sys.argv[3])), load(os.path.join(work, "state-%s.json" % sys.argv[4]))
        store = store_records(st)
        for key, old in a.items():
            new = b[key]
            assert new["password"] != old["password"] and new["rv"] != old["rv"], "%s not rotated" % key
            got = login_outcome(cfg["pg_host"], cfg["pg_port"], old["login"], old["password"])
            assert got["outcome"] == "refused", "old password of %s: %s" % (key, got)
            rec = store[new["tenant"]]["users"][new["user"]]
            assert rec.get("current") == new["password"] and rec.get("previous") == old["password"] and not rec.get("pending"), "store record of %s" % key
        print(
            "   %d Secrets rewritten with new passwords; psycopg2: every old password refused; the store's records "
            "hold the new as current and the old as previous, nothing pending" % len(a)
        )
    elif cmd == "refused":
        snap = load(os.path.join(work, "state-%s.json" % sys.argv[3]))
        n = 0
        for key, rec in snap.items():
            if rec["release"] == sys.argv[4]:
                got = login_outcome(cfg["pg_host"], cfg["pg_port"], rec["login"], rec["password"])
                assert got["outcome"] in ("refused", "nologin"), "%s: %s" % (key, got)
                n += 1
        assert n, "no credentials recorded for %s" % sys.argv[4]
        print("   psycopg2: the %d credentials of %s are refused" % (n, sys.argv[4]))
    elif cmd == "releases":
        for rel, rev in zip(releases_of(st), sys.argv[3:], strict=False):
            res = helm(st, "status", rel["name"], "-n", rel["namespace"], "-o", "json")
            assert res.returncode == 0, "%s: %s" % (rel["name"], res.stderr)
            got = json.loads(res.stdout)
            assert (got["version"], got["info"]["status"]) == (int(rev), "deployed"), "%s: revision %s %s, expected %s deployed" % (
                rel["name"],
                got["version"],
                got["info"]["status"],
                rev,
            )
        names = ", ".join(r["name"] for r in releases_of(st))
        print("   helm: %s deployed at revisions %s" % (names, ", ".join(sys.argv[3:])))
    elif cmd == "rollout":
        rel = [r for r in releases_of(st) if r["name"] == sys.argv[5]][0]
        dep = json.loads(kubectl(st, "get", "deployment", rel["name"] + "-app", "-n", rel["namespace"], "-o", "json").stdout)
        rsets = json.loads(kubectl(st, "get", "replicasets", "-n", rel["namespace"], "-o", "json").stdout)["items"]
        checksum = dep["spec"]["template"]["metadata"]["annotations"]["pgtikv.cloud/credentials-checksum"]
        before_path = os.path.join(work, "checksum-%s-%s.txt" % (sys.argv[3], rel["name"]))
        with open(os.path.join(work, "checksum-%s-%s.txt" % (sys.argv[4], rel["name"])), "w", encoding="utf-8") as fh:
            fh.write(checksum)
        if os.path.exists(before_path):
            with open(before_path, encoding="utf-8") as fh:
                before = fh.read()
            assert before != checksum, "the pod-template checksum of %s did not change" % rel["name"]
            assert len(rsets) == 2, "expected 2 ReplicaSets, got %d" % len(rsets)
            current = [r for r in rsets if r["spec"]["template"]["metadata"]["annotations"].get("pgtikv.cloud/credentials-checksum") == checksum]
            assert current and current[0]["status"].get("readyReplicas") == rel["values"]["replicaCount"], rsets
            old = [r for r in rsets if r is not current[0]]
            assert old[0]["spec"]["replicas"] == 0, "the old ReplicaSet still has replicas"
            assert dep["spec"]["template"]["metadata"]["annotations"].get("example.com/team"), "declared annotation lost"
            print(
                "   kubectl: %s pod-template checksum changed; new ReplicaSet %s ready %d/%d, old %s scaled to 0"
                % (
                    rel["name"],
                    current[0]["metadata"]["name"],
                    current[0]["status"]["readyReplicas"],
                    rel["values"]["replicaCount"],
                    old[0]["metadata"]["name"],
                )
            )
        else:
            assert len(rsets) == 1, rsets
            print("   kubectl: %s has 1 ReplicaSet; pod-template checksum recorded" % rel["name"])
    elif cmd == "helm-leaks":
        passwords = [p for p in load(os.path.join(work, "secrets.json")) if p]
        checked = 0
        for rel in [r for r in releases_of(st) if r["name"] in sys.argv[3:]]:
            texts = {}
            res = helm(st, "get", "values", "--all", rel["name"], "-n", rel["namespace"], "-o", "json")
            assert res.returncode == 0, res.stderr
            texts["values"] = res.stdout
            vals = json.loads(res.stdout)
            assert vals["database"]["existingSecret"] == rel["credentials"]["secret_name"], "Secret name not injected"
            assert len(vals["podAnnotations"]["pgtikv.cloud/credentials-checksum"]) == 64, "no checksum"
            res = helm(st, "get", "manifest", rel["name"], "-n", rel["namespace"])
            texts["manifest"] = res.stdout
            assert "envFrom" in res.stdout, "not the release's manifest"
            hist = json.loads(kubectl(st, "get", "secrets", "-n", rel["namespace"], "-l", "owner=helm", "-o", "json").stdout)
            assert hist["items"], "no release history Secret"
            for obj in hist["items"]:
                raw = base64.b64decode(base64.b64decode(obj["data"]["release"]))
                texts[obj["metadata"]["name"]] = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
                assert rel["credentials"]["secret_name"] in texts[obj["metadata"]["name"]], "undecoded history"
            for what, text in texts.items():
                for n, pw in enumerate(passwords, 1):
                    for form in (pw, urllib.parse.quote(pw, safe=""), json.dumps(pw)[1:-1]):
                        assert form not in text, "password #%d in %s of %s" % (n, what, rel["name"])
                checked += 1
        print(
            "   no password (%d known) in %d texts: helm get values --all, helm get manifest, every decoded "
            "sh.helm.release.v1.* Secret" % (len(passwords), checked)
        )
    elif cmd == "break":
        rel = [r for r in releases_of(st) if r["name"] == sys.argv[3]][0]
        user, tenant = sys.argv[4], rel["tenant"]["name"]
        admin = store_records(st)[tenant]["admin"]["current"]
        conn = connect(cfg["pg_host"], cfg["pg_port"], tenant + ".admin", admin)
        with conn.cursor() as cur:
            cur.execute("ALTER ROLE \"%s\" PASSWORD '%s'" % (user, pysecrets.token_hex(12)))
        conn.close()
        print("   psycopg2: %s.%s's password changed by hand (ALTER ROLE as the tenant's admin)" % (tenant, user))
    elif cmd == "gone":
        rel = [r for r in releases_of(st) if r["name"] == sys.argv[3]][0]
        assert helm(st, "status", rel["name"], "-n", rel["namespace"]).returncode != 0, "release still there"
        for name, _user in secret_names(rel):
            assert get_secret(st, rel["namespace"], name) is None, "Secret %s still there" % name
        print("   helm: no release %s; kubectl: its Secrets are gone" % rel["name"])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
