# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of pg_tikv_tenants: the write-ahead secret store (see
plugin_utils/_store_action.py and module_utils/_secret_store.py).

Every credential of the fleet without a declared password takes the stored
one (pending first, then current; current and previous as login
candidates). Where none is known, or ``rotate`` asks for a new one, a pending
password is generated and written before the module runs; the module's
``proven`` results promote them afterwards.
"""

from __future__ import annotations

from ansible_collections.pgtikv.cloud.plugins.module_utils._secret_store import (
    ROTATE_CHOICES,
    fill_fleet,
    promote_fleet,
)
from ansible_collections.pgtikv.cloud.plugins.plugin_utils._store_action import SecretStoreAction, generate_password


class ActionModule(SecretStoreAction):
    MODULE = "pgtikv.cloud.pg_tikv_tenants"

    def precheck(self, args, has_store):
        rotate = args.pop("rotate", None) or "none"
        self._rotate = rotate
        if rotate not in ROTATE_CHOICES:
            return "rotate must be one of %s, not %r" % (", ".join(ROTATE_CHOICES), rotate)
        if rotate != "none" and not has_store:
            return "rotate needs secret_store: new passwords are stored before they are set"
        declared = args.get("config") or []
        if has_store and not (isinstance(declared, list) and all(isinstance(i, dict) for i in declared)):
            return "config must be a list of tenant entries (dictionaries)"
        return None

    def reads_only(self, args):
        return super().reads_only(args) or args.get("state") == "gathered"

    def fill(self, data, args, check_mode):
        module_args = dict(args)
        module_args["config"], added = fill_fleet(data, args.get("config") or [], generate_password, rotate=self._rotate, check_mode=check_mode)
        return module_args, added

    def promote(self, data, declared, result):
        return promote_fleet(data, declared.get("config") or [], result.get("tenants"))

    def forget_generated(self, module_result):
        module_result.pop("generated_passwords", None)
