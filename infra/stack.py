"""The Trigger API stack: network, data, the API service, the worker service, and monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Environment, RemovalPolicy, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.api_service import ApiService
from infra.dashboard import OperationsDashboard
from infra.data import Data
from infra.metrics import SERVICE_ENV, ServiceMetrics, metrics_service_name
from infra.monitoring import Monitoring, Watched
from infra.network import Network
from infra.settings import DeploySettings
from infra.worker_service import WorkerService
from service.store import schema

# The repository root: the Dockerfile and the build context of the one image.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class TriggerApiStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=settings.account, region=settings.region),
            description="Trigger API: multi-tenant event ingestion on ECS Fargate and DynamoDB",
            **kwargs,
        )
        removal_policy = (
            RemovalPolicy.RETAIN if settings.removal_policy == "retain" else RemovalPolicy.DESTROY
        )
        log_retention = retention_days(settings.log_retention_days)

        self.network = Network(
            self,
            "Network",
            nat_gateways=settings.nat_gateways,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.data = Data(
            self,
            "Data",
            events_table_name=settings.events_table_name,
            keys_table_name=settings.keys_table_name,
            removal_policy=removal_policy,
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        metrics = ServiceMetrics(metrics_service_name(self.stack_name))
        image = ecs.ContainerImage.from_docker_image_asset(
            ecr_assets.DockerImageAsset(
                self,
                "Image",
                directory=str(PROJECT_ROOT),
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
        )
        self.api = ApiService(
            self,
            "Api",
            cluster=self.cluster,
            image=image,
            environment={
                "TRIGGER_STORE": "dynamodb",
                "TRIGGER_EVENTS_TABLE": self.data.events.table_name,
                "TRIGGER_KEYS_TABLE": self.data.keys.table_name,
                "AWS_DEFAULT_REGION": self.region,
                "TRIGGER_SHARDS": str(settings.shards),
                "TRIGGER_TENANT_SHARDS": settings.tenant_shards,
                SERVICE_ENV: metrics.service,
            },
            settings=settings,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.data.grant_service_access(self.api.task_role)
        self.worker = WorkerService(
            self,
            "Worker",
            cluster=self.cluster,
            image=image,
            api_url=self.api.url,
            metrics=metrics,
            settings=settings,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        watched = Watched(
            metrics=metrics,
            load_balancer=self.api.service.load_balancer,
            target_group=self.api.service.target_group,
            tables={
                "Events": (self.data.events, schema.EVENTS),
                "ApiKeys": (self.data.keys, schema.API_KEYS),
            },
        )
        self.monitoring = Monitoring(self, "Monitoring", watched=watched, settings=settings)
        self.dashboard = OperationsDashboard(
            self,
            "Dashboard",
            watched=watched,
            worker=self.worker.service,
            alarms=list(self.monitoring.alarms.values()),
            settings=settings,
        ).dashboard

        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the API")
        CfnOutput(self, "EventsTableName", value=self.data.events.table_name)
        CfnOutput(self, "KeysTableName", value=self.data.keys.table_name)
        CfnOutput(
            self,
            "WorkerSecretArn",
            value=self.worker.secret.secret_arn,
            description="Put the worker's API_KEYS and TENANT_NAMES here (docs/DEPLOY.md)",
        )
        CfnOutput(
            self,
            "LoadBalancerDns",
            value=self.api.service.load_balancer.load_balancer_dns_name,
            description="Point your domain here (CNAME) when using HTTPS",
        )
        CfnOutput(self, "ApiLogGroup", value=self.api.logs.log_group_name)
        CfnOutput(self, "WorkerLogGroup", value=self.worker.logs.log_group_name)
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        CfnOutput(self, "WorkerServiceName", value=self.worker.service.service_name)
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.monitoring.topic.topic_arn,
            description="Subscribe to receive the alarms (docs/DEPLOY.md)",
        )
        CfnOutput(self, "DashboardName", value=self.dashboard.dashboard_name)
        CfnOutput(
            self,
            "MetricsService",
            value=metrics.service,
            description=f"The Service dimension of the API's metrics ({SERVICE_ENV})",
        )


def retention_days(days: int) -> logs.RetentionDays:
    by_days = {
        1: logs.RetentionDays.ONE_DAY,
        3: logs.RetentionDays.THREE_DAYS,
        5: logs.RetentionDays.FIVE_DAYS,
        7: logs.RetentionDays.ONE_WEEK,
        14: logs.RetentionDays.TWO_WEEKS,
        30: logs.RetentionDays.ONE_MONTH,
        60: logs.RetentionDays.TWO_MONTHS,
        90: logs.RetentionDays.THREE_MONTHS,
        120: logs.RetentionDays.FOUR_MONTHS,
        150: logs.RetentionDays.FIVE_MONTHS,
        180: logs.RetentionDays.SIX_MONTHS,
        365: logs.RetentionDays.ONE_YEAR,
        400: logs.RetentionDays.THIRTEEN_MONTHS,
        545: logs.RetentionDays.EIGHTEEN_MONTHS,
        731: logs.RetentionDays.TWO_YEARS,
        1827: logs.RetentionDays.FIVE_YEARS,
        3653: logs.RetentionDays.TEN_YEARS,
    }
    return by_days[days]
