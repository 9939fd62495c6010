"""A nightly worker: a CronJob that reuses the API's image and credentials."""

from __future__ import annotations

import cdk8s_plus_34 as kplus
from cdk8s import ApiObjectMetadata, Chart, Cron, Duration
from constructs import Construct

from charts.api import COMPONENT as API_COMPONENT
from charts.api import CREDENTIALS_SECRET
from charts.settings import Settings, resources

COMPONENT = "worker"


class WorkerChart(Chart):
    """Rebuilds the search index every night at 03:00."""

    def __init__(self, scope: Construct, id: str, settings: Settings) -> None:
        super().__init__(scope, id, namespace=settings.namespace, labels=settings.labels(COMPONENT))
        credentials = kplus.Secret.from_secret_name(self, "credentials", CREDENTIALS_SECRET)
        kplus.CronJob(
            self,
            "reindex",
            metadata=ApiObjectMetadata(name=f"{COMPONENT}-reindex"),
            schedule=Cron.schedule(minute="0", hour="3"),
            concurrency_policy=kplus.ConcurrencyPolicy.FORBID,
            successful_jobs_retained=3,
            failed_jobs_retained=1,
            active_deadline=Duration.hours(1),
            restart_policy=kplus.RestartPolicy.ON_FAILURE,
            containers=[
                kplus.ContainerProps(
                    name=COMPONENT,
                    image=settings.image(API_COMPONENT),
                    args=["reindex", "--all"],
                    env_variables={
                        "DATABASE_URL": kplus.EnvValue.from_secret_value(
                            kplus.SecretValue(secret=credentials, key="database-url")
                        ),
                    },
                    resources=resources(cpu_millis=500, memory_mebibytes=512),
                )
            ],
        )
