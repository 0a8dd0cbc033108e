# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes test tier (tests/stack/start, tests/stack/build-kube).

A real kube-apiserver, controller-manager, scheduler and etcd with kwok's fake
nodes: nothing in a pod runs, kwok's Stages write the pod statuses. These tests
prove what the tier offers to the chart and role tests and fail if it stops
offering it: Ready nodes on loopback only, Deployments that become ready, PVCs
that bind, pods that fail on request (annotation pgtikv.cloud/test-fail), and
helm v4 and helm v3 installs whose hook Job really has to complete.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import subprocess
import tempfile
import time
from urllib.parse import urlparse

import pytest

from conftest import HOW_TO_START, load_stack_env

WAIT = 60  # seconds, for anything the cluster does
FAIL_ANNOTATION = "pgtikv.cloud/test-fail"
IMAGE = "registry.invalid/pgtikv-test:1.0"  # never pulled: kwok runs nothing


@pytest.fixture(scope="session")
def kube_env():
    env = dict(os.environ)
    env.update(load_stack_env())
    for key in ("KUBECONFIG", "KUBECTL_BIN", "HELM_BIN", "HELM3_BIN"):
        if not env.get(key):
            pytest.fail("%s is not set: %s" % (key, HOW_TO_START), pytrace=False)
    return env


def run(env, *cmd, check=True, stdin=None, timeout=WAIT + 30):
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail("%s failed (rc %s):\n%s%s" % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr), pytrace=False)
    return proc


@pytest.fixture(scope="session")
def kubectl(kube_env):
    def kubectl_(*args, **kwargs):
        return run(kube_env, kube_env["KUBECTL_BIN"], *args, **kwargs)

    if kubectl_("get", "--raw", "/readyz", check=False).stdout.strip() != "ok":
        pytest.fail("the Kubernetes apiserver is not ready: " + HOW_TO_START, pytrace=False)
    return kubectl_


def get_json(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture
def namespace(kubectl):
    name = "kt-" + secrets.token_hex(4)
    kubectl("create", "namespace", name)
    yield name
    # Namespace deletion takes 10-16 s (finalizers, the pod-delete Stage): not awaited.
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(kubectl, namespace, manifest):
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest))


def wait_until(what, predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %ss waiting for %s" % (timeout, what), pytrace=False)
        time.sleep(0.3)


def pod(name, annotations=None, restart_policy="Never"):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"restartPolicy": restart_policy, "containers": [{"name": "main", "image": IMAGE}]},
    }


# ------------------------------------------------------------------ cluster


def test_nodes_ready_and_version(kubectl):
    nodes = get_json(kubectl, "nodes")["items"]
    assert len(nodes) >= 2
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]
        assert node["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake"
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.36.3"
    assert version["clientVersion"]["gitVersion"] == "v1.36.3"


def test_control_plane_listens_on_loopback_only(kube_env):
    """Every TCP listener of the cluster's processes is bound to 127.0.0.1."""
    cluster_pids = pathlib.Path(kube_env["PGTIKV_STACK_DIR"], "kube", "kwok", "clusters", "pgtikv", "pids")
    pids = {p.read_text().strip() for p in cluster_pids.glob("*.pid")}
    assert len(pids) == 5, pids  # etcd, apiserver, controller-manager, scheduler, kwok
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    listeners = [line.split()[3] for line in out.splitlines() if any("pid=%s," % pid in line for pid in pids)]
    assert len(listeners) >= 6, out  # 6 ports from KUBE_PORT_BASE
    assert all(addr.startswith("127.0.0.1:") for addr in listeners), listeners
    server = urlparse(kube_env["KUBE_APISERVER"])
    assert server.hostname == "127.0.0.1"


# ---------------------------------------------------------------- workloads


def test_deployment_becomes_ready(kubectl, namespace):
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": IMAGE, "readinessProbe": {"tcpSocket": {"port": 5433}}}]},
                },
            },
        },
    )
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=%ss" % WAIT)
    status = get_json(kubectl, "deployment", "web", "-n", namespace)["status"]
    assert status["readyReplicas"] == 3
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", "app=web")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    fake_nodes = {n["metadata"]["name"] for n in get_json(kubectl, "nodes")["items"] if n["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake"}
    assert {p["spec"]["nodeName"] for p in pods} <= fake_nodes


def test_pvc_binds(kubectl, namespace):
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    wait_until("the PVC to be Bound", lambda: get_json(kubectl, "pvc", "data", "-n", namespace)["status"].get("phase") == "Bound")
    claim = get_json(kubectl, "pvc", "data", "-n", namespace)
    assert claim["spec"]["storageClassName"] == "kwok-volume"
    volume = get_json(kubectl, "pv", claim["spec"]["volumeName"])
    assert volume["status"]["phase"] == "Bound"


