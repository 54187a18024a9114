"""The dashboard and the alarms show metrics that exist: none of them can silently go blank.

The template's dashboard is read as CloudFormation deployed it on the local stack (the body with every
`${...}` resolved), its alarms from the translated template with every `Ref` and `GetAtt` resolved against
the live stack (moto's CloudFormation creates no alarms). Each metric they reference is then checked:

- in the functions' namespace (`RedshiftEtlCallback`): against the Embedded Metric Format lines the real
  binaries printed on this stack (namespace, metric name, dimension set and dimension values: the reconciler's
  function name, the stack's name), after one pipeline run of this test's own;
- in an AWS namespace: against the metrics and dimensions AWS documents for that service (the table below,
  each entry with its documentation page), with the dimension value the physical id of a resource of the type
  that publishes it in this stack.

A metric renamed in the code, a dimension dropped, a `STACK_NAME` the template no longer sets, or a widget
pointing at a resource of the wrong kind fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from deploy import load_template, translate
from run import follow, start_execution
from stack import LOCAL_PARAMETERS, ROOT
from test_local_deploy import Resolver

NAMESPACE = "RedshiftEtlCallback"
# Printed only when an OpenLineage event is not delivered, which never happens on this stack (lineage off,
# or on and reaching the local receiver): test_lineage_outage.py checks it on a stack whose endpoint never
# answers, against this dashboard.
ONLY_ON_LINEAGE_OUTAGE = {"LineageEmitFailures"}

# Metrics AWS publishes, by namespace: metric name -> the dimension that names the resource, and the
# resource type (translated template) whose physical id is that dimension's value.
# AWS/States: https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html (execution metrics)
# AWS/SQS:    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
# AWS/DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
# AWS/Lambda: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
AWS_METRICS = {
    "AWS/States": ({"ExecutionTime", "ExecutionThrottled", "ExecutionsAborted", "ExecutionsFailed",
                    "ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsTimedOut"},
                   "StateMachineArn", "AWS::StepFunctions::StateMachine"),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage",
                 "NumberOfMessagesSent"}, "QueueName", "AWS::SQS::Queue"),
    "AWS/DynamoDB": ({"ConditionalCheckFailedRequests", "ThrottledRequests", "SystemErrors"},
                     "TableName", "AWS::DynamoDB::Table"),
    "AWS/Lambda": ({"Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions"},
                   "FunctionName", "AWS::Lambda::Function"),
}

SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)'")


def dashboard_metrics(body: dict) -> list[tuple[str, str, dict[str, str | None]]]:
    """(namespace, metric, {dimension: value or None for 'any'}) of every widget's metric or SEARCH."""
    found = []
    for widget in body["widgets"]:
        for entry in widget.get("properties", {}).get("metrics", []):
            fields = [f for f in entry if not isinstance(f, dict)]
            if not fields:  # an expression
                (options,) = entry
                match = SEARCH.search(options["expression"])
                assert match, f"only SEARCH expressions are checked here: {options['expression']}"
                namespace, *dims = [p.strip() for p in match["schema"].split(",")]
                terms = dict(re.findall(r'(\w+)="([^"]*)"', match["terms"]))
                metric = terms.pop("MetricName")
                found.append((namespace, metric, {d: terms.get(d) for d in dims}))
                continue
            namespace, metric, *pairs = fields
            assert len(pairs) % 2 == 0, entry
            found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2]))))
    return found


def alarm_metrics(alarms: list[dict]) -> list[tuple[str, str, dict[str, str | None]]]:
    return [(a["Namespace"], a["MetricName"], {d["Name"]: d["Value"] for d in a.get("Dimensions", [])})
            for a in alarms]


def emitted(log_dir: Path) -> dict[tuple[str, frozenset], set[tuple]]:
    """(metric, dimension names) -> the dimension values seen, from every EMF line of every function log."""
    seen: dict[tuple[str, frozenset], set[tuple]] = {}
    for log in log_dir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"_aws"' not in line:
                continue
            try:
                doc = json.loads(line[line.index("{"):])
            except ValueError:
                continue
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == NAMESPACE, directive
                for dims in directive["Dimensions"]:
                    for metric in directive["Metrics"]:
                        assert metric["Name"] in doc, f"{metric['Name']} has no value in {line}"
                        key = (metric["Name"], frozenset(dims))
                        seen.setdefault(key, set()).add(tuple(sorted((d, doc[d]) for d in dims)))
    return seen


