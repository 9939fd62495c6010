"""The API: a Deployment and Service whose credentials come from a Secret, by reference only.

The Secret itself is not in git: it is made in the cluster (Sealed Secrets, SOPS or External
Secrets). The chart names it and the keys it needs, nothing more.
"""

from __future__ import annotations

import cdk8s_plus_34 as kplus
from cdk8s import ApiObjectMetadata, Chart
from constructs import Construct

from charts.settings import Settings, resources

COMPONENT = "api"
PORT = 9000
CREDENTIALS_SECRET = "api-credentials"


class ApiChart(Chart):
    """The shop's API, reachable inside the cluster at :attr:`url`."""

    def __init__(self, scope: Construct, id: str, settings: Settings) -> None:
        super().__init__(scope, id, namespace=settings.namespace, labels=settings.labels(COMPONENT))
        credentials = kplus.Secret.from_secret_name(self, "credentials", CREDENTIALS_SECRET)
        deployment = kplus.Deployment(
            self,
            "deployment",
            metadata=ApiObjectMetadata(name=COMPONENT),
            replicas=settings.replicas,
            containers=[
                kplus.ContainerProps(
                    name=COMPONENT,
                    image=settings.image(COMPONENT),
                    port_number=PORT,
                    env_variables={
                        "DATABASE_URL": kplus.EnvValue.from_secret_value(
                            kplus.SecretValue(secret=credentials, key="database-url")
                        ),
                        "PAYMENT_API_KEY": kplus.EnvValue.from_secret_value(
                            kplus.SecretValue(secret=credentials, key="payment-api-key")
                        ),
                        "LOG_LEVEL": kplus.EnvValue.from_value("info"),
                    },
                    resources=resources(cpu_millis=250, memory_mebibytes=256),
                    readiness=kplus.Probe.from_http_get("/ready", port=PORT),
                )
            ],
        )
        service = deployment.expose_via_service(
            name=COMPONENT, ports=[kplus.ServicePort(port=80, target_port=PORT)]
        )
        self.url = f"http://{service.name}.{settings.namespace}.svc.cluster.local"
