"""The API: Fargate tasks in private subnets behind a public Application Load Balancer."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.settings import DeploySettings
from infra.tasks import fargate_task, log_driver, rolling_deployment

CONTAINER_PORT = 8000
HEALTH_CHECK_PATH = "/health"


class ApiService(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        image: ecs.ContainerImage,
        environment: Mapping[str, str],
        settings: DeploySettings,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.logs, logging = log_driver(
            self, stream_prefix="api", retention=log_retention, removal_policy=removal_policy
        )
        task = fargate_task(self, cpu=settings.api_cpu, memory_mib=settings.api_memory_mib)
        task.add_container(
            "api",
            image=image,
            command=[
                "trigger-api",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                str(CONTAINER_PORT),
                "--store",
                "dynamodb",
            ],
            environment={
                **environment,
                # Only the load balancer can reach the tasks (security group), so its
                # X-Forwarded-For / -Proto headers are trusted.
                "FORWARDED_ALLOW_IPS": "*",
            },
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT)],
            logging=logging,
            # uvicorn finishes in-flight requests on SIGTERM; ECS sends SIGKILL after this.
            stop_timeout=Duration.seconds(30),
        )
        https = settings.https
        self.service = ecs_patterns.ApplicationLoadBalancedFargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=task,
            desired_count=settings.api_min_tasks,
            **rolling_deployment(),
            health_check_grace_period=Duration.seconds(30),
            public_load_balancer=True,
            task_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            protocol=(elbv2.ApplicationProtocol.HTTPS if https else elbv2.ApplicationProtocol.HTTP),
            certificate=(
                acm.Certificate.from_certificate_arn(self, "Certificate", settings.certificate_arn)
                if settings.certificate_arn
                else None
            ),
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS if https else None,
            redirect_http=https,
        )

        target_group = self.service.target_group
        target_group.configure_health_check(
            path=HEALTH_CHECK_PATH,
            healthy_http_codes="200",
            interval=Duration.seconds(15),
            timeout=Duration.seconds(5),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        )
        # The default (300 s) makes every deployment wait five minutes per task.
        target_group.set_attribute("deregistration_delay.timeout_seconds", "30")

        load_balancer = self.service.load_balancer
        load_balancer.set_attribute("routing.http.drop_invalid_header_fields.enabled", "true")
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # ALB log delivery supports SSE-S3 only.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            # Access logs are audit evidence: kept when the stack is deleted.
            removal_policy=RemovalPolicy.RETAIN,
        )
        load_balancer.log_access_logs(self.access_logs, prefix="alb")

        scaling = self.service.service.auto_scale_task_count(
            min_capacity=settings.api_min_tasks, max_capacity=settings.api_max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "Cpu", target_utilization_percent=settings.api_cpu_target_percent
        )
        scaling.scale_on_request_count(
            "Requests",
            requests_per_target=settings.api_requests_per_target,
            target_group=target_group,
        )

        scheme = "https" if https else "http"
        host = settings.domain_name or load_balancer.load_balancer_dns_name
        self.url = f"{scheme}://{host}"

    @property
    def task_role(self) -> iam.IRole:
        return self.service.task_definition.task_role
