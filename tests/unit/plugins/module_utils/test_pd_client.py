# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the pure parts of _pd_client: endpoints, error bodies and
their classification across PD versions, versions and name rules, and the
retry/failover decisions (with a fake transport, no network)."""

from __future__ import annotations

import pytest
import requests

from ansible_collections.pgtikv.cloud.plugins.module_utils import _pd_client as p
from ansible_collections.pgtikv.cloud.tests.unit.plugins.module_utils.pd_fakes import (
    FakeResponse,
    FakeSession,
    make_client,
)

# ---------------------------------------------------------------- endpoints


@pytest.mark.parametrize(
    "raw,tls,expected",
    [
        ("127.0.0.1:2379", False, "http://127.0.0.1:2379"),
        ("127.0.0.1:2379", True, "https://127.0.0.1:2379"),
        ("pd1.example.com", False, "http://pd1.example.com:2379"),
        ("http://pd:2379", True, "http://pd:2379"),  # an explicit scheme wins
        ("https://pd:2379/", False, "https://pd:2379"),
        ("  pd:1234 ", False, "http://pd:1234"),
        ("[::1]:2379", False, "http://[::1]:2379"),
        ("https://[fe80::1]", False, "https://[fe80::1]:2379"),
    ],
)
def test_normalize_endpoint(raw, tls, expected):
    assert p.normalize_endpoint(raw, tls) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "ftp://pd:2379", "http://pd:2379/pd/api/v2", "http://:2379", "pd:notaport", "http://user:pw@pd:2379", "http://pd:2379?x=1"]
)
def test_normalize_endpoint_refuses(raw):
    with pytest.raises(p.PDConfigError) as exc:
        p.normalize_endpoint(raw)
    assert "PD endpoint" in str(exc.value)


def test_split_endpoints_flattens_comma_lists_like_pd_endpoints_env():
    assert p.split_endpoints(["a:1,b:2", " c:3 ", "a:1", ""]) == ["a:1", "b:2", "c:3"]
    assert p.split_endpoints("a:1, b:2") == ["a:1", "b:2"]
    assert p.split_endpoints(None) == []


def test_client_normalises_and_dedupes_endpoints():
    c = p.PDClient(["127.0.0.1:2379", "http://127.0.0.1:2379", "pd2:2379"])
    assert c.endpoints == ["http://127.0.0.1:2379", "http://pd2:2379"]


def test_client_tls_options_imply_https_and_verify():
    c = p.PDClient(["pd:2379"], ca_cert="/ca.pem", client_cert="/c.pem", client_key="/k.pem")
    assert c.endpoints == ["https://pd:2379"]
    assert c.session.verify == "/ca.pem"
    assert c.session.cert == ("/c.pem", "/k.pem")
    c = p.PDClient(["https://pd:2379"], ca_cert="/ca.pem", validate_certs=False)
    assert c.session.verify is False


@pytest.mark.parametrize(
    "kwargs,text",
    [
        (dict(endpoints=[]), "no PD endpoint"),
        (dict(endpoints=["pd:1"], client_key="/k.pem"), "needs pd_client_cert"),
        (dict(endpoints=["pd:1"], retries=-1), "pd_retries"),
        (dict(endpoints=["pd:1"], timeout=0), "pd_timeout"),
    ],
)
def test_client_config_errors(kwargs, text):
    with pytest.raises(p.PDConfigError) as exc:
        p.PDClient(**kwargs)
    assert text in str(exc.value)


# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    "body,expected",
    [
        ('"[PD:keyspace:ErrKeyspaceNotFound]keyspace does not exist"', "[PD:keyspace:ErrKeyspaceNotFound]keyspace does not exist"),
        ('"keyspace does not exist"', "keyspace does not exist"),  # v8.x
        ("{}", ""),  # unknown state, v8 bad JSON
        ("", ""),
        ("[PD:apiutil:ErrRedirect]redirect failed", "[PD:apiutil:ErrRedirect]redirect failed"),  # text/plain
        ("404 page not found", "404 page not found"),
        ('{"error": "x"}', "x"),
    ],
)
def test_parse_error_body(body, expected):
    assert p.parse_error_body(body) == expected


def test_split_pd_code():
    assert p.split_pd_code("[PD:keyspace:ErrKeyspaceExists]keyspace already exists") == ("PD:keyspace:ErrKeyspaceExists", "keyspace already exists")
    assert p.split_pd_code("keyspace already exists") == (None, "keyspace already exists")


# Bodies of every PD line in the reference (§1.2-§1.9, §9): v8.x plain texts
# and v26.3/master prefixed ones must map to the same kind.
@pytest.mark.parametrize(
    "status,text,kind",
    [
        (500, "keyspace does not exist", "not_found"),
        (500, "[PD:keyspace:ErrKeyspaceNotFound]keyspace does not exist", "not_found"),
        (500, "keyspace already exists", "exists"),
        (500, "[PD:keyspace:ErrKeyspaceExists]keyspace already exists", "exists"),
        (500, "illegal keyspace name a.b, should contain only alphanumerical and underline", "illegal_name"),
        (500, "illegal keyspace name DEFAULT, collides with default keyspace name", "reserved_name"),
        (500, "illegal keyspace name DEFAULT, collides with a protected keyspace name", "reserved_name"),
        (500, "keyspace name is empty", "illegal_name"),
        (500, "cannot change keyspace state from ENABLED to ARCHIVED", "illegal_transition"),
        (500, "cannot modify default keyspace's state", "protected_keyspace"),
        (500, "[PD:keyspace:ErrModifyDefaultKeyspace]cannot modify default keyspace's state", "protected_keyspace"),
        (500, "cannot change config for keyspace with state ARCHIVED", "config_state"),
        (409, "[PD:keyspace:ErrKeyspaceConfigPreconditionFailed]keyspace config precondition failed, k must be absent", "precondition"),
        (409, "[PD:etcd:ErrEtcdTxnConflict]etcd transaction failed, conflicted and rolled back", "conflict"),
        (500, "[PD:keyspace:ErrUnsupportedOperationInKeyspace]region bound type", "unsupported_config"),
        (500, "[PD:keyspace:ErrUnsupportedOperationInKeyspace]it's a unsupported operation", "unsupported_config"),
        (400, "unknown meta-service group", "unsupported_config"),
        (500, "[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first", "not_bootstrapped"),
        (500, "TiKV cluster not bootstrapped, please start TiKV first", "not_bootstrapped"),
        (500, "[PD:keyspace:ErrRegionSplitTimeout]region split timeout", "region_split_timeout"),
        (503, "[PD:server:ErrLeaderNil]leader is nil", "no_leader"),
        (500, "[PD:server:ErrServerNotStarted]server not started", "not_started"),
        (500, "[PD:apiutil:ErrRedirectToNotLeader]redirect to not leader", "redirect"),
        (500, "[PD:apiutil:ErrRedirect]redirect failed", "redirect"),
        (400, "", "bad_request"),
        (
            400,
            "[PD:gin:ErrBindJSON]invalid character 'i' looking for beginning of object key string: invalid "
            "character 'i' looking for beginning of object key string",
            "bad_request",
        ),
        (404, "404 page not found", "no_such_api"),
        (500, "keyspace group manager is not initialized", "unsupported_request"),
        (502, "", "unavailable"),
        (500, "etcdserver: too many operations in txn request", "page_too_large"),
        (400, "Client sent an HTTP request to an HTTPS server.", "tls_required"),
        (500, "something new", "server_error"),
    ],
)
def test_classify_error(status, text, kind):
    assert p.classify_error(status, text) == kind


def test_describe_messages_are_actionable():
    msg = p._describe("bad_request", 400, "", "PUT", "/x/state", "t1", "state")
    assert "ENABLED, DISABLED, ARCHIVED, TOMBSTONE" in msg
    msg = p._describe("not_bootstrapped", 500, "TiKV cluster not bootstrapped", "GET", "/x", "t1")
    assert "Start TiKV" in msg
    msg = p._describe("illegal_transition", 500, "cannot change keyspace state from ENABLED to ARCHIVED", "PUT", "/x", "t1")
    assert "ENABLED->DISABLED" in msg
    msg = p._describe("no_such_api", 404, "404 page not found", "GET", "/pd/api/v2/keyspaces/t1", "t1")
    assert "client URL" in msg


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize(
    "text,parsed",
    [
        ("v8.1.0", (8, 1, 0)),
        ("v26.3.4", (26, 3, 4)),
        ("8.5", (8, 5, 0)),
        ("None", None),
        ("", None),
        (None, None),
        ("v9.0.0-beta.1", (9, 0, 0)),
    ],
)
def test_parse_version(text, parsed):
    assert p.parse_version(text) == parsed


def test_pd_name_rule_per_version():
    long_name = "a" * 21
    assert p.pd_name_error(long_name, (8, 5, 7)) is None  # no limit on v8.x
    assert "at most 20" in p.pd_name_error(long_name, (26, 3, 0))
    assert p.pd_name_error("a" * 20, (26, 3, 0)) is None
    assert p.pd_name_error(long_name, None) is None  # unknown: caller warns
    assert "breaks PD's rule" in p.pd_name_error("a.b", (8, 1, 0))
    assert "breaks PD's rule" in p.pd_name_error("abc\n", (8, 1, 0))  # fullmatch, not match with '$'


# ---------------------------------------------------------------- transport decisions

REFUSED = requests.exceptions.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused")
OK = FakeResponse(200, '{"id": 1, "name": "t1", "state": "ENABLED", "created_at": 1, "state_changed_at": 1}')


def test_failover_to_second_endpoint_and_remember_it():
    c = make_client({"http://a:1": [REFUSED], "http://b:2": [OK]})
    assert c.get_keyspace("t1")["config"] == {}
    assert c.get_keyspace("t1")["name"] == "t1"
    # the second call starts at the endpoint that answered
    assert [call[1].split("/pd")[0] for call in c.session.calls] == ["http://a:1", "http://b:2", "http://b:2"]


def test_not_found_is_none_and_not_retried():
    c = make_client({"http://a:1": [FakeResponse(500, '"keyspace does not exist"')]})
    assert c.get_keyspace("t1") is None
    assert len(c.session.calls) == 1


def test_keyspace_error_is_final_even_with_more_endpoints():
    c = make_client({"http://a:1": [FakeResponse(500, '"cannot change keyspace state from ENABLED to ARCHIVED"')], "http://b:2": [OK]})
    with pytest.raises(p.PDError) as exc:
        c.set_state("t1", "archived")
    assert exc.value.kind == "illegal_transition"
    assert len(c.session.calls) == 1


def test_all_refused_reports_every_endpoint_and_retries_are_bounded():
    c = make_client({"http://a:1": [REFUSED], "http://b:2": [REFUSED]}, retries=2)
    with pytest.raises(p.PDUnreachable) as exc:
        c.get_keyspace("t1")
    assert len(c.session.calls) == 6  # 3 rounds x 2 endpoints
    msg = str(exc.value)
    assert "http://a:1 (connection refused, 3 attempts)" in msg and "http://b:2" in msg


def test_post_is_never_retried_and_not_resent_after_a_read_timeout():
    c = make_client({"http://a:1": [requests.exceptions.ReadTimeout("read timed out")], "http://b:2": [OK]})
    with pytest.raises(p.PDUnreachable) as exc:
        c.create_keyspace("t1")
    assert exc.value.maybe_applied is True
    assert len(c.session.calls) == 1


def test_post_fails_over_when_surely_not_sent():
    c = make_client({"http://a:1": [REFUSED], "http://b:2": [OK]})
    assert c.create_keyspace("t1")["name"] == "t1"


def test_leader_nil_is_retried_then_reported_as_pd_error():
    nil = FakeResponse(503, '"[PD:server:ErrLeaderNil]leader is nil"')
    c = make_client({"http://a:1": [nil]}, endpoints=("http://a:1",), retries=1)
    with pytest.raises(p.PDError) as exc:
        c.get_keyspace("t1")
    assert exc.value.kind == "no_leader"
    assert len(c.session.calls) == 2


def test_transient_then_success():
    nil = FakeResponse(503, '"[PD:server:ErrLeaderNil]leader is nil"')
    c = make_client({"http://a:1": [nil, OK]}, endpoints=("http://a:1",), retries=3)
    assert c.get_keyspace("t1")["state"] == "ENABLED"


def test_tls_errors_are_not_retried():
    tls = requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
    c = make_client({"http://a:1": [tls]}, endpoints=("http://a:1",), retries=3)
    with pytest.raises(p.PDUnreachable) as exc:
        c.get_keyspace("t1")
    assert len(c.session.calls) == 1
    assert "TLS" in str(exc.value) and "pd_ca_cert" in str(exc.value)


def test_pagination_follows_next_page_token_and_null_keyspaces():
    pages = [
        FakeResponse(200, '{"keyspaces": [{"id": 0, "name": "DEFAULT", "state": "ENABLED"}], "next_page_token": "1"}'),
        FakeResponse(200, '{"keyspaces": [{"id": 1, "name": "t1", "state": "DISABLED", "config": {"a": "b"}}], "next_page_token": "2"}'),
        FakeResponse(200, '{"keyspaces": null, "next_page_token": ""}'),
    ]
    c = make_client({"http://a:1": pages}, endpoints=("http://a:1",))
    items = c.list_keyspaces(page_size=1)
    assert [k["name"] for k in items] == ["DEFAULT", "t1"]
    assert items[0]["config"] == {} and items[1]["config"] == {"a": "b"}
    assert len(c.session.calls) == 3


def test_version_none_is_unknown_and_cached():
    c = make_client({"http://a:1": [FakeResponse(200, '{"version": "None"}')]}, endpoints=("http://a:1",))
    assert c.version() is None
    assert c.version() is None
    assert len(c.session.calls) == 1


def test_clone_keeps_settings_with_new_session():
    c = p.PDClient(["pd:1", "pd:2"], timeout=3, retries=1)
    d = c.clone()
    assert d.endpoints == c.endpoints and d.timeout == 3 and d.retries == 1 and d.session is not c.session


def test_page_size_is_clamped_and_halved_on_etcd_txn_limit():
    too_many = FakeResponse(500, '"etcdserver: too many operations in txn request"')
    page = FakeResponse(200, '{"keyspaces": [{"id": 1, "name": "t1", "state": "ENABLED"}], "next_page_token": ""}')
    c = make_client({"http://a:1": [too_many, page]}, endpoints=("http://a:1",), retries=0)
    assert [k["name"] for k in c.iter_keyspaces(page_size=1000)] == ["t1"]
    assert [q["limit"] for q in c.session.params] == [str(p.MAX_PAGE_SIZE), str(p.MAX_PAGE_SIZE // 2)]


TOO_MANY = FakeResponse(500, '"etcdserver: too many operations in txn request"')
ONE_PAGE = FakeResponse(200, '{"keyspaces": [{"id": 1, "name": "t1", "state": "ENABLED"}], "next_page_token": ""}')


@pytest.mark.parametrize(
    "answers,page_size,kind,limits",
    [
        # an etcd with a lower max-txn-ops: halved until PD serves the page
        ([TOO_MANY, TOO_MANY, ONE_PAGE], 500, None, ["127", "63", "31"]),
        # not even a page of one: PD's error
        ([TOO_MANY], 4, "page_too_large", ["4", "2", "1"]),
        # any other error is not a reason to halve
        ([FakeResponse(500, '"keyspace group manager is not initialized"')], 127, "unsupported_request", ["127"]),
    ],
)
def test_page_halving(answers, page_size, kind, limits):
    c = make_client({"http://a:1": list(answers)}, endpoints=("http://a:1",), retries=0)
    if kind is None:
        assert [k["name"] for k in c.list_keyspaces(page_size=page_size)] == ["t1"]
    else:
        with pytest.raises(p.PDError) as exc:
            c.list_keyspaces(page_size=page_size)
        assert exc.value.kind == kind
    assert [q["limit"] for q in c.session.params] == limits


def test_unlimited_list_is_paginated_anyway():
    page = FakeResponse(200, '{"keyspaces": null, "next_page_token": ""}')
    c = make_client({"http://a:1": [page]}, endpoints=("http://a:1",))
    assert c.list_keyspaces(page_size=None) == []
    assert c.session.params == [{"limit": str(p.DEFAULT_PAGE_SIZE)}]


def test_tls_settings_go_with_every_request_so_env_bundles_cannot_override():
    # requests lets REQUESTS_CA_BUNDLE override a Session-level verify; a
    # per-request verify path wins.
    c = p.PDClient(["pd:1"], ca_cert="/ca.pem", client_cert="/c.pem", client_key="/k.pem")
    c.session = FakeSession({"https://pd:1": [OK]})
    c.get_keyspace("t1")
    assert c.session.last_tls == ("/ca.pem", ("/c.pem", "/k.pem"))


# ---------------------------------------------------------------- answers that are not PD's: fail over

KS_T1 = '{"id": 1, "name": "t1", "state": "ENABLED", "created_at": 1, "state_changed_at": 1, "config": {"k": "v"}}'
LIST_OK = '{"keyspaces": [%s], "next_page_token": ""}' % KS_T1
NOT_PD = {
    "500 html": FakeResponse(500, "<html><body><h1>500 Internal Server Error</h1></body></html>"),
    "500 empty": FakeResponse(500, ""),
    "404 gin": FakeResponse(404, "404 page not found"),
    "404 json": FakeResponse(404, '{"error": "no route"}'),
    "200 garbage": FakeResponse(200, "<html>hello</html>"),
    "200 {}": FakeResponse(200, "{}"),
    "200 config not a dict": FakeResponse(200, '{"id": 1, "name": "t1", "state": "ENABLED", "config": "k=v"}'),
    "200 config value not a string": FakeResponse(200, '{"id": 1, "name": "t1", "state": "ENABLED", "config": {"k": 1}}'),
    "200 other keyspace": FakeResponse(200, '{"id": 2, "name": "t2", "state": "ENABLED"}'),
    "200 bad state": FakeResponse(200, '{"id": 1, "name": "t1", "state": "GONE"}'),
    "200 id not a number": FakeResponse(200, '{"id": "1", "name": "t1", "state": "ENABLED"}'),
    "400 plain http to https": FakeResponse(400, "Client sent an HTTP request to an HTTPS server.\n"),
}


@pytest.mark.parametrize("label", sorted(NOT_PD))
def test_get_fails_over_past_an_answer_that_is_not_pds(label):
    c = make_client({"http://a:1": [NOT_PD[label]], "http://b:2": [FakeResponse(200, KS_T1)]})
    assert c.get_keyspace("t1")["config"] == {"k": "v"}
    assert [call[1].split("/pd")[0] for call in c.session.calls] == ["http://a:1", "http://b:2"]
    assert c.requests_log[0]["error"].startswith(p.INVALID_ANSWER)
    # the endpoint that answered like PD is the one tried first next time
    c.get_keyspace("t1")
    assert c.session.calls[-1][1].startswith("http://b:2")


@pytest.mark.parametrize("label", ["500 html", "404 gin", "200 garbage", "200 {}"])
def test_list_fails_over_past_an_answer_that_is_not_pds(label):
    wrong = FakeResponse(200, '{"keyspaces": {"t1": 1}}') if label == "200 {}" else NOT_PD[label]
    for first in (NOT_PD[label], wrong):
        c = make_client({"http://a:1": [first], "http://b:2": [FakeResponse(200, LIST_OK)]})
        assert [k["name"] for k in c.list_keyspaces()] == ["t1"]


def test_list_200_empty_object_is_not_an_empty_fleet():
    c = make_client({"http://a:1": [FakeResponse(200, "{}")], "http://b:2": [FakeResponse(200, "{}")]})
    with pytest.raises(p.PDUnreachable) as exc:
        c.list_keyspaces()
    assert "No PD endpoint gave a usable answer to GET /pd/api/v2/keyspaces" in str(exc.value)
    assert "HTTP 200 but the answer has no 'keyspaces'" in str(exc.value)


def test_create_fails_over_past_a_200_empty_object():
    c = make_client({"http://a:1": [FakeResponse(200, "{}")], "http://b:2": [FakeResponse(200, KS_T1)]})
    created = c.create_keyspace("t1", {"k": "v"})
    assert created["id"] == 1
    assert len(c.session.calls) == 2


def test_create_with_no_usable_answer_may_have_been_applied():
    c = make_client({"http://a:1": [NOT_PD["500 html"]], "http://b:2": [NOT_PD["200 garbage"]]})
    with pytest.raises(p.PDUnreachable) as exc:
        c.create_keyspace("t1")
    assert exc.value.maybe_applied is True
    assert len(c.session.calls) == 2


def test_version_fails_over_past_a_404():
    c = make_client({"http://a:1": [NOT_PD["404 gin"]], "http://b:2": [FakeResponse(200, '{"version": "v8.5.7"}')]})
    assert c.version() == "v8.5.7"


def test_pds_own_not_found_is_final_even_as_a_404():
    for status in (500, 404):
        c = make_client(
            {"http://a:1": [FakeResponse(status, '"[PD:keyspace:ErrKeyspaceNotFound]keyspace does not exist"')], "http://b:2": [FakeResponse(200, KS_T1)]}
        )
        assert c.get_keyspace("t1") is None
        assert len(c.session.calls) == 1


def test_pd_error_bodies_are_final_and_foreign_ones_are_not():
    assert p.is_pd_error_body('"[PD:keyspace:ErrKeyspaceExists]keyspace already exists"')
    assert p.is_pd_error_body("{}")
    assert p.is_pd_error_body("[PD:apiutil:ErrRedirect]redirect failed")
    assert not p.is_pd_error_body("")
    assert not p.is_pd_error_body("<html></html>")
    assert not p.is_pd_error_body('{"error": "x"}')
    assert not p.is_pd_error_body("404 page not found")


def test_all_endpoints_invalid_fails_clearly_without_pointless_retry_rounds():
    c = make_client({"http://a:1": [NOT_PD["200 {}"]], "http://b:2": [NOT_PD["404 gin"]]}, retries=3)
    with pytest.raises(p.PDUnreachable) as exc:
        c.get_keyspace("t1")
    msg = str(exc.value)
    assert len(c.session.calls) == 2  # neither answer heals by waiting
    assert msg.startswith("No PD endpoint gave a usable answer to GET /pd/api/v2/keyspaces/t1")
    assert "http://a:1 (not a PD answer: HTTP 200 but the answer has no 'id', 'name', 'state')" in msg
    assert "http://b:2 (not a PD answer: HTTP 404" in msg and "check pd_endpoints" in msg


def test_a_foreign_500_is_retried_like_an_unreachable_endpoint():
    c = make_client({"http://a:1": [NOT_PD["500 html"], FakeResponse(200, KS_T1)]}, endpoints=("http://a:1",), retries=2)
    assert c.get_keyspace("t1")["name"] == "t1"
    assert len(c.session.calls) == 2


def test_config_not_a_dict_from_every_endpoint_is_a_clear_error():
    bad = NOT_PD["200 config not a dict"]
    c = make_client({"http://a:1": [bad], "http://b:2": [bad]})
    with pytest.raises(p.PDUnreachable) as exc:
        c.set_state("t1", "disabled")
    assert "'config' is not a map of strings but a string" in str(exc.value)


def test_missing_tls_file_is_a_config_error_not_a_traceback():
    c = make_client({"http://a:1": [OSError("Could not find a suitable TLS CA certificate bundle, invalid path: /x")]})
    with pytest.raises(p.PDConfigError) as exc:
        c.get_keyspace("t1")
    assert "pd_ca_cert" in str(exc.value) and "/x" in str(exc.value)


def test_page_is_halved_when_etcd_refuses_an_answer_over_2_mib():
    big = FakeResponse(500, '"rpc error: code = ResourceExhausted desc = trying to send message larger than max (2100272 vs. 2097152)"')
    c = make_client({"http://a:1": [big, big, FakeResponse(200, LIST_OK)]}, endpoints=("http://a:1",), retries=0)
    assert [k["name"] for k in c.list_keyspaces(page_size=127)] == ["t1"]
    assert [q["limit"] for q in c.session.params] == ["127", "63", "31"]


# ---------------------------------------------------------------- secrets in endpoints, config size


@pytest.mark.parametrize("raw", ["https://user:s3cr3t-pw@pd:2379", "user:s3cr3t-pw@pd:2379", "http://s3cr3t-pw@pd:2379", "https://user:s3cr3t-pw@pd:notaport"])
def test_endpoint_userinfo_is_refused_and_masked(raw):
    with pytest.raises(p.PDConfigError) as exc:
        p.PDClient([raw])
    assert "s3cr3t-pw" not in str(exc.value)
    assert "***@pd" in str(exc.value) and "password" in str(exc.value)
    assert p.endpoint_secrets(["pd:1", raw]) == ["s3cr3t-pw"]


def test_mask_endpoint():
    assert p.mask_endpoint("https://u:p@pd:2379") == "https://***@pd:2379"
    assert p.mask_endpoint("pd:2379") == "pd:2379"
    assert p.endpoint_secrets(["pd:1,http://pd:2"]) == []
    # a password pasted without percent-encoding: '@', '/' and ',' in it
    raw = "https://u:p@ss/w,rd@pd:2379"
    assert p.mask_endpoint(raw) == "https://***@pd:2379"
    assert p.endpoint_secrets([raw]) == ["p@ss/w,rd", "p@ss/w", "rd"]


def test_config_size_limit():
    assert p.config_size_error({"k": "x" * (p.MAX_CONFIG_BYTES - 20)}) is None
    err = p.config_size_error({"k": "x" * p.MAX_CONFIG_BYTES})
    assert err and "64 KiB" in err and str(p.MAX_CONFIG_BYTES) in err
    assert p.config_size_error(None) is None
    c = make_client({"http://a:1": [FakeResponse(200, KS_T1)]})
    with pytest.raises(p.PDConfigError):
        c.create_keyspace("t1", {"k": "x" * p.MAX_CONFIG_BYTES})
    with pytest.raises(p.PDConfigError):
        c.patch_config("t1", {"k": "x" * p.MAX_CONFIG_BYTES})
    assert c.session.calls == []


def test_pd_name_rule_refuses_a_trailing_newline():
    assert p.pd_name_error("abc\n", None)
