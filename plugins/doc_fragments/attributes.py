# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # What each attribute means, written once. Every module extends this base and
    # declares only its own support and details for each attribute.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row with the same arguments, outside check mode, the second run reports no change.
"""

    # Every module joins the action group.
    ACTION_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/pgtikv.cloud.pg_tikv) in C(module_defaults) to set connection options once for all modules.
    support: full
    membership:
      - pgtikv.cloud.pg_tikv
"""

    # Modules that only read (used together with the base above).
    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    details: This module never changes anything, so it runs normally in check mode.
  diff_mode:
    support: N/A
    details: This module never changes anything.
  idempotent:
    support: full
    details: This module never changes anything.
"""
