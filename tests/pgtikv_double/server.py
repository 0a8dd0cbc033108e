# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test double of the pg-tikv SQL server (upstream c4pt0r/tipg).

Test fixture only: it is excluded from the collection build (galaxy.yml
build_ignore) and nothing under plugins/, roles/ or playbooks/ may import it.

It speaks the PostgreSQL wire protocol (v3) on loopback and reproduces, with
the exact texts and codes of /work/shared/reference/pg-tikv-server.md, what a
client of pg-tikv can observe about tenants, logins and role SQL. Tenants are
PD keyspaces looked up in the *real* PD over HTTP; the double keeps no list of
tenants of its own. See README.md next to this file for every modelled
behaviour, its reference section, and the known gaps.

Stdlib only. Run:

    python tests/pgtikv_double/server.py --host 127.0.0.1 --port 25433 \\
        --pd-endpoints 127.0.0.1:23790 --state-file /tmp/x/users.json \\
        [--fallback-password X] [--default-keyspace default] \\
        [--tls-cert F --tls-key F]

Sections: logging; tokenizer; parser; user stores; SQL executor; PD client;
wire protocol; main.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import decimal
import hashlib
import json
import logging
import math
import os
import re
import secrets
import signal
import ssl
import struct
import sys
import urllib.parse

LOG = logging.getLogger("pgtikv-double")

PG_VERSION_STRING = "PostgreSQL 15.0 (pg-tikv)"
# The exact ParameterStatus set of the real server (reference section 2.7). No
# standard_conforming_strings, integer_datetimes, is_superuser, ...
SERVER_PARAMETERS = (
    ("server_version", "15.0"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
)
DEFAULT_ADMIN_USER = "admin"
DEFAULT_ADMIN_PASSWORD = "admin"


# ============================================================================
# Logging: like the real server (tracing fmt, level fixed at INFO, stderr).
# ============================================================================


class _TracingFormatter(logging.Formatter):
    """``2026-01-08T10:00:00.000000Z  INFO message``, as tracing's fmt layer."""

    _LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR"}

    def format(self, record):
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        level = self._LEVELS.get(record.levelname, record.levelname)
        line = "%s %5s %s" % (stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), level, record.getMessage())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _setup_logging():
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TracingFormatter())
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


# ============================================================================
# Tokenizer: the subset of sqlparser 0.40 (PostgreSqlDialect) that matters for
# role statements, error texts and statement boundaries (reference 3.5).
# ============================================================================

T_WORD = "word"
T_NUMBER = "number"
T_SQ = "sq"  # 'single quoted' ('' unescaped, backslashes literal)
T_NATIONAL = "national"  # N'...'
T_ESCAPED = "escaped"  # E'...'
T_HEX = "hex"  # X'...'
T_DOLLAR = "dollar"  # $$...$$ / $tag$...$tag$
T_PLACEHOLDER = "placeholder"  # $1, $name, ?
T_OP = "op"
T_CHAR = "char"
T_EOF = "eof"

_TWO_CHAR_OPS = {
    "!": ("!=", "!!", "!~"),
    "<": ("<=", "<>", "<<", "<@"),
    ">": (">=", ">>"),
    ":": ("::", ":="),
    "&": ("&&",),
    "~": ("~*",),
    "=": ("=>",),
    "@": ("@>", "@?", "@@"),
}
_SINGLE_OPS = set("(),;[]{}+*%^\\")
# Operators of more than one character, matched longest first (as sqlparser's
# tokenizer does, one character at a time).
_MULTI_CHAR_OPS = {op for ops in _TWO_CHAR_OPS.values() for op in ops} | {"->", "->>", "||", "||/", "|/", "#>", "#>>", "#-", "<=>", "!~*"}
_OP_STARTS = set(_TWO_CHAR_OPS) | set("-|#")


class ParseError(Exception):
    """A tokenizer/parser error, worded as sqlparser 0.40 renders it.

    ``str(e)`` is the inner text (``Expected ..., found: X at Line: 1, Column
    5``); the executor adds the ``SQL parse error: sql parser error: `` prefix.
    """


class ParserPanic(Exception):
    """A statement on which sqlparser 0.40 panics (the connection task dies)."""


class Token:
    __slots__ = ("kind", "value", "quote", "line", "col", "pos", "tag")

    def __init__(self, kind, value, line=0, col=0, pos=0, quote=None, tag=None):
        self.kind = kind
        self.value = value
        self.quote = quote
        self.line = line
        self.col = col
        self.pos = pos
        self.tag = tag

    def display(self):
        """sqlparser's ``Display for Token`` (the ``found:`` part of errors)."""
        kind = self.kind
        if kind == T_EOF:
            return "EOF"
        if kind == T_WORD:
            if self.quote == '"':
                return '"%s"' % self.value
            return self.value
        if kind == T_SQ:
            return "'%s'" % self.value
        if kind == T_NATIONAL:
            return "N'%s'" % self.value
        if kind == T_ESCAPED:
            return "E'%s'" % self.value
        if kind == T_HEX:
            return "X'%s'" % self.value
        if kind == T_DOLLAR:
            tag = self.tag or ""
            return "$%s$%s$%s$" % (tag, self.value, tag)
        return self.value

    def location(self):
        if self.kind == T_EOF or self.line == 0:
            return ""
        return " at Line: %d, Column %d" % (self.line, self.col)

    def is_kw(self, *names):
        """True for an unquoted word that is one of the keywords ``names``."""
        return self.kind == T_WORD and self.quote is None and self.value.upper() in names


def _is_ident_start(ch):
    return ch.isalpha() or ch == "_"


def _is_ident_part(ch):
    return ch.isalpha() or ch in "0123456789$_"


class _Scanner:
    def __init__(self, text):
        self.s = text
        self.i = 0
        self.line = 1
        self.col = 1

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else None

    def next(self):
        ch = self.s[self.i]
        self.i += 1
        if ch == "\n":
            self.line += 1
            self.col = 1
        else:
            self.col += 1
        return ch

    def error(self, message, line, col):
        raise ParseError("%s at Line: %d, Column %d" % (message, line, col))


def tokenize(sql):
    """Return the non-whitespace tokens of ``sql`` followed by an EOF token."""
    sc = _Scanner(sql)
    out = []
    while True:
        ch = sc.peek()
        if ch is None:
            break
        line, col, pos = sc.line, sc.col, sc.i
        if ch in " \t\n\r":
            sc.next()
            continue
        nxt = sc.peek(1)
        if ch in "nN" and nxt == "'":
            sc.next()
            out.append(Token(T_NATIONAL, _quoted_string(sc), line, col, pos))
            continue
        if ch in "eE" and nxt == "'":
            sc.next()
            out.append(Token(T_ESCAPED, _escaped_string(sc, line, col), line, col, pos))
            continue
        if ch in "xX" and nxt == "'":
            sc.next()
            out.append(Token(T_HEX, _quoted_string(sc), line, col, pos))
            continue
        if _is_ident_start(ch):
            word = []
            while sc.peek() is not None and _is_ident_part(sc.peek()):
                word.append(sc.next())
            out.append(Token(T_WORD, "".join(word), line, col, pos))
            continue
        if ch == '"':
            value = _quoted_body(sc, '"')
            if value is None:
                sc.error("Expected close delimiter '\"' before EOF.", line, col)
            out.append(Token(T_WORD, value, line, col, pos, quote='"'))
            continue
        if ch == "'":
            out.append(Token(T_SQ, _quoted_string(sc), line, col, pos))
            continue
        if ch.isdigit() and ch in "0123456789" or (ch == "." and nxt is not None and nxt in "0123456789"):
            out.append(_number(sc, line, col, pos))
            continue
        if ch == "$":
            out.append(_dollar(sc, line, col, pos))
            continue
        if ch == "-" and nxt == "-":
            while sc.peek() is not None:
                if sc.next() == "\n":
                    break
            continue
        if ch == "/" and nxt == "*":
            sc.next()
            sc.next()
            depth = 1
            while depth:
                c = sc.peek()
                if c is None:
                    sc.error("Unexpected EOF while in a multi-line comment", sc.line, sc.col)
                sc.next()
                if c == "/" and sc.peek() == "*":
                    sc.next()
                    depth += 1
                elif c == "*" and sc.peek() == "/":
                    sc.next()
                    depth -= 1
            continue
        if ch == "?":
            sc.next()
            digits = []
            while sc.peek() is not None and sc.peek() in "0123456789":
                digits.append(sc.next())
            out.append(Token(T_PLACEHOLDER, "?" + "".join(digits), line, col, pos))
            continue
        if ch in _OP_STARTS:
            op = ch
            for size in (3, 2):
                candidate = "".join(sc.peek(k) or "" for k in range(size))
                if candidate in _MULTI_CHAR_OPS:
                    op = candidate
                    break
            for _char in op:
                sc.next()
            out.append(Token(T_OP, op, line, col, pos))
            continue
        if ch in _SINGLE_OPS or ch in "./":
            sc.next()
            out.append(Token(T_OP, ch, line, col, pos))
            continue
        sc.next()
        out.append(Token(T_CHAR, ch, line, col, pos))
    out.append(Token(T_EOF, "", 0, 0, len(sql)))
    return out


def _quoted_body(sc, quote):
    """From the opening ``quote`` (consumed here) to the closing one: the text
    between, a doubled quote standing for one; None when the input ends first."""
    sc.next()  # opening quote
    value = []
    while sc.peek() is not None:
        c = sc.next()
        if c == quote:
            if sc.peek() == quote:
                sc.next()
                value.append(quote)
                continue
            return "".join(value)
        value.append(c)
    return None


def _quoted_string(sc):
    """'...' with '' -> ' and backslashes kept literally (non-MySQL dialect)."""
    line, col = sc.line, sc.col
    value = _quoted_body(sc, "'")
    if value is None:
        sc.error("Unterminated string literal", line, col)
    return value


def _escaped_string(sc, line, col):
    """E'...': backslash escapes; only its extent matters to pg-tikv."""
    sc.next()  # opening quote
    value = []
    escaped = False
    while sc.peek() is not None:
        c = sc.next()
        if escaped:
            value.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(c, c))
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "'":
            if sc.peek() == "'":
                sc.next()
                value.append("'")
            else:
                return "".join(value)
        else:
            value.append(c)
    sc.error("Unterminated encoded string literal", line, col)
    return ""  # not reached


