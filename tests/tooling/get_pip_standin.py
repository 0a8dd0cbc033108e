"""Offline stand-in for ansible-test's cached get-pip bootstrap script.

ansible-test builds its venvs with ``--without-pip`` and then runs a cached
``get_pip_<ver>.py`` with pip's arguments; on a machine that reaches only PyPI
the real script cannot be downloaded (reference/ansible-collection-practices.md
§4.2). This stand-in bootstraps pip from the interpreter's own ensurepip and
then installs the requested packages from PyPI.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip.py understands these; pip install does not.
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
