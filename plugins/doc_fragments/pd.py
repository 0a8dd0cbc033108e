# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection to PD's HTTP API (the keyspace API lives under /pd/api/v2/keyspaces).
    DOCUMENTATION = r"""
options:
  pd_endpoints:
    description:
      - PD client URLs, tried in order. Each is V(host:port) or a full V(http://host:port) / V(https://host:port) URL.
      - The next endpoint is used only when one cannot be reached (connection error or timeout, or HTTP 502/503/504);
        a PD error answer is never retried on another endpoint.
      - If not set, the environment variable E(PD_ENDPOINTS) (comma-separated, as in the pg-tikv admin CLI) is used.
    type: list
    elements: str
    default: ['127.0.0.1:2379']
  pd_timeout:
    description: Timeout in seconds of one HTTP request to PD.
    type: float
    default: 10.0
  pd_retries:
    description:
      - How many times an idempotent request (GET, state PUT, config PATCH) is retried, with jittered exponential
        backoff, when PD answers 5xx without a keyspace error or the request times out.
      - Creation (POST) is never retried blindly; the module re-reads the keyspace instead.
    type: int
    default: 3
  pd_ca_cert:
    description:
      - CA bundle to verify PD's certificate. Implies V(https://) for endpoints given without a scheme.
      - If not set, the environment variable E(PD_CA_CERT) is used.
    type: path
  pd_client_cert:
    description:
      - Client certificate for mutual TLS; PD has no other authentication (reference: PD C([security]) section).
      - If not set, the environment variable E(PD_CLIENT_CERT) is used.
    type: path
  pd_client_key:
    description:
      - Private key of O(pd_client_cert). If not set, the environment variable E(PD_CLIENT_KEY) is used.
    type: path
  pd_validate_certs:
    description: Whether to verify PD's TLS certificate. Only set V(false) on private test networks.
    type: bool
    default: true
"""
