"""One construct per concern; ``infra.stack.StepmailStack`` wires them together."""
