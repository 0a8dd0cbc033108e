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
      - A new password is written to the store as C(pending) (fsync and atomic rename) before any server can accept
        it, then applied, proven by a login and promoted to C(current) (the old one is kept as C(previous)). When a
        run is interrupted anywhere, the next run converges to the pending password and logs in with the current or
        previous one, so the store always holds a password that logs in.
      - Credentials whose password is declared in the task are never stored.
      - The store is locked for the whole task; a second run waits up to O(secret_store.lock_timeout) seconds and
        then fails, naming the run that holds the lock, before it changes anything.
    type: dict
    suboptions:
      backend:
        description: Where the store lives. V(file) is a YAML file on the controller.
        type: str
        choices: [file]
        default: file
      path:
        description:
          - The store file on the controller. Its directory is created with mode 0700 when missing; the file is
            written with mode 0600 and refused when others may read it.
        type: path
        required: true
      lock_timeout:
        description: Seconds to wait for another run that holds the store's lock.
        type: int
        default: 120
      vault_encrypt:
        description:
          - V(auto) encrypts a new store with the vault password given to C(ansible-playbook) (C(--vault-password-file),
            C(--ask-vault-pass) or C(ANSIBLE_VAULT_PASSWORD_FILE)) when there is one. An existing store keeps its form.
          - V(always) fails when the run has no vault password. V(never) writes a new store in clear.
        type: str
        choices: [auto, always, never]
        default: auto
      vault_id:
        description: The vault id whose password encrypts the store, when the run has several.
        type: str
notes:
  - The store is read and written on the controller by the module's action plugin, whatever host the task runs on.
"""
