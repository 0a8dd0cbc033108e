# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of PD's keyspace API (/pd/api/v2/keyspaces).

PRIVATE: for use by this collection's modules only; may change at any time.

Facts this client relies on (reference/pd-keyspace-api.md):

- every success is HTTP 200, create included (§0, §1.2);
- most errors are HTTP 500 whose body is a JSON *string*; "not found" is 500,
  not 404 (§0, §1.5); the unknown-state 400 (and v8.x bad JSON) body is ``{}``
  (§1.7, §1.8, §9); the bad-JSON 400 may carry text/plain (§1.8) - so bodies
  are parsed leniently and classified by substrings that exist in v8.x,
  v26.3 and master (§9: v26.3+/master prefix ``[PD:<area>:<Err>]``);
- there is no auth header: mutual TLS is the only protection (§7);
- followers proxy to the leader; 503 "leader is nil" means no leader is
  known (§1.9, §7) - worth another endpoint or a retry;
- PD's error bodies have one of three forms (§0, §1.8, §1.9): a JSON string,
  the empty object ``{}``, or a text starting with a ``[PD:...]`` code. PD
  itself answers 404 only for a path it does not serve (§1.9). So an answer
  that is none of these - a non-JSON 200, a 200 without the fields the call
  needs (``200 {}``), a 404 without PD's "keyspace does not exist", a 500
  with an HTML or plain-text page - comes from something that is not PD's
  keyspace API (another service, a proxy, a PD too old for the v2 API). The
  client treats such an answer like an unreachable endpoint: it moves on to
  the next endpoint, and fails clearly when no endpoint answers like PD.
  200 bodies are checked against the shape each call needs, in one place
  (``*_shape_error`` below).

