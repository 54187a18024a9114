"""Parameter sets that would deploy and then break every run are refused at deploy time.

CloudFormation checks a stack's parameters before it creates anything: each parameter's constraints
(AllowedValues, AllowedPattern, MinValue, MaxValue) and then the template's `Rules` (an assertion whose
RuleCondition holds must be true). This test does the same with a small evaluator of exactly the rule
functions CloudFormation supports that the template uses (Fn::And, Fn::Or, Fn::Not, Fn::Equals,
Fn::Contains and Ref), feeds it parameter sets an operator could pick, and checks which are refused and why.
Neither moto nor the SAM translator evaluates Rules (the local stack's seconds-long ReconcileRate is not
one AWS accepts); cfn-lint and `sam validate --lint` check their syntax.

The numeric relations Rules cannot express (they only compare strings) are kept by the constraints, and
checked here for every combination they allow: a heartbeat covers the grace, two reconcile intervals and a
reconciler run; no step outlasts its execution; nothing sets the token TTL (it is derived in code).

Run: .venv/bin/python -m pytest tests/test_template_rules.py -q
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from deploy import load_template  # noqa: E402

TEMPLATE = load_template(ROOT / "template.yaml")
PARAMETERS = TEMPLATE["Parameters"]
# The functions CloudFormation allows in Rules (AWS rule functions reference), and the ones evaluated here.
RULE_FUNCTIONS = {"Fn::And", "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::Equals",
                  "Fn::Not", "Fn::Or", "Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll", "Ref"}
EVALUATED = {"Fn::And", "Fn::Or", "Fn::Not", "Fn::Equals", "Fn::Contains", "Ref"}
CLUSTER = {"RedshiftClusterId": "etl-cluster"}
WORKGROUP = {"RedshiftWorkgroupName": "etl-workgroup"}
SECRET = {"RedshiftSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl-AbCdEf"}
LINEAGE_KEY = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openlineage-key-AbCdEf"


def evaluate(node, values: dict[str, str]):
    """A rule condition or assertion: booleans, or the strings and lists they compare."""
    if isinstance(node, (str, int, float)):
        return str(node)
    if isinstance(node, list):
        return [evaluate(item, values) for item in node]
    (function, args), = node.items()
    if function == "Ref":
        return values[args]
    if function == "Fn::Equals":
        left, right = (evaluate(arg, values) for arg in args)
        return left == right
    if function == "Fn::Not":
        (condition,) = args
        return not evaluate(condition, values)
    if function in ("Fn::And", "Fn::Or"):
        assert 2 <= len(args) <= 10, f"{function} takes 2 to 10 conditions"
        results = [evaluate(arg, values) for arg in args]
        assert all(isinstance(r, bool) for r in results), f"{function} of non-conditions"
        return all(results) if function == "Fn::And" else any(results)
    if function == "Fn::Contains":
        strings, string = args
        return evaluate(string, values) in evaluate(strings, values)
    raise AssertionError(f"{function} is not evaluated here")


def refusals(overrides: dict[str, str]) -> list[str]:
    """Why CloudFormation would refuse these parameter values (empty: it creates the stack)."""
    unknown = set(overrides) - set(PARAMETERS)
    assert not unknown, f"not parameters of template.yaml: {unknown}"
    values, refused = {}, []
    for name, spec in PARAMETERS.items():
        value = str(overrides.get(name, spec.get("Default", "")))
        values[name] = value
        if name not in overrides and "Default" not in spec:
            refused.append(f"{name}: no value")
            continue
        if spec["Type"] == "Number":
            try:
                number = float(value)
            except ValueError:
                refused.append(f"{name}: not a number")
                continue
            if "MinValue" in spec and number < spec["MinValue"]:
                refused.append(f"{name}: below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > spec["MaxValue"]:
                refused.append(f"{name}: above MaxValue {spec['MaxValue']}")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            refused.append(f"{name}: not in AllowedValues")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            refused.append(f"{name}: does not match AllowedPattern")
    if refused:  # constraints are checked first; Rules see only valid values
        return refused
    for rule_name, rule in TEMPLATE.get("Rules", {}).items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], values):
            continue
        for assertion in rule["Assertions"]:
            if evaluate(assertion["Assert"], values) is not True:
                refused.append(f"{rule_name}: {assertion['AssertDescription']}")
    return refused


def functions_used(node) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {f for value in node.values() for f in functions_used(value)}
    if isinstance(node, list):
        return {f for item in node for f in functions_used(item)}
    return set()


def test_the_rules_use_only_rule_functions_this_evaluator_knows():
    rules = TEMPLATE["Rules"]
    assert rules, "template.yaml has no Rules"
    used = functions_used([[r.get("RuleCondition", {}), [a["Assert"] for a in r["Assertions"]]]
                           for r in rules.values()])
    assert used <= RULE_FUNCTIONS, f"not allowed in Rules: {used - RULE_FUNCTIONS}"
    assert used <= EVALUATED, f"add to the evaluator: {used - EVALUATED}"
    for rule in rules.values():
        for assertion in rule["Assertions"]:
            assert assertion.get("AssertDescription"), "every assertion says what to fix"


GOOD = {
    "a cluster with the defaults": CLUSTER,
    "a cluster and a database user": {**CLUSTER, "RedshiftDbUser": "etl"},
    "a cluster and a secret": {**CLUSTER, **SECRET},
    "a workgroup": WORKGROUP,
    "a workgroup with its id and a secret": {**WORKGROUP, **SECRET,
                                              "RedshiftWorkgroupId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
    "the fastest reconciler and the shortest limits": {
        **CLUSTER, "ReconcileRate": "rate(1 minute)", "ReconcileGraceSeconds": "1",
        "StepHeartbeatSeconds": "600", "StepTimeoutSeconds": "601"},
    "the longest limits": {**CLUSTER, "ReconcileGraceSeconds": "300", "StepHeartbeatSeconds": "21599",
                           "StepTimeoutSeconds": "21600", "SubmitWaitSeconds": "30"},
    "a short submit wait": {**CLUSTER, "SubmitWaitSeconds": "5"},
    "OpenLineage events to Marquez": {**CLUSTER, "OpenLineageUrl": "http://marquez.example.com:5000/api/v1/lineage"},
    "OpenLineage events over https": {**WORKGROUP, "OpenLineageUrl": "https://lineage.example.com/api/v1/lineage"},
    "OpenLineage events with an API key": {**CLUSTER, "OpenLineageUrl": "https://lineage.example.com/api/v1/lineage",
                                           "OpenLineageApiKeySecretArn": LINEAGE_KEY},
}

BAD = {
    # a grace of 0 fails every reconciler cold start (RECONCILE_GRACE_SECONDS must be positive)
    "no grace": ({**CLUSTER, "ReconcileGraceSeconds": "0"}, "ReconcileGraceSeconds: below MinValue"),
    "a grace longer than the heartbeat allows": ({**CLUSTER, "ReconcileGraceSeconds": "301"},
                                                 "ReconcileGraceSeconds: above MaxValue"),
    # the submitter refuses both at every cold start
    "no warehouse": ({}, "ExactlyOneWarehouse"),
    "a cluster and a workgroup": ({**CLUSTER, **WORKGROUP}, "ExactlyOneWarehouse"),
    "a database user for a workgroup": ({**WORKGROUP, "RedshiftDbUser": "etl"},
                                        "DbUserOnlyForClustersWithoutSecret: RedshiftDbUser applies"),
    "a database user and a secret": ({**CLUSTER, **SECRET, "RedshiftDbUser": "etl"},
                                     "DbUserOnlyForClustersWithoutSecret: Set RedshiftDbUser or"),
    "a workgroup id without its workgroup": ({**CLUSTER, "RedshiftWorkgroupId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
                                             "WorkgroupIdOnlyWithWorkgroup"),
    # a step longer than the execution it belongs to
    "a step longer than its execution": ({**CLUSTER, "StepTimeoutSeconds": "21601"},
                                         "StepTimeoutSeconds: above MaxValue"),
    # heartbeats every ReconcileRate: the heartbeat must cover grace + two intervals + a reconciler run
    "a heartbeat shorter than the reconciler's worst gap": ({**CLUSTER, "StepHeartbeatSeconds": "599"},
                                                            "StepHeartbeatSeconds: below MinValue"),
    "a heartbeat as long as the execution": ({**CLUSTER, "StepHeartbeatSeconds": "21600"},
                                             "StepHeartbeatSeconds: above MaxValue"),
    "a reconciler too slow for the heartbeat": ({**CLUSTER, "ReconcileRate": "rate(5 minutes)"},
                                                "ReconcileRate: not in AllowedValues"),
    # the Data API's WaitTimeSeconds is at most 30; the submitter refuses more at every cold start
    "a submit wait the Data API refuses": ({**CLUSTER, "SubmitWaitSeconds": "31"},
                                           "SubmitWaitSeconds: above MaxValue"),
    "a negative submit wait": ({**CLUSTER, "SubmitWaitSeconds": "-1"}, "SubmitWaitSeconds: below MinValue"),
    # the submitter refuses a lineage URL that is not http(s) at every cold start
    "a lineage URL without a scheme": ({**CLUSTER, "OpenLineageUrl": "marquez:5000/api/v1/lineage"},
                                       "OpenLineageUrl: does not match AllowedPattern"),
    "a lineage URL with a space": ({**CLUSTER, "OpenLineageUrl": "http://marquez:5000/api/v1 lineage"},
                                   "OpenLineageUrl: does not match AllowedPattern"),
    # the key of no endpoint: nothing would read it
    "a lineage API key without a lineage URL": ({**CLUSTER, "OpenLineageApiKeySecretArn": LINEAGE_KEY},
                                                "LineageApiKeyOnlyWithUrl"),
    "a lineage API key that is no secret ARN": ({**CLUSTER, "OpenLineageUrl": "https://lineage.example.com/",
                                                 "OpenLineageApiKeySecretArn": "openlineage-key"},
                                                "OpenLineageApiKeySecretArn: does not match AllowedPattern"),
    "a cron reconciler": ({**CLUSTER, "ReconcileRate": "cron(0/2 * * * ? *)"}, "ReconcileRate: not in AllowedValues"),
    "a reconcile rate EventBridge refuses": ({**CLUSTER, "ReconcileRate": "rate(2 seconds)"},
                                             "ReconcileRate: not in AllowedValues"),
}


@pytest.mark.parametrize("name", GOOD)
def test_a_working_parameter_set_is_accepted(name):
    assert refusals(GOOD[name]) == []


@pytest.mark.parametrize("name", BAD)
def test_a_parameter_set_that_breaks_at_run_time_is_refused(name):
    overrides, reason = BAD[name]
    found = refusals(overrides)
    assert any(r.startswith(reason) for r in found), f"{name}: expected {reason!r}, got {found}"


def interval_seconds(rate: str) -> int:
    count, unit = re.fullmatch(r"rate\((\d+) (minutes?|hours?)\)", rate).groups()
    return int(count) * (60 if unit.startswith("minute") else 3600)


def test_every_allowed_heartbeat_covers_the_reconcilers_worst_gap():
    """The first heartbeat of a step comes from the first sweep after ReconcileGraceSeconds; one sweep may be
    missed (throttled, failed), and a sweep takes up to the reconciler's Timeout. Rules cannot do arithmetic,
    so the parameter ranges must make every combination they allow safe."""
    reconciler = TEMPLATE["Resources"]["ReconcilerFunction"]["Properties"]
    run = int(reconciler.get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"]))
    heartbeat_min = PARAMETERS["StepHeartbeatSeconds"]["MinValue"]
    grace_max = PARAMETERS["ReconcileGraceSeconds"]["MaxValue"]
    assert PARAMETERS["ReconcileRate"]["Default"] in PARAMETERS["ReconcileRate"]["AllowedValues"]
    for rate in PARAMETERS["ReconcileRate"]["AllowedValues"]:
        worst_gap = grace_max + 2 * interval_seconds(rate) + run
        assert heartbeat_min >= worst_gap, (
            f"{rate}: a {heartbeat_min} s heartbeat can expire before the reconciler's first heartbeat "
            f"({grace_max} s grace + 2 intervals + a {run} s run = {worst_gap} s)")
    assert PARAMETERS["StepHeartbeatSeconds"]["Default"] >= heartbeat_min


def test_no_step_outlasts_its_execution_and_nothing_sets_the_token_ttl():
    execution = json.loads((ROOT / "statemachine" / "etl.asl.json").read_text())["TimeoutSeconds"]
    assert PARAMETERS["StepTimeoutSeconds"]["MaxValue"] == execution
    assert PARAMETERS["StepHeartbeatSeconds"]["MaxValue"] < execution
    assert PARAMETERS["StepHeartbeatSeconds"]["MinValue"] < PARAMETERS["StepTimeoutSeconds"]["Default"]
    # The TTL is derived from the execution's timeout in one place (etl_callback::store::TOKEN_TTL_SECONDS).
    for lid, res in TEMPLATE["Resources"].items():
        variables = ((res.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        assert "TOKEN_TTL_SECONDS" not in variables, f"{lid} sets TOKEN_TTL_SECONDS"
    assert "TOKEN_TTL_SECONDS" not in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def _resolve(node, values: dict[str, str]):
    """`node` as CloudFormation deploys it with `values`: Fn::If by the template's Conditions, and an
    AWS::NoValue list element or property dropped."""
    no_value = object()

    def walk(n):
        if isinstance(n, list):
            return [x for x in (walk(i) for i in n) if x is not no_value]
        if isinstance(n, dict):
            if set(n) == {"Fn::If"}:
                condition, yes, no = n["Fn::If"]
                return walk(yes if evaluate(TEMPLATE["Conditions"][condition], values) else no)
            if n == {"Ref": "AWS::NoValue"}:
                return no_value
            return {k: v for k, v in ((k, walk(v)) for k, v in n.items()) if v is not no_value}
        return n

    return walk(node)


@pytest.mark.parametrize("url, statuses", [
    ("", ["ABORTED", "TIMED_OUT", "FAILED"]),
    ("http://marquez:5000/api/v1/lineage", ["ABORTED", "TIMED_OUT", "FAILED", "SUCCEEDED"]),
])
def test_the_reconcilers_execution_rule_matches_succeeded_runs_only_with_lineage_on(url, statuses):
    """A SUCCEEDED run is only the execution's own OpenLineage run (functions/reconciler): with
    OpenLineageUrl empty the rule never wakes the reconciler for one."""
    assert TEMPLATE["Conditions"]["HasLineage"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OpenLineageUrl"}, ""]}]}
    values = {name: str(spec.get("Default", "")) for name, spec in PARAMETERS.items()}
    values["OpenLineageUrl"] = url
    event = TEMPLATE["Resources"]["ReconcilerFunction"]["Properties"]["Events"]["ExecutionEnded"]
    pattern = _resolve(event["Properties"]["Pattern"], values)
    assert pattern["detail"]["status"] == statuses
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    # the failure notifier's rule never matches a run that succeeded, lineage or not
    notifier = TEMPLATE["Resources"]["FailureNotifier"]["Properties"]["Events"]["FailedRun"]
    assert "SUCCEEDED" not in json.dumps(_resolve(notifier["Properties"]["Pattern"], values))