def _number(sc, line, col, pos):
    digits = []
    while sc.peek() is not None and sc.peek() in "0123456789":
        digits.append(sc.next())
    if sc.peek() == ".":
        digits.append(sc.next())
        while sc.peek() is not None and sc.peek() in "0123456789":
            digits.append(sc.next())
    if digits == ["."]:
        return Token(T_OP, ".", line, col, pos)
    if sc.peek() in ("e", "E"):
        sign = sc.peek(1) if sc.peek(1) in ("+", "-") else ""
        first = sc.peek(1 + len(sign))
        if first is not None and first in "0123456789":
            digits.append(sc.next())
            if sign:
                digits.append(sc.next())
            while sc.peek() is not None and sc.peek() in "0123456789":
                digits.append(sc.next())
    return Token(T_NUMBER, "".join(digits), line, col, pos)


def _dollar(sc, line, col, pos):
    sc.next()  # the first $
    if sc.peek() == "$":
        sc.next()
        body = []
        while True:
            c = sc.peek()
            if c is None:
                sc.error("Unterminated dollar-quoted string", sc.line, sc.col)
            sc.next()
            if c == "$" and sc.peek() == "$":
                sc.next()
                return Token(T_DOLLAR, "".join(body), line, col, pos)
            body.append(c)
    name = []
    while sc.peek() is not None and (sc.peek().isalnum() or sc.peek() == "_"):
        name.append(sc.next())
    tag = "".join(name)
    if sc.peek() != "$":
        return Token(T_PLACEHOLDER, "$" + tag, line, col, pos)
    sc.next()
    end = "$%s$" % tag
    rest = sc.s[sc.i :]
    idx = rest.find(end)
    if idx < 0:
        while sc.peek() is not None:
            sc.next()
        sc.error('Unterminated dollar-quoted string at or near "%s"' % tag, sc.line, sc.col)
    body = rest[:idx]
    for _ignored in range(idx + len(end)):
        sc.next()
    return Token(T_DOLLAR, body, line, col, pos, tag=tag)


# ============================================================================
# Parser: statement dispatch of sqlparser 0.40 plus exact grammars for the
# statements the double models. Statements it does not model are kept as
# "opaque" and fail at execution with "Unsupported statement".
# ============================================================================

# sqlparser 0.40 keywords that start a statement it can parse (parse_statement).
_STATEMENT_KEYWORDS = {
    "KILL",
    "DESC",
    "DESCRIBE",
    "EXPLAIN",
    "ANALYZE",
    "SELECT",
    "WITH",
    "VALUES",
    "TRUNCATE",
    "ATTACH",
    "MSCK",
    "CREATE",
    "CACHE",
    "DROP",
    "DISCARD",
    "DECLARE",
    "FETCH",
    "DELETE",
    "INSERT",
    "REPLACE",
    "UNCACHE",
    "UPDATE",
    "ALTER",
    "CALL",
    "COPY",
    "CLOSE",
    "SET",
    "SHOW",
    "USE",
    "GRANT",
    "REVOKE",
    "START",
    "BEGIN",
    "SAVEPOINT",
    "RELEASE",
    "COMMIT",
    "ROLLBACK",
    "ASSERT",
    "DEALLOCATE",
    "EXECUTE",
    "PREPARE",
    "MERGE",
    "PRAGMA",
    "UNLOAD",
    "END",
}
# CREATE <type> forms sqlparser 0.40 parses but the double does not model.
_CREATE_OPAQUE = {"TABLE", "MATERIALIZED", "VIEW", "EXTERNAL", "FUNCTION", "MACRO"}
_CREATE_OPAQUE_AFTER = {"INDEX", "VIRTUAL", "SCHEMA", "DATABASE", "SEQUENCE", "TYPE", "PROCEDURE"}
_DROP_OPAQUE = {"TABLE", "VIEW", "INDEX", "SCHEMA", "SEQUENCE", "STAGE", "FUNCTION"}
_GRANT_PERMISSIONS = (
    "CONNECT",
    "CREATE",
    "DELETE",
    "EXECUTE",
    "INSERT",
    "REFERENCES",
    "SELECT",
    "TEMPORARY",
    "TRIGGER",
    "TRUNCATE",
    "UPDATE",
    "USAGE",
)
# keywords::RESERVED_FOR_COLUMN_ALIAS (never taken as an implicit alias).
_RESERVED_FOR_COLUMN_ALIAS = {
    "WITH",
    "EXPLAIN",
    "ANALYZE",
    "SELECT",
    "WHERE",
    "GROUP",
    "SORT",
    "HAVING",
    "ORDER",
    "TOP",
    "LATERAL",
    "VIEW",
    "LIMIT",
    "OFFSET",
    "FETCH",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "CLUSTER",
    "DISTRIBUTE",
    "RETURNING",
    "FROM",
    "INTO",
    "END",
}
_CREATE_ROLE_OPTIONS = (
    "LOGIN",
    "NOLOGIN",
    "INHERIT",
    "NOINHERIT",
    "BYPASSRLS",
    "NOBYPASSRLS",
    "PASSWORD",
    "CREATEDB",
    "NOCREATEDB",
    "CREATEROLE",
    "NOCREATEROLE",
    "SUPERUSER",
    "NOSUPERUSER",
    "REPLICATION",
    "NOREPLICATION",
    "CONNECTION",
    "VALID",
    "IN",
    "ROLE",
    "ADMIN",
    "USER",
)
_ALTER_ROLE_OPTIONS = (
    "BYPASSRLS",
    "NOBYPASSRLS",
    "CONNECTION",
    "CREATEDB",
    "NOCREATEDB",
    "CREATEROLE",
    "NOCREATEROLE",
    "INHERIT",
    "NOINHERIT",
    "LOGIN",
    "NOLOGIN",
    "PASSWORD",
    "REPLICATION",
    "NOREPLICATION",
    "SUPERUSER",
    "NOSUPERUSER",
    "VALID",
)
_FLAG_PAIRS = {
    "LOGIN": "login",
    "NOLOGIN": "login",
    "INHERIT": "inherit",
    "NOINHERIT": "inherit",
    "BYPASSRLS": "bypassrls",
    "NOBYPASSRLS": "bypassrls",
    "CREATEDB": "createdb",
    "NOCREATEDB": "createdb",
    "CREATEROLE": "createrole",
    "NOCREATEROLE": "createrole",
    "SUPERUSER": "superuser",
    "NOSUPERUSER": "superuser",
    "REPLICATION": "replication",
    "NOREPLICATION": "replication",
}
_FLAG_ERRORS = {
    "login": "LOGIN or NOLOGIN",
    "inherit": "INHERIT or NOINHERIT",
    "bypassrls": "BYPASSRLS or NOBYPASSRLS",
    "createdb": "CREATEDB or NOCREATEDB",
    "createrole": "CREATEROLE or NOCREATEROLE",
    "superuser": "SUPERUSER or NOSUPERUSER",
    "replication": "REPLICATION or NOREPLICATION",
}


def _value_of(tok):
    """sqlparser ``Value`` of a literal token, as (kind, text).

    Only ``('sq', s)`` (a plain single-quoted string) is ever used as a
    password by pg-tikv; every other kind is silently ignored (3.1, 3.5).
    """
    return (tok.kind if tok.kind != T_WORD else "word", tok.value)


