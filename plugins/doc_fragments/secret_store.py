# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The write-ahead secret store, handled by the modules' action plugins on the controller.
    DOCUMENTATION = r"""
options:
  secret_store:
    description:
      - Keep every password this task generates or rotates in a write-ahead store on the controller, instead of
        returning it.
      - A new password is written to the store as C(pending) (a file, by fsync and atomic rename; or a Kubernetes
        Secret, acknowledged by the API server once etcd committed it) before any server can accept it, then
        applied, proven by a login and promoted to C(current) (the old one is kept as C(previous)). When a run is
        interrupted anywhere, the next run converges to the pending password and logs in with the current or previous
        one, so the store always holds a password that logs in.
      - Credentials whose password is declared in the task are never stored.
      - The store is locked for the whole task; a second run waits up to O(secret_store.lock_timeout) seconds and
        then fails, naming the run that holds the lock, before it changes anything.
    type: dict
    suboptions:
      backend:
        description:
          - Where the store lives. V(file) is a YAML file on the controller.
          - V(kubernetes) is one Secret per tenant in O(secret_store.namespace), written through the Kubernetes API
            from the controller, each write on the C(resourceVersion) this run read (a Secret changed by anyone else
            in between fails the task and nothing further is written), and a Lease in the same namespace as the lock.
            It needs the Python library C(kubernetes) on the controller, and the right to get, list, create, update
            and delete Secrets and Leases in that namespace.
        type: str
        choices: [file, kubernetes]
        default: file
      path:
        description:
          - The store file on the controller. Its directory is created with mode 0700 when missing; the file is
            written with mode 0600 and refused when others may read it.
          - Required with O(secret_store.backend=file); not used by V(kubernetes).
        type: path
      lock_timeout:
        description: Seconds to wait for another run that holds the store's lock.
        type: int
        default: 120
      vault_encrypt:
        description:
          - V(auto) encrypts a new store with the vault password given to C(ansible-playbook) (C(--vault-password-file),
            C(--ask-vault-pass) or C(ANSIBLE_VAULT_PASSWORD_FILE)) when there is one. An existing store keeps its form.
          - V(always) fails when the run has no vault password. V(never) writes a new store in clear.
          - V(file) only. The Secrets of V(kubernetes) are protected by the cluster's RBAC and its encryption at rest.
        type: str
        choices: [auto, always, never]
        default: auto
      vault_id:
        description: The vault id whose password encrypts the store, when the run has several. V(file) only.
        type: str
      namespace:
        description:
          - The namespace of the store's Secrets and Lease; it must exist. Required with
            O(secret_store.backend=kubernetes).
        type: str
      kubeconfig:
        description:
          - The kubeconfig file the controller uses to reach the API server. Defaults to E(KUBECONFIG), then
            C(~/.kube/config), then the pod's service account when the controller runs in the cluster.
            V(kubernetes) only.
        type: path
      context:
        description: The kubeconfig context to use, instead of its current context. V(kubernetes) only.
        type: str
      name_prefix:
        description:
          - The beginning of the names of the store's Secrets and Lease. V(kubernetes) only.
          - The Secret of a tenant is the prefix, the tenant name lowercased with any other character than a letter or
            a digit replaced by C(-), C(-) and the first 10 hexadecimal digits of the SHA-256 of the exact tenant
            name; the exact name is in its annotation C(pgtikv.cloud/tenant). The Lease is the prefix and C(lock).
        type: str
        default: pgtikv-tenant-
      lease_duration:
        description:
          - Seconds after its last renewal when the lock of a run that died expires (the holder renews it every
            third of this). Another run waiting for the lock takes it over once it stayed unchanged this long on its
            own clock. V(kubernetes) only.
        type: int
        default: 30
notes:
  - The store is read and written on the controller by the module's action plugin, whatever host the task runs on.
"""
