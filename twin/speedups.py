"""Speed-ups of moto's Step Functions emulator for the twin, each measured by ``bench/twin_throughput.py``.

1. **Parse each definition once.**  moto parses the ASL again for every execution (ANTLR, ~100 ms of
   CPU for stepmail's definition, about half of the twin's CPU per email).  The parsed program is
   shared by concurrent executions: its components keep no state of a run (a run's state lives in its
   ``Environment``: retry attempt counters are keyed by the component's ``heap_key`` in the run's own
   heap).  Verified by ``ast`` over ``moto.stepfunctions.parser.asl.component`` in moto 5.2.5: outside
   constructors, components assign attributes only while being built (``from_state_props``) or in
   per-run objects (Map job pools and workers); the integration tests run concurrent executions on it.
   ``heap_key`` is created lazily with a race, so every key is made once here, before sharing.
2. **Parse each JSONPath once.**  moto builds a new ``jsonpath_ng`` parser (a PLY LR table) for every
   path it evaluates, several per state: ~10% of the twin's CPU.  Parsed paths are immutable
   (``find`` and ``update_or_create`` change the data, never the expression), so one is shared.
3. **Read a queue's retention period directly.**  moto's ReceiveMessage checks each message's
   retention by computing *all* the queue's attributes, whose approximate counts scan every message:
   O(messages) per message received, ~10% of the CPU with a few hundred messages queued.
4. **Read the clock once, cheaply, in SQS.**  moto's SQS asks ``unix_time()`` (two ``datetime``
   objects and a subtraction) for every message it looks at, and its queue scans (a send computes
   every attribute of the queue; a receive checks each message's visibility) look at every message:
   ~12% of the twin's CPU with a few hundred messages queued.  ``time.time()`` is the same number.
5. **List moto's modules once.**  To route each request, moto's server asks whether the service's
   name is one of its modules by listing its package directory (a ``listdir`` and ~200 ``stat``
   calls, ~0.3 ms of CPU and more in the kernel, per request).  The package does not change.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jsonpath_ng.ext.parser import parse as parse_extended
from jsonpath_ng.parser import parse
from moto import backends
from moto.core.utils import unix_time
from moto.sqs import models as sqs_models
from moto.sqs.models import Message, SQSBackend
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend import execution_worker

MAX_CACHED_DEFINITIONS = 32
MAX_CACHED_PATHS = 4096

_COMPONENTS = "moto.stepfunctions.parser.asl"
_programs: OrderedDict[str, EvalComponent] = OrderedDict()
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Apply every speed-up (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    execution_worker.ExecutionWorker._get_evaluation_entrypoint = _cached_entrypoint  # type: ignore[method-assign]
    # Each module imported its own ``parse`` (the extended and the plain grammar): replace both names.
    _cache_parse(json_path, parse_extended)
    _cache_parse(result_path, parse)
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    # moto.sqs.models imported both names: replace them there (moto's own stay for its other services).
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    sqs: Any = sqs_models
    sqs.unix_time, sqs.unix_time_millis = _fast_unix_time, _fast_unix_time_millis


def _cache_parse(module: Any, parse: Callable[[str], Any]) -> None:
    """Replace the ``parse`` that ``module`` imported (moto does not export it) with a cached one."""
    module.parse = functools.lru_cache(maxsize=MAX_CACHED_PATHS)(parse)


def parsed_program(definition: str) -> EvalComponent:
    """The program for ``definition``, parsed once (the newest ``MAX_CACHED_DEFINITIONS`` are kept)."""
    with _lock:
        program = _programs.get(definition)
        if program is not None:
            _programs.move_to_end(definition)
            return program
    program = AmazonStateLanguageParser.parse(definition)[0]
    _make_heap_keys(program)
    with _lock:
        program = _programs.setdefault(definition, program)  # two first runs: both use one program
        while len(_programs) > MAX_CACHED_DEFINITIONS:
            _programs.popitem(last=False)
    return program


def _cached_entrypoint(self: Any) -> EvalComponent:
    return parsed_program(self._evaluation_details.state_machine_details.definition)


def _within_retention(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's check, reading the one attribute it needs."""
    retention_seconds = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return retention_seconds + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


def _fast_unix_time(dt: Any = None) -> float:
    return time.time() if dt is None else unix_time(dt)


def _fast_unix_time_millis(dt: Any = None) -> float:
    return _fast_unix_time(dt) * 1000.0


def _make_heap_keys(component: Any, seen: set[int] | None = None) -> None:
    """Create every component's lazy ``heap_key`` now, before threads share the program."""
    seen = seen if seen is not None else set()
    if id(component) in seen:
        return
    seen.add(id(component))
    if isinstance(component, EvalComponent):
        _ = component.heap_key
    children = vars(component).values() if hasattr(component, "__dict__") else ()
    for child in children:
        items = (
            child.values()
            if isinstance(child, dict)
            else child
            if isinstance(child, (list, tuple))
            else (child,)
        )
        for item in items:
            if type(item).__module__.startswith(_COMPONENTS):
                _make_heap_keys(item, seen)
