# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection to PD's HTTP API (the keyspace API lives under /pd/api/v2/keyspaces).
    DOCUMENTATION = r"""
options:
  pd_endpoints:
    description:
      - PD client URLs, tried in order. Each is V(host:port), V(host) (port 2379) or a full V(http://host:port) /
        V(https://host:port) URL; an item may itself be a comma-separated list.
      - The next endpoint is used only when one cannot serve the request (connection error, TLS error, timeout,
        HTTP 502/503/504, or PD answering that it has no leader or is not started) or gives an answer that is not
        PD's (HTTP 404 without PD's "keyspace does not exist", a body that is not JSON, an error page that is not
        PD's, or a JSON answer without the fields the request needs, such as C(200 {})); PD's own answer about
        the keyspace is never retried on another endpoint. The endpoint that answered is tried first by the next
        request. When no endpoint answers like PD, the task fails and lists what each endpoint answered.
      - A URL with a user name or password (V(https://user:secret@pd:2379)) is refused before anything is sent,
        because PD has no password authentication (use O(pd_client_cert)). Messages and the echoed arguments show it
        masked.
      - If not set, the environment variable E(PD_ENDPOINTS) (comma-separated, as in the pg-tikv admin CLI) is used.
    type: list
    elements: str
    default: ['127.0.0.1:2379']
  pd_timeout:
    description: Timeout in seconds of one HTTP request to PD. Must be more than 0.
    type: float
    default: 10.0
  pd_retries:
    description:
      - How many more rounds over all endpoints an idempotent request (GET, state PUT, config PATCH) gets, with
        jittered exponential backoff between rounds, when no endpoint could serve it (see O(pd_endpoints)).
        A TLS error is not retried.
      - Creation (POST) is never retried blindly; after a timeout, an error answer or an "already exists" the
        keyspace is re-read.
      - Must be 0 or more.
    type: int
    default: 3
  pd_ca_cert:
    description:
      - CA bundle to verify PD's certificate. Implies V(https://) for endpoints given without a scheme.
      - The file must exist and be readable, as must O(pd_client_cert) and O(pd_client_key).
      - If not set, the environment variable E(PD_CA_CERT) is used.
    type: path
  pd_client_cert:
    description:
      - Client certificate for mutual TLS. PD has no other authentication (see the C([security]) section of PD's configuration).
        Implies V(https://) for endpoints given without a scheme.
      - If not set, the environment variable E(PD_CLIENT_CERT) is used.
    type: path
  pd_client_key:
    description:
      - Private key of O(pd_client_cert). If not set, the environment variable E(PD_CLIENT_KEY) is used.
    type: path
  pd_validate_certs:
    description:
      - Whether to verify PD's TLS certificate (against O(pd_ca_cert), or the system CAs without it). Only set V(false)
        on private test networks.
      - O(pd_ca_cert) wins over the environment variables E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE).
    type: bool
    default: true
"""
