#!/usr/bin/env python3
"""Refuses development signing material in a release image or bundle (image/build.sh --release,
image/bundle.sh --release): the same guard as the Yocto layer (meta-doorbell/lib/doorbell/signing.py),
called with a stand-in datastore.

    check-release-keys.py FILE [DEV_KEYS_DIR]     exits 1 if FILE is development material
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "yocto", "meta-doorbell", "lib"))
from doorbell import signing  # noqa: E402


class Datastore:
    def __init__(self, values):
        self.values = values

    def getVar(self, name):  # noqa: N802 (bitbake's name)
        return self.values.get(name)


class Fatal(Exception):
    pass


class BB:
    @staticmethod
    def fatal(message):
        raise Fatal(message)


def main():
    path = sys.argv[1]
    dev_dir = sys.argv[2] if len(sys.argv) > 2 else ""
    d = Datastore({"DOORBELL_RELEASE": "1", "DOORBELL_DEV_KEYS_DIR": dev_dir, "FILE": path})
    try:
        signing.check_release_keys(d, BB, ["FILE"])
    except Fatal:
        print(f"refusing development signing material in a release: {path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
