"""Alarms on the backlog, the API's answers and the tables, all notifying one SNS topic.

What each alarm means and what to do when it fires: docs/DEPLOY.md, "Alarms". Missing data is
treated per alarm: only the age alarm reports a silent metrics publisher (as breaching), so one
cause pages once; the others keep their state or read silence as "nothing happened".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.metrics import (
    DEAD,
    FIVE_MINUTES,
    OLDEST_AGE,
    ONE_MINUTE,
    ServiceMetrics,
    throttle_events,
)
from infra.settings import DeploySettings
from service.store.schema import TableSchema

RUNBOOK = "docs/DEPLOY.md, Alarms"


def error_rate(
    load_balancer: elbv2.IApplicationLoadBalancer, *, min_requests: int
) -> cloudwatch.MathExpression:
    """The percentage of 5xx answers over 5 minutes, 0 below `min_requests` requests.

    Errors are the targets' 5xx plus the load balancer's own (502/504 from a failing target,
    503 when no target is healthy). A request the load balancer answers without a target is not
    in RequestCount, so the divisor is at least the errors: all 503s read as 100%, not more.
    """
    errors = cloudwatch.MathExpression(
        expression="FILL(target5xx, 0) + FILL(elb5xx, 0)",
        using_metrics={
            "target5xx": load_balancer.metrics.http_code_target(
                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=FIVE_MINUTES
            ),
            "elb5xx": load_balancer.metrics.http_code_elb(
                elbv2.HttpCodeElb.ELB_5XX_COUNT, period=FIVE_MINUTES
            ),
        },
        period=FIVE_MINUTES,
    )
    traffic = cloudwatch.MathExpression(
        expression="IF(FILL(requests, 0) > errors, FILL(requests, 0), errors)",
        using_metrics={
            "requests": load_balancer.metrics.request_count(period=FIVE_MINUTES),
            "errors": errors,
        },
        period=FIVE_MINUTES,
    )
    return cloudwatch.MathExpression(
        expression=f"IF(traffic >= {min_requests}, 100 * errors / traffic, 0)",
        using_metrics={"errors": errors, "traffic": traffic},
        label="5xx answers (%)",
        period=FIVE_MINUTES,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Watched:
    """What the alarms and the dashboard watch: the API's published metrics, its load balancer
    and target group, and the tables (by label) with their schemas (for the index names)."""

    metrics: ServiceMetrics
    load_balancer: elbv2.IApplicationLoadBalancer
    target_group: elbv2.IApplicationTargetGroup
    tables: Mapping[str, tuple[dynamodb.ITable, TableSchema]]


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, watched: Watched, settings: DeploySettings
    ) -> None:
        super().__init__(scope, construct_id)
        metrics, load_balancer = watched.metrics, watched.load_balancer
        self.topic = _alarm_topic(self)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        self._alarm(
            "OldestUndeliveredAge",
            metrics.metric(OLDEST_AGE, statistic="Maximum"),
            description=(
                f"An undelivered event has waited over {settings.alarm_oldest_age_seconds} s, "
                "or the API has published no backlog figures for 5 minutes."
            ),
            threshold=settings.alarm_oldest_age_seconds,
            evaluation_periods=5,
            # Silence is not good news: the publisher (or every API task) has stopped.
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        self._alarm(
            "DeadEvents",
            metrics.metric(DEAD, statistic="Maximum"),
            description="Events have used up their attempts and are dead; redrive or delete them.",
            threshold=0,
            evaluation_periods=1,
            # The age alarm reports a silent publisher; this one keeps what it last knew.
            missing=cloudwatch.TreatMissingData.IGNORE,
        )
        self._alarm(
            "Api5xxRate",
            error_rate(load_balancer, min_requests=settings.alarm_5xx_min_requests),
            description=(
                f"Over {settings.alarm_5xx_percent}% of the API's answers in 5 minutes were "
                f"5xx (counted from {settings.alarm_5xx_min_requests} requests on)."
            ),
            threshold=settings.alarm_5xx_percent,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for label, (table, table_schema) in watched.tables.items():
            self._alarm(
                f"{label}Throttles",
                throttle_events(table, table_schema, label=label),
                description=(
                    f"DynamoDB throttled requests to the {label} table (or its indexes) in 3 of "
                    "the last 5 minutes."
                ),
                threshold=0,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        self._alarm(
            "UnhealthyTargets",
            watched.target_group.metrics.unhealthy_host_count(
                statistic="Maximum", period=ONE_MINUTE
            ),
            description="API tasks have failed the load balancer's health check for 3 minutes.",
            threshold=0,
            evaluation_periods=3,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.Metric | cloudwatch.MathExpression,
        *,
        description: str,
        threshold: float,
        evaluation_periods: int,
        missing: cloudwatch.TreatMissingData,
        datapoints_to_alarm: int | None = None,
    ) -> None:
        alarm = metric.create_alarm(
            self,
            name,
            alarm_description=f"{description} What to do: {RUNBOOK}, {name}.",
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=missing,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[name] = alarm


def _alarm_topic(scope: Construct) -> sns.Topic:
    """An SNS topic encrypted with its own KMS key, which CloudWatch may use: the AWS-managed SNS
    key does not let CloudWatch publish, so alarms on a topic under it never arrive."""
    cloudwatch_service = iam.ServicePrincipal("cloudwatch.amazonaws.com")
    this_account = {"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}}
    key = kms.Key(
        scope,
        "TopicKey",
        description="Trigger API: encrypts the alarm topic",
        enable_key_rotation=True,
        # Nothing stays encrypted under it once the topic is gone.
        removal_policy=RemovalPolicy.DESTROY,
        pending_window=Duration.days(7),
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[cloudwatch_service],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions=this_account,
        )
    )
    topic = sns.Topic(
        scope, "Topic", display_name="Trigger API alarms", master_key=key, enforce_ssl=True
    )
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[cloudwatch_service],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=this_account,
        )
    )
    return topic
