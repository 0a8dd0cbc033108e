# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted transport for PDClient (no network), shared by the unit tests."""

from __future__ import annotations

import json

from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import PDClient


class FakeResponse:
    def __init__(self, status, text):
        self.status_code = status
        self.text = text

    def json(self):
        return json.loads(self.text)


class FakeSession:
    """Answers per endpoint prefix from a script: a list of responses or exceptions."""

    def __init__(self, script):
        self.script = script
        self.calls = []
        self.params = []
        self.verify = True
        self.cert = None
        self.headers = {}

    def request(self, method, url, json=None, params=None, timeout=None, verify=None, cert=None):
        self.calls.append((method, url))
        self.params.append(params)
        self.last_tls = (verify, cert)
        for prefix, answers in self.script.items():
            if url.startswith(prefix):
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise AssertionError("unexpected url " + url)

    def close(self):
        pass


def make_client(script, endpoints=("http://a:1", "http://b:2"), retries=2):
    c = PDClient(list(endpoints), retries=retries, sleep=lambda s: None)
    c.session = FakeSession(script)
    return c