class Parser:
    def __init__(self, sql):
        self.sql = sql
        self.toks = tokenize(sql)
        self.i = 0

    # -- token helpers -----------------------------------------------------
    def peek(self, k=0):
        j = min(self.i + k, len(self.toks) - 1)
        return self.toks[j]

    def next(self):
        tok = self.toks[self.i]
        if self.i < len(self.toks) - 1:
            self.i += 1
        return tok

    def expected(self, what, tok=None):
        tok = tok if tok is not None else self.peek()
        raise ParseError("Expected %s, found: %s%s" % (what, tok.display(), tok.location()))

    def parse_keyword(self, name):
        if self.peek().is_kw(name):
            self.next()
            return True
        return False

    def parse_keywords(self, names):
        start = self.i
        for name in names:
            if not self.parse_keyword(name):
                self.i = start
                return False
        return True

    def parse_one_of(self, names):
        tok = self.peek()
        if tok.kind == T_WORD and tok.quote is None and tok.value.upper() in names:
            self.next()
            return tok.value.upper()
        return None

    def expect_keyword(self, name):
        if not self.parse_keyword(name):
            self.expected(name)

    def consume(self, op):
        tok = self.peek()
        if tok.kind == T_OP and tok.value == op:
            self.next()
            return True
        return False

    def expect_op(self, op):
        if not self.consume(op):
            self.expected(op)

    def parse_identifier(self):
        """A word, quoted or not, keywords included (no case folding), or a
        plain single-quoted string: sqlparser 0.40 takes ``'bob'`` as the
        identifier ``bob`` (``''`` unescaped), so ``CREATE ROLE 'bob'`` and
        ``CREATE ROLE $1`` create ``bob`` (3.6). ``E'...'``, ``N'...'`` and
        dollar quotes are not identifiers.
        """
        tok = self.next()
        if tok.kind in (T_WORD, T_SQ):
            return tok.value
        self.expected("identifier", tok)
        return ""  # not reached

    def parse_object_name(self):
        parts = [self.parse_identifier()]
        while self.consume("."):
            parts.append(self.parse_identifier())
        return parts

    def parse_comma_separated(self, fn):
        items = [fn()]
        while self.consume(","):
            items.append(fn())
        return items

    def parse_value(self):
        """sqlparser ``parse_value``: any literal, or an error."""
        tok = self.next()
        if tok.kind == T_WORD:
            if tok.quote is None and tok.value.upper() in ("TRUE", "FALSE", "NULL"):
                return ("keyword", tok.value.upper())
            if tok.quote == '"':
                return ("double_quoted", tok.value)
            self.expected("a concrete value", tok)
        if tok.kind in (T_NUMBER, T_SQ, T_NATIONAL, T_ESCAPED, T_HEX, T_DOLLAR, T_PLACEHOLDER):
            return _value_of(tok)
        if tok.kind == T_OP and tok.value in (":", "@"):
            nxt = self.next()
            if nxt.kind in (T_WORD, T_NUMBER):
                return ("placeholder", tok.value + nxt.value)
            self.expected("placeholder", nxt)
        self.expected("a value", tok)
        return None  # not reached

    def parse_number_value(self):
        value = self.parse_value()
        if value[0] in (T_NUMBER, T_PLACEHOLDER, "placeholder"):
            return value
        self.i -= 1
        self.expected("literal number")
        return None  # not reached

    def skip_statement(self):
        """Skip an opaque statement up to (not including) ';' or EOF."""
        while True:
            tok = self.peek()
            if tok.kind == T_EOF or (tok.kind == T_OP and tok.value == ";"):
                return
            self.next()

    def opaque(self, start_tok):
        self.skip_statement()
        end = self.peek().pos
        text = self.sql[start_tok.pos : end].strip()
        return ("unsupported", "Unsupported statement: %s (not modelled by the pg-tikv test double)" % text)

    # -- statements --------------------------------------------------------
    def parse_statements(self):
        stmts = []
        expecting_delimiter = False
        while True:
            while self.consume(";"):
                expecting_delimiter = False
            tok = self.peek()
            if tok.kind == T_EOF:
                break
            if expecting_delimiter and tok.is_kw("END"):
                break
            if expecting_delimiter:
                self.expected("end of statement", tok)
            stmts.append(self.parse_statement())
            expecting_delimiter = True
        return stmts

    def parse_statement(self):
        tok = self.next()
        if tok.kind == T_OP and tok.value == "(":
            return self.opaque(tok)
        if tok.kind != T_WORD or tok.quote is not None or tok.value.upper() not in _STATEMENT_KEYWORDS:
            self.expected("an SQL statement", tok)
        kw = tok.value.upper()
        handler = {
            "CREATE": self.parse_create,
            "ALTER": self.parse_alter,
            "DROP": self.parse_drop,
            "GRANT": self.parse_grant,
            "REVOKE": self.parse_revoke,
            "START": self.parse_start_transaction,
            "BEGIN": self.parse_begin,
            "COMMIT": self.parse_commit,
            "END": self.parse_commit,  # sqlparser 0.40 parse_end: END is COMMIT (3.6a)
            "ROLLBACK": self.parse_rollback,
            "SET": self.parse_set,
            "SHOW": self.parse_show,
            "SELECT": self.parse_select,
        }.get(kw)
        if handler is None:
            return self.opaque(tok)
        return handler(tok)

    def parse_create(self, start):
        or_replace = self.parse_keywords(("OR", "REPLACE"))
        self.parse_one_of(("LOCAL",))
        self.parse_one_of(("GLOBAL",))
        self.parse_one_of(("TRANSIENT",))
        self.parse_one_of(("TEMP", "TEMPORARY"))
        kind = self.parse_one_of(_CREATE_OPAQUE)
        if kind:
            return self.opaque(start)
        if or_replace:
            self.expected("[EXTERNAL] TABLE or [MATERIALIZED] VIEW or FUNCTION after CREATE OR REPLACE")
        if self.parse_keywords(("UNIQUE", "INDEX")) or self.parse_one_of(_CREATE_OPAQUE_AFTER):
            return self.opaque(start)
        if self.parse_keyword("ROLE"):
            return self.parse_create_role()
        self.expected("an object type after CREATE")
        return None  # not reached

    def parse_create_role(self):
        if_not_exists = self.parse_keywords(("IF", "NOT", "EXISTS"))
        names = self.parse_comma_separated(self.parse_object_name)
        self.parse_keyword("WITH")
        opts = {}
        lists = set()
        while True:
            kw = self.parse_one_of(_CREATE_ROLE_OPTIONS)
            if kw is None:
                break
            kw_tok = self.toks[self.i - 1]
            loc = kw_tok.location()
            if kw in _FLAG_PAIRS:
                key = _FLAG_PAIRS[kw]
                if key in opts:
                    raise ParseError("Found multiple %s%s" % (_FLAG_ERRORS[key], loc))
                opts[key] = not kw.startswith("NO")
            elif kw == "PASSWORD":
                if "password" in opts:
                    raise ParseError("Found multiple PASSWORD" + loc)
                if self.parse_keyword("NULL"):
                    opts["password"] = ("null", None)
                else:
                    opts["password"] = self.parse_value()
            elif kw == "CONNECTION":
                self.expect_keyword("LIMIT")
                if "connection_limit" in opts:
                    raise ParseError("Found multiple CONNECTION LIMIT" + loc)
                opts["connection_limit"] = self.parse_number_value()
            elif kw == "VALID":
                self.expect_keyword("UNTIL")
                if "valid_until" in opts:
                    raise ParseError("Found multiple VALID UNTIL" + loc)
                opts["valid_until"] = self.parse_value()
            elif kw == "IN":
                which = None
                if self.parse_keyword("ROLE"):
                    which = "IN ROLE"
                elif self.parse_keyword("GROUP"):
                    which = "IN GROUP"
                else:
                    self.expected("ROLE or GROUP after IN")
                if which in lists:
                    raise ParseError("Found multiple %s%s" % (which, loc))
                lists.add(which)
                self.parse_comma_separated(self.parse_identifier)
            else:  # ROLE, USER, ADMIN
                if kw in lists:
                    raise ParseError("Found multiple %s%s" % (kw, loc))
                lists.add(kw)
                self.parse_comma_separated(self.parse_identifier)
        return ("create_role", [n[-1] for n in names], if_not_exists, opts)

    def parse_alter(self, start):
        kinds = ("VIEW", "TABLE", "INDEX", "ROLE")
        kind = self.parse_one_of(kinds)
        if kind is None:
            self.expected("one of " + " or ".join(kinds))
        if kind != "ROLE":
            return self.opaque(start)
        name = self.parse_identifier()
        if self.parse_keywords(("IN", "DATABASE")):
            save = self.i
            try:
                self.parse_object_name()
            except ParseError:
                self.i = save
        if self.parse_keyword("RENAME"):
            if not self.parse_keyword("TO"):
                self.expected("TO after RENAME")
            return ("alter_role", name, ("rename", self.parse_identifier()))
        if self.parse_keyword("SET"):
            self.parse_object_name()
            if self.parse_keywords(("FROM", "CURRENT")):
                return ("alter_role", name, ("set",))
            if self.consume("=") or self.parse_keyword("TO"):
                if self.parse_keyword("DEFAULT"):
                    return ("alter_role", name, ("set",))
                save = self.i
                try:
                    self.parse_simple_expr()
                except ParseError:
                    self.i = save
                    self.expected("variable value")
                return ("alter_role", name, ("set",))
            self.expected("variable value")
        if self.parse_keyword("RESET"):
            if not self.parse_keyword("ALL"):
                self.parse_object_name()
            return ("alter_role", name, ("reset",))
        self.parse_keyword("WITH")
        options = []
        while True:
            save = self.i
            try:
                opt = self.parse_pg_role_option()
            except ParseError:
                self.i = save  # maybe_parse: backtrack and stop
                break
            options.append(opt)
        if not options:
            self.expected("option")
        return ("alter_role", name, ("options", options))

    def parse_pg_role_option(self):
        kw = self.parse_one_of(_ALTER_ROLE_OPTIONS)
        if kw is None:
            self.expected("option")
        if kw in _FLAG_PAIRS:
            return (_FLAG_PAIRS[kw], not kw.startswith("NO"))
        if kw == "CONNECTION":
            self.expect_keyword("LIMIT")
            return ("connection_limit", self.parse_number_value())
        if kw == "PASSWORD":
            if self.parse_keyword("NULL"):
                return ("password", ("null", None))
            return ("password", self.parse_value())
        # VALID
        self.expect_keyword("UNTIL")
        return ("valid_until", self.parse_value())

    def parse_drop(self, start):
        kinds = ("TABLE", "VIEW", "INDEX", "ROLE", "SCHEMA", "SEQUENCE", "STAGE", "FUNCTION")
        kind = self.parse_one_of(kinds)
        if kind is None:
            self.expected("TABLE, VIEW, INDEX, ROLE, SCHEMA, FUNCTION, STAGE or SEQUENCE after DROP")
        if kind != "ROLE":
            return self.opaque(start)
        if_exists = self.parse_keywords(("IF", "EXISTS"))
        names = self.parse_comma_separated(self.parse_object_name)
        loc = self.peek().location()
        cascade = self.parse_keyword("CASCADE")
        restrict = self.parse_keyword("RESTRICT")
        purge = self.parse_keyword("PURGE")
        if cascade and restrict:
            raise ParseError("Cannot specify both CASCADE and RESTRICT in DROP" + loc)
        if cascade or restrict or purge:
            raise ParseError("Cannot specify CASCADE, RESTRICT, or PURGE in DROP ROLE" + loc)
        return ("drop_role", [n[-1] for n in names], if_exists)

    def _grant_privileges_objects(self):
        if self.parse_keyword("ALL"):
            self.parse_keyword("PRIVILEGES")
            privileges = ["All"]
        else:
            privileges = []

            def permission():
                kw = self.parse_one_of(_GRANT_PERMISSIONS)
                if kw is None:
                    self.expected("a privilege keyword")
                if kw in ("INSERT", "REFERENCES", "SELECT", "UPDATE") and self.consume("("):
                    self.parse_comma_separated(self.parse_identifier)
                    self.expect_op(")")
                return kw

            for kw in self.parse_comma_separated(permission):
                if kw != "TEMPORARY":  # parsed but discarded (3.4)
                    privileges.append(kw.capitalize() if kw != "CREATE" else "CreateTable")
        self.expect_keyword("ON")
        if self.parse_keywords(("ALL", "TABLES", "IN", "SCHEMA")):
            schemas = self.parse_comma_separated(self.parse_object_name)
            obj = {"AllTablesInSchema": schemas[0][-1]}
        elif self.parse_keywords(("ALL", "SEQUENCES", "IN", "SCHEMA")):
            self.parse_comma_separated(self.parse_object_name)
            obj = "Global"
        else:
            kind = self.parse_one_of(("SEQUENCE", "SCHEMA", "TABLE"))
            names = self.parse_comma_separated(self.parse_object_name)
            if kind == "SCHEMA":
                obj = {"Schema": names[0][-1]}
            elif kind == "SEQUENCE":
                obj = "Global"
            else:  # only the first table is recorded, schema dropped (3.4)
                obj = {"Table": {"schema": "public", "name": names[0][-1]}}
        return privileges, obj

    def _granted_by(self):
        if self.parse_keywords(("GRANTED", "BY")):
            tok = self.peek()
            if tok.kind not in (T_WORD, T_SQ):
                # sqlparser 0.40 unwrap()s this parse: the task panics.
                raise ParserPanic("GRANTED BY without an identifier")
            self.next()

    def parse_grant(self, _start):
        privileges, obj = self._grant_privileges_objects()
        self.expect_keyword("TO")
        grantees = self.parse_comma_separated(self.parse_identifier)
        with_grant_option = self.parse_keywords(("WITH", "GRANT", "OPTION"))
        self._granted_by()
        return ("grant", privileges, obj, grantees, with_grant_option)

    def parse_revoke(self, _start):
        privileges, obj = self._grant_privileges_objects()
        self.expect_keyword("FROM")
        grantees = self.parse_comma_separated(self.parse_identifier)
        self._granted_by()
        loc = self.peek().location()
        cascade = self.parse_keyword("CASCADE")
        restrict = self.parse_keyword("RESTRICT")
        if cascade and restrict:
            raise ParseError("Cannot specify both CASCADE and RESTRICT in REVOKE" + loc)
        return ("revoke", privileges, obj, grantees)

    def _transaction_modes(self):
        required = False
        while True:
            if self.parse_keywords(("ISOLATION", "LEVEL")):
                if not (
                    self.parse_keywords(("READ", "UNCOMMITTED"))
                    or self.parse_keywords(("READ", "COMMITTED"))
                    or self.parse_keywords(("REPEATABLE", "READ"))
                    or self.parse_keyword("SERIALIZABLE")
                ):
                    self.expected("isolation level")
            elif self.parse_keywords(("READ", "ONLY")) or self.parse_keywords(("READ", "WRITE")):
                pass
            elif required:
                self.expected("transaction mode")
            else:
                return
            required = self.consume(",")

    def parse_start_transaction(self, _start):
        self.expect_keyword("TRANSACTION")
        self._transaction_modes()
        return ("begin",)

    def parse_begin(self, _start):
        self.parse_one_of(("TRANSACTION", "WORK"))
        self._transaction_modes()
        return ("begin",)

    def _chain(self):
        self.parse_one_of(("TRANSACTION", "WORK"))
        if self.parse_keyword("AND"):
            self.parse_keyword("NO")
            self.expect_keyword("CHAIN")

    def parse_commit(self, _start):
        self._chain()
        return ("commit",)

    def parse_rollback(self, _start):
        self._chain()
        if self.parse_keyword("TO"):
            self.parse_keyword("SAVEPOINT")
            self.parse_identifier()
        return ("rollback",)

    def parse_simple_expr(self):
        """A literal or a (possibly qualified) name, with an optional sign.

        Stands in for sqlparser's ``parse_expr`` in SET values; anything more
        complex fails here (the double is then stricter than the server).
        """
        tok = self.peek()
        if tok.kind == T_OP and tok.value in ("-", "+"):
            self.next()
            tok = self.peek()
            if tok.kind != T_NUMBER:
                self.expected("an expression", tok)
        if tok.kind in (T_NUMBER, T_SQ, T_NATIONAL, T_ESCAPED, T_HEX, T_DOLLAR, T_PLACEHOLDER):
            self.next()
            return
        if tok.kind == T_WORD:
            self.parse_object_name()
            return
        self.expected("an expression", tok)

    def parse_set(self, start):
        modifier = self.parse_one_of(("SESSION", "LOCAL", "HIVEVAR"))
        if modifier == "HIVEVAR":
            self.expect_op(":")
        elif self.parse_keyword("ROLE"):
            return self.opaque(start)  # SetRole: "Unsupported statement" upstream too
        if self.parse_keywords(("TIME", "ZONE")):
            variable = "TIMEZONE"
        else:
            variable = ".".join(self.parse_object_name())
        if self.consume("=") or self.parse_keyword("TO"):
            while True:
                save = self.i
                try:
                    self.parse_simple_expr()
                except ParseError:
                    self.i = save
                    self.expected("variable value")
                if not self.consume(","):
                    return ("set",)
        if variable.upper() == "TIMEZONE":
            save = self.i
            try:
                self.parse_simple_expr()
            except ParseError:
                self.i = save
                self.expected("timezone value")
            return ("set",)
        if variable in ("CHARACTERISTICS", "TRANSACTION"):
            return self.opaque(start)  # SetTransaction: unsupported upstream too
        self.expected("equals sign or TO")
        return None  # not reached

    def parse_show(self, start):
        extended = self.parse_keyword("EXTENDED")
        full = self.parse_keyword("FULL")
        if self.parse_keyword("TABLES"):
            if self.parse_one_of(("FROM", "IN")):
                self.parse_identifier()
            if self.parse_one_of(("LIKE", "ILIKE")):
                self.parse_value()
            elif self.peek().is_kw("WHERE"):
                return self.opaque(start)
            return ("show_tables",)
        if self.parse_one_of(("COLUMNS", "FIELDS", "FUNCTIONS", "CREATE", "COLLATION")):
            return self.opaque(start)
        if extended or full:
            raise ParseError("EXTENDED/FULL are not supported with this type of SHOW query")
        # parse_identifiers: every word up to EOF (or '='), ';' included.
        idents = []
        while True:
            tok = self.peek()
            if tok.kind == T_EOF or (tok.kind == T_OP and tok.value == "="):
                break
            if tok.kind == T_WORD:
                idents.append(tok)
            self.next()
        debug = ", ".join("Ident { value: %s, quote_style: %s }" % (_rust_debug_str(t.value), "Some('\"')" if t.quote else "None") for t in idents)
        return ("unsupported", "Unsupported statement: ShowVariable { variable: [%s] }" % debug)

    def parse_select(self, start):
        # Find a top-level FROM before the end of the statement.
        j, depth, from_at = self.i, 0, None
        while True:
            tok = self.toks[j]
            if tok.kind == T_EOF or (depth == 0 and tok.kind == T_OP and tok.value == ";"):
                break
            if tok.kind == T_OP and tok.value == "(":
                depth += 1
            elif tok.kind == T_OP and tok.value == ")":
                depth -= 1
            elif depth == 0 and from_at is None and tok.is_kw("FROM"):
                from_at = j
            j += 1
        if from_at is not None:
            self.i = from_at + 1
            try:
                parts = self.parse_object_name()
            except ParseError:
                return self.opaque(start)
            if len(parts) > 1 and parts[0].lower() == "information_schema":
                return self.opaque(start)
            self.skip_statement()
            return ("select_from", parts[-1])
        save = self.i
        try:
            items = self._projection()
        except ParseError:
            self.i = save
            return self.opaque(start)
        return ("select_values", items)

    def _projection(self):
        self.parse_one_of(("ALL",))
        items = []
        while True:
            expr = self._mini_expr()
            alias = "?column?"
            if self.parse_keyword("AS"):
                alias = self.parse_identifier()
            else:
                tok = self.peek()
                if tok.kind == T_WORD and (tok.quote or tok.value.upper() not in _RESERVED_FOR_COLUMN_ALIAS):
                    alias = self.next().value
            items.append((alias, expr))
            if not self.consume(","):
                break
        tok = self.peek()
        if not (tok.kind == T_EOF or (tok.kind == T_OP and tok.value == ";")):
            raise ParseError("not modelled")
        return items

    def _mini_expr(self):
        tok = self.next()
        if tok.kind == T_NUMBER:
            return ("lit", _number_value(tok.value))
        if tok.kind in (T_SQ, T_NATIONAL, T_ESCAPED, T_DOLLAR):
            return ("lit", tok.value)
        if tok.kind == T_OP and tok.value == "-" and self.peek().kind == T_NUMBER:
            return ("lit", _number_value("-" + self.next().value))
        if tok.kind == T_OP and tok.value == "(":
            inner = self._mini_expr()
            self.expect_op(")")
            return inner
        if tok.kind == T_WORD and tok.quote is None:
            up = tok.value.upper()
            if up in ("TRUE", "FALSE"):
                return ("lit", up == "TRUE")
            if up == "NULL":
                return ("lit", None)
            if up in ("CURRENT_USER", "SESSION_USER", "USER"):
                return ("call", up.lower(), [])
            if self.consume("("):
                args = []
                if not self.consume(")"):
                    args = self.parse_comma_separated(self._mini_expr)
                    self.expect_op(")")
                return ("call", tok.value.lower(), args)
        raise ParseError("not modelled")


