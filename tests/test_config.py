"""Settings: flag beats environment beats invoke.yaml beats fallbacks beats default."""

from __future__ import annotations

import pytest

from gitopskit.config import Settings
from gitopskit.errors import ConfigError
from gitopskit.redact import redact


def test_precedence_flag_env_project_default() -> None:
    project = {"outdir": "from-yaml"}
    env = {"GITOPSKIT_OUTDIR": "from-env"}
    assert Settings(project, env).get("OUTDIR", "from-flag") == "from-flag"
    assert Settings(project, env).get("OUTDIR") == "from-env"
    assert Settings(project, {}).get("OUTDIR") == "from-yaml"
    assert Settings({}, {}).get("OUTDIR") == "dist"


@pytest.mark.parametrize(
    ("name", "variable"),
    [("OUTDIR", "OUTDIR"), ("APP", "APP"), ("KUBERNETES_VERSION", "KUBERNETES_VERSION"),
     ("KUBE_CONTEXT", "KUBE_CONTEXT"), ("FLUX_VERSION", "FLUX_VERSION")],
)  # fmt: skip
def test_generic_environment_names_of_other_tools_are_not_read(name: str, variable: str) -> None:
    """OUTDIR=. from another tool once made synth replace the checkout: only GITOPSKIT_* counts."""
    settings = Settings({}, {variable: "set-by-another-tool"})
    assert settings.get(name) != "set-by-another-tool"
    assert Settings({}, {f"GITOPSKIT_{variable}": "ours"}).get(name) == "ours"


def test_ci_facing_names_keep_no_prefix() -> None:
    environ = {"MANIFESTS_PROJECT": "g/p", "GITLAB_URL": "https://gl", "MANIFESTS_TOKEN": "t0ken-x"}
    settings = Settings({}, environ)
    assert settings.get("MANIFESTS_PROJECT") == "g/p"
    assert settings.get("GITLAB_URL") == "https://gl"
    assert settings.token("MANIFESTS_TOKEN") == "t0ken-x"


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_a_network_timeout_must_be_positive_seconds(value: str) -> None:
    with pytest.raises(ConfigError, match="GITOPSKIT_NETWORK_TIMEOUT must be a positive number"):
        Settings({}, {"GITOPSKIT_NETWORK_TIMEOUT": value}).seconds("NETWORK_TIMEOUT")
    assert Settings({}, {}).seconds("NETWORK_TIMEOUT") == 60


def test_gitlab_url_falls_back_to_ci_server_url_after_invoke_yaml() -> None:
    ci = {"CI_SERVER_URL": "https://ci.example.com"}
    assert Settings({}, ci).get("GITLAB_URL") == "https://ci.example.com"
    assert Settings({"gitlab_url": "https://mine"}, ci).get("GITLAB_URL") == "https://mine"
    assert Settings({}, {**ci, "GITLAB_URL": "https://env"}).get("GITLAB_URL") == "https://env"


def test_tokens_come_from_the_environment_only_and_are_redacted() -> None:
    settings = Settings({}, {"LAB_CORE_TOKEN": "glpat-fallback-value-123"})
    assert settings.token("MANIFESTS_TOKEN") == "glpat-fallback-value-123"
    assert redact("token glpat-fallback-value-123 here") == "token *** here"


def test_a_token_in_invoke_yaml_is_refused() -> None:
    with pytest.raises(ConfigError, match="tokens are read from the environment only"):
        Settings({"manifests_token": "glpat-oops"}, {})
    with pytest.raises(ConfigError, match="environment only"):
        Settings({"some_other_token": "x"}, {})


def test_unknown_keys_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting gitopskit\.outdirr") as caught:
        Settings({"outdirr": "x"}, {})
    assert "outdir" in str(caught.value)


def test_require_names_every_way_to_set_it() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings({}, {}).require("MANIFESTS_PROJECT")
    text = str(caught.value)
    assert "--manifests-project" in text
    assert "MANIFESTS_PROJECT" in text
    assert "gitopskit.manifests_project" in text