Threads: a PDClient holds one ``requests.Session``. urllib3's connection pool
is thread-safe and the client keeps no per-request state on itself except the
"preferred endpoint" index (a single attribute assignment) and the optional
request log (list.append), so sharing one client between worker threads works
in CPython. A bulk caller that wants strict isolation uses :meth:`clone` to
give each worker its own Session with the same settings.
"""

from __future__ import annotations

import json
import random
import re
import time
from urllib.parse import quote, urlsplit, urlunsplit

try:
    import requests
    from requests.adapters import HTTPAdapter
except ImportError as _exc:  # pragma: no cover - exercised by the sanity import test
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc
    requests = None
    HTTPAdapter = object
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

KEYSPACE_API = "/pd/api/v2/keyspaces"
VERSION_API = "/pd/api/v1/version"

# PD keyspace states (reference/pd-keyspace-api.md §1.1, §3).
STATES = ("ENABLED", "DISABLED", "ARCHIVED", "TOMBSTONE")

DEFAULT_PORT = 2379

# Largest page PD can serve with etcd's default --max-txn-ops=128: PD reads
# limit+1 keyspaces in one etcd transaction, so limit=128 and an unlimited
# list of more than 127 keyspaces fail with 500 "etcdserver: too many
# operations in txn request" (observed on the stack's PD; not in the
# reference). Larger requested pages are clamped; a smaller etcd limit is
# handled by halving the page on that error.
MAX_PAGE_SIZE = 127
DEFAULT_PAGE_SIZE = 100

# Largest keyspace config this collection writes, measured as compact UTF-8
# JSON of the config map. Why 64 KiB, measured on the stack's PD (not in the
# reference): PD's etcd refuses any read answer above 2 MiB with gRPC
# "ResourceExhausted ... trying to send message larger than max (... vs.
# 2097152)", and PD then answers 500 to every list page holding that much.
# 31 keyspaces with a 64 KiB config list fine in one page, 32 do not; a
# single ~0.9 MB config made every later list fail, and a 2 MB one made the
# create itself answer 500 while leaving the keyspace behind. With 64 KiB a
# page that is too large is halved (see iter_keyspaces) down to at most 31
# keyspaces, which always fits, so no config written here can break listing.
# Tenant configs are labels (owner, plan, ...); 64 KiB leaves ample room.
MAX_CONFIG_BYTES = 64 * 1024

# HTTP statuses that say "this endpoint cannot serve right now".
UNAVAILABLE_STATUSES = (502, 503, 504)

# PD answers that are transient and not about the keyspace (§1.9).
_TRANSIENT_MARKERS = (
    "leader is nil",
    "server not started",
    "redirect to not leader",
    "redirect failed",
    "etcd transaction failed",  # 409 ErrEtcdTxnConflict (§1.6): safe to retry an idempotent call
    "not bootstrapped",  # seen while PD starts, after "leader is nil" (tests/stack/README.md, observed item 2)
)

# Prefix of the attempt reason for an answer that is not PD's (see PDClient._invalid_answer).
INVALID_ANSWER = "not a PD answer"

_PD_CODE_PREFIX = re.compile(r"^\s*\[(PD:[^\]]*)\]\s*")


class PDError(Exception):
    """An error talking to PD. ``str(e)`` is a message a person can act on.

    Attributes: ``kind`` (a stable keyword, see classify_error), ``status``
    (HTTP status or None), ``pd_message`` (PD's text without the
    ``[PD:...]`` prefix), ``pd_code`` (the prefix, v26.3+ only),
    ``endpoint`` (which endpoint answered), ``method``/``path``.
    """

    def __init__(self, message, kind="error", status=None, pd_message=None, pd_code=None, endpoint=None, method=None, path=None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.pd_message = pd_message
        self.pd_code = pd_code
        self.endpoint = endpoint
        self.method = method
        self.path = path

    def __str__(self):
        return self.message


class PDUnreachable(PDError):
    """No endpoint gave a usable answer. ``attempts`` lists (endpoint, reason)."""

    def __init__(self, message, attempts, method=None, path=None, maybe_applied=False):
        super().__init__(message, kind="unreachable", method=method, path=path)
        self.attempts = attempts
        # True when a non-idempotent request may have reached PD before the
        # connection broke (a read timeout after sending a POST).
        self.maybe_applied = maybe_applied


class PDConfigError(PDError):
    """The client options themselves are wrong (bad endpoint, key without cert...)."""

    def __init__(self, message):
        super().__init__(message, kind="config")


# ---------------------------------------------------------------------------
# Endpoints


# Userinfo of a URL, up to the LAST '@': a host never holds one, and a
# password pasted without percent-encoding may (also '/', ':', ',').
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<userinfo>.*)@")


def mask_endpoint(endpoint):
    """An endpoint fit for a message: ``https://user:secret@pd:2379`` ->
    ``https://***@pd:2379``. The whole userinfo goes: a lone user name in a
    URL is often a token."""
    text = str(endpoint)
    return _USERINFO.sub(lambda m: (m.group("scheme") or "") + "***@", text, count=1)


def endpoint_secrets(endpoints):
    """The userinfo secrets in ``endpoints`` (the password, or the user name
    when there is no password), for a module's ``no_log_values``: Ansible
    then masks them everywhere, the echoed module arguments included.

    Items are read whole, before the comma split of split_endpoints: a
    password holding a comma would otherwise be cut in two, and its pieces
    (also returned) could show in the message about a piece."""
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    found = []
    for item in endpoints or []:
        match = _USERINFO.match(str(item).strip())
        if not match:
            continue
        user, _sep, password = match.group("userinfo").partition(":")
        secret = password or user
        for piece in [secret] + secret.split(","):
            if piece and piece not in found:
                found.append(piece)
    return found


def normalize_endpoint(endpoint, use_tls=False):
    """Turn ``host:port``, ``host`` or a URL into ``scheme://host:port``.

    A scheme-less endpoint gets ``https`` when TLS options are given and
    ``http`` otherwise; an explicit scheme is kept. A path is refused (the
    client adds PD's API paths itself). So is userinfo (``user:pw@``): PD has
    no password authentication (reference/pd-keyspace-api.md §7), so a URL
    carrying one is a mistake whose secret must not travel or be echoed;
    every message shows the endpoint with its userinfo masked.
    """
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise PDConfigError("empty PD endpoint in pd_endpoints")
    raw = endpoint.strip()
    shown = mask_endpoint(raw)
    text = raw if "://" in raw else ("%s://%s" % ("https" if use_tls else "http", raw))
    if _USERINFO.match(text):
        raise PDConfigError(
            "invalid PD endpoint %r: it carries a user name or password, which PD never uses (PD "
            "has no password authentication; use TLS client certificates, pd_client_cert and "
            "pd_client_key). Remove the part up to '@'" % shown
        )
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise PDConfigError("invalid PD endpoint %r: %s" % (shown, exc))
    if parts.scheme not in ("http", "https"):
        raise PDConfigError("invalid PD endpoint %r: the scheme must be http or https" % shown)
    if not host:
        raise PDConfigError("invalid PD endpoint %r: no host" % shown)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise PDConfigError("invalid PD endpoint %r: give only scheme://host:port, no path" % shown)
    if port is None:
        port = DEFAULT_PORT
    netloc_host = "[%s]" % host if ":" in host else host
    return urlunsplit((parts.scheme, "%s:%d" % (netloc_host, port), "", "", ""))


def split_endpoints(endpoints):
    """Flatten a list whose items may themselves be comma-separated (as the
    seed CLI's PD_ENDPOINTS is), dropping blanks and duplicates in order."""
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    result = []
    for item in endpoints or []:
        for piece in str(item).split(","):
            piece = piece.strip()
            if piece and piece not in result:
                result.append(piece)
    return result


# ---------------------------------------------------------------------------
# Error bodies


def parse_error_body(text):
    """PD error bodies are JSON strings, ``{}``, or plain text. Return the text."""
    if text is None:
        return ""
    stripped = text.strip()
    if not stripped:
        return ""
    try:
        value = json.loads(stripped)
    except ValueError:
        return stripped
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict) and not value:
        return ""
    if isinstance(value, dict):
        for key in ("error", "message", "msg"):
            if isinstance(value.get(key), str):
                return value[key].strip()
    return json.dumps(value, sort_keys=True)


def is_pd_error_body(text):
    """Whether a non-200 body has one of the forms PD gives its errors (§0,
    §1.8, §1.9): a JSON string, the empty object ``{}``, or a text that
    starts with a ``[PD:...]`` code (the redirect failure is text/plain)."""
    stripped = (text or "").strip()
    if stripped.startswith("[PD:"):
        return True
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(value, str) or (isinstance(value, dict) and not value)


# ---------------------------------------------------------------------------
# Shapes of PD's 200 answers (§1.1, §1.4): each returns None when the decoded
# body is usable, else why not. A body that fails is "not a PD answer".


def keyspace_shape_error(data, name=None):
    """A KeyspaceMeta (§1.1): id, name, state always present; config omitted
    when empty, else a map of strings. ``name``: the keyspace asked for."""
    if not isinstance(data, dict):
        return "the body is not a JSON object"
    missing = [key for key in ("id", "name", "state") if key not in data]
    if missing:
        return "the answer has no %s" % ", ".join(repr(key) for key in missing)
    if not isinstance(data["id"], int) or isinstance(data["id"], bool) or data["id"] < 0:
        return "'id' is not a keyspace id: %s" % _short(json.dumps(data["id"]), 40)
    if not isinstance(data["name"], str) or not data["name"]:
        return "'name' is not a keyspace name"
    if not isinstance(data["state"], str) or data["state"].upper() not in STATES:
        return "'state' is not one of %s: %s" % ("/".join(STATES), _short(json.dumps(data["state"]), 40))
    config = data.get("config")
    if config is not None:
        if not isinstance(config, dict):
            return "'config' is not a map of strings but %s" % _json_type(config)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in config.items()):
            return "'config' is not a map of strings (a value is not a string)"
    if name is not None and data["name"] != name:
        return "the answer is about keyspace %r, not %r" % (data["name"], name)
    return None


