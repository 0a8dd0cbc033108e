# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark only: counts the HTTP requests a module process sends to PD.

tests/benchmark/rsspython puts this directory on PYTHONPATH of the module
processes, so Python imports it at start-up. It wraps requests' transport
(no collection code is touched) and, at exit, writes {"METHOD path": n} to
$PGTIKV_BENCH_PD_COUNTS/<pid>.json when the process sent any.
"""

import atexit
import json
import os
import threading
from urllib.parse import urlsplit

_DIR = os.environ.get("PGTIKV_BENCH_PD_COUNTS")
_COUNTS = {}
_LOCK = threading.Lock()


def _install():
    try:
        import requests.adapters
    except ImportError:
        return
    send = requests.adapters.HTTPAdapter.send

    def counting_send(self, request, *args, **kwargs):
        path = urlsplit(request.url).path
        key = "%s %s" % (request.method, "/pd/api/v2/keyspaces/<name>" if path.startswith("/pd/api/v2/keyspaces/") else path)
        with _LOCK:
            _COUNTS[key] = _COUNTS.get(key, 0) + 1
        return send(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counting_send

    def write():
        if _COUNTS:
            with open(os.path.join(_DIR, "%d.json" % os.getpid()), "w") as fh:
                json.dump(_COUNTS, fh)

    atexit.register(write)


if _DIR:
    _install()
