# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the write-ahead secret store, shared by the action
plugins of the modules that take ``secret_store``.

PRIVATE: for use by this collection's plugins only; may change at any time.

The store is read, locked and written here, on the controller, so that the
vault secrets given to ansible-playbook (--vault-password-file,
--ask-vault-pass, ANSIBLE_VAULT_PASSWORD_FILE) encrypt it, and so that a
pending password is on disk before the module that applies it even starts.
"""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.parsing.vault import VaultLib, is_encrypted
from ansible.plugins.action import ActionBase
from ansible.utils.encrypt import random_password

from ansible_collections.pgtikv.cloud.plugins.module_utils import _kube_store
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import GENERATED_PASSWORD_LENGTH
from ansible_collections.pgtikv.cloud.plugins.module_utils._secret_store import FileStore, SecretStoreError, counts

STORE_DEFAULTS = {
    "backend": "file",
    "path": None,
    "lock_timeout": 120,
    "vault_encrypt": "auto",
    "vault_id": None,
    "namespace": None,
    "kubeconfig": None,
    "context": None,
    "name_prefix": _kube_store.DEFAULT_PREFIX,
    "lease_duration": _kube_store.DEFAULT_LEASE_DURATION,
}
FILE_ONLY = ("path", "vault_encrypt", "vault_id")
KUBERNETES_ONLY = ("namespace", "kubeconfig", "context", "name_prefix", "lease_duration")
# Letters and digits: safe unquoted in YAML, shells, URIs and connection strings.
GENERATED_PASSWORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def generate_password():
    """A new password, from ansible-core's own generator (the one behind the
    ansible.builtin.password lookup)."""
    return random_password(length=GENERATED_PASSWORD_LENGTH, chars=GENERATED_PASSWORD_CHARS)


def store_options(raw):
    """The ``secret_store`` option with its defaults, or SecretStoreError."""
    if not isinstance(raw, dict):
        raise SecretStoreError("secret_store must be a dictionary with at least 'path' (file) or 'namespace' (kubernetes)")
    unknown = sorted(set(raw) - set(STORE_DEFAULTS))
    if unknown:
        raise SecretStoreError("secret_store has unknown keys: %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(STORE_DEFAULTS))))
    opts = dict(STORE_DEFAULTS)
    opts.update({k: v for k, v in raw.items() if v is not None})
    given = {k for k, v in raw.items() if v is not None}
    if opts["backend"] == "file":
        if not opts["path"] or not isinstance(opts["path"], str):
            raise SecretStoreError("secret_store.path is required: the file that keeps the generated passwords")
        wrong = sorted(given & set(KUBERNETES_ONLY))
    elif opts["backend"] == "kubernetes":
        if not opts["namespace"] or not isinstance(opts["namespace"], str):
            raise SecretStoreError("secret_store.namespace is required with backend 'kubernetes': the namespace of the store's Secrets and Lease")
        err = _kube_store.check_prefix(opts["name_prefix"])
        if err:
            raise SecretStoreError(err)
        wrong = sorted(given & set(FILE_ONLY) - {"vault_encrypt"} if opts["vault_encrypt"] == "auto" else given & set(FILE_ONLY))
    else:
        raise SecretStoreError("secret_store.backend must be 'file' or 'kubernetes', not %r" % (opts["backend"],))
    if wrong:
        raise SecretStoreError("secret_store.%s %s not apply to backend %r" % (", ".join(wrong), "does" if len(wrong) == 1 else "do", opts["backend"]))
    for key, least in (("lock_timeout", 0), ("lease_duration", 3)):
        try:
            opts[key] = int(opts[key])
        except (TypeError, ValueError):
            raise SecretStoreError("secret_store.%s must be a whole number of seconds" % key) from None
        if opts[key] < least:
            raise SecretStoreError("secret_store.%s must be at least %d" % (key, least))
    if opts["vault_encrypt"] not in ("auto", "always", "never"):
        raise SecretStoreError("secret_store.vault_encrypt must be auto, always or never")
    return opts


def open_store(loader, opts, what):
    """The store's backend: a FileStore wired to the controller's vault
    secrets, or a KubeSecretStore."""
    if opts["backend"] == "kubernetes":
        api = _kube_store.KubeApi(kubeconfig=opts["kubeconfig"], context=opts["context"])
        return _kube_store.KubeSecretStore(
            api, opts["namespace"], name_prefix=opts["name_prefix"], lock_timeout=opts["lock_timeout"], lease_duration=opts["lease_duration"], what=what
        )
    secrets = [s for s in (getattr(getattr(loader, "_vault", None), "secrets", None) or []) if s and s[1]]
    vault = VaultLib(secrets) if secrets else None
    if opts["vault_id"] and vault is not None:
        chosen = [s for s in secrets if s[0] == opts["vault_id"]]
        if not chosen:
            raise SecretStoreError("secret_store.vault_id %r is not among the vault ids given to this run" % opts["vault_id"])
    if opts["vault_encrypt"] == "always" and vault is None:
        raise SecretStoreError(
            "secret_store.vault_encrypt is 'always' but this run has no vault password (give "
            "--vault-password-file, --ask-vault-pass or ANSIBLE_VAULT_PASSWORD_FILE)"
        )
    encrypt = decrypt = None
    if vault is not None:

        def decrypt(text):
            return to_text(vault.decrypt(to_bytes(text)))

        if opts["vault_encrypt"] != "never":
            secret = None
            if opts["vault_id"]:
                secret = [s for s in secrets if s[0] == opts["vault_id"]][0][1]

            def encrypt(text):
                return to_text(vault.encrypt(to_bytes(text), secret=secret, vault_id=opts["vault_id"]))

    store = FileStore(
        opts["path"], encrypt=encrypt, decrypt=decrypt, is_encrypted=lambda text: is_encrypted(to_bytes(text)), lock_timeout=opts["lock_timeout"], what=what
    )
    return store


class SecretStoreAction(ActionBase):
    """Runs the task's module under the write-ahead protocol of ``secret_store``.

    A subclass says how the module's arguments take the stored passwords
    (``fill``) and which pending passwords the module's result proves
    (``promote``). Without ``secret_store`` the module runs as it is.
    """

    TRANSFERS_FILES = False
    MODULE = None

    def precheck(self, args, has_store):
        """A message when the arguments cannot run (before anything is read), else None."""
        return None

    def reads_only(self, args):
        """True when the task never writes (then nothing is generated or promoted)."""
        return bool(self._task.check_mode)

    def fill(self, data, args, check_mode):
        """(module args, number of pending passwords added to ``data``)."""
        raise NotImplementedError

    def promote(self, data, declared, result):
        """How many pending passwords of ``data`` ``result`` proved and promoted."""
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        raw_store = args.pop("secret_store", None)
        err = self.precheck(args, bool(raw_store))
        if err:
            return dict(result, failed=True, changed=False, msg=err)
        if not raw_store:
            result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
            return result
        try:
            opts = store_options(raw_store)
            store = open_store(self._loader, opts, "%s task %r" % (self.MODULE, self._task.get_name()))
            with store.locked():
                data = store.load()
                reads_only = self.reads_only(args)
                module_args, added = self.fill(data, args, reads_only)
                if added:
                    store.save(data)  # write-ahead: on disk before any server can accept them
                module_result = self._execute_module(module_name=self.MODULE, module_args=module_args, task_vars=task_vars)
                promoted = 0 if reads_only else self.promote(data, args, module_result)
                if promoted:
                    try:
                        store.save(data)
                    except SecretStoreError as exc:
                        msg = "%s. The new passwords were applied and proven, and stay in the store as pending; the next run promotes them" % exc
                        module_result["failed"] = True
                        module_result["msg"] = msg
                        if "problems" in module_result:
                            module_result["problems"] = list(module_result["problems"] or []) + [msg]
                module_result["secret_store"] = dict(counts(data), path=store.describe(), generated=added, promoted=promoted)
        except SecretStoreError as exc:
            return dict(result, failed=True, changed=False, msg=str(exc))
        self.forget_generated(module_result)
        result.update(module_result)
        return result

    def forget_generated(self, module_result):
        """Drop what the module would return as generated: with a store, it generated nothing."""
