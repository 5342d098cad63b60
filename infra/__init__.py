"""The CDK side of stepmail: configuration, the state machine definition and the stack that deploys them.

``infra.stack.StepmailStack`` composes one construct per concern from ``infra.constructs``; ``app.py``
at the repository root builds it from the validated configuration and runs cdk-nag.
"""
