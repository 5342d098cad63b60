"""What the twin corrects or supplies in moto's Step Functions interpreter.

moto 5.2.5 executes ASL (``execute_state_machine``) but, for this pipeline, lacks or differs from AWS
on the points below.  Each patch is small and names the moto internal it replaces; moto is pinned
exactly because these are internals, and the integration tests are what catch an upgrade breaking them.

1. ``StartSyncExecution`` is not implemented (404): added, running the existing ``SyncExecution``.
2. An unnamed ``StartExecution`` gets an ARN ending in ``:None`` (a second one collides): name it.
3. ``lambda:invoke`` without Docker only echoes its input: dispatch to the real handlers, in process,
   and return their exceptions as AWS-shaped function errors so Retry/Catch match class names.
4. ``aws-sdk:*`` errors come back as ``s3.s3Exception``-style names: use AWS's (``S3.NoSuchKeyException``).
5. Retry waits sleep in real time: scale them, and record each computed wait for the tests.
6. A new boto3 client per task costs ~12 ms: cache one per service, aimed at the twin and served in
   process (:mod:`twin.inprocess`).
7. Every finished execution is kept forever: keep the newest ``MAX_EXECUTIONS`` per state machine.
8. ``dynamodb:*`` errors are named after the error code (``DynamoDB.InternalServerError``); AWS names
   them after the SDK's exception class (``DynamoDB.InternalServerErrorException``).
9. The 256 KiB payload limit is measured on ``json.dumps``' default text (``", "`` separators,
   non-ASCII escaped as ``\\uXXXX``): up to six times what Step Functions counts for a Japanese body.
   Measure compact UTF-8, as AWS does (its quota: "256 KiB of data as a UTF-8 encoded string").
10. Where AWS's behaviour is not documented, the twin can take each plausible form in turn
    (:class:`AwsForms`): how an S3 HEAD 404 is named, how DynamoDB errors are named, whether a caught
    error carries a ``Cause``.  The tests run the affected paths under each.
11. ``lambda:invoke`` can fail in the Lambda service itself (``Lambda.ClientExecutionTimeoutException``...),
    not in the function: a :class:`LambdaServiceFault` raised by a function hook becomes that error.
12. ``States.ALL`` matches every error; on AWS it does not match ``States.DataLimitExceeded`` nor
    ``States.Runtime`` (terminal: no Retry or Catch on ``States.ALL`` sees them, the run fails).
13. DynamoDB writes are atomic per item on AWS; moto's check-then-write (a condition, an ``ADD``) can
    interleave between the server's threads, losing one of two concurrent ``ADD``s to a pacing
    counter (or passing two conditions at once): serialize moto's item writes.
14. A Wait until a timestamp waits whole seconds, cut short (``int`` of the time left, so a wait of 0.7 s
    is none) and against the local clock: wait until the time itself, in UTC, as AWS does.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core.responses import ActionResult
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_dynamodb as dynamodb_service,
)
from moto.stepfunctions.parser.backend.execution import SyncExecution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from producer.deployment import aws_client
from twin import speedups
from twin.inprocess import InProcessTransport

MAX_EXECUTIONS = 2000

#: aws-sdk integrations: AWS's service prefix for error names.
_SERVICE_PREFIX = {"s3": "S3", "sesv2": "SesV2", "sqs": "Sqs", "dynamodb": "DynamoDb", "lambda": "Lambda"}
#: S3 errors the AWS SDK models as their own exception class (the rest are ``S3.S3Exception``).
_S3_MODELED = {
    "404": "NoSuchKey",
    "NotFound": "NoSuchKey",
    "NoSuchKey": "NoSuchKey",
    "NoSuchBucket": "NoSuchBucket",
}


@dataclass
class AwsForms:
    """Which form the twin gives to what AWS does not document (see item 10 above).

    ``s3_not_found``: the error name of an ``aws-sdk:s3:headObject`` 404: ``S3.NoSuchKeyException`` (the
    Java SDK v2's class for it) or ``S3.S3Exception`` with ``Status Code: 404`` in the cause (what
    another emulator reports).  ``dynamodb_names``: ``exception-class`` (``DynamoDB.ThrottlingException``)
    or ``error-code`` (``DynamoDB.Throttling``).  ``causes``: ``present`` or ``absent`` (a caught error
    with no ``Cause`` field at all).
    """

    s3_not_found: str = "NoSuchKeyException"
    dynamodb_names: str = "exception-class"
    causes: str = "present"

    def __post_init__(self) -> None:
        allowed = {
            "s3_not_found": {"NoSuchKeyException", "S3Exception"},
            "dynamodb_names": {"exception-class", "error-code"},
            "causes": {"present", "absent"},
        }
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(f"{name} must be one of {sorted(values)}")


class LambdaServiceFault(Exception):
    """Raised by a function hook: the Lambda service (not the function) fails with this error code."""

    def __init__(self, code: str, message: str = "injected by the twin") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RetryWait:
    execution_arn: str
    state: str
    seconds: float


@dataclass
class InterpreterHooks:
    """The twin's side of the patches: where Lambda calls go, how fast time runs, what was waited."""

    endpoint_url: str
    #: Serves the interpreter's service calls in process (None: over HTTP, at ``endpoint_url``).
    in_process: InProcessTransport | None = None
    functions: dict[str, Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    time_scale: float = 1.0
    forms: AwsForms = field(default_factory=AwsForms)
    retry_waits: list[RetryWait] = field(default_factory=list)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                client = aws_client(
                    service,
                    region,
                    self.endpoint_url,
                    Config(parameter_validation=False, retries={"total_max_attempts": 1}, read_timeout=330),
                )
                self._clients[key] = self.in_process.attach(client) if self.in_process else client
            return self._clients[key]


_hooks: InterpreterHooks | None = None
_retry_context = threading.local()


def install(hooks: InterpreterHooks) -> None:
    """Point the interpreter at ``hooks`` (idempotent; the last twin started wins)."""
    global _hooks
    first = _hooks is None
    _hooks = hooks
    if first:
        _patch_sync_execution()
        _patch_unnamed_executions()
        _patch_lambda_invoke()
        _patch_aws_sdk_error_names()
        _patch_retry_clock()
        _patch_client_cache()
        _patch_dynamodb_error_names()
        _patch_payload_size()
        _patch_missing_causes()
        _patch_terminal_errors()
        _patch_atomic_item_writes()
        _patch_timestamp_waits()
        speedups.install()  # parse each definition once (twin/speedups.py)


def hooks() -> InterpreterHooks:
    if _hooks is None:
        raise RuntimeError("the twin's interpreter hooks are not installed")
    return _hooks


# ---------------------------------------------------------------------------- 1. StartSyncExecution
def _start_sync_execution(backend: StepFunctionBackend, arn: str, name: str, execution_input: str) -> Any:
    """moto's start_execution, with a SyncExecution run in the calling thread."""
    state_machine = backend.describe_state_machine(arn)
    # moto's parser runs the backend's StateMachine models, which its annotations do not declare.
    clone: Any = copy.deepcopy(
        state_machine, {id(state_machine.executions): [], id(state_machine.backend): state_machine.backend}
    )
    json.loads(execution_input)
    execution = SyncExecution(
        name=name,
        sm_type=clone.sm_type,
        role_arn=clone.roleArn,
        # AWS names Express runs `...:express:<machine>:<name>:<id>`; moto's DescribeExecution,
        # GetExecutionHistory and StopExecution only parse `...:execution:<machine>:<name>`.
        exec_arn=f"arn:{backend.partition}:states:{backend.region_name}:{backend.account_id}:execution:"
        f"{state_machine.name}:{name}",
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=clone,
        start_date=datetime.datetime.now(tz=datetime.UTC),
        cloud_watch_logging_session=None,
        input_data=execution_input,
        trace_header=None,
        activity_store={},
    )
    _remember(state_machine, execution)
    execution.start()
    return execution


def _remember(state_machine: Any, execution: Any) -> None:
    state_machine.executions.append(execution)
    if len(state_machine.executions) > MAX_EXECUTIONS:  # 7. prune: ~70 KB per finished execution
        del state_machine.executions[: len(state_machine.executions) - MAX_EXECUTIONS]


def _patch_sync_execution() -> None:
    def start_sync_execution(self: StepFunctionResponse) -> ActionResult:
        execution = _start_sync_execution(
            self.stepfunction_backend,
            self._get_param("stateMachineArn"),
            self._get_param("name") or str(uuid.uuid4()),
            self._get_param("input", if_none="{}"),
        )
        return ActionResult(dict(execution.to_start_sync_execution_output()))

    StepFunctionResponse.start_sync_execution = start_sync_execution  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- 2. unnamed executions
def _patch_unnamed_executions() -> None:
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        execution = original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)
        state_machine = self.describe_state_machine(state_machine_arn)
        _remember(state_machine, state_machine.executions.pop())
        return execution

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


