# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AnsibleModule plumbing shared by this collection's modules: missing
libraries, the shared option checks, and the final answer.

PRIVATE: for use by this collection's modules only; may change at any time.
"""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.warnings import get_warning_messages

from ansible_collections.pgtikv.cloud.plugins.module_utils import _pd_client
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import TaskError, hide_non_string_secrets, option_errors


def _import_state(library):
    """(available, import error) of a library this collection needs."""
    if library == "requests":
        return _pd_client.HAS_REQUESTS, _pd_client.REQUESTS_IMPORT_ERROR
    if library == "psycopg2":
        # Imported here: the PD-only modules need not load the SQL client.
        from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client

        return _sql_client.HAS_PSYCOPG2, _sql_client.PSYCOPG2_IMPORT_ERROR
    raise ValueError("unknown library %r" % library)


def missing_library(library):
    """fail_json's ``msg`` and ``exception`` for a library that is not installed."""
    return {"msg": missing_required_lib(library), "exception": str(_import_state(library)[1])}


def require_libraries(module, *libraries):
    """fail_json for the first of ``libraries`` ("requests", "psycopg2") that is not installed."""
    for library in libraries:
        if not _import_state(library)[0]:
            module.fail_json(**missing_library(library))


def check_options(module):
    """Right after AnsibleModule(): refuse the shared options that are wrong
    (option_errors, and PD endpoints the client would refuse) before any
    work, so that every module fails the same clear way and changes nothing.

    A secret in a PD endpoint's userinfo is added to ``no_log_values`` first:
    Ansible then masks it everywhere, the echoed arguments included. A
    refused non-string password is replaced by the no_log placeholder before
    the arguments are echoed (hide_non_string_secrets).
    """
    params = module.params
    endpoints = params.get("pd_endpoints")
    for secret in _pd_client.endpoint_secrets(endpoints):
        module.no_log_values.add(secret)
    errors = option_errors(module.argument_spec, params)
    if "pd_endpoints" in module.argument_spec:
        use_tls = bool(params.get("pd_ca_cert") or params.get("pd_client_cert"))
        for endpoint in _pd_client.split_endpoints(endpoints):
            try:
                _pd_client.normalize_endpoint(endpoint, use_tls)
            except _pd_client.PDConfigError as exc:
                errors.append(str(exc))
    if errors:
        hide_non_string_secrets(module.argument_spec, params)
        module.fail_json(msg="; ".join(errors), changed=False)


def run_module(module, libraries, work):
    """Every module's main() after AnsibleModule(): the shared option checks,
    the libraries it needs, its work, and the answer. ``work(warnings)``
    returns the result or raises TaskError with the partial result; it may
    append to ``warnings``."""
    check_options(module)
    require_libraries(module, *libraries)
    warnings = []
    try:
        result, failed_msg = work(warnings), None
    except TaskError as error:
        result, failed_msg = failure(error)
    finish(module, result, warnings, failed_msg)


def failure(error):
    """(result, failed_msg) for finish() from a TaskError raised by a module's
    work: its partial result, and its message; a missing library is told the
    way require_libraries tells it."""
    result = dict(error.result)
    if error.kind == "missing_library" and error.library:
        missing = missing_library(error.library)
        result["exception"] = missing["exception"]
        return result, missing["msg"]
    return result, error.message


# What AnsibleModule puts in place of a no_log value, or inside a string.
_NO_LOG_PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
_NO_LOG_MASK = "********"


def occurring_no_log_values(no_log_values, *values):
    """The no_log values that AnsibleModule's masking would find in ``values``:
    those that occur in a string (or in the text of a number) anywhere in
    them, plus any that masking itself could make appear (one containing
    ``*`` or part of the placeholder).

    AnsibleModule masks by trying every no_log value on every string of the
    result, a cost of strings x values: for a fleet of 10,000 tenants, 30,000
    passwords on 40,000 strings, minutes. Here each string is cut into the
    slices as long as some value and looked up in a set, so the cost follows
    the length of the text. Handing AnsibleModule only the values found leaves
    its masking exactly as it was.
    """
    secrets = {str(v) for v in no_log_values if v is not None and str(v) != ""}
    found = {v for v in secrets if "*" in v or v in _NO_LOG_PLACEHOLDER}
    lengths = sorted({len(v) for v in secrets})
    if not lengths:
        return found
    shortest = lengths[0]
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            value = str(value)
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if isinstance(value, str):
            size = len(value)
            if size < shortest:
                continue
            if value in secrets:
                found.add(value)
            for length in lengths:
                if length >= size:
                    break
                hits = {value[i : i + length] for i in range(size - length + 1)} & secrets
                found.update(hits)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend(value)
    return found


def finish(module, result, warnings=None, failed_msg=None):
    """Answer: every warning (``warnings``, then the result's own) through
    module.warn, the diff only when Ansible asked for one, then fail_json
    with ``failed_msg`` when given, else exit_json. AnsibleModule masks the
    no_log values in the answer as always, given only those that occur in it
    (occurring_no_log_values)."""
    result = dict(result)
    warning_texts = list(warnings or []) + list(result.pop("warnings", None) or [])
    for text in warning_texts:
        module.warn(text)
    if not module._diff or result.get("diff") is None:
        result.pop("diff", None)
    # What AnsibleModule would add itself; here so that it is searched too.
    result.setdefault("invocation", {"module_args": module.params})
    # Warnings are masked in the answer too: every one recorded in this run is searched.
    warning_texts += [str(text) for text in get_warning_messages()]
    module.no_log_values = occurring_no_log_values(module.no_log_values, result, failed_msg, warning_texts)
    if failed_msg is not None:
        module.fail_json(msg=failed_msg, **result)
    module.exit_json(**result)
