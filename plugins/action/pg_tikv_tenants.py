# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of pg_tikv_tenants: the write-ahead secret store.

Without ``secret_store`` the module runs as it is. With it, on the
controller and under the store's lock:

1. read the store and give every credential that has no declared password
   the stored one (pending first, then current), generating a pending one
   where none is known or ``rotate`` asks for a new one;
2. write the store durably BEFORE the module runs (nothing is applied when
   that fails);
3. run the module;
4. promote every pending password the module proved by a login, and write
   the store again.

An interruption anywhere leaves a store whose passwords still log in: the
next run converges to the pending ones, logging in with current/previous.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.pgtikv.cloud.plugins.module_utils._secret_store import (
    ROTATE_CHOICES,
    SecretStoreError,
    counts,
    fill_fleet,
    promote_fleet,
)
from ansible_collections.pgtikv.cloud.plugins.plugin_utils._store_action import (
    generate_password,
    open_store,
    store_options,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        raw_store = args.pop("secret_store", None)
        rotate = args.pop("rotate", None) or "none"
        if rotate not in ROTATE_CHOICES:
            return dict(result, failed=True, changed=False,
                        msg="rotate must be one of %s, not %r" % (", ".join(ROTATE_CHOICES), rotate))
        if not raw_store:
            if rotate != "none":
                return dict(result, failed=True, changed=False,
                            msg="rotate needs secret_store: new passwords are stored before they are set")
            result.update(self._execute_module(module_args=args, task_vars=task_vars))
            return result
        declared = args.get("config") or []
        if not isinstance(declared, list) or not all(isinstance(i, dict) for i in declared):
            # Not a list of entries: the module refuses it with its own message.
            result.update(self._execute_module(module_args=args, task_vars=task_vars))
            return result
        try:
            opts = store_options(raw_store)
            store = open_store(self._loader, opts, "pgtikv.cloud.pg_tikv_tenants task %r" % self._task.get_name())
            with store.locked():
                data = store.load()
                check_mode = bool(self._task.check_mode) or args.get("state") == "gathered"
                items, added = fill_fleet(data, declared, generate_password,
                                          rotate=rotate, check_mode=check_mode)
                if added:
                    store.save(data)  # write-ahead: on disk before any server can accept them
                args["config"] = items
                module_result = self._execute_module(module_name="pgtikv.cloud.pg_tikv_tenants",
                                                     module_args=args, task_vars=task_vars)
                promoted = 0
                if not check_mode:
                    promoted = promote_fleet(data, declared, module_result.get("tenants"))
                    if promoted:
                        try:
                            store.save(data)
                        except SecretStoreError as exc:
                            msg = ("%s. The new passwords were applied and proven, and stay in the store as "
                                   "pending; the next run promotes them" % exc)
                            module_result["failed"] = True
                            module_result["msg"] = msg
                            module_result["problems"] = list(module_result.get("problems") or []) + [msg]
                module_result["secret_store"] = dict(counts(data), path=store.describe(),
                                                     generated=added, promoted=promoted)
        except SecretStoreError as exc:
            return dict(result, failed=True, changed=False, msg=str(exc))
        module_result.pop("generated_passwords", None)  # every one is in the store
        result.update(module_result)
        return result