# ---------------------------------------------------------------------------- 3. lambda:invoke
class _Context:
    """The parts of the Lambda context object that Powertools and our handlers read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_name
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "twin"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def lambda_context(function_name: str) -> _Context:
    return _Context(function_name)


def _invoke_in_process(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
    name = parameters["FunctionName"]
    function = hooks().functions.get(name)
    if function is None:
        raise ClientError(
            {
                "Error": {"Code": "ResourceNotFoundException", "Message": f"Function not found: {name}"},
                "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": str(uuid.uuid4())},
            },
            "Invoke",
        )
    payload = json.loads(parameters.get("Payload") or b"{}")
    try:
        result = function(payload)
    except LambdaServiceFault as fault:  # 11. the service failed, not the function
        raise ClientError(
            {
                "Error": {"Code": fault.code, "Message": str(fault)},
                "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": str(uuid.uuid4())},
            },
            "Invoke",
        ) from None
    except Exception as error:  # the Lambda runtime's shape for an unhandled exception
        return {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "ExecutedVersion": "$LATEST",
            "Payload": {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": str(uuid.uuid4()),
                "stackTrace": traceback.format_tb(error.__traceback__),
            },
        }
    return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": result}


def _patch_lambda_invoke() -> None:
    lambda_eval_utils._invoke_lambda_function = _invoke_in_process


# ---------------------------------------------------------------------------- 4. aws-sdk error names
def _aws_error_name(service: str, error: ClientError) -> str:
    prefix = _SERVICE_PREFIX.get(service, service[:1].upper() + service[1:])
    code = str(error.response.get("Error", {}).get("Code", ""))
    if service == "s3":
        modeled = _S3_MODELED.get(code, "S3")
        if modeled == "NoSuchKey" and hooks().forms.s3_not_found == "S3Exception":
            modeled = "S3"  # 10. the other plausible form: generic, the 404 only in the cause
        return f"S3.{modeled}Exception"
    return f"{prefix}.{code}" if code.endswith("Exception") else f"{prefix}.{code}Exception"


def _patch_aws_sdk_error_names() -> None:
    original = aws_sdk_service.StateTaskServiceAwsSdk._from_error

    def _from_error(self: Any, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):  # botocore leaves it out for S3 HEAD errors; moto requires it
            ex.response.setdefault("ResponseMetadata", {}).setdefault("RequestId", "")
        event = original(self, env, ex)
        if isinstance(ex, ClientError):
            name = _aws_error_name(self._get_boto_service_name(), ex)
            # error_name is Final: a new event for the same state, with the service's error name.
            event = FailureEvent(env, CustomErrorName(name), event.event_type, event.event_details)
            details = event.event_details.get("taskFailedEventDetails") if event.event_details else None
            if details is not None:
                details["error"] = name
        return event

    aws_sdk_service.StateTaskServiceAwsSdk._from_error = _from_error  # type: ignore[method-assign]


# ---------------------------------------------------------------------------- 5. retry clock
class _RetryClock:
    """Stands in for the ``time`` module in moto's retrier: records the wait, sleeps it scaled."""

    @staticmethod
    def sleep(seconds: float) -> None:
        twin = hooks()
        env = getattr(_retry_context, "env", None)
        context = env.states.context_object.context_object_data if env is not None else {}
        twin.retry_waits.append(
            RetryWait(
                execution_arn=context.get("Execution", {}).get("Id", ""),
                state=context.get("State", {}).get("Name", ""),
                seconds=float(seconds),
            )
        )
        threading.Event().wait(seconds * twin.time_scale)


