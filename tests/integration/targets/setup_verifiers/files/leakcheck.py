#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""leakcheck.py LOG SECRETS_FILE [MIN_SECRETS] [--expect TEXT ...]: fail if any secret is in LOG.

SECRETS_FILE holds every password the run used (declared, generated,
rotated): one per line, or, for a name ending in .json, a JSON list (for
passwords with a line break). Each is looked for raw, JSON-escaped (ASCII and
not), percent-encoded and as a SQL literal; forms shorter than 6 characters
are not looked for. Positive controls make sure the log is real -vvv output:
an EXEC or local-connection line, every --expect TEXT (a module name, an exact
EXEC line prefix...), and at least MIN_SECRETS (default 5) passwords.
Passwords are never printed: they are named by their number.
"""

import argparse
import json
import sys
from urllib.parse import quote


def forms(secret):
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""), secret.replace("'", "''")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("secrets_file")
    parser.add_argument("min_secrets", nargs="?", type=int, default=5)
    parser.add_argument("--expect", action="append", default=[], help="text the log must contain")
    args = parser.parse_args()
    try:
        with open(args.secrets_file, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        sys.exit("no secrets file %s: the run did not record the passwords it used" % args.secrets_file)
    listed = json.loads(text) if args.secrets_file.endswith(".json") else text.split("\n")
    secrets = sorted({s for s in listed if s})
    with open(args.log, encoding="utf-8", errors="replace") as fh:
        log = fh.read()
    if "<127.0.0.1> EXEC" not in log and "EXEC /bin/sh" not in log and "ESTABLISH LOCAL CONNECTION" not in log:
        sys.exit("the log is not -vvv output")
    for text in args.expect:
        if text not in log:
            sys.exit("the log does not show %r: it is not the -vvv output of this run" % text)
    if len(secrets) < args.min_secrets:
        sys.exit("expected at least %d recorded passwords, got %d" % (args.min_secrets, len(secrets)))
    leaks = set()
    for n, s in enumerate(secrets, 1):
        for form in sorted(forms(s)):
            if len(form) >= 6 and form in log:
                leaks.add("password #%d (%s)" % (n, "raw" if form == s else "encoded"))
    if leaks:
        sys.exit("LEAK: the -vvv log contains " + ", ".join(sorted(leaks)))
    print("no leak: %d passwords x 5 forms checked against %d bytes of -vvv output" % (len(secrets), len(log)))


if __name__ == "__main__":
    main()