def pod_phase(kubectl, namespace, name):
    return get_json(kubectl, "pod", name, "-n", namespace)["status"].get("phase")


def test_annotated_pod_fails_others_run(kubectl, namespace):
    apply(kubectl, namespace, pod("doomed", {FAIL_ANNOTATION: "true"}))
    apply(kubectl, namespace, pod("healthy"))
    apply(kubectl, namespace, pod("not-doomed", {FAIL_ANNOTATION: "false"}))
    wait_until("pod doomed to be Failed", lambda: pod_phase(kubectl, namespace, "doomed") == "Failed")
    status = get_json(kubectl, "pod", "doomed", "-n", namespace)["status"]
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1
    for name in ("healthy", "not-doomed"):
        wait_until("pod %s to be Running" % name, lambda n=name: pod_phase(kubectl, namespace, n) == "Running")
    # Still Failed later: no other Stage takes the pod over.
    time.sleep(1)
    assert pod_phase(kubectl, namespace, "doomed") == "Failed"


def job(name, pod_annotations=None, backoff_limit=0):
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"annotations": pod_annotations or {}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": IMAGE}]},
            },
        },
    }


def job_condition(kubectl, namespace, name):
    conditions = get_json(kubectl, "job", name, "-n", namespace)["status"].get("conditions") or []
    done = [c["type"] for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
    return done[0] if done else None


def test_job_completes_or_fails_on_request(kubectl, namespace):
    apply(kubectl, namespace, job("ok"))
    apply(kubectl, namespace, job("broken", {FAIL_ANNOTATION: "true"}))
    assert wait_until("job ok to finish", lambda: job_condition(kubectl, namespace, "ok")) == "Complete"
    assert wait_until("job broken to finish", lambda: job_condition(kubectl, namespace, "broken")) == "Failed"


# --------------------------------------------------------------------- helm

CHART_YAML = """apiVersion: v2
name: tiertest
version: 0.1.0
kubeVersion: ">=1.30.0-0"
"""
VALUES_YAML = """replicas: 2
hookFails: false
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}-web}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-web}
    spec:
      containers:
        - name: web
          image: registry.invalid/pgtikv-test:1.0
"""
HOOK_JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-bootstrap
  annotations:
    helm.sh/hook: post-install,post-upgrade
    # Kept after success so the test can read its status.
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 60
  template:
    metadata:
      annotations:
        {{- if .Values.hookFails }}
        pgtikv.cloud/test-fail: "true"
        {{- end }}
        revision: {{ .Release.Revision | quote }}
    spec:
      restartPolicy: Never
      containers:
        - name: bootstrap
          image: registry.invalid/pgtikv-test:1.0
          command: ["/bin/true"]
"""
TEST_POD = """apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  restartPolicy: Never
  containers:
    - name: test
      image: registry.invalid/pgtikv-test:1.0
"""


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    root = tmp_path_factory.mktemp("chart") / "tiertest"
    (root / "templates" / "tests").mkdir(parents=True)
    (root / "Chart.yaml").write_text(CHART_YAML)
    (root / "values.yaml").write_text(VALUES_YAML)
    (root / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    (root / "templates" / "hook-job.yaml").write_text(HOOK_JOB)
    (root / "templates" / "tests" / "test-pod.yaml").write_text(TEST_POD)
    return str(root)


@pytest.mark.parametrize("helm_var, major", [("HELM_BIN", "v4."), ("HELM3_BIN", "v3.")])
def test_helm_install_hook_uninstall(kube_env, kubectl, namespace, chart, helm_var, major):
    helm_bin = kube_env[helm_var]

    def helm(*args, check=True):
        return run(kube_env, helm_bin, *args, "-n", namespace, check=check, timeout=180)

    assert helm("version", "--short").stdout.startswith(major)
    helm("upgrade", "--install", "rel", chart, "--wait", "--timeout", "2m")
    assert job_condition(kubectl, namespace, "rel-bootstrap") == "Complete"
    assert get_json(kubectl, "deployment", "rel-web", "-n", namespace)["status"]["readyReplicas"] == 2
    assert json.loads(helm("status", "rel", "-o", "json").stdout)["info"]["status"] == "deployed"
    helm("test", "rel", "--timeout", "1m")
    assert pod_phase(kubectl, namespace, "rel-test") == "Succeeded"

    # The hook is really waited for: a failing hook pod fails the upgrade.
    failed = helm("upgrade", "rel", chart, "--wait", "--timeout", "1m", "--set", "hookFails=true", check=False)
    assert failed.returncode != 0
    assert "rel-bootstrap" in failed.stderr, failed.stderr
    assert job_condition(kubectl, namespace, "rel-bootstrap") == "Failed"
    assert json.loads(helm("status", "rel", "-o", "json").stdout)["info"]["status"] == "failed"

    # The repaired values go through again (the hook Job is recreated, revision 3).
    helm("upgrade", "rel", chart, "--wait", "--timeout", "2m", "--set", "replicas=3")
    assert job_condition(kubectl, namespace, "rel-bootstrap") == "Complete"
    hook_pod_revisions = {p["metadata"]["annotations"]["revision"] for p in get_json(kubectl, "pods", "-n", namespace, "-l", "job-name=rel-bootstrap")["items"]}
    assert hook_pod_revisions == {"3"}
    assert get_json(kubectl, "deployment", "rel-web", "-n", namespace)["status"]["readyReplicas"] == 3

    helm("uninstall", "rel", "--wait", "--timeout", "1m")
    assert json.loads(helm("list", "-o", "json").stdout) == []
    assert kubectl("get", "deployment", "rel-web", "-n", namespace, check=False).returncode != 0


# ---------------------------------------------------------------- lifecycle

STACK_SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "stack"


def free_port_block(size):
    """The first of `size` consecutive loopback ports nobody listens on."""
    out = subprocess.run(["ss", "-Htan"], capture_output=True, text=True, check=True).stdout
    used = {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines()}
    for base in range(30100, 32700, size):
        if not used & set(range(base, base + size)):
            return base
    pytest.fail("no block of %d free loopback ports in 30100-32700" % size)
    return None


def running(pids):
    """The pids that still run (a zombie, exited but not reaped, does not count)."""
    alive = []
    for pid in pids:
        try:
            state = pathlib.Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.fixture
def private_stack():
    """A second, throw-away stack (own dir and ports) that this test may break."""
    stack_dir = tempfile.mkdtemp(prefix="pgtikv-kube-lifecycle.", dir="/tmp")
    os.chmod(stack_dir, 0o755)  # PostgreSQL runs as the postgres user
    base = free_port_block(10)
    env = dict(
        os.environ,
        PGTIKV_STACK_DIR=stack_dir,
        PD_CLIENT_PORT=str(base),
        PD_PEER_PORT=str(base + 1),
        POSTGRES_PORT=str(base + 2),
        PGTIKV_DOUBLE_PORT=str(base + 3),
        KUBE_PORT_BASE=str(base + 4),
    )
    env.pop("KUBECONFIG", None)
    yield env
    subprocess.run([str(STACK_SCRIPTS / "stop"), "--purge"], env=env, capture_output=True, timeout=120, check=False)
    pathlib.Path(stack_dir + ".lock").unlink(missing_ok=True)  # start/stop's flock file


@pytest.mark.slow
def test_start_stop_repair(private_stack):
    """start/stop on a private stack: stop leaves no process and no port,
    start after stop keeps the objects, a killed apiserver is repaired."""
    env = private_stack
    stack_dir = pathlib.Path(env["PGTIKV_STACK_DIR"])
    pid_dir = stack_dir / "kube" / "kwok" / "clusters" / "pgtikv" / "pids"
    ports = range(int(env["KUBE_PORT_BASE"]), int(env["KUBE_PORT_BASE"]) + 6)

    def stack(script, *args):
        return run(env, str(STACK_SCRIPTS / script), *args, timeout=300).stderr

    def kubectl_(*args, check=True):
        return run(
            env,
            env.get("KUBECTL_BIN") or os.path.join(env["PGTIKV_KUBE_BIN"], "kubectl"),
            "--kubeconfig",
            str(stack_dir / "kube" / "kubeconfig"),
            *args,
            check=check,
        )

    def pids():
        return {name.stem: int(name.read_text()) for name in pid_dir.glob("*.pid")}

    def listening():
        out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
        return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines()} & set(ports)

    assert "Kubernetes: creating cluster" in stack("start")
    assert listening() == set(ports)
    kubectl_("create", "configmap", "survivor", "-n", "default", "--from-literal=k=v")

    before = pids()
    assert len(before) == 5
    stack("stop")
    assert not running(before.values())
    assert not listening()

    assert "starting the stopped cluster" in stack("start")
    assert kubectl_("get", "configmap", "survivor", "-n", "default", "-o", "jsonpath={.data.k}").stdout == "v"

    os.kill(pids()["kube-apiserver"], 9)
    assert "only partly running; restarting" in stack("start")
    assert kubectl_("get", "--raw", "/readyz").stdout.strip() == "ok"
    assert kubectl_("get", "configmap", "survivor", "-n", "default", "-o", "jsonpath={.data.k}").stdout == "v"

    assert "Kubernetes: already up" in stack("start")

    last = pids()
    stack("stop", "--purge")
    assert not stack_dir.exists()
    assert not running(last.values())
    assert not listening()