def _patch_retry_clock() -> None:
    original = retrier_decl.RetrierDecl._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        _retry_context.env = env
        try:
            original(self, env)
        finally:
            _retry_context.env = None

    retrier_decl.RetrierDecl._eval_body = _eval_body  # type: ignore[method-assign]
    # The retrier sleeps through its module's ``time`` (which moto does not export): swap in the clock.
    retrier: Any = retrier_decl
    retrier.time = _RetryClock


# ---------------------------------------------------------------------------- 6. client cache
def _patch_client_cache() -> None:
    import sys

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        return hooks().client(service, region)

    modules: list[Any] = list(sys.modules.values())  # some set boto_client_for: checked below
    for module in modules:
        name = getattr(module, "__name__", "")
        if name.startswith("moto.stepfunctions.parser") and hasattr(module, "boto_client_for"):
            module.boto_client_for = boto_client_for


# ---------------------------------------------------------------------------- 8. dynamodb error names
def _patch_dynamodb_error_names() -> None:
    original = dynamodb_service.StateTaskServiceDynamoDB._error_cause_from_client_error

    def error_cause(client_error: ClientError) -> tuple[str, str]:
        error, cause = original(client_error)
        if hooks().forms.dynamodb_names == "error-code":  # 10. the other naming convention
            return error.removesuffix("Exception"), cause
        return (error if error.endswith("Exception") else f"{error}Exception"), cause

    dynamodb_service.StateTaskServiceDynamoDB._error_cause_from_client_error = staticmethod(error_cause)  # type: ignore[method-assign]


