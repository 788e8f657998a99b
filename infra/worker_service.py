"""The worker: the same image running `trigger-worker`, calling the API through the load balancer.

It claims events over HTTP, never from the tables, so its task role has no DynamoDB access.
Its tenants' API keys come from a Secrets Manager secret holding JSON
`{"API_KEYS": "k1,k2", "TENANT_NAMES": "acme,globex"}`, which `docs/DEPLOY.md` shows how to fill.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.metrics import ServiceMetrics
from infra.scaling import BacklogScaling
from infra.settings import DeploySettings
from infra.tasks import fargate_task, log_driver, rolling_deployment

SECRET_FIELDS = ("API_KEYS", "TENANT_NAMES")

HEARTBEAT_FILE = "/tmp/worker.heartbeat"
HEARTBEAT_CHECK = (
    f"import os, sys, time; sys.exit(time.time() - os.path.getmtime('{HEARTBEAT_FILE}') > 30)"
)


class WorkerService(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        image: ecs.ContainerImage,
        api_url: str,
        metrics: ServiceMetrics,
        settings: DeploySettings,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "ApiKeys",
            description="Trigger API worker: API_KEYS and TENANT_NAMES (comma-separated)",
            # A random placeholder until the operator stores real keys (docs/DEPLOY.md). A worker
            # whose keys are all refused exits and ECS starts another, so a first deploy with the
            # default workerMinTasks=1 never settles and the circuit breaker rolls the stack back:
            # that deploy passes `-c workerMinTasks=0`.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"TENANT_NAMES": "acme"}),
                generate_string_key="API_KEYS",
                exclude_punctuation=True,
                password_length=43,
            ),
            removal_policy=removal_policy,
        )
        self.logs, logging = log_driver(
            self, stream_prefix="worker", retention=log_retention, removal_policy=removal_policy
        )
        task = fargate_task(self, cpu=settings.worker_cpu, memory_mib=settings.worker_memory_mib)
        task.add_container(
            "worker",
            image=image,
            command=["trigger-worker"],
            environment={"API_URL": api_url, "WORKER_HEARTBEAT_FILE": HEARTBEAT_FILE},
            secrets={
                name: ecs.Secret.from_secrets_manager(self.secret, name) for name in SECRET_FIELDS
            },
            logging=logging,
            # On SIGTERM the worker stops claiming and finishes or releases what it holds.
            stop_timeout=Duration.seconds(60),
            # The worker touches its heartbeat file every 5 s while its event loop runs.
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", f"python -c {HEARTBEAT_CHECK!r}"],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(15),
            ),
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=task,
            desired_count=settings.worker_min_tasks,
            **rolling_deployment(),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
        )
        # Backlog, not CPU: a worker waiting on its handlers' I/O is idle by CPU while events
        # pile up, and a CPU policy would also veto every scale-in (target tracking removes
        # tasks only when all its policies agree).
        self.scaling = BacklogScaling(
            self,
            "Scaling",
            service=self.service,
            metrics=metrics,
            min_tasks=settings.worker_min_tasks,
            max_tasks=settings.worker_max_tasks,
            backlog_per_task=settings.worker_backlog_per_task,
        )

    @property
    def task_role(self) -> iam.IRole:
        return self.service.task_definition.task_role
