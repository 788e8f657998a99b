"""The CDK app: `cdk synth` / `cdk deploy` from `infra/` (see cdk.json), or
`python -m infra.app` from the repository root.

Synthesis runs cdk-nag's AwsSolutions checks and fails while any finding is unacknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.nag import acknowledge_findings
from infra.settings import DeploySettings
from infra.stack import TriggerApiStack


def build_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None
) -> tuple[App, TriggerApiStack]:
    app = App(context=dict(context or {}), outdir=outdir)
    settings = DeploySettings.from_context(
        {key: app.node.try_get_context(key) for key in DeploySettings.context_keys()}
    )
    stack = TriggerApiStack(app, settings.stack_name, settings=settings)
    acknowledge_findings(stack)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
