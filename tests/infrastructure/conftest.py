"""Infrastructure tests: the stack is synthesized once per configuration per session (bundling skipped).

Two configurations cover the stack: ``full`` sets every optional feature to a non-default value (Slack,
alarm email, configuration sets, an address identity next to a domain one, PITR off, ERROR logging, the
SES sandbox, a sending domain in a hosted zone); ``minimal`` is the default ``stepmail`` object from
cdk.json, exactly what ``cdk synth`` deploys.  ``dns_outputs`` is the one variant they leave out: a
sending domain without a hosted zone, whose records become outputs.
"""

from __future__ import annotations

import os

# jsii warns on every start under Node 20 unless told not to; set before aws_cdk is imported.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest

from tests.infrastructure.synth import DNS_OUTPUTS_CONFIG, FULL_CONFIG, Synthesized, cdk_context, synthesize


@pytest.fixture(scope="session")
def full(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(cdk_context(FULL_CONFIG), tmp_path_factory.mktemp("cdk-full"))


@pytest.fixture(scope="session")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(cdk_context(), tmp_path_factory.mktemp("cdk-minimal"))


@pytest.fixture(scope="session")
def dns_outputs(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(cdk_context(DNS_OUTPUTS_CONFIG), tmp_path_factory.mktemp("cdk-dns-outputs"))


@pytest.fixture(params=["full", "minimal"])
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    """Each test that takes this runs against both configurations."""
    return request.getfixturevalue(request.param)
