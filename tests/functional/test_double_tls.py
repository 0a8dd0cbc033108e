# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double: optional, fail-open TLS (reference §5).

Certificates come from the ``openssl`` CLI. Clients are psql and psycopg2;
the SSLRequest answer byte ('S'/'N') is read with a raw socket.
"""

from __future__ import annotations

import socket
import struct
import subprocess

import pytest

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Self-signed RSA (PKCS#8 and PKCS#1 keys) and an EC key in SEC1 form."""
    d = tmp_path_factory.mktemp("certs")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        cwd=d,
    )
    _openssl("rsa", "-in", "key.pem", "-traditional", "-out", "key-pkcs1.pem", cwd=d)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec-key.pem", cwd=d)
    _openssl("req", "-x509", "-new", "-key", "ec-key.pem", "-out", "ec-cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1", cwd=d)
    assert "BEGIN PRIVATE KEY" in (d / "key.pem").read_text()
    assert "BEGIN RSA PRIVATE KEY" in (d / "key-pkcs1.pem").read_text()
    assert "BEGIN EC PRIVATE KEY" in (d / "ec-key.pem").read_text()
    return d


def _ssl_answer(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(SSL_REQUEST)
        return sock.recv(1)


@pytest.fixture(scope="module")
def tls_double(double_factory, certs):
    return double_factory("--tls-cert", str(certs / "cert.pem"), "--tls-key", str(certs / "key.pem"), name="double-tls")


def test_tls_configured_answers_s_and_encrypts(tls_double, certs, keyspace, helpers):
    """§5.2: with cert and key, SSLRequest is answered 'S'; psql with
    sslmode=verify-full and psycopg2 with sslmode=require use TLS."""
    assert _ssl_answer(tls_double.port) == b"S"
    res = helpers.run_psql(
        tls_double.port, keyspace + ".admin", "admin", "SELECT version()", sslmode="verify-full", env={"PGSSLROOTCERT": str(certs / "cert.pem")}
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "PostgreSQL 15.0 (pg-tikv)"
    conn = helpers.pg_connect(tls_double.port, keyspace + ".admin", "admin", sslmode="require")
    try:
        assert conn.info.ssl_in_use
        assert conn.info.ssl_attribute("protocol") in ("TLSv1.2", "TLSv1.3")
    finally:
        conn.close()
    assert "TLS enabled with cert: " in tls_double.log_text()


def test_plaintext_is_always_accepted(tls_double, keyspace, helpers):
    """§5.2: the server cannot require TLS: sslmode=disable still works."""
    conn = helpers.pg_connect(tls_double.port, keyspace + ".admin", "admin", sslmode="disable")
    try:
        assert not conn.info.ssl_in_use
    finally:
        conn.close()


def test_without_tls_sslrequest_is_refused_and_prefer_falls_back(double, keyspace, helpers):
    """§5.2: without TLS configured SSLRequest gets 'N'; sslmode=prefer
    falls back to plaintext and sslmode=require fails on the client."""
    assert _ssl_answer(double.port) == b"N"
    assert helpers.run_psql(double.port, keyspace + ".admin", "admin", "SELECT 1", sslmode="prefer").returncode == 0
    res = helpers.run_psql(double.port, keyspace + ".admin", "admin", "SELECT 1", sslmode="require")
    assert res.returncode != 0 and "server does not support SSL" in res.stderr


def test_pkcs1_rsa_key_is_accepted(double_factory, certs, keyspace, helpers):
    """§5.1: the key may be PKCS#8 or, as a fallback, PKCS#1 RSA."""
    dbl = double_factory("--tls-cert", str(certs / "cert.pem"), "--tls-key", str(certs / "key-pkcs1.pem"), name="double-tls-pkcs1")
    assert _ssl_answer(dbl.port) == b"S"
    conn = helpers.pg_connect(dbl.port, keyspace + ".admin", "admin", sslmode="require")
    try:
        assert conn.info.ssl_in_use
    finally:
        conn.close()


@pytest.mark.parametrize("case", ["cert-only", "key-only", "ec-sec1-key", "missing-file", "key-is-a-cert"])
def test_tls_setup_problems_fail_open_with_a_warning(case, double_factory, certs, keyspace, helpers):
    """§5.1: only one of cert/key, an unsupported (SEC1 EC) key or an
    unreadable file: a WARN line, the server runs without TLS (fail-open)."""
    args = {
        "cert-only": ["--tls-cert", str(certs / "cert.pem")],
        "key-only": ["--tls-key", str(certs / "key.pem")],
        "ec-sec1-key": ["--tls-cert", str(certs / "ec-cert.pem"), "--tls-key", str(certs / "ec-key.pem")],
        "missing-file": ["--tls-cert", str(certs / "nope.pem"), "--tls-key", str(certs / "key.pem")],
        "key-is-a-cert": ["--tls-cert", str(certs / "cert.pem"), "--tls-key", str(certs / "cert.pem")],
    }[case]
    dbl = double_factory(*args, name="double-tls-" + case)
    expected = "Both PG_TLS_CERT and PG_TLS_KEY must be set. Running without TLS." if case in ("cert-only", "key-only") else "Running without TLS."
    warn = [line for line in dbl.log_text().splitlines() if " WARN " in line]
    assert warn and expected in warn[0] and (case in ("cert-only", "key-only") or "Failed to setup TLS" in warn[0])
    assert _ssl_answer(dbl.port) == b"N"
    assert helpers.run_psql(dbl.port, keyspace + ".admin", "admin", "SELECT 1", sslmode="prefer").returncode == 0
    assert helpers.run_psql(dbl.port, keyspace + ".admin", "admin", "SELECT 1", sslmode="require").returncode != 0
