"""cfn-lint over the synthesized templates: no errors, and only these warnings.

Ignored warnings, and why:
- W3010 "Avoid hardcoding availability zones": the AZs come from CDK context on purpose
  (deterministic synth; `cdk deploy` looks the real ones up and caches them the same way).
- W3005 "dependency already enforced by a Ref": CDK's ECS pattern adds an explicit DependsOn
  from the service to its listener/target group; it is redundant but harmless.
"""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

from tests.infra.conftest import REGION, Synth

IGNORED_WARNINGS = ["W3010", "W3005"]


@pytest.mark.parametrize("variant", ["synth", "synth_https", "synth_scale_to_zero"])
def test_template_passes_cfn_lint(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)
    matches = lint_file(
        synth.template_path,
        config=ManualArgs(regions=[REGION], ignore_checks=IGNORED_WARNINGS),
    )
    assert [f"{m.rule.id} {m.message} ({m.path})" for m in matches] == []
