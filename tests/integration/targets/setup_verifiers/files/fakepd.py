#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A loopback HTTP server that answers every request the same way, none of it
like PD's keyspace API: put it first in pd_endpoints, before the real PD, to
prove that the modules fail over past an endpoint that answers wrongly (and
that they fail clearly when no endpoint answers like PD).

  fakepd.py MODE STATE_FILE [LIFETIME_SECONDS]

MODE: 500 (an HTML error page), 404 (Go's "404 page not found"), garbage (200
with HTML), empty (200 {}), config (200, a keyspace whose config is a string),
pd404 (404 carrying PD's own "keyspace does not exist" body: a legitimate
answer, never failed over). Binds 127.0.0.1 on a free port and writes
"PORT PID" to STATE_FILE once it listens; counts requests in STATE_FILE.count.
Exits by itself after LIFETIME_SECONDS (default 900) so it never outlives a run.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = {
    "500": (500, "text/html", "<html><body><h1>500 Internal Server Error</h1></body></html>"),
    "404": (404, "text/plain; charset=utf-8", "404 page not found"),
    "garbage": (200, "text/html", "<html><body>this is not PD</body></html>"),
    "empty": (200, "application/json", "{}"),
    "config": (200, "application/json", json.dumps({"id": 1, "name": "x", "state": "ENABLED", "config": "k=v"})),
    "pd404": (404, "application/json", json.dumps("[PD:keyspace:ErrKeyspaceNotFound]keyspace does not exist")),
}


def main():
    mode, state_file = sys.argv[1], sys.argv[2]
    lifetime = float(sys.argv[3]) if len(sys.argv) > 3 else 900.0
    status, ctype, body = MODES[mode]
    payload = body.encode("utf-8")
    lock = threading.Lock()
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with lock:
                counter["n"] += 1
                with open(state_file + ".count", "w", encoding="utf-8") as out:
                    out.write("%d\n" % counter["n"])
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = answer

        def log_message(self, fmt, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Timer(lifetime, server.shutdown).start()
    tmp = state_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write("%d %d\n" % (server.server_address[1], os.getpid()))
    os.rename(tmp, state_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
