"""Run pip-audit on the pinned runtime requirements and say plainly what was and was not checked.

pip-audit reports "No known vulnerabilities found" even when it could audit nothing (every package
skipped because its vulnerability service was unreachable). This wrapper counts: it fails on any
finding not explained in ``scripts/pip-audit-ignore.txt``, and reports an audit that could not run or
covered only part of the pins as UNVERIFIED, which fails too when ``SECURITY_AUDIT_STRICT=1``.

Exit codes: 0 audited and clean (or unverified, not strict); 1 findings, or unverified and strict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements.txt"
IGNORE_FILE = REPO_ROOT / "scripts" / "pip-audit-ignore.txt"


def explained_ignores() -> dict[str, str]:
    """Vulnerability id -> the written reason it does not apply (``ID  reason`` per line)."""
    ignores = {}
    for line in IGNORE_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            vuln_id, _, reason = line.partition(" ")
            if not reason.strip():
                sys.exit(f"{IGNORE_FILE}: {vuln_id} has no reason; every ignore must be explained")
            ignores[vuln_id] = reason.strip()
    return ignores


def run_audit(service: str) -> tuple[dict[str, object] | None, str]:
    command = [
        sys.executable, "-m", "pip_audit", "-r", str(REQUIREMENTS), "--no-deps", "--disable-pip",
        "--vulnerability-service", service, "--format", "json", "--progress-spinner", "off",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    try:
        return json.loads(result.stdout), result.stderr
    except json.JSONDecodeError:
        return None, (result.stderr or result.stdout)[-2000:]


def main() -> int:
    strict = os.environ.get("SECURITY_AUDIT_STRICT") == "1"
    service = os.environ.get("PIP_AUDIT_SERVICE", "pypi")
    ignores = explained_ignores()
    report, errors = run_audit(service)
    if report is None:
        print(f"pip-audit: UNVERIFIED - the audit did not run against {service}:\n{errors}")
        return 1 if strict else 0
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    skipped = [d for d in dependencies if "skip_reason" in d]
    findings = [
        (d["name"], d["version"], v["id"], v.get("fix_versions", []))
        for d in audited
        for v in d.get("vulns", [])
        if v["id"] not in ignores and not set(v.get("aliases", [])) & set(ignores)
    ]
    for name, version, vuln_id, fixes in findings:
        print(f"pip-audit: {name}=={version} {vuln_id} (fixed in {', '.join(fixes) or 'no release yet'})")
    print(
        f"pip-audit ({service}): {len(audited)} of {len(dependencies)} pinned packages audited, "
        f"{len(skipped)} skipped, {len(findings)} unexplained finding(s), {len(ignores)} explained ignore(s)"
    )
    if findings:
        return 1
    if skipped:
        reasons = sorted({str(d["skip_reason"]).split(":")[0] for d in skipped})
        print(
            f"pip-audit: UNVERIFIED - {len(skipped)} package(s) could not be audited ({'; '.join(reasons)}). "
            "The vulnerability database is not reachable from here; run with network access to PyPI's JSON "
            "API or OSV (PIP_AUDIT_SERVICE=osv), or set SECURITY_AUDIT_STRICT=1 to make this fatal."
        )
        return 1 if strict else 0
    print("pip-audit: OK - every pinned runtime package audited, no known vulnerabilities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
