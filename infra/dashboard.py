"""One CloudWatch dashboard: alarms, ingest, latency, backlog, age, dead events, worker scaling,
5xx answers and DynamoDB throttles. docs/DEPLOY.md, "Dashboard", says how to read it."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from infra.metrics import (
    DEAD,
    EVENTS_CREATED,
    IN_FLIGHT,
    OLDEST_AGE,
    ONE_MINUTE,
    UNDELIVERED,
    task_count,
    throttle_events,
)
from infra.monitoring import Watched, error_rate
from infra.scaling import BACKLOG_PER_TASK
from infra.settings import DeploySettings

WIDTH = 24
HEIGHT = 6


class OperationsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        watched: Watched,
        worker: ecs.BaseService,
        alarms: Sequence[cloudwatch.IAlarm],
        settings: DeploySettings,
    ) -> None:
        super().__init__(scope, construct_id)
        metrics, load_balancer = watched.metrics, watched.load_balancer
        half, third = WIDTH // 2, WIDTH // 3
        running = task_count(worker, "RunningTaskCount").with_(label="running tasks")
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.hours(3),
            widgets=[
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=WIDTH)],
                [
                    _graph(
                        "Ingest: events created and requests per minute",
                        [
                            metrics.metric(EVENTS_CREATED, statistic="Sum", label="events created"),
                            watched.target_group.metrics.request_count(
                                period=ONE_MINUTE, label="API requests (load balancer)"
                            ),
                        ],
                        width=half,
                    ),
                    _graph(
                        "API latency (s)",
                        [
                            load_balancer.metrics.target_response_time(
                                statistic="p50", period=ONE_MINUTE, label="p50"
                            ),
                            load_balancer.metrics.target_response_time(
                                statistic="p99", period=ONE_MINUTE, label="p99"
                            ),
                        ],
                        width=half,
                    ),
                ],
                [
                    _graph(
                        "Backlog: undelivered events (total, in flight, per tenant)",
                        [
                            metrics.metric(UNDELIVERED, statistic="Maximum", label="undelivered"),
                            metrics.metric(IN_FLIGHT, statistic="Maximum", label="in flight"),
                            metrics.per_tenant(UNDELIVERED, statistic="Maximum"),
                        ],
                        width=half,
                    ),
                    _graph(
                        "Oldest undelivered event's age (s)",
                        [
                            metrics.metric(OLDEST_AGE, statistic="Maximum", label="oldest"),
                            metrics.per_tenant(OLDEST_AGE, statistic="Maximum"),
                        ],
                        width=half,
                        line=("alarm", settings.alarm_oldest_age_seconds),
                    ),
                ],
                [
                    _graph(
                        "Dead events (total, per tenant)",
                        [
                            metrics.metric(DEAD, statistic="Maximum", label="dead"),
                            metrics.per_tenant(DEAD, statistic="Maximum"),
                        ],
                        width=third,
                    ),
                    _graph(
                        "Worker: undelivered per running task, and tasks",
                        [
                            cloudwatch.MathExpression(
                                expression=BACKLOG_PER_TASK,
                                using_metrics={
                                    "backlog": metrics.metric(UNDELIVERED, statistic="Average"),
                                    "running": running,
                                },
                                label="undelivered per task",
                                period=ONE_MINUTE,
                            )
                        ],
                        right=[running],
                        width=third,
                        line=("scaling target", settings.worker_backlog_per_task),
                    ),
                    _graph(
                        "API 5xx answers: % (left), count (right), per 5 minutes",
                        [error_rate(load_balancer, min_requests=settings.alarm_5xx_min_requests)],
                        right=[
                            load_balancer.metrics.http_code_target(
                                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, label="from tasks"
                            ),
                            load_balancer.metrics.http_code_elb(
                                elbv2.HttpCodeElb.ELB_5XX_COUNT, label="from the load balancer"
                            ),
                        ],
                        width=third,
                        line=("alarm", settings.alarm_5xx_percent),
                    ),
                ],
                [
                    _graph(
                        "DynamoDB throttle events per minute",
                        [
                            throttle_events(table, table_schema, label=label)
                            for label, (table, table_schema) in watched.tables.items()
                        ],
                        width=WIDTH,
                    ),
                ],
            ],
        )


def _graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    *,
    width: int,
    right: Sequence[cloudwatch.IMetric] = (),
    line: tuple[str, float] | None = None,
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title,
        left=list(left),
        right=list(right),
        width=width,
        height=HEIGHT,
        left_annotations=(
            [cloudwatch.HorizontalAnnotation(label=line[0], value=line[1])] if line else None
        ),
    )
