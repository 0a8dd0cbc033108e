#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""leakcheck.py LOG SECRETS_FILE [MIN_SECRETS]: fail if any secret is in LOG.

SECRETS_FILE has one password per line (every password the run used: declared,
generated, rotated). Each is looked for raw, JSON-escaped, percent-encoded and
as a SQL literal. Positive controls make sure the log is real -vvv output.
"""

import json
import sys
from urllib.parse import quote


def main():
    log_path, secrets_path = sys.argv[1], sys.argv[2]
    minimum = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    try:
        secrets = sorted({s for s in open(secrets_path, encoding="utf-8").read().split("\n") if s})
    except FileNotFoundError:
        sys.exit("no secrets file %s: the run did not record the passwords it used" % secrets_path)
    log = open(log_path, encoding="utf-8", errors="replace").read()
    if "pg_tikv_tenants" not in log:
        sys.exit("the log does not show the bulk module running")
    if "<127.0.0.1> EXEC" not in log and "EXEC /bin/sh" not in log and "ESTABLISH LOCAL CONNECTION" not in log:
        sys.exit("the log is not -vvv output")
    if len(secrets) < minimum:
        sys.exit("expected at least %d recorded passwords, got %d" % (minimum, len(secrets)))
    leaks = set()
    for n, s in enumerate(secrets, 1):
        for form in sorted({s, json.dumps(s)[1:-1], quote(s, safe=""), s.replace("'", "''")}):
            if len(form) >= 6 and form in log:
                leaks.add("password #%d (%s)" % (n, "raw" if form == s else "encoded"))
    if leaks:
        sys.exit("LEAK: the -vvv log contains " + ", ".join(sorted(leaks)))
    print("no leak: %d passwords x 4 forms checked against %d bytes of -vvv output" % (len(secrets), len(log)))


if __name__ == "__main__":
    main()
