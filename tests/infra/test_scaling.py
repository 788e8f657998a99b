"""How the services scale: the API on CPU and requests, the worker on its backlog per task."""

from __future__ import annotations

import math
from typing import Any

import pytest

from infra.metrics import NAMESPACE, SERVICE, SERVICE_ENV, UNDELIVERED
from tests.infra.conftest import (
    DEPLOYED,
    Match,
    Synth,
    container_environment,
    of_type,
    only,
)
from tests.infra.metric_math import evaluate

SCALABLE_TARGET = "AWS::ApplicationAutoScaling::ScalableTarget"
SCALING_POLICY = "AWS::ApplicationAutoScaling::ScalingPolicy"
CPU_METRIC = "ECSServiceAverageCPUUtilization"


def target_tracking(metric: str, target: int) -> dict[str, Any]:
    specification = Match.object_like({"PredefinedMetricType": metric})
    return {
        "TargetTrackingScalingPolicyConfiguration": Match.object_like(
            {"PredefinedMetricSpecification": specification, "TargetValue": target}
        )
    }


def worker_service(synth: Synth) -> str:
    return only(
        {
            k: v
            for k, v in of_type(synth, "AWS::ECS::Service").items()
            if "LoadBalancers" not in v["Properties"]
        }
    )[0]


def worker_target(synth: Synth) -> str:
    service = worker_service(synth)
    return only(
        {
            k: v
            for k, v in of_type(synth, SCALABLE_TARGET).items()
            if {"Fn::GetAtt": [service, "Name"]} in v["Properties"]["ResourceId"]["Fn::Join"][1]
        }
    )[0]


def worker_policies(synth: Synth) -> dict[str, dict[str, Any]]:
    target = {"Ref": worker_target(synth)}
    return {
        k: v["Properties"]
        for k, v in of_type(synth, SCALING_POLICY).items()
        if v["Properties"]["ScalingTargetId"] == target
    }


def backlog_policy(synth: Synth) -> dict[str, Any]:
    (policy,) = worker_policies(synth).values()
    configuration: dict[str, Any] = policy["TargetTrackingScalingPolicyConfiguration"]
    return configuration


def test_api_scales_on_cpu_and_on_requests_per_target(synth: Synth) -> None:
    synth.template.has_resource_properties(
        SCALABLE_TARGET,
        {
            "MinCapacity": DEPLOYED.api_min_tasks,
            "MaxCapacity": DEPLOYED.api_max_tasks,
            "ScalableDimension": "ecs:service:DesiredCount",
        },
    )
    synth.template.has_resource_properties(
        SCALING_POLICY,
        target_tracking("ALBRequestCountPerTarget", DEPLOYED.api_requests_per_target),
    )
    synth.template.has_resource_properties(
        SCALING_POLICY, target_tracking(CPU_METRIC, DEPLOYED.api_cpu_target_percent)
    )


def test_worker_scales_within_its_bounds_on_backlog_alone(synth: Synth) -> None:
    synth.template.resource_count_is(SCALABLE_TARGET, 2)
    target = synth.resources[worker_target(synth)]["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        DEPLOYED.worker_min_tasks,
        DEPLOYED.worker_max_tasks,
    )
    # One policy, and not on CPU: with target tracking a second policy would veto scale-in.
    assert [p["PolicyType"] for p in worker_policies(synth).values()] == ["TargetTrackingScaling"]
    assert "PredefinedMetricSpecification" not in backlog_policy(synth)


