"""The example charts, with cdk8s's own Testing helpers (no sshd, kubectl or network needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cdk8s

from charts.api import CREDENTIALS_SECRET, ApiChart
from charts.base import BaseChart
from charts.main import build
from charts.settings import PRODUCTION, Settings, from_environment
from charts.web import WebChart
from charts.worker import WorkerChart


def new_app(tmp_path: Path) -> cdk8s.App:
    """A test app writing into the test's own directory (``Testing.app()`` alone leaves a
    ``/tmp/cdk8s.outdir.*`` directory behind on every call)."""
    return cdk8s.Testing.app(outdir=str(tmp_path / "cdk8s.out"))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_every_object_carries_the_shared_labels(tmp_path: Path) -> None:
    app = build(new_app(tmp_path))
    for chart in app.charts:
        for obj in cdk8s.Testing.synth(chart):
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "shop"
            assert labels["app.kubernetes.io/managed-by"] == "gitopskit"
            assert labels["app.kubernetes.io/version"] == PRODUCTION.version


def test_web_has_deployment_service_ingress_config_and_autoscaler(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    objects = cdk8s.Testing.synth(WebChart(app, "web", PRODUCTION, api_url="http://api"))
    assert sorted(o["kind"] for o in objects) == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Service",
    ]
    (config,) = by_kind(objects, "ConfigMap")
    assert config["data"]["API_URL"] == "http://api"
    (deployment,) = by_kind(objects, "Deployment")
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the replica count
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/shop/web:1.4.2"
    assert container["envFrom"] == [{"configMapRef": {"name": "web-config"}}]
    (ingress,) = by_kind(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "shop.example.com"
    (hpa,) = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "web"


def test_api_reads_its_secret_by_reference_only(tmp_path: Path) -> None:
    objects = cdk8s.Testing.synth(ApiChart(new_app(tmp_path), "api", PRODUCTION))
    assert not by_kind(objects, "Secret")  # the Secret is made in the cluster, never in git
    (deployment,) = by_kind(objects, "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert refs["DATABASE_URL"] == {"name": CREDENTIALS_SECRET, "key": "database-url"}


def test_worker_is_a_nightly_cronjob_that_never_overlaps(tmp_path: Path) -> None:
    (cronjob,) = cdk8s.Testing.synth(WorkerChart(new_app(tmp_path), "worker", PRODUCTION))
    assert cronjob["kind"] == "CronJob"
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_settings_change_every_chart_at_once(tmp_path: Path) -> None:
    staging = Settings(namespace="shop-staging", environment="staging", version="2.0.0")
    app = build(new_app(tmp_path), staging)
    objects = [o for chart in app.charts for o in cdk8s.Testing.synth(chart)]
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"shop-staging"}
    assert {o["metadata"]["labels"]["environment"] for o in objects} == {"staging"}
    (namespace,) = cdk8s.Testing.synth(BaseChart(new_app(tmp_path), "base", staging))
    assert namespace["metadata"]["name"] == "shop-staging"


def test_each_environment_renders_from_what_gitopskit_hands_the_app(tmp_path: Path) -> None:
    """invoke.yaml declares dev (1 replica, no autoscaler) and prod (3 replicas, autoscaler);
    synth hands each to the app as GITOPSKIT_ENV and GITOPSKIT_ENV_VALUES."""
    dev = from_environment(
        {"GITOPSKIT_ENV": "dev", "GITOPSKIT_ENV_VALUES": '{"replicas": 1, "autoscale": false}'}
    )
    objects = cdk8s.Testing.synth(WebChart(new_app(tmp_path), "web", dev, api_url="http://a"))
    assert by_kind(objects, "HorizontalPodAutoscaler") == []
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["labels"]["environment"] == "dev"
    prod = from_environment({"GITOPSKIT_ENV": "prod", "GITOPSKIT_ENV_VALUES": '{"replicas": 3}'})
    api = cdk8s.Testing.synth(ApiChart(new_app(tmp_path), "api", prod))
    assert by_kind(api, "Deployment")[0]["spec"]["replicas"] == 3
    assert from_environment({}) == PRODUCTION  # no environments declared: as always