def _number_value(text):
    try:
        return int(text)
    except ValueError:
        return float(text)


def _rust_debug_str(value):
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def parse_sql(sql):
    return Parser(sql).parse_statements()


# Pre-parse checks on the trimmed, upper-cased text (reference 3.5).
def skip_reason(sql_upper):
    if sql_upper.startswith("DROP DATABASE"):
        return "DROP DATABASE not supported"
    if sql_upper.startswith("CREATE DATABASE"):
        return "CREATE DATABASE not supported"
    if sql_upper.startswith("ALTER DATABASE"):
        return "ALTER DATABASE not supported"
    if sql_upper.startswith("\\"):
        return "psql meta-command not supported"
    if sql_upper.startswith("COPY ") or " FROM STDIN" in sql_upper:
        return "COPY not supported"
    return None


# Consulted only when parsing failed (reference 3.5).
def unsupported_reason(sql_upper):
    starts = sql_upper.startswith
    for prefix in ("CREATE TRIGGER", "CREATE DOMAIN", "CREATE AGGREGATE", "ALTER TYPE", "ALTER DOMAIN", "ALTER AGGREGATE", "ALTER FUNCTION", "ALTER SEQUENCE"):
        if starts(prefix):
            return prefix + " not supported"
    if starts("ALTER TABLE") and "OWNER TO" in sql_upper:
        return "ALTER TABLE OWNER TO not supported"
    if starts("CREATE TYPE") and "AS ENUM" in sql_upper:
        return "CREATE TYPE AS ENUM not supported"
    if starts("CREATE TYPE") and "AS (" in sql_upper:
        return "CREATE TYPE AS composite not supported"
    if "$_$" in sql_upper or "$$" in sql_upper:
        return "Dollar-quoted strings not supported"
    if starts("CREATE SEQUENCE") and "INCREMENT" in sql_upper:
        return "CREATE SEQUENCE not supported"
    if starts("CREATE INDEX") and "USING GIST" in sql_upper:
        return "GIST index not supported"
    return None