# ---------------------------------------------------------------------------- 9. payload size
def _patch_payload_size() -> None:
    import sys

    from moto.stepfunctions.parser import quotas
    from moto.stepfunctions.parser.asl.utils import encoding

    def is_within_size_quota(value: Any) -> bool:
        # Compact UTF-8, as stepmail.core.budget counts; SDK results may hold datetimes (moto's encoder).
        text = value if isinstance(value, str) else _compact(value, encoding._DateTimeEncoder)
        return len(text.encode("utf-8")) < quotas.MAX_STATE_SIZE_UTF8_BYTES

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("moto.stepfunctions.parser") and hasattr(
            module, "is_within_size_quota"
        ):
            setattr(module, "is_within_size_quota", is_within_size_quota)  # noqa: B010 - any module


# ---------------------------------------------------------------------------- 10. missing causes
def _patch_missing_causes() -> None:
    """With ``causes="absent"``, a failed Task's error output has no ``Cause`` key at all.

    (moto builds every caught or retried error's output in ``_construct_error_output_value``; the
    errors our Fail states raise keep the cause their ``CausePath`` builds.)
    """
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

    original = ExecutionState._construct_error_output_value

    def construct(failure_event: FailureEvent) -> Any:
        output = original(failure_event)
        details: dict[str, Any] = dict(failure_event.event_details or {})
        from_a_task = any(key.startswith(("task", "lambda")) for key in details)
        if from_a_task and hooks().forms.causes == "absent":
            output.pop("Cause", None)
        return output

    ExecutionState._construct_error_output_value = staticmethod(construct)  # type: ignore[method-assign]


# ---------------------------------------------------------------------------- 12. terminal errors
def _patch_terminal_errors() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    terminal = {StatesErrorNameType.StatesStatesDataLimitExceeded, StatesErrorNameType.StatesRuntime}
    states_all = StatesErrorName(typ=StatesErrorNameType.StatesALL)
    original = ErrorEqualsDecl._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if (
            isinstance(error_name, StatesErrorName)
            and error_name.typ in terminal
            and states_all in self.error_names
        ):
            env.stack.pop()
            env.stack.append(False)  # only an ErrorEquals naming it could match, and it is not States.ALL
            return
        original(self, env)

    ErrorEqualsDecl._eval_body = _eval_body  # type: ignore[method-assign]


def _compact(value: Any, encoder: type[json.JSONEncoder]) -> str:
    return json.dumps(value, cls=encoder, ensure_ascii=False, separators=(",", ":"))


# ----------------------------------------------------------------------- 13. atomic item writes
_item_writes = threading.RLock()


def _patch_atomic_item_writes() -> None:
    """One write at a time in moto's DynamoDB backend: each condition and update sees the item as the
    last write left it (DynamoDB's own guarantee for a single item)."""
    from moto.dynamodb.models import DynamoDBBackend

    def serialized(write: Callable[..., Any]) -> Callable[..., Any]:
        def atomic(*args: Any, **kwargs: Any) -> Any:
            with _item_writes:
                return write(*args, **kwargs)

        return atomic

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        setattr(DynamoDBBackend, name, serialized(getattr(DynamoDBBackend, name)))


# ------------------------------------------------------------------------- 14. timestamp waits
def _patch_timestamp_waits() -> None:
    """``Wait`` with ``Timestamp``/``TimestampPath``: sleep until that UTC time (AWS reads it to the
    second; the time left to it is not rounded down to whole seconds)."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp

    def eval_body(self: Any, env: Any) -> None:
        self.string.eval(env=env)
        text: str = env.stack.pop()
        target = self._from_timestamp_string(timestamp=text)
        if target is None:  # moto's own failure: States.Runtime, as AWS
            raise FailureEventException(self._create_failure_event(env, text))
        left = (target.replace(tzinfo=datetime.UTC) - datetime.datetime.now(datetime.UTC)).total_seconds()
        if left > 0:
            env.program_state_event.wait(left)

    Timestamp._eval_body = eval_body  # type: ignore[method-assign]  # TimestampPath inherits it
