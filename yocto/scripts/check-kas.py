#!/usr/bin/env python3
"""Validate the kas files offline.

1. Every yocto/kas/*.yml against the JSON schema that the installed kas ships
   (kas/schema-kas.json), the same check `kas` itself makes before a build.
2. Rules kas cannot know about: every remote repository is pinned to a full, lowercase,
   40-hex commit together with a branch (reproducible builds that kas can still verify), every
   include resolves to a file, and every machine file ends up with a machine, the doorbell
   distro and at least one target after its includes are merged.

Usage: check-kas.py [FILE...]   (default: yocto/kas/*.yml). Needs PyYAML and jsonschema
(both come with `pip install kas jsonschema`). Exit 1 on any finding.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import kas
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KAS_DIR = REPO_ROOT / "yocto" / "kas"
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def load(path: Path) -> dict:
    with path.open() as f:
        return yaml.safe_load(f) or {}


def merged(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The file with its includes merged depth-first, later keys winning (as kas does)."""
    if path in seen:
        raise ValueError(f"include cycle through {path}")
    doc = load(path)
    result: dict = {}
    for inc in doc.get("header", {}).get("includes", []):
        if isinstance(inc, dict):  # from another repo: cannot be resolved offline
            continue
        result = merge(result, merged(REPO_ROOT / inc, seen + (path,)))
    return merge(result, doc)


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv] or sorted(KAS_DIR.glob("*.yml"))
    schema_path = Path(kas.__file__).parent / "schema-kas.json"
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems: list[str] = []

    for path in files:
        name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        try:
            doc = load(path)
        except (OSError, yaml.YAMLError) as e:
            problems.append(f"{name}: cannot read: {e}")
            continue
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in err.path) or "(top)"
            problems.append(f"{name}: schema: {where}: {err.message}")

        for inc in doc.get("header", {}).get("includes", []):
            if isinstance(inc, str) and not (REPO_ROOT / inc).is_file():
                problems.append(f"{name}: include {inc} does not exist (paths are relative to the repository root)")

        for repo_id, repo in (doc.get("repos") or {}).items():
            if not repo or not repo.get("url"):
                continue  # this repository, or a local path
            commit = repo.get("commit")
            if not commit or not COMMIT.match(str(commit)):
                problems.append(f"{name}: repos/{repo_id}: commit must be a full lowercase 40-hex id, got {commit!r}")
            if not repo.get("branch"):
                problems.append(f"{name}: repos/{repo_id}: name the branch the commit is on, so kas can check it")
            if "refspec" in repo:
                problems.append(f"{name}: repos/{repo_id}: refspec is deprecated, use branch + commit")

        if path.name != "common.yml":
            try:
                full = merged(path)
            except (OSError, ValueError, yaml.YAMLError) as e:
                problems.append(f"{name}: includes: {e}")
                continue
            if not full.get("machine"):
                problems.append(f"{name}: no machine after includes")
            if full.get("distro") != "doorbell":
                problems.append(f"{name}: distro is {full.get('distro')!r}, expected 'doorbell'")
            if not full.get("target"):
                problems.append(f"{name}: no target after includes")

    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(files)} kas files valid against {schema_path.parent.name}/{schema_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