def test_every_metric_the_dashboard_and_the_alarms_show_is_emitted(stack):
    sfn = stack.client("stepfunctions")
    desc = follow(sfn, start_execution(sfn, stack.deployment.state_machine_arn, "2021-06-26", prefix="e2e-dash"),
                  echo=print, timeout=180)
    assert desc["status"] == "SUCCEEDED", desc

    cloudwatch = stack.client("cloudwatch")
    (dashboard,) = stack.deployment.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(cloudwatch.get_dashboard(DashboardName=dashboard)["DashboardBody"])
    # moto's CloudFormation creates no alarms (local/deploy.py SKIPPED): they are read from the translated
    # template, every Ref and GetAtt resolved against the live stack
    translated = translate(load_template(ROOT / "template.yaml"), LOCAL_PARAMETERS, stack.client("iam"), ROOT)
    resolve = Resolver(stack, translated)
    alarms = [resolve({k: v for k, v in r["Properties"].items() if k in ("Namespace", "MetricName", "Dimensions")})
              for r in translated["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) >= 8, alarms
    referenced = dashboard_metrics(body) + alarm_metrics(alarms)
    assert len(referenced) > 20, referenced

    # the reconciler prints one line per run (every 2 s here); the run above, the submitter's and step lines
    seen = emitted(stack.run_dir / "logs")
    physical = {t: set(stack.deployment.of_type(t).values()) for (_, _, t) in AWS_METRICS.values()}
    problems = []
    for namespace, metric, dims in referenced:
        where = f"{namespace} {metric} {dims}"
        if namespace == NAMESPACE and metric in ONLY_ON_LINEAGE_OUTAGE:
            continue
        if namespace == NAMESPACE:
            values = seen.get((metric, frozenset(dims)))
            if not values:
                problems.append(f"{where}: no function emits it with exactly these dimensions")
                continue
            wanted = tuple(sorted((d, v) for d, v in dims.items() if v is not None))
            if not any(set(wanted) <= set(v) for v in values):
                problems.append(f"{where}: emitted only with {sorted(values)}")
        elif namespace in AWS_METRICS:
            names, dimension, rtype = AWS_METRICS[namespace]
            if metric not in names:
                problems.append(f"{where}: not a metric {namespace} documents")
            elif set(dims) != {dimension}:
                problems.append(f"{where}: {namespace} {metric} has dimension {dimension}")
            elif not any(names_resource(dims[dimension], p) for p in physical[rtype]):
                problems.append(f"{where}: {dims[dimension]} is no {rtype} of this stack ({sorted(physical[rtype])})")
        else:
            problems.append(f"{where}: unknown namespace")
    assert not problems, "\n".join(problems)

    # the dashboard covers what an operator looks at (issue 16): each of these is on it
    shown = {m for _, m, _ in dashboard_metrics(body)}
    for metric in ("ExecutionsFailed", "StepDuration", "LostEventsRecovered", "Heartbeats", "Cancellations",
                   "SubmitsThrottled", "ApproximateNumberOfMessagesVisible", "ConditionalCheckFailedRequests"):
        assert metric in shown, metric
    # the step metrics carry the stack's name (template Globals STACK_NAME), one per step of the run
    steps = {dict(v)["Step"] for v in seen[("StepDuration", frozenset({"Stack", "Step"}))]
             if dict(v)["Stack"] == stack.deployment.stack_name}
    history = sfn.get_execution_history(executionArn=desc["executionArn"], maxResults=1000)["events"]
    submitted = {json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["step"]
                 for e in history if e["type"] == "TaskScheduled"
                 and "waitForTaskToken" in e["taskScheduledEventDetails"]["resource"]}
    assert submitted and submitted <= steps, (submitted, steps)


def names_resource(value: str, physical_id: str) -> bool:
    """A dimension value names the resource: its physical id, or the name at the end of its ARN or URL."""
    return value == physical_id or physical_id.endswith(f"/{value}") or physical_id.endswith(f":{value}")
