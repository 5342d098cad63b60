"""cdk-nag (AwsSolutions) and cfn-lint on the synthesized templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Validations
from aws_cdk.assertions import Annotations, Match
from cfnlint.api import ManualArgs, lint_file

from tests.infrastructure.synth import Synthesized

# cfn-lint warnings we accept, each with the reason.
_ACCEPTED_CFN_LINT_WARNINGS = {
    # CDK adds an explicit DependsOn from a Lambda function / state machine to its role (so the role's
    # policy exists before the first invocation) next to the GetAtt of the role: redundant, harmless.
    "W3005",
}
_MIN_REASON_LENGTH = 80


def _plugin_report(synthesized: Synthesized, name: str) -> dict[str, Any]:
    reports = {report["pluginName"]: report for report in synthesized.validation_report()["pluginReports"]}
    return reports[name]


def test_aws_solutions_checks_pass_with_nothing_unacknowledged(synthesized: Synthesized) -> None:
    # Given the validation report written at synth (cdk-nag runs as a CDK validation plugin)
    report = _plugin_report(synthesized, "AwsSolutions")

    # Then no error or warning is left unacknowledged
    assert report["violations"] == []
    assert report["conclusion"] == "success"


def test_no_plugin_reports_any_violation(synthesized: Synthesized) -> None:
    # Given every validation plugin's report (construct annotations included)
    reports = synthesized.validation_report()["pluginReports"]

    # Then none has a violation
    assert [(report["pluginName"], report["violations"]) for report in reports if report["violations"]] == []


def test_stack_has_no_error_or_warning_annotations(synthesized: Synthesized) -> None:
    # Given the stack's annotations
    annotations = Annotations.from_stack(synthesized.stack)

    # Then there is no error and no warning (cdk-nag's included)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []


def test_every_acknowledged_finding_has_a_written_reason(synthesized: Synthesized) -> None:
    # Given the findings that acknowledgments suppressed
    suppressed = _plugin_report(synthesized, "AwsSolutions")["suppressedViolations"]

    # Then each was acknowledged by its own finding id, with a reason that explains it
    assert suppressed
    for finding in suppressed:
        assert finding["acknowledgedId"] == f"AwsSolutions::{finding['ruleName']}"
        assert len(finding["reason"]) >= _MIN_REASON_LENGTH, finding


def test_every_acknowledgment_matches_a_real_finding(synthesized: Synthesized) -> None:
    # Given every acknowledgment recorded in the construct tree
    acknowledged = {
        (construct.node.path, rule_id)
        for construct in synthesized.app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule_id in entry.data
    }

    # When we compare them with the findings they suppressed
    used = {
        (finding["acknowledgedAt"], finding["acknowledgedId"])
        for finding in _plugin_report(synthesized, "AwsSolutions")["suppressedViolations"]
    }

    # Then none is stale: a fixed finding must take its acknowledgment with it
    assert acknowledged == used


def test_cfn_lint_finds_no_errors(synthesized: Synthesized) -> None:
    # Given the synthesized template
    template = Path(synthesized.outdir) / f"{synthesized.stack.artifact_id}.template.json"

    # When cfn-lint checks it (the inlined state machine definition included) for the stack's region
    matches = lint_file(template, ManualArgs(regions=[synthesized.config.region]))

    # Then nothing is reported beyond the warnings accepted above
    unexpected = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id not in _ACCEPTED_CFN_LINT_WARNINGS]
    assert unexpected == []
    assert not any(m.rule.id.startswith("E") for m in matches)
