"""cfn-lint and checkov on every rendered variant of the rotation template.

`deployer render` with --code-bucket and --code-key makes no AWS call, and
the AWS endpoint points at a closed port on 127.0.0.1 in case it tried.
checkov runs with --skip-download in a network namespace of its own
(`unshare -n`), so it cannot reach the internet.
"""

import json
import shutil
import subprocess

import pytest

from deployer_cli import EXIT_OK, REPO_ROOT, build_deployer, deployer_env, run_deployer
from template_variants import CLUSTER_ENDPOINT, all_variants, variant_flags

CFN_LINT = REPO_ROOT / ".venv" / "bin" / "cfn-lint"
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
VARIANTS = list(all_variants())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Render every variant into one folder and return the folder."""
    build_deployer()
    folder = tmp_path_factory.mktemp("variants")
    env = deployer_env("http://127.0.0.1:9")
    base = ["--stack-name", "dsql-tokens", "--region", "us-east-1", "--cluster-endpoint", CLUSTER_ENDPOINT]

    for name, admin, network, key, roles in VARIANTS:
        flags = variant_flags(admin, network, key, roles)
        result = run_deployer(
            ["render", "--code-bucket", "artifacts-bucket", "--code-key", "rotator/0123abcd.zip", *base, *flags],
            env=env,
            cwd=folder,
        )
        assert result.returncode == EXIT_OK, f"{name}: {result.stderr}"
        (folder / f"{name}.yaml").write_text(result.stdout)
    return folder


def test_every_variant_is_rendered(rendered):
    names = sorted(path.stem for path in rendered.glob("*.yaml"))

    assert len(names) == 2 * 3 * 3 * 3
    assert names == sorted(name for name, *_ in VARIANTS)


def test_cfn_lint_passes_every_variant(rendered):
    files = sorted(str(path) for path in rendered.glob("*.yaml"))

    result = subprocess.run([str(CFN_LINT), *files], capture_output=True, text=True)

    assert result.stdout == ""
    assert result.stderr == ""
    assert result.returncode == 0


@pytest.fixture(scope="module")
def checkov_reports(rendered):
    """Run checkov once over the folder and return its outcome per file name."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing; run scripts/bootstrap"
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to run checkov without network"

    result = subprocess.run(
        [unshare, "-n", str(CHECKOV), "--skip-download", "--framework", "cloudformation",
         "--directory", str(rendered), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]

    by_file = {}
    for section in reports:
        results = section["results"]
        for check in results["passed_checks"] + results["failed_checks"] + results["skipped_checks"]:
            outcome = by_file.setdefault(check["file_path"].lstrip("/"), {"failed": [], "skipped": [], "passed": 0})
            if check in results["failed_checks"]:
                outcome["failed"].append(f"{check['check_id']} {check['resource']}")
            elif check in results["skipped_checks"]:
                outcome["skipped"].append(check)
            else:
                outcome["passed"] += 1
    return by_file


def test_checkov_scans_every_variant(checkov_reports):
    names = sorted(path.removesuffix(".yaml") for path in checkov_reports)

    assert names == sorted(name for name, *_ in VARIANTS)


@pytest.mark.parametrize("name", [name for name, *_ in VARIANTS])
def test_checkov_finds_nothing(checkov_reports, name):
    outcome = checkov_reports[f"{name}.yaml"]

    assert outcome["failed"] == []
    assert outcome["passed"] > 0


@pytest.mark.parametrize("name", [name for name, *_ in VARIANTS])
def test_checkov_skips_carry_reasons(checkov_reports, name):
    skipped = checkov_reports[f"{name}.yaml"]["skipped"]

    assert skipped, "every variant skips at least the dead-letter queue check"
    for check in skipped:
        comment = check.get("check_result", {}).get("suppress_comment", "")
        assert len(comment) > 40, f"{check['check_id']} on {check['resource']} has no real reason: {comment!r}"
