"""cdk-nag's AwsSolutions checks run inside synthesis (infra/app.py); these tests read the
validation report CDK writes next to the template."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth


def aws_solutions(synth: Synth) -> dict[str, Any]:
    reports = [
        r for r in synth.validation_report["pluginReports"] if r["pluginName"] == "AwsSolutions"
    ]
    assert len(reports) == 1
    report: dict[str, Any] = reports[0]
    return report


@pytest.mark.parametrize("variant", ["synth", "synth_https", "synth_scale_to_zero"])
def test_no_unsuppressed_aws_solutions_finding(
    variant: str, request: pytest.FixtureRequest
) -> None:
    report = aws_solutions(request.getfixturevalue(variant))
    assert report["violations"] == []
    assert report["conclusion"] == "success"


def test_every_acknowledgment_matches_a_finding_on_its_own_construct(synth: Synth) -> None:
    from infra.nag import FINDINGS, PACK

    """No stale acknowledgment, and none wider than the resource it excuses."""
    stack = synth.stack.stack_name
    suppressed = {
        (v["acknowledgedAt"], v["acknowledgedId"], v["reason"])
        for v in aws_solutions(synth)["suppressedViolations"]
    }
    expected = {(f"{stack}/{f.path}", PACK + f.rule, f.reason) for f in FINDINGS}
    assert suppressed == expected
    for violation in aws_solutions(synth)["suppressedViolations"]:
        paths = [c["constructPath"] for c in violation["violatingConstructs"]]
        assert paths == [violation["acknowledgedAt"]]


def test_acknowledgments_are_narrow_and_explained() -> None:
    from infra.nag import FINDINGS

    for finding in FINDINGS:
        # One CloudFormation resource, one rule (with the finding's detail where it has several).
        assert finding.path.endswith("/Resource"), finding
        assert finding.rule.startswith("AwsSolutions-"), finding
        if finding.rule.startswith("AwsSolutions-IAM5"):
            assert finding.rule != "AwsSolutions-IAM5", "acknowledge IAM5 per finding"
        assert finding.reason.strip(), finding
