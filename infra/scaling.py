"""The worker scales on its backlog: undelivered events per running task, held near a target.

Target tracking on metric math (`Undelivered` / Container Insights' `RunningTaskCount`), which
CDK's L2 cannot express, so the policy is the L1 `CfnScalingPolicy`. Target tracking sizes the
service in proportion to its current task count, so it cannot be counted on to leave zero: when
the service may scale to zero, a step policy wakes it (one task) as soon as events wait with no
task wanted, and target tracking takes over from there.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, Names
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from infra.metrics import ONE_MINUTE, UNDELIVERED, ServiceMetrics, task_count

_Policy = appscaling.CfnScalingPolicy

# A new task starts draining within a minute, so adding tasks may follow quickly; removing them
# waits longer, so a backlog that comes in waves does not start and stop tasks each wave.
SCALE_OUT_COOLDOWN = Duration.minutes(1)
SCALE_IN_COOLDOWN = Duration.minutes(5)

# Undelivered events per task. Below one running task it divides by 1: never by zero, and a
# task that is still starting does not hide the backlog.
BACKLOG_PER_TASK = "backlog / IF(FILL(running, 0) > 1, FILL(running, 0), 1)"
# 1 while events wait and the service wants no task at all.
NOBODY_WANTED = "IF(backlog > 0 AND FILL(desired, 0) < 1, 1, 0)"


class BacklogScaling(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: ecs.FargateService,
        metrics: ServiceMetrics,
        min_tasks: int,
        max_tasks: int,
        backlog_per_task: int,
    ) -> None:
        super().__init__(scope, construct_id)
        task_count_scaling = service.auto_scale_task_count(
            min_capacity=min_tasks, max_capacity=max_tasks
        )
        # ScalableTaskCount keeps its ScalableTarget private, under this id.
        target = cast(appscaling.ScalableTarget, task_count_scaling.node.find_child("Target"))
        backlog = metrics.metric(UNDELIVERED, statistic="Average")
        running = task_count(service, "RunningTaskCount")

        tracking = _Policy.TargetTrackingScalingPolicyConfigurationProperty(
            target_value=backlog_per_task,
            scale_out_cooldown=int(SCALE_OUT_COOLDOWN.to_seconds()),
            scale_in_cooldown=int(SCALE_IN_COOLDOWN.to_seconds()),
            customized_metric_specification=_Policy.CustomizedMetricSpecificationProperty(
                metrics=[
                    _query("backlog", backlog),
                    _query("running", running),
                    _Policy.TargetTrackingMetricDataQueryProperty(
                        id="per_task",
                        expression=BACKLOG_PER_TASK,
                        label="Undelivered events per running worker task",
                        return_data=True,
                    ),
                ]
            ),
        )
        self.policy = _Policy(
            self,
            "BacklogPerTask",
            policy_name=f"{Names.unique_id(self)}BacklogPerTask",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.scalable_target_id,
            target_tracking_scaling_policy_configuration=tracking,
        )
        self.wake_alarm = (
            self._wake_from_zero(target, service=service, metrics=metrics)
            if min_tasks == 0
            else None
        )

    def _wake_from_zero(
        self,
        target: appscaling.IScalableTarget,
        *,
        service: ecs.BaseService,
        metrics: ServiceMetrics,
    ) -> cloudwatch.Alarm:
        wake = appscaling.StepScalingAction(
            self,
            "Wake",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            cooldown=SCALE_OUT_COOLDOWN,
        )
        wake.add_adjustment(adjustment=1, lower_bound=0)
        alarm = cloudwatch.MathExpression(
            expression=NOBODY_WANTED,
            using_metrics={
                "backlog": metrics.metric(UNDELIVERED, statistic="Maximum"),
                "desired": task_count(service, "DesiredTaskCount"),
            },
            period=ONE_MINUTE,
        ).create_alarm(
            self,
            "WakeAlarm",
            alarm_description=(
                "Events wait and the worker service is scaled to zero: start one task "
                "(target tracking takes over from there)."
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # No backlog figure (the publisher is silent): start no task on a guess.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.ApplicationScalingAction(wake))
        return alarm


def _query(
    query_id: str, metric: cloudwatch.Metric
) -> _Policy.TargetTrackingMetricDataQueryProperty:
    return _Policy.TargetTrackingMetricDataQueryProperty(
        id=query_id,
        metric_stat=_Policy.TargetTrackingMetricStatProperty(
            metric=_Policy.TargetTrackingMetricProperty(
                namespace=metric.namespace,
                metric_name=metric.metric_name,
                dimensions=[
                    _Policy.TargetTrackingMetricDimensionProperty(name=name, value=value)
                    for name, value in (metric.dimensions or {}).items()
                ],
            ),
            stat=metric.statistic,
        ),
        return_data=False,
    )
