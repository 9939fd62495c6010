"""gitopskit.helm: argv and values files, against the recording helm."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopskit import helm as helm_module
from gitopskit._run import Result
from gitopskit.errors import HelmError, ToolNotFoundError
from gitopskit.helm import Chart, Helm
from tests.fakes.helm import install_fake_helm, read_helm_log

CHART = Chart("fluxcd", "https://charts.fluxcd.io", "flux", "1.13.3")
HOSTS = "[h]:2222 ssh-ed25519 AAAA,with,commas\n"


@pytest.fixture
def helm_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    log = tmp_path / "helm.log"
    install_fake_helm(tmp_path / "bin", log)
    return {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}, log


def test_repo_add_and_upgrade_install(
    helm_env: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = helm_env
    base = tmp_path / "base.yaml"
    base.write_text("git:\n  pollInterval: 5m\n")
    helm = Helm("ctx", env)
    helm.repo_add(CHART)
    helm.upgrade_install("flux", CHART, "flux", base, {"ssh": {"known_hosts": HOSTS}})
    add, upgrade = read_helm_log(log)
    assert add["argv"] == ["repo", "add", "--force-update", "fluxcd", "https://charts.fluxcd.io"]
    argv = upgrade["argv"]
    assert argv[:4] == ["upgrade", "--install", "flux", "fluxcd/flux"]
    assert argv[argv.index("--version") + 1] == "1.13.3"
    assert argv[argv.index("--namespace") + 1] == "flux"
    assert argv[argv.index("--kube-context") + 1] == "ctx"
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "-f"]
    assert files[0] == str(base)
    assert yaml.safe_load(upgrade["values"][files[1]]) == {"ssh": {"known_hosts": HOSTS}}
    assert not Path(files[1]).exists(), "the generated values file is removed"
    assert not any("AAAA" in a for a in argv) and "--set" not in argv


def test_values_file_is_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[int] = []

    def fake_run(args: list[str], **kwargs: Any) -> Result:
        generated = Path(args[-1])
        seen.append(stat.S_IMODE(generated.stat().st_mode))
        seen.append(stat.S_IMODE(generated.parent.stat().st_mode))
        return Result(0, "", "")

    monkeypatch.setattr(helm_module, "run", fake_run)
    Helm().upgrade_install("flux", CHART, "flux", tmp_path / "base.yaml", {"a": 1})
    assert seen == [0o600, 0o700]


def test_failure_and_missing_helm(helm_env: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, _ = helm_env
    with pytest.raises(HelmError, match="upgrade"):
        Helm(env={**env, "FAKE_HELM_FAIL": "upgrade"}).upgrade_install(
            "flux", CHART, "flux", tmp_path / "b.yaml", {}
        )
    with pytest.raises(ToolNotFoundError, match="helm"):
        Helm(env={"PATH": str(tmp_path)}).repo_add(CHART)
