# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of pg_tikv_user: the write-ahead secret store for the
user's password, logging in with the tenant's stored admin when no login is
given (see plugin_utils/_store_action.py)."""

from __future__ import annotations

from ansible_collections.pgtikv.cloud.plugins.module_utils._secret_store import fill_user, promote_user
from ansible_collections.pgtikv.cloud.plugins.plugin_utils._store_action import SecretStoreAction, generate_password


class ActionModule(SecretStoreAction):
    MODULE = "pgtikv.cloud.pg_tikv_user"

    def fill(self, data, args, check_mode):
        return fill_user(data, args, generate_password, check_mode=check_mode)

    def promote(self, data, declared, result):
        return promote_user(data, declared, result)

    def forget_generated(self, module_result):
        module_result.pop("generated_password", None)
