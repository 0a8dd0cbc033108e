#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate the quoting/injection cases: nasty user names and passwords, unique per run.

Usage: gen_cases.py OUT.json  (reads ../../integration_config.yml for nothing; pure)
"""

import json
import secrets
import string
import sys

# Name fragments: quotes, backslashes, $, %, spaces, unicode, SQL keywords,
# comment markers, injection attempts aimed at the sentinel role, separators.
NAMES = [
    "o'brien",
    'dq"name',
    "back\\slash",
    "dollar$1",
    "$$dq$$",
    "pct%s%(x)s%%",
    "with space",
    "\u00dc\u00f1\u00ed\u00e7\u00f8d\u00e9",
    "\u65e5\u672c\u8a9e\u30e6\u30fc\u30b6\u30fc",
    "emoji\U0001f600",
    "SELECT",
    "drop table x",
    "--comment",
    "/*c*/",
    "x'; DROP ROLE sentinel; --",
    'x"; DROP ROLE sentinel; --',
    "Mixed.Case.dots",
    "colon:user",
    "tab\tname",
    "semi;colon",
    "E'esc'",
    "null",
    "user",
    "role",
    "\\\\two back",
    "''''",
    "admin ",
    "\ufb01ligature",
    "rtl\u0627\u0644\u0639",
    "new\nline",
    "$1",
    "' OR '1'='1",
]

PASSWORDS = [
    "pa'ss",
    '"dq"',
    "back\\slash\\",
    "$$x$$",
    "$1 $2",
    "%s %(pw)s %%",
    "  spaces  ",
    "p\u00e4ssw\u00f6rd",
    "e\u0301",
    "\U0001f511key",
    "'; DROP ROLE sentinel; --",
    "' SUPERUSER --",
    "/* c */ -- c",
    "E'\\x41'",
    "\\'",
    "' || '",
    "SELECT 1",
    "x' ; ALTER ROLE sentinel PASSWORD 'pwned",
    "\\0",
    "new\nline",
    "tab\there",
    "?:name",
    "\u00a0nbsp",
    "\u0627\u0644\u0639",
    "''",
    "\\\\",
    "$tag$ $tag$",
    "N'x'",
    "-- only",
    "#hash",
    "\u00ad soft",
    "\ufb01",
]


def token(n=6):
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for dummy in range(n))


def main(out):
    run = token()
    cases = []
    for i, frag in enumerate(NAMES):
        name = "%s_%s%02d" % (frag, run, i)
        assert len(name.encode()) <= 63, name
        password = "%s|%s" % (PASSWORDS[i % len(PASSWORDS)], token(8))
        cases.append({"name": name, "password": password})
    # A name that is itself a single-quoted string: pg-tikv reads CREATE ROLE
    # 'x' as role x (reference pg-tikv-server.md §3.6), so a name sent as a
    # string literal instead of a double-quoted identifier would lose its quotes.
    cases.append({"name": "'sq_%s'" % run, "password": "sq'pw|" + token(8)})
    data = {
        "run": run,
        "tenant": "uq_" + run,
        "admin_password": "adm'\\$%" + token(12),
        "sentinel": {"name": "sentinel", "password": "sentinel-" + token(12)},
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(data, f)


if __name__ == "__main__":
    main(sys.argv[1])
