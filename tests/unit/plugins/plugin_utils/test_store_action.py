# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret_store option of the action plugins, per backend."""

from __future__ import annotations

import re

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils._secret_store import SecretStoreError
from ansible_collections.pgtikv.cloud.plugins.plugin_utils._store_action import store_options


@pytest.mark.parametrize(
    "raw,text",
    [
        ({"backend": "kubernetes"}, "secret_store.namespace is required"),
        ({"backend": "kubernetes", "namespace": "ns", "path": "/x"}, "secret_store.path does not apply"),
        ({"backend": "kubernetes", "namespace": "ns", "vault_encrypt": "always"}, "vault_encrypt does not apply"),
        ({"backend": "kubernetes", "namespace": "ns", "name_prefix": "Bad_"}, "name_prefix must be"),
        ({"backend": "kubernetes", "namespace": "ns", "lease_duration": 1}, "lease_duration must be at least 3"),
        ({"path": "/x", "namespace": "ns"}, "secret_store.namespace does not apply to backend 'file'"),
        ({"backend": "vault", "path": "/x"}, "must be 'file' or 'kubernetes'"),
    ],
)
def test_store_options_per_backend(raw, text):
    with pytest.raises(SecretStoreError, match=re.escape(text)):
        store_options(raw)


def test_store_options_kubernetes_defaults():
    opts = store_options({"backend": "kubernetes", "namespace": "ns", "vault_encrypt": "auto", "lock_timeout": "5"})
    assert opts["name_prefix"] == "pgtikv-tenant-" and opts["lease_duration"] == 30 and opts["lock_timeout"] == 5


def test_store_options_file_unchanged():
    opts = store_options({"path": "/x/s.yml"})
    assert opts["backend"] == "file" and opts["path"] == "/x/s.yml" and opts["vault_encrypt"] == "auto"
    with pytest.raises(SecretStoreError, match="secret_store.path is required"):
        store_options({})
