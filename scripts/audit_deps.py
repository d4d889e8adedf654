"""Audit the locked dependencies (requirements.lock) for known vulnerabilities; CI runs it.

``python scripts/audit_deps.py`` runs pip-audit on the lock against PyPI's vulnerability data
(``--vulnerability-service pypi``: OSV is not reachable from CI), with every exception of
``requirements.audit-ignore`` passed as ``--ignore-vuln``. A package pip-audit could not look
up (PyPI's per-version JSON, ``/pypi/<name>/<version>/json``, is not served here) is checked
against PyPI's project JSON instead, whose ``vulnerabilities`` are those of the latest
release: exact when the pin is the latest release, else the package is reported *unaudited*.

Exit 1 on any finding that is not excepted (the list is printed), or on an exception without
a reason; unaudited packages are a warning, or a failure with ``AUDIT_STRICT=1``. See
docs/security.md, "Dependency audit".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
IGNORE = REPO / "requirements.audit-ignore"
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    """The lock's pins, by canonical name."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def exceptions(path: Path | None = None) -> dict[str, str]:
    """``ID reason…`` per line (``#`` comments); every exception must give its reason."""
    path = path or IGNORE
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        vuln_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path.name}:{number}: {vuln_id} needs a reason after its id")
        found[vuln_id] = reason.strip()
    return found


def pip_audit(ignored: dict[str, str]) -> list[dict[str, Any]]:
    """pip-audit's JSON report of the lock: one entry per package."""
    args = [sys.executable, "-m", "pip_audit", "-r", str(LOCK), "--no-deps", "--disable-pip"]
    args += ["--vulnerability-service", "pypi", "--format", "json", "--progress-spinner", "off"]
    for vuln_id in ignored:
        args += ["--ignore-vuln", vuln_id]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    try:  # exit 1 with a report: vulnerabilities found
        return json.loads(done.stdout)["dependencies"]
    except (ValueError, KeyError):
        raise SystemExit(f"pip-audit failed ({done.returncode}):\n{done.stderr}") from None


def latest_release_vulns(name: str, version: str) -> list[dict[str, Any]] | None:
    """The vulnerabilities of ``name==version`` if it is the latest release, else None."""
    try:
        with urllib.request.urlopen(PROJECT_JSON.format(name=name), timeout=20) as answer:
            data = json.load(answer)
    except OSError:
        return None
    if data["info"]["version"] != version:
        return None
    return [
        {"id": v["id"], "fix_versions": v.get("fixed_in") or [], "aliases": v.get("aliases", [])}
        for v in data.get("vulnerabilities") or []
        if not v.get("withdrawn")
    ]


def audit() -> tuple[list[tuple[str, str, dict[str, Any]]], list[str], int]:
    """Findings (package, version, vulnerability), unaudited packages, packages checked."""
    ignored = exceptions()
    report = pip_audit(ignored)
    findings = [(d["name"], d["version"], v) for d in report if "vulns" in d for v in d["vulns"]]
    pins = locked()
    skipped = [(d["name"], pins[canonical(d["name"])]) for d in report if "skip_reason" in d]
    with ThreadPoolExecutor(8) as pool:
        fallback = list(pool.map(lambda s: latest_release_vulns(*s), skipped))
    unaudited = []
    for (name, version), vulns in zip(skipped, fallback, strict=True):
        if vulns is None:
            unaudited.append(f"{name}=={version}")
            continue
        for vuln in vulns:
            if vuln["id"] not in ignored and not set(vuln["aliases"]) & set(ignored):
                findings.append((name, version, vuln))
    return findings, unaudited, len(report)


def main() -> int:
    findings, unaudited, checked = audit()
    audited = checked - len(unaudited)
    print(f"dependency audit: {audited} of {checked} locked packages checked, ", end="")
    print(f"{len(findings)} known vulnerabilities")
    for name, version, vuln in findings:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
        aliases = ", ".join(vuln.get("aliases") or [])
        print(f"  {name}=={version}: {vuln['id']} ({aliases}) fixed in {fixes}")
    if unaudited:
        print(
            f"dependency audit: {len(unaudited)} unaudited (no per-version vulnerability data, "
            f"pinned below the latest release): {' '.join(unaudited)}"
        )
    if findings:
        print("dependency audit FAILED: upgrade the pins or record an exception (docs/security.md)")
        return 1
    if unaudited and os.environ.get("AUDIT_STRICT") == "1":
        print("dependency audit FAILED: AUDIT_STRICT=1 and some packages were not audited")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
