"""The web front end: Deployment, Service, Ingress, ConfigMap and HorizontalPodAutoscaler."""

from __future__ import annotations

import cdk8s_plus_34 as kplus
from cdk8s import ApiObjectMetadata, Chart, Duration
from constructs import Construct

from charts.settings import Settings, resources

COMPONENT = "web"
PORT = 8080


class WebChart(Chart):
    """Serves the shop's pages at ``https://<domain>/`` and calls the API inside the cluster."""

    def __init__(self, scope: Construct, id: str, settings: Settings, *, api_url: str) -> None:
        super().__init__(scope, id, namespace=settings.namespace, labels=settings.labels(COMPONENT))
        config = kplus.ConfigMap(
            self,
            "config",
            metadata=ApiObjectMetadata(name=f"{COMPONENT}-config"),
            data={
                "API_URL": api_url,
                "PUBLIC_URL": f"https://{settings.domain}",
                # Quoted by cdk8s on output: Kubernetes reads YAML 1.1, where a bare `on` is true.
                "FEATURE_RECOMMENDATIONS": "on",
            },
        )
        deployment = kplus.Deployment(
            self,
            "deployment",
            metadata=ApiObjectMetadata(name=COMPONENT),
            # With the autoscaler, it sets the replicas; without, the environment does.
            replicas=None if settings.autoscale else settings.replicas,
            containers=[
                kplus.ContainerProps(
                    name=COMPONENT,
                    image=settings.image(COMPONENT),
                    port_number=PORT,
                    env_from=[kplus.Env.from_config_map(config)],
                    resources=resources(cpu_millis=100, memory_mebibytes=128),
                    readiness=kplus.Probe.from_http_get("/healthz", port=PORT),
                    liveness=kplus.Probe.from_http_get(
                        "/healthz", port=PORT, period_seconds=Duration.seconds(20)
                    ),
                )
            ],
        )
        service = deployment.expose_via_service(
            name=COMPONENT, ports=[kplus.ServicePort(port=80, target_port=PORT)]
        )
        kplus.Ingress(
            self,
            "ingress",
            metadata=ApiObjectMetadata(name=COMPONENT),
            rules=[
                kplus.IngressRule(
                    host=settings.domain,
                    path="/",
                    backend=kplus.IngressBackend.from_service(service),
                )
            ],
            tls=[
                kplus.IngressTls(
                    hosts=[settings.domain],
                    secret=kplus.Secret.from_secret_name(self, "tls", f"{COMPONENT}-tls"),
                )
            ],
        )
        if settings.autoscale:
            kplus.HorizontalPodAutoscaler(
                self,
                "autoscaler",
                metadata=ApiObjectMetadata(name=COMPONENT),
                target=deployment,
                min_replicas=2,
                max_replicas=10,
                metrics=[kplus.Metric.resource_cpu(kplus.MetricTarget.average_utilization(70))],
            )