# The simple-query COPY hijack: unanchored, over the whole text (3.5).
_COPY_WITH_COLUMNS = re.compile(r"(?i)COPY\s+(?:public\.)?(\w+)\s*\(([^)]+)\)\s+FROM\s+stdin")
_COPY_PLAIN = re.compile(r"(?i)COPY\s+(?:public\.)?(\w+)\s+FROM\s+stdin")


def parse_copy_command(query):
    upper = query.upper()
    if "COPY" not in upper or "FROM" not in upper or "STDIN" not in upper:
        return None
    m = _COPY_WITH_COLUMNS.search(query)
    if m:
        return m.group(1), [c.strip() for c in m.group(2).split(",")]
    m = _COPY_PLAIN.search(query)
    if m:
        return m.group(1), []
    return None


# ============================================================================
# User stores: one per keyspace, persisted as one JSON file per keyspace
# (written atomically), so a restart keeps them and writes stay O(1) in the
# number of tenants.
# ============================================================================


def hash_password(password, salt_hex):
    """hex(SHA-256(password_bytes || salt_hex)), one round (reference 2.4)."""
    return hashlib.sha256(password.encode("utf-8") + salt_hex.encode("ascii")).hexdigest()


def new_user(name, password, superuser=False):
    salt = secrets.token_bytes(16).hex()
    return {
        "name": name,
        "password_hash": hash_password(password, salt),
        "password_salt": salt,
        "roles": [],
        "privileges": [],
        "is_superuser": bool(superuser),
        "can_login": True,
        "can_create_db": bool(superuser),
        "can_create_role": bool(superuser),
        "connection_limit": -1,
        "valid_until": None,
    }


def set_password(user, password):
    user["password_salt"] = secrets.token_bytes(16).hex()
    user["password_hash"] = hash_password(password, user["password_salt"])


def verify_password(user, password):
    return hash_password(password, user["password_salt"]) == user["password_hash"]


def _copy_user(user):
    copy = dict(user)
    copy["roles"] = list(user["roles"])
    copy["privileges"] = [dict(p) for p in user["privileges"]]
    return copy


def _atomic_write(path, data):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class KeyspaceStore:
    """The committed ``_sys_user_*`` records of one keyspace."""

    def __init__(self, name, keyspace_id, path):
        self.name = name
        self.keyspace_id = keyspace_id
        self.path = path
        self.users = {}
        if os.path.exists(path):
            with open(path, "rb") as fh:
                doc = json.loads(fh.read().decode("utf-8"))
            self.users = doc.get("users", {})

    def persist(self):
        doc = {"keyspace": self.name, "keyspace_id": self.keyspace_id, "users": self.users}
        _atomic_write(self.path, json.dumps(doc, sort_keys=True).encode("utf-8"))

    def bootstrap(self):
        """``AuthManager::bootstrap``: admin/admin superuser if ``admin`` is absent."""
        if DEFAULT_ADMIN_USER not in self.users:
            self.users[DEFAULT_ADMIN_USER] = new_user(DEFAULT_ADMIN_USER, DEFAULT_ADMIN_PASSWORD, superuser=True)
            self.persist()
            LOG.info("Created default admin user")


class StateStore:
    """``--state-file``: a small manifest plus one file per keyspace in ``<state-file>.d``."""

    FORMAT = "pgtikv-double-state"

    def __init__(self, state_file):
        self.state_file = os.path.abspath(state_file)
        self.dir = self.state_file + ".d"
        os.makedirs(self.dir, exist_ok=True)
        manifest = {
            "format": self.FORMAT,
            "version": 1,
            "layout": "one JSON file per keyspace, named ks-<keyspace id>-<hex of name>.json",
            "keyspace_dir": os.path.basename(self.dir),
        }
        _atomic_write(self.state_file, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))

    def open(self, name, keyspace_id):
        fname = "ks-%s-%s.json" % (keyspace_id, name.encode("utf-8").hex())
        return KeyspaceStore(name, keyspace_id, os.path.join(self.dir, fname))


class Txn:
    """A TiKV transaction over one keyspace: buffered writes, read-your-writes."""

    _DELETED = object()

    def __init__(self, store):
        self.store = store
        self.writes = {}

    def get(self, name):
        if name in self.writes:
            value = self.writes[name]
            return None if value is self._DELETED else _copy_user(value)
        user = self.store.users.get(name)
        return _copy_user(user) if user is not None else None

    def put(self, name, user):
        self.writes[name] = _copy_user(user)

    def delete(self, name):
        self.writes[name] = self._DELETED

    def commit(self):
        if not self.writes:
            return
        for name, value in self.writes.items():
            if value is self._DELETED:
                self.store.users.pop(name, None)
            else:
                self.store.users[name] = value
        self.writes = {}
        self.store.persist()


# ============================================================================
# SQL executor (one per connection; executor.rs + rbac.rs behaviour).
# ============================================================================


class SqlError(Exception):
    def __init__(self, message, code="XX000"):
        super().__init__(message)
        self.message = message
        self.code = code


EMPTY = ("empty",)


def _skipped(reason):
    return ("rows", ["warning"], [["SKIPPED: " + reason]])


class Session:
    def __init__(self, store):
        self.store = store
        self.txn = None

    def begin(self):
        if self.txn is None:
            self.txn = Txn(self.store)

    def commit(self):
        txn, self.txn = self.txn, None
        if txn is not None:
            txn.commit()

    def rollback(self):
        self.txn = None


class Executor:
    def __init__(self, store):
        self.session = Session(store)

    def execute(self, sql):
        """Run a query string whole (no PD in the loop); see ``prepare``/``run``."""
        result, statements = self.prepare(sql)
        return result if statements is None else self.run(statements)

    @staticmethod
    def prepare(sql):
        """Skip checks and parsing, which need no transaction: (result, None)
        when nothing is left to run, else (None, statements)."""
        upper = sql.strip().upper()
        reason = skip_reason(upper)
        if reason:
            return _skipped(reason), None
        try:
            statements = parse_sql(sql)
        except ParseError as exc:
            reason = unsupported_reason(upper)
            if reason:
                return _skipped(reason), None
            raise SqlError("SQL parse error: sql parser error: %s" % exc) from None
        if not statements:
            return EMPTY, None
        return None, statements

    def run(self, statements):
        last = EMPTY
        for stmt in statements:
            kind = stmt[0]
            if kind == "begin":
                self.session.begin()
                last = EMPTY
            elif kind == "commit":
                self.session.commit()
                last = EMPTY
            elif kind == "rollback":
                self.session.rollback()
                last = EMPTY
            else:
                autocommit = self.session.txn is None
                if autocommit:
                    self.session.begin()
                try:
                    last = self._run(stmt, self.session.txn)
                except SqlError:
                    if autocommit:
                        self.session.rollback()
                    raise
                if autocommit:
                    self.session.commit()
        return last

    def _run(self, stmt, txn):
        kind = stmt[0]
        if kind == "create_role":
            return self._create_role(txn, *stmt[1:])
        if kind == "alter_role":
            return self._alter_role(txn, *stmt[1:])
        if kind == "drop_role":
            return self._drop_role(txn, *stmt[1:])
        if kind in ("grant", "revoke"):
            return self._grant_revoke(txn, stmt)
        if kind == "set":
            return EMPTY
        if kind == "show_tables":
            return ("rows", ["table_name"], [])
        if kind == "select_values":
            return self._select_values(stmt[1])
        if kind == "select_from":
            raise SqlError("Table '%s' not found" % stmt[1])
        raise SqlError(stmt[1])  # "unsupported"

    @staticmethod
    def _create_role(txn, names, if_not_exists, opts):
        for name in names:
            if if_not_exists and txn.get(name) is not None:
                continue
            password = opts.get("password")
            pwd = password[1] if password is not None and password[0] == T_SQ else ""
            user = new_user(name, pwd, superuser=opts.get("superuser", False))
            user["can_login"] = opts.get("login", False)
            user["can_create_db"] = opts.get("createdb", False)
            user["can_create_role"] = opts.get("createrole", False)
            if txn.get(name) is not None:
                raise SqlError("User '%s' already exists" % name)
            txn.put(name, user)
        return ("tag", "CREATE ROLE")

    @staticmethod
    def _alter_role(txn, name, operation):
        user = txn.get(name)
        if user is None:
            raise SqlError("Role '%s' does not exist" % name)
        if operation[0] == "rename":
            new_name = operation[1]
            txn.delete(name)
            user["name"] = new_name
            if txn.get(new_name) is not None:
                raise SqlError("User '%s' already exists" % new_name)
            txn.put(new_name, user)
        elif operation[0] == "options":
            for key, value in operation[1]:
                if key == "superuser":
                    user["is_superuser"] = value
                elif key == "createdb":
                    user["can_create_db"] = value
                elif key == "createrole":
                    user["can_create_role"] = value
                elif key == "login":
                    user["can_login"] = value
                elif key == "password":
                    if value[0] == T_SQ:
                        set_password(user, value[1])
                elif key == "connection_limit":
                    if value[0] == T_NUMBER:
                        try:
                            limit = int(value[1])
                        except ValueError:
                            limit = -1
                        user["connection_limit"] = limit if -(2**31) <= limit < 2**31 else -1
            txn.put(name, user)
        # SET / RESET: looked up, then nothing (the existence probe, 3.2).
        return ("tag", "ALTER ROLE")

    @staticmethod
    def _drop_role(txn, names, if_exists):
        for name in names:
            if txn.get(name) is not None:
                txn.delete(name)
            elif not if_exists:
                raise SqlError("Role '%s' does not exist" % name)
            # else: falls back to the (never written) role store: nothing.
        return ("tag", "DROP ROLE")

    @staticmethod
    def _grant_revoke(txn, stmt):
        kind, privileges, obj, grantees = stmt[0], stmt[1], stmt[2], stmt[3]
        with_grant_option = stmt[4] if kind == "grant" else False
        for grantee in grantees:
            user = txn.get(grantee)
            if user is None:
                raise SqlError("Role or user '%s' does not exist" % grantee)
            for priv in privileges:
                user["privileges"] = [p for p in user["privileges"] if not (p["privilege"] == priv and p["object"] == obj)]
                if kind == "grant":
                    user["privileges"].append({"privilege": priv, "object": obj, "with_grant_option": with_grant_option})
            txn.put(grantee, user)
        return ("tag", "GRANT" if kind == "grant" else "REVOKE")

    def _select_values(self, items):
        columns = [alias for alias, _ignored in items]
        return ("rows", columns, [[self._eval(expr) for _ignored, expr in items]])

    def _eval(self, expr):
        if expr[0] == "lit":
            return expr[1]
        name, args = expr[1], expr[2]
        for arg in args:
            self._eval(arg)
        if name == "version":
            return PG_VERSION_STRING
        if name in ("current_user", "session_user", "user", "pg_get_userbyid", "current_database"):
            return "postgres"
        if name == "current_schema":
            return "public"
        if name == "pg_backend_pid":
            return os.getpid()
        if name == "pg_is_in_recovery":
            return False
        if name in ("has_table_privilege", "has_schema_privilege", "has_database_privilege"):
            return True
        raise SqlError("Unsupported function: %s" % name)