def test_worker_tracks_undelivered_events_per_running_task(synth: Synth) -> None:
    service = worker_service(synth)
    cluster = only(of_type(synth, "AWS::ECS::Cluster"))[0]
    published_as = container_environment(synth, "api")[SERVICE_ENV]
    synth.template.has_resource_properties(
        SCALING_POLICY,
        {
            "ScalingTargetId": {"Ref": worker_target(synth)},
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": DEPLOYED.worker_backlog_per_task,
                    "CustomizedMetricSpecification": {
                        "Metrics": Match.array_with(
                            [
                                Match.object_like(
                                    {
                                        "MetricStat": {
                                            "Metric": {
                                                "Namespace": NAMESPACE,
                                                "MetricName": UNDELIVERED,
                                                "Dimensions": [
                                                    {"Name": SERVICE, "Value": published_as}
                                                ],
                                            },
                                            "Stat": "Average",
                                        },
                                        "ReturnData": False,
                                    }
                                ),
                                Match.object_like(
                                    {
                                        "MetricStat": {
                                            "Metric": {
                                                "Namespace": "ECS/ContainerInsights",
                                                "MetricName": "RunningTaskCount",
                                                "Dimensions": [
                                                    {
                                                        "Name": "ClusterName",
                                                        "Value": {"Ref": cluster},
                                                    },
                                                    {
                                                        "Name": "ServiceName",
                                                        "Value": {"Fn::GetAtt": [service, "Name"]},
                                                    },
                                                ],
                                            },
                                            "Stat": "Average",
                                        },
                                        "ReturnData": False,
                                    }
                                ),
                            ]
                        )
                    },
                    # Out within a minute, in only after five.
                    "ScaleOutCooldown": 60,
                    "ScaleInCooldown": 300,
                }
            ),
        },
    )


@pytest.mark.parametrize(
    ("backlog", "running", "per_task"),
    [
        (800, 4, 200),
        (800, 3.5, 800 / 3.5),  # an average over a minute in which a task started
        (0, 2, 0),  # nothing to do: scale in, down to the minimum
        (300, 0, 300),  # no task running yet: never a division by zero
        (300, None, 300),  # Container Insights reports nothing for a service without tasks
        (None, 2, math.nan),  # no backlog figure: target tracking neither adds nor removes
    ],
)
def test_backlog_per_task_divides_by_the_running_tasks_and_at_least_one(
    synth: Synth, backlog: float | None, running: float | None, per_task: float
) -> None:
    queries = backlog_policy(synth)["CustomizedMetricSpecification"]["Metrics"]
    ids = {q["MetricStat"]["Metric"]["MetricName"]: q["Id"] for q in queries if "MetricStat" in q}
    value = evaluate(queries, {ids[UNDELIVERED]: backlog, ids["RunningTaskCount"]: running})
    assert value == pytest.approx(per_task, nan_ok=True)


def test_a_worker_with_a_minimum_has_no_wake_up_policy(synth: Synth) -> None:
    assert DEPLOYED.worker_min_tasks > 0
    assert not [p for p in worker_policies(synth).values() if p["PolicyType"] == "StepScaling"]


def wake_up(synth: Synth) -> tuple[str, dict[str, Any]]:
    return only(
        {k: v for k, v in worker_policies(synth).items() if v["PolicyType"] == "StepScaling"}
    )


def test_a_worker_scaled_to_zero_gets_one_task_when_events_wait(
    synth_scale_to_zero: Synth,
) -> None:
    synth = synth_scale_to_zero
    assert synth.resources[worker_target(synth)]["Properties"]["MinCapacity"] == 0
    policy_id, policy = wake_up(synth)
    assert policy["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ExactCapacity",
        "Cooldown": 60,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }
    synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmActions": [{"Ref": policy_id}],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching",
        },
    )


@pytest.mark.parametrize(
    ("backlog", "desired", "wakes"),
    [
        (25, None, 1),  # events wait, no task wanted (no Container Insights figure either)
        (25, 0, 1),
        (25, 1, 0),  # a task is wanted already: target tracking's business
        (0, None, 0),  # nothing waits: stay at zero
        (None, None, math.nan),  # no backlog figure: treated as not breaching
    ],
)
def test_the_wake_up_alarm_breaches_only_when_events_wait_and_no_task_is_wanted(
    synth_scale_to_zero: Synth, backlog: float | None, desired: float | None, wakes: float
) -> None:
    synth = synth_scale_to_zero
    policy_id, _ = wake_up(synth)
    (alarm,) = [
        v["Properties"]
        for v in of_type(synth, "AWS::CloudWatch::Alarm").values()
        if v["Properties"]["AlarmActions"] == [{"Ref": policy_id}]
    ]
    queries = alarm["Metrics"]
    ids = {q["MetricStat"]["Metric"]["MetricName"]: q["Id"] for q in queries if "MetricStat" in q}
    value = evaluate(queries, {ids[UNDELIVERED]: backlog, ids["DesiredTaskCount"]: desired})
    assert value == pytest.approx(wakes, nan_ok=True)
