"""The twin's AWS endpoint: moto's server on a loopback port, with WSGI layers in front of it.

Also the one place that reaches into moto's in-process state for what its API does not show
(the Step Functions backend's executions).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import requests
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from producer.deployment import TWIN_ACCOUNT_ID

#: Run state machines for real (the ASL interpreter), and Lambda functions in process (no Docker).
_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


class TwinServer(ThreadedMotoServer):
    """moto's threaded server with WSGI layers in front of its application (faults, the console...)."""

    def __init__(self, port: int, layers: list[Callable[[Any], Any]]) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.layers = layers
        self._app: Any = None

    @property
    def app(self) -> Any:
        """The WSGI application served: moto's, behind the layers (built once, on first use).

        The twin's own clients call it in process (:mod:`twin.inprocess`); the HTTP server serves it.
        """
        if self._app is None:
            app: Any = DomainDispatcherApplication(create_backend_app)
            for layer in self.layers:
                app = layer(app)
            self._app = app
        return self._app

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        """Serve, with moto's state reset and configured for the twin."""
        super().start()
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
        requests.post(f"{self.endpoint_url}/moto-api/config", json=_MOTO_CONFIG, timeout=10)

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self.app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def state_machine(region: str, arn: str) -> Any | None:
    """moto's state machine ``arn`` (with its executions), or None."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[TWIN_ACCOUNT_ID][region]
    return next((machine for machine in backend.state_machines if machine.arn == arn), None)
