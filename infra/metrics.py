"""The metric contract: what the API publishes to CloudWatch, and the AWS metrics beside it.

Every minute the API writes, in CloudWatch's Embedded Metric Format on stdout (the awslogs driver
ships it), into the `TriggerApi` namespace: one line per tenant with the dimensions
(Service, Tenant) and one deployment-wide line with (Service) alone, where Service is
`TRIGGER_METRICS_SERVICE`. docs/DEPLOY.md spells the contract out; scaling, alarms and the
dashboard read it through this module only, so they cannot disagree on a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs

from service.store.schema import TableSchema

NAMESPACE = "TriggerApi"
SERVICE = "Service"
TENANT = "Tenant"
# The API container's environment variable naming the Service dimension's value.
SERVICE_ENV = "TRIGGER_METRICS_SERVICE"

# Gauges, once a minute: Count, except the age (Seconds). On the Service-only line the counts are
# sums over tenants and the age is the largest.
UNDELIVERED = "Undelivered"  # undelivered events, those in flight included
IN_FLIGHT = "InFlight"  # under an unexpired lease
DEAD = "Dead"
OLDEST_AGE = "OldestUndeliveredAgeSeconds"  # 0 when nothing is undelivered
# Emitted by every API task each minute, Service-only: events it created (Count; sum the tasks).
EVENTS_CREATED = "EventsCreated"

ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)


def metrics_service_name(stack_name: str) -> str:
    """The Service dimension's value: stable per stack, so two stacks never mix their metrics."""
    return f"{stack_name}-api"


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    """The API's published metrics for one deployment (one Service dimension value)."""

    service: str

    def metric(
        self, name: str, *, statistic: str, period: Duration = ONE_MINUTE, label: str = ""
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={SERVICE: self.service},
            statistic=statistic,
            period=period,
            label=label or None,
        )

    def per_tenant(self, name: str, *, statistic: str) -> cloudwatch.MathExpression:
        """One line per tenant (a dashboard search; alarms cannot use it)."""
        return cloudwatch.MathExpression(
            expression=(
                f'SEARCH(\'{{{NAMESPACE},{SERVICE},{TENANT}}} MetricName="{name}" '
                f"{SERVICE}=\"{self.service}\"', '{statistic}', {ONE_MINUTE.to_seconds()})"
            ),
            using_metrics={},
            label="",
            period=ONE_MINUTE,
        )


def task_count(service: ecs.BaseService, metric_name: str) -> cloudwatch.Metric:
    """Container Insights' `RunningTaskCount` or `DesiredTaskCount` of an ECS service (enabled
    on the cluster); it may be absent rather than 0 while the service has no task."""
    return cloudwatch.Metric(
        namespace="ECS/ContainerInsights",
        metric_name=metric_name,
        dimensions_map={
            "ClusterName": service.cluster.cluster_name,
            "ServiceName": service.service_name,
        },
        statistic="Average",
        period=ONE_MINUTE,
    )


def throttle_events(
    table: dynamodb.ITable, table_schema: TableSchema, *, label: str
) -> cloudwatch.MathExpression:
    """Read and write throttle events per minute on a table and its indexes (DynamoDB reports
    an index's own throttles only under the index's dimension; a metric is absent at 0).
    `label` also prefixes the query ids, so two tables can share a graph."""
    parts: dict[str, cloudwatch.IMetric] = {}
    for index in (None, *(i.name for i in table_schema.indexes)):
        dimensions = {"TableName": table.table_name}
        if index is not None:
            dimensions["GlobalSecondaryIndexName"] = index
        for kind in ("Read", "Write"):
            parts[f"{label.lower()}_{kind.lower()}{len(parts) // 2}"] = cloudwatch.Metric(
                namespace="AWS/DynamoDB",
                metric_name=f"{kind}ThrottleEvents",
                dimensions_map=dimensions,
                statistic="Sum",
                period=ONE_MINUTE,
            )
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({name}, 0)" for name in parts),
        using_metrics=parts,
        label=label,
        period=ONE_MINUTE,
    )