def keyspace_list_shape_error(data):
    """A LoadAllKeyspacesResponse (§1.4): ``keyspaces`` is present, a list or
    null; ``next_page_token`` is a string (absent is read as the last page)."""
    if not isinstance(data, dict):
        return "the body is not a JSON object"
    if "keyspaces" not in data:
        return "the answer has no 'keyspaces'"
    items = data["keyspaces"]
    if items is not None and not isinstance(items, list):
        return "'keyspaces' is not a list but %s" % _json_type(items)
    for item in items or []:
        err = keyspace_shape_error(item)
        if err:
            return "a listed keyspace is malformed: %s" % err
    token = data.get("next_page_token")
    if token is not None and not isinstance(token, str):
        return "'next_page_token' is not a string"
    return None


def version_shape_error(data):
    """GET /pd/api/v1/version: ``{"version": "<text>"}`` ("None" without ldflags, §6)."""
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        return "the answer has no 'version' string"
    return None


def config_size_error(config):
    """A message when ``config`` is larger than MAX_CONFIG_BYTES, else None."""
    if not isinstance(config, dict):
        return None
    size = len(json.dumps(config, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8"))
    if size <= MAX_CONFIG_BYTES:
        return None
    return (
        "config is %d bytes as JSON; at most %d bytes (64 KiB) are allowed, because PD's storage refuses to "
        "list keyspaces whose configs add up to more than 2 MiB in one answer, and one oversized config makes "
        "every later keyspace list fail. Keep large data elsewhere and put a reference to it in the config" % (size, MAX_CONFIG_BYTES)
    )


def _json_type(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return "an object"


def split_pd_code(message):
    """``"[PD:keyspace:ErrKeyspaceNotFound]keyspace does not exist"`` ->
    (``"PD:keyspace:ErrKeyspaceNotFound"``, ``"keyspace does not exist"``)."""
    match = _PD_CODE_PREFIX.match(message or "")
    if not match:
        return None, (message or "")
    return match.group(1), message[match.end() :]


# (substring of PD's lower-cased message or code, kind). First match wins.
# Every substring exists in v8.x, v26.3 and master (§9) unless noted.
_CLASSIFIERS = (
    ("keyspace does not exist", "not_found"),
    ("errkeyspacenotfound", "not_found"),
    ("collides with", "reserved_name"),  # v8.x "default keyspace name", v26.3+ "protected keyspace name"
    ("illegal keyspace name", "illegal_name"),
    ("keyspace name is empty", "illegal_name"),
    ("already exists", "exists"),
    ("errkeyspaceexists", "exists"),
    ("cannot change keyspace state from", "illegal_transition"),
    ("cannot modify default keyspace", "protected_keyspace"),
    ("errmodifydefaultkeyspace", "protected_keyspace"),
    ("cannot change config for keyspace with state", "config_state"),
    ("precondition failed", "precondition"),
    ("region bound type", "unsupported_config"),
    ("keyspace level gc", "unsupported_config"),
    ("unsupported operation", "unsupported_config"),
    ("errunsupportedoperationinkeyspace", "unsupported_config"),
    ("meta-service group", "unsupported_config"),
    ("not bootstrapped", "not_bootstrapped"),
    ("region split timeout", "region_split_timeout"),
    ("leader is nil", "no_leader"),
    ("server not started", "not_started"),
    ("redirect to not leader", "redirect"),
    ("redirect failed", "redirect"),
    ("etcd transaction failed", "conflict"),
    ("keyspace group manager is not initialized", "unsupported_request"),
    ("too many operations in txn", "page_too_large"),
    ("larger than max", "page_too_large"),  # etcd's 2 MiB answer limit (see MAX_CONFIG_BYTES)
    ("exceeds spaceid max", "bad_request"),
    ("errbindjson", "bad_request"),
    ("invalid character", "bad_request"),
    ("cannot unmarshal", "bad_request"),
    ("404 page not found", "no_such_api"),
    ("http request to an https server", "tls_required"),  # Go's TLS listener answering plain HTTP
)


def classify_error(status, message):
    """Map an HTTP status and PD's message to a stable ``kind`` keyword."""
    low = (message or "").lower()
    for marker, kind in _CLASSIFIERS:
        if marker in low:
            return kind
    if status == 400:
        return "bad_request"
    if status == 404:
        return "no_such_api"
    if status == 409:
        return "conflict"
    if status in UNAVAILABLE_STATUSES:
        return "unavailable"
    return "server_error"


def _describe(kind, status, pd_message, method, path, name=None, context=None):
    """A message a person can act on, for an error of ``kind``."""
    what = ("keyspace %r" % name) if name else "the keyspace"
    detail = pd_message or "(no detail in the body)"
    if kind == "not_found":
        return "%s does not exist in PD" % what.capitalize()
    if kind == "exists":
        return "%s already exists in PD (PD: %s)" % (what.capitalize(), detail)
    if kind == "reserved_name":
        return "PD refuses the name: it is a protected keyspace name (PD: %s)" % detail
    if kind == "illegal_name":
        return "PD refuses the keyspace name (PD: %s). PD allows letters, digits, '-' and '_' (at most 20 characters on PD v26.3 and later)" % detail
    if kind == "illegal_transition":
        return (
            "PD refused the state change (PD: %s). Legal moves: ENABLED->DISABLED, DISABLED->ENABLED|ARCHIVED, ARCHIVED->TOMBSTONE; TOMBSTONE is final" % detail
        )
    if kind == "protected_keyspace":
        return "PD's reserved keyspace can never change state (PD: %s)" % detail
    if kind == "config_state":
        return "PD only changes config of ENABLED or DISABLED keyspaces; %s is archived or tombstoned (PD: %s)" % (what, detail)
    if kind == "precondition":
        return "The keyspace config changed concurrently; re-run the task (PD: %s)" % detail
    if kind == "unsupported_config":
        return "PD refuses to change a server-managed config key (PD: %s). Remove it from the task's config" % detail
    if kind == "not_bootstrapped":
        return (
            "PD's cluster is not bootstrapped yet (no TiKV store has joined), so the keyspace "
            "API is unavailable. Start TiKV (or bootstrap the test cluster) first (PD: %s)" % detail
        )
    if kind == "region_split_timeout":
        return (
            "PD timed out waiting for TiKV to split the new keyspace's regions and rolled the "
            "create back; check TiKV health, or set [keyspace] wait-region-split=false on a "
            "test PD without TiKV (PD: %s)" % detail
        )
    if kind in ("no_leader", "not_started", "redirect", "unavailable"):
        return "PD has no usable leader right now (HTTP %s, PD: %s); retry later" % (status, detail)
    if kind == "conflict":
        return "PD reported a write conflict (HTTP %s, PD: %s); retry" % (status, detail)
    if kind == "no_such_api":
        return "%s %s is not served there (HTTP 404): is the endpoint PD's client URL, and is PD new enough to have the v2 keyspace API?" % (method, path)
    if kind == "bad_request":
        if context == "state" and not pd_message:
            return "PD rejected the state value (HTTP 400 with an empty body); valid states are ENABLED, DISABLED, ARCHIVED, TOMBSTONE"
        if not pd_message:
            return "PD rejected the request as malformed (HTTP 400 with an empty body: PD v8.x gives no detail) for %s %s" % (method, path)
        return "PD rejected the request as malformed (PD: %s)" % detail
    if kind == "tls_required":
        return (
            "this PD endpoint serves https only: use an https:// endpoint (or give pd_ca_cert, which makes "
            "scheme-less endpoints https) with pd_client_cert/pd_client_key for PD's mutual TLS"
        )
    if kind == "page_too_large":
        return "PD cannot serve that many keyspaces in one answer (PD: %s); list with a smaller page size" % detail
    if kind == "unsupported_request":
        return "PD refused the request: %s" % detail
    return "PD answered HTTP %s to %s %s: %s" % (status, method, path, detail)


# ---------------------------------------------------------------------------
# Versions and names


def parse_version(text):
    """``"v8.1.0"`` -> (8, 1, 0); ``"None"``/unknown -> None."""
    if not isinstance(text, str):
        return None
    match = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(g or 0) for g in match.groups())


def pd_name_max_length(version):
    """PD's name length limit for a parsed version, or None for "no limit".

    reference/pd-keyspace-api.md §2: no limit up to v8.5.x (and v9.0.0-beta.1),
    ``{1,64}`` briefly on master (May 2025), ``{1,20}`` from v26.3 on.
    An unknown version (a build without version ldflags reports "None", §6)
    returns None; callers then warn instead of guessing.
    """
    if version is None:
        return None
    if version >= (26, 3, 0):
        return 20
    return None


PD_NAME_PATTERN = re.compile(r"[-A-Za-z0-9_]+")  # fullmatch: '$' would accept a trailing newline
PD_PORTABLE_NAME_LENGTH = 20


def pd_name_error(name, version):
    """PD's own naming rule for the connected version (None if fine)."""
    if not isinstance(name, str) or not PD_NAME_PATTERN.fullmatch(name):
        return "name %r breaks PD's rule: letters, digits, '-' and '_' only" % name
    limit = pd_name_max_length(version)
    if limit is not None and len(name) > limit:
        return "name %r has %d characters; the connected PD (v%s) allows at most %d" % (name, len(name), ".".join(str(v) for v in version), limit)
    return None


# ---------------------------------------------------------------------------
# The client


class PDClient:
    """PD keyspace API client with failover, bounded retries and TLS.

    - Endpoints are tried in order, starting with the one that answered last.
      A connection error, TLS error, timeout, 502/503/504, a transient PD
      answer (no leader, not started, redirect failure) or an answer that is
      not PD's (see the module docstring) moves on to the next endpoint; any
      other PD answer is final.
    - Idempotent calls (GET, state PUT, config PATCH) run up to
      ``1 + retries`` rounds over the endpoints, with jittered exponential
      backoff between rounds, unless nothing seen so far can heal by waiting
      (TLS errors, 404s, malformed 200s). A POST runs one round only and is
      never re-sent after it may have reached PD (a read timeout, an answer
      that is not PD's); the caller re-reads.
    """

    def __init__(
        self,
        endpoints,
        timeout=10.0,
        retries=3,
        ca_cert=None,
        client_cert=None,
        client_key=None,
        validate_certs=True,
        backoff_base=0.5,
        backoff_max=8.0,
        pool_maxsize=10,
        caller_id="pgtikv.cloud",
        record_requests=True,
        sleep=time.sleep,
    ):
        if not HAS_REQUESTS:
            raise PDConfigError("the Python library 'requests' is required to talk to PD")
        if client_key and not client_cert:
            raise PDConfigError("pd_client_key needs pd_client_cert")
        if retries is None or retries < 0:
            raise PDConfigError("pd_retries must be 0 or more")
        if timeout is None or timeout <= 0:
            raise PDConfigError("pd_timeout must be a positive number of seconds")
        self.use_tls = bool(ca_cert or client_cert)
        raw = split_endpoints(endpoints)
        if not raw:
            raise PDConfigError("no PD endpoint given (pd_endpoints or the PD_ENDPOINTS environment variable)")
        self.endpoints = []
        for item in raw:
            url = normalize_endpoint(item, self.use_tls)
            if url not in self.endpoints:
                self.endpoints.append(url)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.ca_cert = ca_cert
        self.client_cert = client_cert
        self.client_key = client_key
        self.validate_certs = validate_certs
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.pool_maxsize = pool_maxsize
        self.caller_id = caller_id
        self.record_requests = record_requests
        self._sleep = sleep
        self._preferred = 0
        self._version = _UNSET
        self.requests_log = []
        if ca_cert and validate_certs:
            self._verify = ca_cert
        else:
            self._verify = bool(validate_certs)
        if client_cert:
            self._cert = (client_cert, client_key) if client_key else client_cert
        else:
            self._cert = None
        self.session = self._new_session()

    # -- plumbing ----------------------------------------------------------

    def _new_session(self):
        session = requests.Session()
        # requests' own retries stay off: this client decides what to retry.
        adapter = HTTPAdapter(max_retries=0, pool_connections=len(self.endpoints), pool_maxsize=self.pool_maxsize)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # verify/cert also go with every request (see request()): requests lets
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session-level verify.
        session.verify = self._verify
        session.cert = self._cert
        session.trust_env = True  # proxies from the environment; PD has no auth for .netrc to leak
        session.headers.update({"X-Caller-ID": self.caller_id, "Accept": "application/json"})
        return session

    def clone(self):
        """A new client with the same settings and its own Session."""
        return PDClient(
            self.endpoints,
            timeout=self.timeout,
            retries=self.retries,
            ca_cert=self.ca_cert,
            client_cert=self.client_cert,
            client_key=self.client_key,
            validate_certs=self.validate_certs,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            pool_maxsize=self.pool_maxsize,
            caller_id=self.caller_id,
            record_requests=self.record_requests,
            sleep=self._sleep,
        )

    def close(self):
        self.session.close()

    def _order(self):
        first = self._preferred
        return [(i % len(self.endpoints)) for i in range(first, first + len(self.endpoints))]

    def backoff_delay(self, round_no):
        """Jittered exponential backoff: uniform(cap/2, cap), cap = min(max, base*2**n)."""
        cap = min(self.backoff_max, self.backoff_base * (2**round_no))
        return random.uniform(cap / 2.0, cap)

    @staticmethod
    def _connection_reason(exc):
        """(short reason, request_surely_not_sent) for a requests exception."""
        text = str(exc)
        if isinstance(exc, requests.exceptions.SSLError):
            # Keep OpenSSL's own words ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate
            # verify failed: ..."), not urllib3's wrapping around them.
            match = re.search(r"\[SSL: [A-Z0-9_]+\][^'\"]*", text)
            return "TLS error: %s" % _short(match.group(0) if match else text), True
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return "connect timeout", True
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return "read timeout", False
        if isinstance(exc, requests.exceptions.ConnectionError):
            low = text.lower()
            if "refused" in low:
                return "connection refused", True
            if "name or service not known" in low or "nodename nor servname" in low or "failed to resolve" in low or "name resolution" in low:
                return "host name does not resolve", True
            if "newconnectionerror" in low or "failed to establish" in low:
                return "cannot connect: %s" % _short(text), True
            if "without response" in low:
                # PD with [security] certificates closes plain-http connections
                # without a word (observed); a POST that got this was not served.
                return ("connection closed without an answer (if PD has TLS certificates, use an https:// endpoint or pd_ca_cert)"), False
            return "connection broken: %s" % _short(text), False
        return "%s: %s" % (type(exc).__name__, _short(text)), False

    def request(self, method, path, body=None, params=None, idempotent=None, name=None, context=None, shape=None):
        """Send one API call; return the decoded JSON of a 200 answer.

        ``shape``: a function of the decoded 200 body returning None when it
        is usable, else why not (``*_shape_error``). An answer that is not
        PD's (see the module docstring) counts like an unreachable endpoint.
        Raises PDError (PD answered with an error), PDUnreachable (no endpoint
        answered usefully), PDConfigError (the TLS files cannot be used).
        """
        if idempotent is None:
            idempotent = method.upper() != "POST"
        rounds = 1 + (self.retries if idempotent else 0)
        attempts = []
        maybe_applied = False
        last_transient = None
        worth_retrying = False  # a TLS error or an answer that is not PD's will not heal by waiting
        for round_no in range(rounds):
            if round_no:
                if not worth_retrying:
                    break
                self._sleep(self.backoff_delay(round_no - 1))
            for index in self._order():
                endpoint = self.endpoints[index]
                url = endpoint + path
                started = time.monotonic()
                try:
                    resp = self.session.request(method, url, json=body, params=params, timeout=self.timeout, verify=self._verify, cert=self._cert)
                except requests.exceptions.RequestException as exc:
                    reason, not_sent = self._connection_reason(exc)
                    self._log(method, path, endpoint, None, started, reason)
                    attempts.append((endpoint, reason))
                    worth_retrying = worth_retrying or not reason.startswith("TLS error")
                    if not not_sent and not idempotent:
                        # A POST that may have reached PD: never re-send it.
                        maybe_applied = True
                        raise PDUnreachable(_unreachable_message(method, path, attempts, maybe_applied), attempts, method=method, path=path, maybe_applied=True)
                    continue
                except OSError as exc:
                    # requests raises a plain OSError (not a RequestException)
                    # when a CA bundle or client certificate file is missing.
                    raise PDConfigError("cannot use the TLS files given for PD (pd_ca_cert, pd_client_cert, pd_client_key): %s" % _short(exc))
                data, reason, transient = self._check_answer(resp, method, path, shape)
                if reason is not None:
                    self._log(method, path, endpoint, resp.status_code, started, reason)
                    attempts.append((endpoint, reason))
                    worth_retrying = worth_retrying or transient
                    if not idempotent:
                        # Something other than PD's API took the POST, or PD
                        # took it and the answer was mangled on the way: the
                        # caller re-reads before concluding anything.
                        maybe_applied = True
                    continue
                self._log(method, path, endpoint, resp.status_code, started, None)
                if resp.status_code == 200:
                    self._preferred = index
                    return data
                pd_text = parse_error_body(resp.text)
                code, pd_message = split_pd_code(pd_text)
                kind = classify_error(resp.status_code, pd_text)
                transient = resp.status_code in UNAVAILABLE_STATUSES or any(m in pd_text.lower() for m in _TRANSIENT_MARKERS)
                # A POST moves on only when PD surely did not apply it (no leader known,
                # server not started, 503); an idempotent call on any transient answer.
                safe = idempotent or kind in ("no_leader", "not_started") or resp.status_code == 503
                if transient and safe:
                    attempts.append((endpoint, "HTTP %d %s" % (resp.status_code, pd_message or "")))
                    last_transient = (kind, resp.status_code, pd_message, code, endpoint)
                    worth_retrying = True
                    continue
                self._preferred = index
                raise PDError(
                    _describe(kind, resp.status_code, pd_message, method, path, name, context),
                    kind=kind,
                    status=resp.status_code,
                    pd_message=pd_message,
                    pd_code=code,
                    endpoint=endpoint,
                    method=method,
                    path=path,
                )
        if last_transient is not None and all(a[1].startswith("HTTP ") for a in attempts):
            kind, status, pd_message, code, endpoint = last_transient
            raise PDError(
                _describe(kind, status, pd_message, method, path, name, context) + " (tried %s)" % ", ".join(self.endpoints),
                kind=kind,
                status=status,
                pd_message=pd_message,
                pd_code=code,
                endpoint=endpoint,
                method=method,
                path=path,
            )
        raise PDUnreachable(_unreachable_message(method, path, attempts, maybe_applied), attempts, method=method, path=path, maybe_applied=maybe_applied)

    @staticmethod
    def _check_answer(resp, method, path, shape):
        """(decoded 200 body, None, None) or (None, None, None) for an answer PD
        could have given; else (None, reason, worth retrying).

        The reason always starts with ``INVALID_ANSWER``. 502/503/504 are left
        to the transient handling whatever their body (a proxy with no PD
        behind it is unavailable, not wrong)."""
        status = resp.status_code
        text = resp.text or ""
        if status == 200:
            try:
                data = resp.json()
            except ValueError:
                reason = "%s: HTTP 200 whose body is not JSON: %s" % (INVALID_ANSWER, _short(text, 80) or "(empty)")
                return None, reason, False
            err = shape(data) if shape is not None else None
            if err:
                return None, "%s: HTTP 200 but %s" % (INVALID_ANSWER, err), False
            return data, None, None
        if status in UNAVAILABLE_STATUSES:
            return None, None, None
        pd_body = is_pd_error_body(text)
        if status == 404:
            # PD answers 404 only for a path it does not serve (§1.9); "keyspace
            # does not exist" is a 500 (§1.5). Accept a 404 only with PD's own
            # not-found body, in case a PD version or a proxy maps it to 404.
            if pd_body and classify_error(status, parse_error_body(text)) == "not_found":
                return None, None, None
            reason = "%s: HTTP 404, %s %s is not served there (not PD's client URL, or a PD without the v2 keyspace API)" % (INVALID_ANSWER, method, path)
            return None, reason, False
        if pd_body:
            return None, None, None
        if classify_error(status, text) == "tls_required":
            reason = "%s: this endpoint serves https only (use https:// or pd_ca_cert, with pd_client_cert/pd_client_key)" % INVALID_ANSWER
            return None, reason, False
        return None, ("%s: HTTP %d whose body is not a PD error: %s" % (INVALID_ANSWER, status, _short(text, 80) or "(empty)")), status >= 500

    def _log(self, method, path, endpoint, status, started, error):
        if not self.record_requests:
            return
        entry = {"method": method, "path": path, "endpoint": endpoint, "status": status, "seconds": round(time.monotonic() - started, 3)}
        if error:
            entry["error"] = error
        self.requests_log.append(entry)

    # -- keyspace API -------------------------------------------------------

    @staticmethod
    def keyspace_path(name):
        return "%s/%s" % (KEYSPACE_API, quote(name, safe=""))

    def get_keyspace(self, name):
        """The KeyspaceMeta dict, or None when PD says it does not exist (§1.5)."""
        try:
            return normalize_keyspace(self.request("GET", self.keyspace_path(name), name=name, shape=_keyspace_named(name)))
        except PDError as exc:
            if exc.kind == "not_found":
                return None
            raise

    def create_keyspace(self, name, config=None):
        """POST a new keyspace (§1.2). Not retried: the caller re-reads on doubt."""
        _refuse_large_config(config)
        body = {"name": name}
        if config:
            body["config"] = dict(config)
        return normalize_keyspace(self.request("POST", KEYSPACE_API, body=body, idempotent=False, name=name, shape=_keyspace_named(name)))

    def set_state(self, name, state):
        """PUT the state (§1.7). Case-insensitive on PD; sent upper-case."""
        return normalize_keyspace(
            self.request("PUT", self.keyspace_path(name) + "/state", body={"state": state.upper()}, name=name, context="state", shape=_keyspace_named(name))
        )

    def patch_config(self, name, patch, preconditions=None):
        """Merge-patch the config map (§1.6, §4): value = put, None = delete."""
        _refuse_large_config(patch)
        body = {"config": dict(patch)}
        if preconditions:
            body["preconditions"] = dict(preconditions)
        return normalize_keyspace(
            self.request("PATCH", self.keyspace_path(name) + "/config", body=body, name=name, context="config", shape=_keyspace_named(name))
        )

    def iter_keyspaces(self, page_size=DEFAULT_PAGE_SIZE):
        """Yield every keyspace, ascending by id, following next_page_token (§1.4).

        Always paginated: ``page_size`` None means the default, and values
        above MAX_PAGE_SIZE are clamped (see there). When PD still answers
        "too many operations in txn" (an etcd with a lower max-txn-ops), the
        page is halved and the same page asked again.
        """
        if page_size is None:
            page_size = DEFAULT_PAGE_SIZE
        if page_size < 1:
            raise PDConfigError("page size must be at least 1")
        limit = min(int(page_size), MAX_PAGE_SIZE)
        token = ""
        seen_tokens = set()
        while True:
            params = {"limit": str(limit)}
            if token:
                params["page_token"] = token
            try:
                data = self.request("GET", KEYSPACE_API, params=params, shape=keyspace_list_shape_error)
            except PDError as exc:
                if exc.kind == "page_too_large" and limit > 1:
                    limit = max(1, limit // 2)
                    continue
                raise
            for item in data.get("keyspaces") or []:  # null when the scan is empty (§1.4)
                yield normalize_keyspace(item)
            token = str(data.get("next_page_token") or "")
            if not token:
                return
            if token in seen_tokens:  # defensive: never loop forever on a broken server
                raise PDError("PD returned the same next_page_token %r twice while listing keyspaces" % token, kind="server_error")
            seen_tokens.add(token)

    def list_keyspaces(self, page_size=DEFAULT_PAGE_SIZE):
        return list(self.iter_keyspaces(page_size=page_size))

    def version(self):
        """PD's release version string, or None if PD does not report one.

        A pd-server built without version ldflags reports "None" (§6). The
        answer is cached for the life of the client.
        """
        if self._version is _UNSET:
            try:
                data = self.request("GET", VERSION_API, shape=version_shape_error)
            except PDError as exc:
                if isinstance(exc, (PDUnreachable, PDConfigError)):
                    raise
                data = None
            text = data.get("version") if isinstance(data, dict) else None
            self._version = text if parse_version(text) else None
        return self._version


# pg-tikv refuses every login with the answer of a wrong password (28P01) while
# PD is down for a tenant it has not cached (reference/pg-tikv-server.md §1.4,
# §1.4a), so a refused test login proves something only if PD answered after it.
REFUSALS_UNPROVEN = (
    "PD stopped answering after the SQL checks (%s). While PD is down pg-tikv refuses every login with the "
    "same answer as a wrong password, so the refused test logins of this run prove nothing: the result is NOT "
    "verified; run again when PD answers"
)


def refusals_unproven(pd):
    """None if PD answers now (an uncached request), else REFUSALS_UNPROVEN with the reason."""
    try:
        pd.request("GET", VERSION_API)
    except PDError as exc:
        return REFUSALS_UNPROVEN % exc
    return None


def pd_client_from_params(params, **kwargs):
    """A PDClient from the options of pd_argument_spec() (doc fragment pgtikv.cloud.pd)."""
    return PDClient(
        params.get("pd_endpoints"),
        timeout=params.get("pd_timeout") if params.get("pd_timeout") is not None else 10.0,
        retries=params.get("pd_retries") if params.get("pd_retries") is not None else 3,
        ca_cert=params.get("pd_ca_cert"),
        client_cert=params.get("pd_client_cert"),
        client_key=params.get("pd_client_key"),
        validate_certs=params.get("pd_validate_certs", True),
        **kwargs,
    )


class _Unset:
    pass


_UNSET = _Unset()


def normalize_keyspace(meta):
    """A KeyspaceMeta dict with ``config`` always present (omitempty, §1.1)."""
    if not isinstance(meta, dict):
        return meta
    result = dict(meta)
    result["config"] = dict(result.get("config") or {})
    if isinstance(result.get("state"), str):
        result["state"] = result["state"].upper()
    return result


def _keyspace_named(name):
    """The shape check of an answer about keyspace ``name``."""
    return lambda data: keyspace_shape_error(data, name)


def _refuse_large_config(config):
    err = config_size_error(config)
    if err:
        raise PDConfigError(err)


def _short(text, limit=200):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _unreachable_message(method, path, attempts, maybe_applied):
    grouped = {}
    for endpoint, reason in attempts:
        reasons = grouped.setdefault(endpoint, [])
        reasons.append(reason)
    parts = []
    for endpoint, reasons in grouped.items():
        distinct = []
        for reason in reasons:
            if reason not in distinct:
                distinct.append(reason)
        count = "" if len(reasons) == 1 else ", %d attempts" % len(reasons)
        parts.append("%s (%s%s)" % (endpoint, "; ".join(distinct), count))
    tried = ", ".join(parts)
    if any(attempt[1].startswith(INVALID_ANSWER) for attempt in attempts):
        msg = (
            "No PD endpoint gave a usable answer to %s %s; tried: %s. An endpoint whose answer is not PD's is "
            "not a PD client URL (another service, a proxy, or a PD without the v2 keyspace API): check "
            "pd_endpoints" % (method, path, tried)
        )
    else:
        msg = "PD is unreachable for %s %s; tried: %s" % (method, path, tried)
    if any("TLS error" in attempt[1] for attempt in attempts):
        msg += (
            ". A TLS error usually means the scheme or certificates do not match PD: PD serves "
            "https only when its [security] section has certificates; check pd_ca_cert, "
            "pd_client_cert/pd_client_key and pd_validate_certs"
        )
    if maybe_applied:
        msg += ". The request may have reached PD before the connection broke"
    return msg
