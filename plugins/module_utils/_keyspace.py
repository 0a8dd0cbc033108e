# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PD keyspace rules that need no network: states and their transitions,
config normalising and merge patches, the view of a keyspace the modules
return, and the info module's filters.

PRIVATE: for use by this collection's modules only; may change at any time.

Pure functions over plain dicts (PD's keyspace JSON): no client, no Ansible.
"""

from __future__ import annotations

import datetime
import fnmatch

from ansible_collections.pgtikv.cloud.plugins.module_utils._common import PD_PROTECTED_KEYSPACES, RESERVED_TENANT_NAMES

# Module state -> PD keyspace state.
TARGET_STATES = {
    "present": "ENABLED",
    "disabled": "DISABLED",
    "archived": "ARCHIVED",
    "tombstone": "TOMBSTONE",
}

# PD keyspace state -> module state.
MODULE_STATES = {pd_state: state for state, pd_state in TARGET_STATES.items()}

# PD's stateTransitionTable without the no-op self edges
# (reference/pd-keyspace-api.md §3).
TRANSITIONS = {
    "ENABLED": ("DISABLED",),
    "DISABLED": ("ENABLED", "ARCHIVED"),
    "ARCHIVED": ("TOMBSTONE",),
    "TOMBSTONE": (),
}

# Config may change only in these states (§3 allowChangeConfig).
CONFIG_WRITABLE_STATES = ("ENABLED", "DISABLED")

# Keys PD injects, derives, normalises or refuses to PATCH
# (reference/pd-keyspace-api.md §4). Never written by this module.
SERVER_MANAGED_CONFIG_KEYS = (
    "region_bound_type",
    "gc_management_type",
    "tso_keyspace_group_id",
    "user_kind",
    "meta_service_group_id",
    "meta_service_group_addrs",
)


def normalize_config(config):
    """Split a desired config into (user_config, managed_keys, errors).

    ``user_config`` maps key -> str (put) or None (delete, merge-patch null).
    Integers and floats are turned into strings (PD's config is a string map,
    §1.1); booleans, lists and dicts are refused because their string form is
    ambiguous. Server-managed keys are returned separately and never written.
    """
    errors = []
    user, managed = {}, []
    if config is None:
        return None, managed, errors
    if not isinstance(config, dict):
        return None, managed, ["config must be a dictionary of string keys and string (or null) values"]
    for key, value in config.items():
        if not isinstance(key, str) or not key.strip():
            errors.append("config keys must be non-empty strings (got %r)" % (key,))
            continue
        if key in SERVER_MANAGED_CONFIG_KEYS:
            managed.append(key)
            continue
        if value is None or isinstance(value, str):
            user[key] = value
        elif isinstance(value, bool):
            errors.append("config[%r]: PD config values are strings; quote the boolean (e.g. 'true')" % key)
        elif isinstance(value, (int, float)):
            user[key] = str(value)
        else:
            errors.append("config[%r]: PD config values must be strings or null (to delete the key), not %s" % (key, type(value).__name__))
    return user, managed, errors


def split_config(config):
    """(user-owned keys, server-managed keys) of a keyspace's config."""
    config = config or {}
    user = {k: v for k, v in config.items() if k not in SERVER_MANAGED_CONFIG_KEYS}
    managed = {k: v for k, v in config.items() if k in SERVER_MANAGED_CONFIG_KEYS}
    return user, managed


def config_patch(current, desired):
    """The merge patch that turns ``current`` into ``desired`` (only the keys
    ``desired`` names; value None means delete). Empty dict: nothing to do."""
    current = current or {}
    patch = {}
    for key, value in (desired or {}).items():
        if value is None:
            if key in current:
                patch[key] = None
        elif current.get(key) != value:
            patch[key] = value
    return patch


def apply_patch(config, patch):
    result = dict(config or {})
    for key, value in (patch or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def plan_transitions(current, target):
    """Shortest list of states to PUT to go from ``current`` to ``target``.

    Raises ValueError with a message a person can act on when PD's state
    machine has no path (e.g. ARCHIVED -> ENABLED).
    """
    current = (current or "").upper()
    target = (target or "").upper()
    if current not in TRANSITIONS:
        raise ValueError("PD reports an unknown keyspace state %r" % current)
    if target not in TRANSITIONS:
        raise ValueError("unknown target state %r" % target)
    if current == target:
        return []
    queue = [(current, [])]
    seen = {current}
    while queue:
        state, path = queue.pop(0)
        for nxt in TRANSITIONS[state]:
            if nxt in seen:
                continue
            if nxt == target:
                return path + [nxt]
            seen.add(nxt)
            queue.append((nxt, path + [nxt]))
    if current == "TOMBSTONE":
        why = "TOMBSTONE is final: PD keeps the name forever and never re-enables it"
    elif current == "ARCHIVED":
        why = "an ARCHIVED keyspace can only move on to TOMBSTONE"
    else:
        why = "PD's state machine has no such path"
    raise ValueError(
        "cannot move keyspace from %s to %s: %s (legal moves: ENABLED->DISABLED, DISABLED->ENABLED|ARCHIVED, ARCHIVED->TOMBSTONE)" % (current, target, why)
    )


def _iso(ts):
    if not isinstance(ts, int) or ts <= 0:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def keyspace_view(keyspace):
    """What the modules return for a keyspace (None stays None)."""
    if not keyspace:
        return None
    config = dict(keyspace.get("config") or {})
    managed = split_config(config)[1]
    return {
        "id": keyspace.get("id"),
        "name": keyspace.get("name"),
        "state": keyspace.get("state"),
        "created_at": keyspace.get("created_at"),
        "state_changed_at": keyspace.get("state_changed_at"),
        "created": _iso(keyspace.get("created_at")),
        "state_changed": _iso(keyspace.get("state_changed_at")),
        "config": config,
        "server_managed_config": managed,
    }


def filter_keyspaces(keyspaces, states=None, name_pattern=None, include_reserved=False):
    """Keyspaces matching the info module's filters (states are PD states)."""
    wanted = {s.upper() for s in states} if states else None
    out = []
    for keyspace in keyspaces:
        name = keyspace.get("name") or ""
        if not include_reserved and (name in PD_PROTECTED_KEYSPACES or name in RESERVED_TENANT_NAMES or keyspace.get("id") == 0):
            continue
        if wanted is not None and keyspace.get("state") not in wanted:
            continue
        if name_pattern and not fnmatch.fnmatchcase(name, name_pattern):
            continue
        out.append(keyspace)
    return out