def encode_text(value):
    """The text-format value the real server sends (bool as t/f, numbers as digits)."""
    if value is None:
        return None
    if value is True:
        return b"t"
    if value is False:
        return b"f"
    return str(value).encode("utf-8")


# ============================================================================
# PD client: GET /pd/api/v2/keyspaces/<name> over plain HTTP/1.1 (stdlib).
# ============================================================================


class PDClient:
    TIMEOUT = 5.0

    def __init__(self, endpoints):
        self.endpoints = []
        for ep in endpoints.split(","):
            ep = ep.strip()
            if not ep:
                continue
            url = urllib.parse.urlsplit(ep if "://" in ep else "http://" + ep)
            self.endpoints.append((url.hostname, url.port or 2379))
        if not self.endpoints:
            raise ValueError("no PD endpoint given")
        self._tso_next = None  # the future of the batch not yet sent
        self._tso_sending = False

    async def _request(self, host, port, method, path, body=None):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.TIMEOUT)
        try:
            head = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (host, port), "Connection: close", "Accept: application/json"]
            if body is not None:
                head += ["Content-Type: application/json", "Content-Length: %d" % len(body)]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + (body or b""))
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), self.TIMEOUT)
        finally:
            writer.close()
        header, _ignored, payload = raw.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            key, _ignored, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            payload = _dechunk(payload)
        elif "content-length" in headers:
            payload = payload[: int(headers["content-length"])]
        return status, payload.decode("utf-8", "replace")

    async def call(self, method, path, body=None):
        """(status, text) from the first endpoint that answers; raise OSError if none."""
        last = None
        for host, port in self.endpoints:
            try:
                return await self._request(host, port, method, path, body)
            except (OSError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                last = exc
        raise OSError("no PD endpoint answered: %s" % (last,))

    async def load_keyspace(self, name):
        """('ok', meta) | ('missing', text) | ('error', text)."""
        path = "/pd/api/v2/keyspaces/" + urllib.parse.quote(name, safe="")
        try:
            status, text = await self.call("GET", path)
        except OSError as exc:
            return "error", str(exc)
        if status == 200:
            try:
                meta = json.loads(text)
            except ValueError:
                return "error", "unparsable PD answer: %r" % text[:200]
            if isinstance(meta, dict) and meta.get("name") == name and "id" in meta:
                return "ok", meta
            return "error", "unexpected PD answer: %r" % text[:200]
        if "keyspace does not exist" in text:
            return "missing", text
        return "error", "PD returned %d: %s" % (status, text)

    async def timestamp(self):
        """Stand-in for a TSO request: None when PD answers, else the reason.

        Every pg-tikv transaction needs a timestamp from PD (1.4a); PD has no
        HTTP TSO endpoint, so "PD has a leader" (GET /pd/api/v1/leader = 200)
        stands in for "a timestamp can be had".

        Batched as tikv-client's timestamp oracle batches them (client-rust
        src/pd/timestamp.rs: the requests waiting when one is sent go as one):
        one PD request in flight at a time, and every caller that arrived
        while it was out waits for the next one. So each caller's answer comes
        from a request sent after it asked: PD down fails every login and
        statement exactly as before, only without a PD round trip per caller.
        """
        loop = asyncio.get_running_loop()
        if self._tso_next is None:
            self._tso_next = loop.create_future()
            if not self._tso_sending:
                self._tso_sending = True
                loop.create_task(self._send_tso_batches())
        # shield: a caller whose connection drops must not cancel the batch.
        return await asyncio.shield(self._tso_next)

    async def _send_tso_batches(self):
        try:
            while self._tso_next is not None:
                batch, self._tso_next = self._tso_next, None
                try:
                    problem = await self._leader_answer()
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    problem = "TSO stand-in failed: %s" % exc  # never leave a waiter hanging
                batch.set_result(problem)
        finally:
            self._tso_sending = False

    async def _leader_answer(self):
        try:
            status, text = await self.call("GET", "/pd/api/v1/leader")
        except OSError as exc:
            return str(exc)
        if status != 200:
            return "PD returned %d: %s" % (status, text[:200])
        return None

    async def create_keyspace(self, name):
        body = json.dumps({"name": name}).encode("utf-8")
        status, text = await self.call("POST", "/pd/api/v2/keyspaces", body)
        if status == 200 or "already exists" in text:
            return
        raise OSError("PD returned %d: %s" % (status, text))


def tso_error(problem):
    """The message of a transaction that cannot get a timestamp (1.4a, 2.5)."""
    return "Failed to begin transaction: PD is unreachable (%s)" % problem


def _dechunk(data):
    out = bytearray()
    while data:
        size_line, _ignored, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


class TenantPool:
    """``TikvClientPool``: one cached client per keyspace *name*, for life.

    Only successful lookups are cached; a missing keyspace is asked again on
    every login. Creating a client holds a server-wide lock, so a login to a
    missing tenant (slow, retried upstream) stalls every other *new* tenant's
    first login (1.4); ``--missing-keyspace-delay`` models that retry time.
    """

    def __init__(self, pd, state, missing_delay):
        self.pd = pd
        self.state = state
        self.missing_delay = missing_delay
        self.clients = {}
        self.lock = asyncio.Lock()

    async def get(self, name):
        """(store, None) or (None, ('missing' | 'error', detail))."""
        store = self.clients.get(name)
        if store is not None:
            return store, None
        async with self.lock:
            store = self.clients.get(name)
            if store is not None:
                return store, None
            LOG.info("Creating new TiKV client for keyspace: %s", name)
            status, detail = await self.pd.load_keyspace(name)
            if status == "ok":
                store = self.state.open(name, detail["id"])
                self.clients[name] = store
                return store, None
            if self.missing_delay > 0:
                await asyncio.sleep(self.missing_delay)
            return None, (status, detail)


# ============================================================================
# Wire protocol (pgwire 0.28 behaviour as pg-tikv configures it).
# ============================================================================

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3_0 = 196608
MAX_MESSAGE = 64 * 1024 * 1024

OID_BOOL, OID_INT8, OID_INT2, OID_INT4, OID_TEXT = 16, 20, 21, 23, 25
OID_FLOAT4, OID_FLOAT8, OID_UNKNOWN = 700, 701, 705
OID_NAME, OID_BPCHAR, OID_VARCHAR = 19, 1042, 1043
# Parameter types decoded as a string (postgres-types' String accepts these,
# *(source)*); every other type not decoded as bool/int/float arrives as NULL (3.6a).
_STRING_PARAM_OIDS = {OID_TEXT, OID_VARCHAR, OID_UNKNOWN, OID_NAME, OID_BPCHAR}
# Built-in OIDs postgres-types knows; anything else becomes UNKNOWN at Parse.
_KNOWN_OIDS = {
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    26,
    27,
    28,
    29,
    30,
    114,
    142,
    194,
    600,
    601,
    602,
    603,
    604,
    628,
    650,
    700,
    701,
    705,
    718,
    774,
    790,
    829,
    869,
    1000,
    1001,
    1002,
    1005,
    1007,
    1009,
    1014,
    1015,
    1016,
    1021,
    1022,
    1028,
    1033,
    1042,
    1043,
    1082,
    1083,
    1114,
    1115,
    1182,
    1184,
    1185,
    1186,
    1187,
    1231,
    1266,
    1270,
    1560,
    1562,
    1700,
    1790,
    2202,
    2203,
    2204,
    2205,
    2206,
    2249,
    2275,
    2276,
    2277,
    2278,
    2279,
    2280,
    2281,
    2282,
    2283,
    2776,
    2950,
    2951,
    2970,
    3220,
    3361,
    3402,
    3500,
    3614,
    3615,
    3642,
    3734,
    3769,
    3802,
    3807,
    3904,
    3906,
    3908,
    3910,
    3912,
    3926,
    4072,
    4089,
    4096,
    4191,
    5017,
    5038,
}


class ProtocolError(Exception):
    pass


def _cstr(data, pos):
    end = data.index(b"\0", pos)
    return data[pos:end].decode("utf-8"), end + 1


def _msg(typ, payload=b""):
    return typ + struct.pack("!i", len(payload) + 4) + payload


def _error_payload(severity, code, message):
    """pgwire 0.28 ErrorInfo: fields S, C and M only; no V, detail, hint or position (3.6a)."""
    parts = [b"S" + severity.encode(), b"C" + code.encode(), b"M" + message.encode("utf-8")]
    return b"\0".join(parts) + b"\0\0"


_TYPE_SIZES = {OID_BOOL: 1, OID_INT4: 4, OID_INT8: 8, OID_FLOAT8: 8, OID_TEXT: -1}


def column_oid(value):
    """The type pg-tikv gives a result column, from its value in the first row
    (3.6a): bool, int4 (int8 outside the int4 range), float8, else text."""
    if isinstance(value, bool):
        return OID_BOOL
    if isinstance(value, int):
        return OID_INT4 if -(2**31) <= value < 2**31 else OID_INT8
    if isinstance(value, float):
        return OID_FLOAT8
    return OID_TEXT


def _row_description(columns, oids=None):
    out = [struct.pack("!h", len(columns))]
    for i, name in enumerate(columns):
        oid = oids[i] if oids else OID_TEXT
        out.append(name.encode("utf-8") + b"\0" + struct.pack("!ihihih", 0, 0, oid, _TYPE_SIZES[oid], -1, 0))
    return b"".join(out)


def _data_row(values):
    out = [struct.pack("!h", len(values))]
    for value in values:
        data = encode_text(value)
        if data is None:
            out.append(struct.pack("!i", -1))
        else:
            out.append(struct.pack("!i", len(data)) + data)
    return b"".join(out)


def _f32_text(value):
    """Rust ``f32`` Display: the shortest digits that round-trip as f32."""
    if math.isnan(value) or math.isinf(value):
        return _rust_float(value)
    for digits in range(1, 10):
        text = "%.*g" % (digits, value)
        if struct.unpack("!f", struct.pack("!f", float(text)))[0] == value:
            return _rust_float(float(text), text)
    return _rust_float(value)


def _rust_float(value, digits=None):
    """Rust float Display: shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = format(decimal.Decimal(digits if digits is not None else repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _param_text(raw, oid):
    """``substitute_parameters``: the SQL text one bound parameter becomes (3.6).

    Every value is decoded as *binary* ``from_sql`` of the Parse-time type,
    whatever format the client used: text-format numbers usually become NULL.
    """
    if raw is None:
        return "NULL"
    if oid == OID_BOOL:
        return ("true" if raw[0] != 0 else "false") if len(raw) == 1 else "NULL"
    fixed = {OID_INT2: "!h", OID_INT4: "!i", OID_INT8: "!q", OID_FLOAT4: "!f", OID_FLOAT8: "!d"}
    if oid in fixed:
        fmt = fixed[oid]
        if len(raw) != struct.calcsize(fmt):
            return "NULL"
        value = struct.unpack(fmt, raw)[0]
        if oid == OID_FLOAT4:
            return _f32_text(value)
        if oid == OID_FLOAT8:
            return _rust_float(value)
        return str(value)
    if oid not in _STRING_PARAM_OIDS:
        return "NULL"  # json, uuid, numeric, ...: no String decoding (3.6a)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "NULL"
    return "'%s'" % text.replace("'", "''")


def substitute_parameters(query, params, oids):
    result = query
    for i, raw in enumerate(params):
        oid = oids[i] if i < len(oids) else OID_TEXT
        result = result.replace("$%d" % (i + 1), _param_text(raw, oid))
    return result


def describe_fields(query):
    """``infer_result_fields``: one TEXT ``column`` for SELECT..., else nothing."""
    return ["column"] if query.upper().startswith("SELECT") else None


def split_username(username):
    """``parse_tenant_username`` (1.1): first '.', else first ':', both sides non-empty."""
    for sep in (".", ":"):
        pos = username.find(sep)
        if 0 < pos < len(username) - 1:
            return username[:pos], username[pos + 1 :]
    return None, username


class Connection:
    def __init__(self, server, reader, writer):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.out = bytearray()
        self.executor = None
        self.statements = {}
        self.portals = {}
        self.awaiting_sync = False
        peer = writer.get_extra_info("peername")
        self.peer = "%s:%s" % (peer[0], peer[1]) if peer else "?"

    # -- output -------------------------------------------------------------
    def send(self, typ, payload=b""):
        self.out += _msg(typ, payload)

    async def flush(self):
        if self.out:
            self.writer.write(bytes(self.out))
            self.out.clear()
        await self.writer.drain()

    def send_error(self, severity, code, message):
        self.send(b"E", _error_payload(severity, code, message))

    # -- input --------------------------------------------------------------
    async def read_message(self):
        header = await self.reader.readexactly(5)
        length = struct.unpack("!i", header[1:5])[0]
        if length < 4 or length > MAX_MESSAGE:
            raise ProtocolError("invalid message length %d" % length)
        return header[:1], await self.reader.readexactly(length - 4)

    # -- lifecycle ------------------------------------------------------------
    async def run(self):
        LOG.info("New connection from %s", self.peer)
        try:
            if await self.startup():
                await self.serve()
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError, ssl.SSLError):
            pass
        except ParserPanic as exc:
            LOG.error("Connection error: task panicked: %s", exc)
        except Exception:  # pylint: disable=broad-exception-caught
            # A bug in the double: drop the connection (as a panicking
            # connection task would) and leave the traceback in the log.
            LOG.exception("Connection error: unexpected failure in the test double")
        finally:
            try:
                self.writer.close()
            except (OSError, RuntimeError):
                pass
            LOG.info("Connection closed: %s", self.peer)

    async def fatal(self, code, message):
        self.send_error("FATAL", code, message)
        await self.flush()

    async def startup(self):
        tls_done = False
        while True:
            length = struct.unpack("!i", await self.reader.readexactly(4))[0]
            if length < 8 or length > 10000:
                raise ProtocolError("invalid startup packet length %d" % length)
            body = await self.reader.readexactly(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code == SSL_REQUEST:
                if self.server.tls_context is not None and not tls_done:
                    self.writer.write(b"S")
                    await self.writer.drain()
                    await self.writer.start_tls(self.server.tls_context)
                    tls_done = True
                else:
                    self.writer.write(b"N")
                    await self.writer.drain()
                continue
            if code in (GSSENC_REQUEST, CANCEL_REQUEST):
                return False  # pgwire 0.28 drops the connection, no 'N' answer (3.6a)
            if code != PROTOCOL_3_0:
                await self.fatal("08P01", "unsupported frontend protocol %d.%d" % (code >> 16, code & 0xFFFF))
                return False
            params = {}
            pos = 4
            while pos < len(body) and body[pos] != 0:
                key, pos = _cstr(body, pos)
                value, pos = _cstr(body, pos)
                params[key] = value
            break
        return await self.authenticate(params)

    async def authenticate(self, params):
        keyspace, user = None, DEFAULT_ADMIN_USER
        if "user" in params:
            keyspace, user = split_username(params["user"])
            if keyspace is not None:
                LOG.info("Extracted keyspace '%s' from username '%s'", keyspace, params["user"])
            LOG.info("Actual user: %s", user)
        self.send(b"R", struct.pack("!i", 3))  # AuthenticationCleartextPassword
        await self.flush()
        typ, body = await self.read_message()
        if typ == b"X":
            return False
        if typ != b"p":
            await self.fatal("08P01", "expected password message")
            return False
        try:
            password = body.split(b"\0", 1)[0].decode("utf-8")
        except UnicodeDecodeError:
            await self.fatal("08P01", "invalid password message")
            return False
        result, detail = await self.server.check_login(keyspace, user, password)
        if result == "ok":
            self.executor = Executor(detail)
            self.send(b"R", struct.pack("!i", 0))
            for key, value in SERVER_PARAMETERS:
                self.send(b"S", key.encode() + b"\0" + value.encode() + b"\0")
            self.send(b"K", struct.pack("!ii", os.getpid() & 0x7FFFFFFF, secrets.randbits(31)))
            self.send(b"Z", b"I")
            await self.flush()
            LOG.info(
                "Authentication successful for user '%s' with keyspace %s", user, "Some(%s)" % _rust_debug_str(keyspace) if keyspace is not None else "None"
            )
            return True
        if result == "error":
            await self.fatal("XX000", detail)
        else:
            await self.fatal("28P01", 'Password authentication failed for user "%s"' % user)
        return False

    async def serve(self):
        while True:
            typ, body = await self.read_message()
            if typ == b"X":
                return
            if self.awaiting_sync and typ in (b"P", b"B", b"D", b"E", b"C", b"H"):
                continue  # after an extended-protocol error, skip to Sync
            if typ == b"Q":
                await self.simple_query(body)
            elif typ == b"P":
                self.on_parse(body)
            elif typ == b"B":
                self.on_bind(body)
            elif typ == b"D":
                self.on_describe(body)
            elif typ == b"E":
                await self.on_execute(body)
            elif typ == b"C":
                kind, name = body[:1], _cstr(body, 1)[0]
                (self.statements if kind == b"S" else self.portals).pop(name, None)
                self.send(b"3")
            elif typ == b"S":
                self.awaiting_sync = False
                self.send(b"Z", b"I")
                await self.flush()
            elif typ == b"H":
                await self.flush()
            elif typ in (b"d", b"c", b"f"):
                continue  # stray COPY messages outside COPY mode are ignored
            else:
                self.send_error("ERROR", "08P01", "unsupported frontend message %r" % typ.decode("latin-1"))
                self.send(b"Z", b"I")
                await self.flush()

    async def execute(self, sql):
        """Run a query; every statement's transaction needs a PD timestamp
        first, so with PD down it fails with ERROR XX000 even on a session
        that worked a second ago (1.4a). Skips and parse errors need none."""
        result, statements = self.executor.prepare(sql)
        if statements is None:
            return result
        problem = await self.server.pd.timestamp()
        if problem is not None:
            raise SqlError(tso_error(problem))
        return self.executor.run(statements)

    # -- simple query ---------------------------------------------------------
    def send_result(self, result, with_description=True):
        if result[0] == "empty":
            self.send(b"I")
        elif result[0] == "tag":
            self.send(b"C", result[1].encode() + b"\0")
        else:
            _ignored, columns, rows = result
            if with_description:
                oids = [column_oid(value) for value in rows[0]] if rows else None
                self.send(b"T", _row_description(columns, oids))
            for row in rows:
                self.send(b"D", _data_row(row))
            self.send(b"C", ("SELECT %d" % len(rows)).encode() + b"\0")

    async def simple_query(self, body):
        sql = body.split(b"\0", 1)[0].decode("utf-8", "replace")
        LOG.info("Received query: %s", sql)
        copy = parse_copy_command(sql)
        if copy is not None:
            await self.copy_in(*copy)
            return
        try:
            result = await self.execute(sql)
        except SqlError as exc:
            LOG.error("Query execution error: %s", exc.message)
            self.send_error("ERROR", exc.code, exc.message)
        else:
            if result[0] == "rows" and result[1] == ["warning"] and result[2] and str(result[2][0][0]).startswith("SKIPPED: "):
                LOG.warning("%s", result[2][0][0])
            self.send_result(result)
        self.send(b"Z", b"I")
        await self.flush()

    async def copy_in(self, table, columns):
        """The COPY hijack (3.5): COPY-IN mode; no table exists in the double."""
        LOG.info("COPY command detected: table=%s, columns=%s", table, columns)
        session = self.executor.session
        if columns:
            count = len(columns)
        else:  # schema probe: begin (no-op inside BEGIN), then rollback
            session.begin()
            session.rollback()
            count = 1
        self.send(b"G", struct.pack("!bh", 0, count) + struct.pack("!%dh" % count, *([0] * count)))
        await self.flush()
        while True:
            typ, body = await self.read_message()
            if typ == b"d":
                continue
            if typ == b"c":
                session.begin()  # left open: the error path never rolls it back
                self.send_error("ERROR", "42P01", 'relation "%s" does not exist' % table)
                break
            if typ == b"f":
                message = body.split(b"\0", 1)[0].decode("utf-8", "replace")
                LOG.warning("COPY failed: %s", message)
                self.send_error("ERROR", "XX000", "COPY IN mode terminated: %s" % message)
                break
            if typ in (b"H", b"S"):
                continue
            if typ == b"X":
                raise ConnectionError("terminated during COPY")
            self.send_error("ERROR", "08P01", "unexpected message type during COPY")
            break
        self.send(b"Z", b"I")
        await self.flush()

    # -- extended query -------------------------------------------------------
    def extended_error(self, code, message):
        self.send_error("ERROR", code, message)
        self.awaiting_sync = True

    def on_parse(self, body):
        name, pos = _cstr(body, 0)
        query, pos = _cstr(body, pos)
        count = struct.unpack("!h", body[pos : pos + 2])[0]
        oids = list(struct.unpack("!%dI" % count, body[pos + 2 : pos + 2 + 4 * count]))
        oids = [oid if oid in _KNOWN_OIDS else OID_UNKNOWN for oid in oids]
        self.statements[name] = (query, oids)
        self.send(b"1")

    def on_bind(self, body):
        portal, pos = _cstr(body, 0)
        stmt_name, pos = _cstr(body, pos)
        nfmt = struct.unpack("!h", body[pos : pos + 2])[0]
        pos += 2 + 2 * nfmt
        nparams = struct.unpack("!h", body[pos : pos + 2])[0]
        pos += 2
        params = []
        for _ignored in range(nparams):
            length = struct.unpack("!i", body[pos : pos + 4])[0]
            pos += 4
            if length < 0:
                params.append(None)
            else:
                params.append(body[pos : pos + length])
                pos += length
        stmt = self.statements.get(stmt_name)
        if stmt is None:
            self.extended_error("26000", "Statement not found: %s" % stmt_name)
            return
        self.portals[portal] = (stmt[0], stmt[1], params)
        self.send(b"2")

    def on_describe(self, body):
        kind, name = body[:1], _cstr(body, 1)[0]
        if kind == b"S":
            stmt = self.statements.get(name)
            if stmt is None:
                self.extended_error("26000", "Statement not found: %s" % name)
                return
            query, oids = stmt
            self.send(b"t", struct.pack("!h", len(oids)) + b"".join(struct.pack("!I", o) for o in oids))
        else:
            portal = self.portals.get(name)
            if portal is None:
                self.extended_error("34000", "Portal not found: %s" % name)
                return
            query = portal[0]
        fields = describe_fields(query)
        if fields:
            self.send(b"T", _row_description(fields))
        else:
            self.send(b"n")

    async def on_execute(self, body):
        name, _ignored = _cstr(body, 0)
        portal = self.portals.get(name)
        if portal is None:
            self.extended_error("34000", "Portal not found: %s" % name)
            return
        query, oids, params = portal
        final = substitute_parameters(query, params, oids)
        try:
            result = await self.execute(final)
        except SqlError as exc:
            LOG.error("Extended query execution error: %s", exc.message)
            self.extended_error(exc.code, exc.message)
            return
        self.send_result(result, with_description=False)


# ============================================================================
# Server and main
# ============================================================================


class Server:
    def __init__(self, args):
        self.args = args
        self.pd = PDClient(args.pd_endpoints)
        self.state = StateStore(args.state_file)
        self.pool = TenantPool(self.pd, self.state, args.missing_keyspace_delay)
        self.default_keyspace = args.default_keyspace
        self.fallback_password = args.fallback_password
        self.tls_context = build_tls_context(args.tls_cert, args.tls_key)

    async def check_login(self, keyspace, user, password):
        """``authenticate_user``: ('ok', store) | ('fail', None) | ('error', message)."""
        ks_name = keyspace if keyspace is not None else self.default_keyspace
        store, problem = await self.pool.get(ks_name)
        if store is None:
            if problem[0] == "missing":
                LOG.error("Tenant '%s' does not exist (user: %s)", ks_name, user)
            else:
                LOG.error("Failed to connect to TiKV for tenant '%s': %s", ks_name, problem[1])
            return "fail", None  # the fallback password is not consulted here
        # A cached tenant is no shortcut: the auth lookup begins a transaction,
        # which needs a timestamp from PD (1.4a).
        problem = await self.pd.timestamp()
        if problem is not None:
            LOG.error("Failed to begin transaction for tenant '%s': %s", ks_name, problem)
            return "error", tso_error(problem)
        store.bootstrap()  # committed before the credentials are checked
        record = store.users.get(user)
        if record is not None:
            if not record["can_login"]:
                return "error", "Authentication error: User '%s' is not permitted to log in" % user
            if verify_password(record, password):
                return "ok", store
        if self.fallback_password is not None and password == self.fallback_password:
            return "ok", store
        return "fail", None

    async def ensure_startup_keyspace(self):
        """main.rs: connect to the startup keyspace; create it in PD if missing."""
        name = self.default_keyspace
        LOG.info("Connecting to TiKV with keyspace '%s'...", name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.pd_wait
        created = False
        while True:
            status, detail = await self.pd.load_keyspace(name)
            if status == "ok":
                self.pool.clients[name] = self.state.open(name, detail["id"])
                LOG.info("TiKV connection verified")
                return
            if status == "missing" and not created:
                LOG.info("Keyspace '%s' does not exist, attempting to create...", name)
                await self.pd.create_keyspace(name)
                LOG.info("Keyspace '%s' created, retrying connection...", name)
                created = True
                await asyncio.sleep(1)
                continue
            if loop.time() >= deadline:
                raise OSError("Failed to connect to TiKV (keyspace '%s'): %s" % (name, detail))
            await asyncio.sleep(0.5)

    async def handle(self, reader, writer):
        await Connection(self, reader, writer).run()

    async def run(self):
        LOG.info("pg-tikv test double starting up...")
        LOG.info("PD endpoints: %s", self.args.pd_endpoints)
        LOG.info("PostgreSQL port: %s", self.args.port)
        LOG.info("Default keyspace: %s", self.default_keyspace)
        LOG.info("Password authentication: %s", "enabled" if self.fallback_password is not None else "disabled")
        await self.ensure_startup_keyspace()
        server = await asyncio.start_server(self.handle, self.args.host, self.args.port)
        LOG.info("PostgreSQL server listening on %s:%s", self.args.host, self.args.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()
        LOG.info("pg-tikv test double stopped")


def _no_key_password():
    raise ValueError("encrypted private keys are not supported")


def build_tls_context(cert, key):
    """PG_TLS_CERT/PG_TLS_KEY semantics (5.1): both or nothing, fail-open."""
    if not cert and not key:
        LOG.info("TLS: disabled (set PG_TLS_CERT and PG_TLS_KEY to enable)")
        return None
    if not cert or not key:
        LOG.warning("Both PG_TLS_CERT and PG_TLS_KEY must be set. Running without TLS.")
        return None
    try:
        with open(cert, "r", encoding="utf-8", errors="replace") as fh:
            cert_pem = fh.read()
        with open(key, "r", encoding="utf-8", errors="replace") as fh:
            key_pem = fh.read()
        if "-----BEGIN CERTIFICATE-----" not in cert_pem:
            raise ValueError("no certificate found in %s" % cert)
        # rustls-pemfile: PKCS#8, falling back to PKCS#1 RSA. No SEC1 EC keys.
        if "-----BEGIN PRIVATE KEY-----" not in key_pem and "-----BEGIN RSA PRIVATE KEY-----" not in key_pem:
            raise ValueError("no PKCS#8 or PKCS#1 RSA private key found in %s" % key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key, password=_no_key_password)
        ctx.set_alpn_protocols(["postgresql"])
    except (OSError, ValueError, ssl.SSLError) as exc:
        LOG.warning("Failed to setup TLS: %s. Running without TLS.", exc)
        return None
    LOG.info("TLS enabled with cert: %s, key: %s", cert, key)
    return ctx


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="pg-tikv test double (PostgreSQL wire protocol on loopback)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=25433)
    parser.add_argument("--pd-endpoints", required=True, help="PD_ENDPOINTS: comma-separated host:port")
    parser.add_argument("--state-file", required=True, help="user stores (a manifest; data in <file>.d/)")
    parser.add_argument("--fallback-password", default=None, help="PG_PASSWORD: the universal fallback password (off by default)")
    parser.add_argument("--default-keyspace", default="default", help="PG_KEYSPACE (default: default)")
    parser.add_argument("--tls-cert", default=None, help="PG_TLS_CERT")
    parser.add_argument("--tls-key", default=None, help="PG_TLS_KEY")
    parser.add_argument(
        "--missing-keyspace-delay",
        type=float,
        default=1.0,
        help="seconds a login to a missing tenant (or with PD down) takes, holding the server-wide client-creation lock (default 1.0)",
    )
    parser.add_argument("--pd-wait", type=float, default=20.0, help="seconds to wait for PD at startup before exiting (default 20)")
    return parser.parse_args(argv)


def main(argv=None):
    _setup_logging()
    args = parse_args(argv)
    try:
        asyncio.run(Server(args).run())
    except OSError as exc:
        LOG.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
