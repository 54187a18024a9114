"""The local stack's moto server: moto 5.2.5 (pinned in local/requirements.txt) with 35 patches and two
probes, one module per emulated service. Each patch's function says which version it targets, what AWS
does, what moto does, and how to check that it is still needed; guard.py makes a moto upgrade (or a
changed internal) fail loudly at start, naming the patches to re-check.

Usage: python local/moto_adapter --port PORT --lambda-endpoint http://127.0.0.1:LAMBDA_PORT
                                 [--faults-file PATH] [--callbacks-log PATH] [--requests-log PATH]
                                 [--routes-file PATH]
       (or `python -m moto_adapter ...` with local/ on the path)

Patches (number, module, what it does):
   1  server          moto's config: the ASL interpreter on, Lambda without Docker
   2  lambda_         Lambda invokes run the real binaries under cargo lambda watch
   3  events          EventBridge rules deliver to Lambda targets, with retries and dead-letter queue
   4  stepfunctions   SendTaskFailure keeps its cause
   5  stepfunctions   $$.Execution.StartTime is an ISO 8601 string
   6  cloudformation  AWS::StepFunctions::StateMachine created where the API reads it, with substitutions
   7  events          scheduled rules fire at their rate (seconds too, locally)
   8  stepfunctions   StopExecution interrupts waiting Tasks and the run stays ABORTED
   9  stepfunctions   Step Functions Execution Status Change events on the default bus
  10  lambda_         fault injection: a Lambda invoke fails after the function ran (faults.py reads the file)
  11  cloudformation  a resource that cannot be created is a named ValidationError, not HTTP 500
  12  stepfunctions   a new task token for every Retry attempt of a waitForTaskToken Task
  13  stepfunctions   a callback that arrived during the invoke is not lost under HeartbeatSeconds
  14  events          EventBridge rules start Step Functions targets
  15  s3              a new, increasing sequencer per write in S3's EventBridge events
  16  stepfunctions   the states:startExecution integration's parameters and output as on AWS
  17  stepfunctions   SendTask* skip executions that are still starting (no HTTP 500)
  18  stepfunctions   the parsed ASL program is kept per definition
  19  stepfunctions   parsed JSONPaths are kept per path
  20  stepfunctions   one boto3 client per service, region and endpoint for the integrations
  21  server          moto's module list read once; no access log line per request
  22  lambda_         at most MAX_OUTSTANDING_PER_FUNCTION invocations at cargo lambda (its deadlock)
  23  server          moto's WSGI app behind waitress; no "100 Continue" for a request without a body
  24  dynamodb        each DynamoDB item request is atomic
  25  dynamodb        Step Functions' DynamoDB error names; fault injection: a write applied, then HTTP 500
  26  stepfunctions   a Parallel fails with its branch's own error name, States.* included
  27  cloudformation  UpdateStack updates the state machine the API reads, with substitutions
  28  stepfunctions   an execution started without a name gets a UUID
  29  stepfunctions   startExecution.sync:2's output and failure cause in PascalCase, as on AWS
  30  stepfunctions   aws-sdk:sfn Tasks take and return PascalCase, as on AWS
  31  stepfunctions   RedriveExecution, $$.Execution.RedriveCount and DescribeExecution's redrive fields
  32  stepfunctions   an inline Map fails with its iteration's own error name, States.* included
  33  stepfunctions   one outcome per task attempt: its callback or its own failure, whichever is first
  34  stepfunctions   a missed heartbeat matches States.HeartbeatTimeout in Retry/Catch (it fails as States.Timeout)
  35  stepfunctions   test-only time compression: a fault scales the Retry waits of matching states (every attempt made)

Probes: `--callbacks-log` (stepfunctions.probe_callbacks: every task callback Step Functions handled)
and `--requests-log` (server.probe_requests: moto's CPU and wall time per request kind).

The callbacks probe (`--callbacks-log PATH`, off when absent): every `SendTaskSuccess`/`SendTaskFailure`/
`SendTaskHeartbeat` Step Functions handled is appended to PATH as a JSON line `{"api", "token"
(first 12 hex of the token's SHA-256, never the token), "accepted", "error", "at"}`, so the soak
test counts what Step Functions accepted, not what the functions believe they sent.
"""

from __future__ import annotations

import re

from . import cloudformation, dynamodb, events, lambda_, s3, server, stepfunctions
from .faults import Faults
from .guard import applied, check_moto_version

PATCHES: dict[int, tuple[str, str]] = {
    int(m.group(1)): (m.group(2), m.group(3))
    for m in re.finditer(r"^ +(\d+)  (\w+) +(.+)$", __doc__.split("Patches (number", 1)[1].split("\n\n", 1)[0], re.M)
}

__all__ = ["PATCHES", "Faults", "applied", "apply_all", "check_moto_version"]


def apply_all(lambda_endpoint: str, faults_file: str | None = None, callbacks_log: str | None = None,
              requests_log: str | None = None, routes_file: str | None = None) -> Faults:
    """Check moto's version, then apply every patch and the probes asked for, in the order they were
    always applied (patch 15 wraps patch 3's `Rule.send_to_targets`). Returns the faults reader."""
    check_moto_version()
    endpoint = lambda_endpoint.rstrip("/")
    server.configure()
    faults = Faults(faults_file)
    lambda_.set_routes_file(routes_file)
    lambda_.patch_lambda(endpoint, faults)
    events.patch_events(endpoint)
    events.patch_schedules(endpoint)
    stepfunctions.patch_stop_execution()
    stepfunctions.patch_execution_events()
    stepfunctions.patch_send_task_failure()
    stepfunctions.patch_context_start_time()
    cloudformation.patch_state_machine_cloudformation()
    cloudformation.patch_state_machine_update()
    cloudformation.patch_create_resource_errors()
    stepfunctions.patch_retry_task_tokens()
    s3.patch_s3_sequencer()
    stepfunctions.patch_sfn_integration_parameters()
    stepfunctions.patch_starting_executions()
    stepfunctions.patch_program_cache()
    stepfunctions.patch_jsonpath_cache()
    stepfunctions.patch_integration_clients()
    server.patch_request_dispatch()
    dynamodb.patch_dynamodb_atomic()
    stepfunctions.patch_parallel_error_names()
    stepfunctions.patch_unnamed_executions()
    stepfunctions.patch_sync2_execution_output()
    stepfunctions.patch_sdk_sfn_integration()
    stepfunctions.patch_redrive_execution()
    stepfunctions.patch_map_error_names()
    stepfunctions.patch_one_outcome_per_attempt(faults)
    stepfunctions.patch_heartbeat_timeout_matching()
    stepfunctions.patch_retry_interval_scale(faults)
    dynamodb.patch_dynamodb_integration(faults)
    stepfunctions.probe_callbacks(callbacks_log)
    server.probe_requests(requests_log)
    server.patch_waitress_continue()
    return faults
