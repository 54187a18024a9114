"""CloudFormation: state machines are created and updated where the API reads them, with their
DefinitionSubstitutions (patches 6 and 27); a resource that cannot be created is a named
ValidationError (patch 11).
"""

from __future__ import annotations

import json

from .guard import install, require


def substitute(definition: str, substitutions: dict) -> str:
    """CloudFormation's DefinitionSubstitutions: each `${Key}` of the map replaced by its value."""
    for key, value in (substitutions or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    return definition


def patch_state_machine_cloudformation() -> None:
    """Patch 6; targets moto 5.2.5. What AWS does, what moto does, the fix:

    CloudFormation's `AWS::StepFunctions::StateMachine` (`StateMachine.create_from_cloudformation_json`)
    writes to `stepfunctions_backends` although, with `execute_state_machine` on, the API reads
    `stepfunctions_parser_backends` (the stack says CREATE_COMPLETE, `ListStateMachines` stays empty),
    and it ignores `DefinitionSubstitutions` (the literal `${SubmitterFunctionArn}` stays) and
    `StateMachineType`. The replacement applies the substitutions as CloudFormation does (every
    `${Key}` of the map; unknown `${...}` stay) and creates the machine where the API reads it.

    Evidence: AWS CloudFormation User Guide, aws-resource-stepfunctions-statemachine.html
    (`DefinitionSubstitutions`: "A map (string to string) that specifies the mappings for placeholder
    variables in the state machine definition ... ${key}"). No AWS-recorded history applies (the
    deployment changes no execution behaviour).

    Still needed? `StateMachine.create_from_cloudformation_json` (moto/stepfunctions/models.py) still
    writes `stepfunctions_backends` and never reads `DefinitionSubstitutions`.
    """
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends
    from moto.stepfunctions.utils import cfn_to_api_tags

    require(6, StateMachine, "create_from_cloudformation_json",
            ("cls", "resource_name", "cloudformation_json", "account_id", "region_name", "kwargs"))

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # noqa: ANN001
        props = cloudformation_json["Properties"]
        definition = props.get("DefinitionString")
        if definition is None and "Definition" in props:
            definition = json.dumps(props["Definition"])
        backend = stepfunctions_parser_backends[account_id][region_name]
        return backend.create_state_machine(
            props.get("StateMachineName", resource_name),
            substitute(definition or "", props.get("DefinitionSubstitutions")),
            props.get("RoleArn", ""),
            tags=cfn_to_api_tags(props.get("Tags", [])),
            sm_type=props.get("StateMachineType", "STANDARD"),
        )

    install(6, StateMachine, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))


def patch_state_machine_update() -> None:
    """Patch 27; targets moto 5.2.5. What AWS does, what moto does, the fix:

    CloudFormation's update of an `AWS::StepFunctions::StateMachine` (`UpdateStack`, as `sam deploy`
    of a changed definition; `StateMachine.update_from_cloudformation_json`) has patch 6's defects:
    it updates `stepfunctions_backends`, which the API does not read with `execute_state_machine`
    on, reads only `DefinitionString` (the SAM translator writes `Definition`) and ignores
    `DefinitionSubstitutions`, so the machine kept its old definition. The replacement updates the
    machine in place where the API reads it (`stepfunctions_parser_backends`, whose
    `update_state_machine` validates the ASL), with the substitutions applied as in patch 6; a
    renamed machine (CloudFormation would replace it) is refused. Running executions are not
    touched, as on AWS, where a Standard execution runs to its end on the definition it started
    with: moto's parser backend deep-copies the state machine at `StartExecution` (its
    `start_execution`, "the clone only acts as a snapshot of the state machine definition for this
    execution"), the worker reads the definition from that copy, and patch 18's cache is keyed by
    the definition text.

    Evidence: AWS API reference, API_UpdateStateMachine.html ("Executions using the previous definition
    ... continue to run with the previous definition"; a running execution is not changed), and the
    CloudFormation resource reference cited in patch 6. No AWS-recorded history applies.

    Still needed? `StateMachine.update_from_cloudformation_json` still updates `stepfunctions_backends`
    and reads only `DefinitionString`.
    """
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    require(27, StateMachine, "update_from_cloudformation_json",
            ("cls", "original_resource", "new_resource_name", "cloudformation_json", "account_id", "region_name"))

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,  # noqa: ANN001
                                        account_id, region_name):
        props = cloudformation_json.get("Properties", {})
        name = props.get("StateMachineName", original_resource.name)
        if name != original_resource.name:
            raise NotImplementedError(f"state machine {original_resource.name} renamed to {name}: "
                                      f"a replacement is not supported by the local stack")
        definition = props.get("DefinitionString")
        if definition is None and "Definition" in props:
            definition = json.dumps(props["Definition"])
        backend = stepfunctions_parser_backends[account_id][region_name]
        return backend.update_state_machine(
            original_resource.arn,
            definition=substitute(definition, props.get("DefinitionSubstitutions")) if definition else None,
            role_arn=props.get("RoleArn") or None,
        )

    install(27, StateMachine, "update_from_cloudformation_json", classmethod(update_from_cloudformation_json))


def patch_create_resource_errors() -> None:
    """Patch 11; targets moto 5.2.5. What AWS does, what moto does, the fix:

    When a resource cannot be created, moto's `CreateStack` answers a bare HTTP 500 (the exception
    escapes `parse_and_create_resource`). The patched function turns it into a CloudFormation
    `ValidationError` naming the resource, its type and moto's reason, which the local stack prints
    as it stops.

    Still needed? `parse_and_create_resource` (moto/cloudformation/parsing.py) still lets a model's
    exception escape, so CreateStack answers HTTP 500.
    """
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import ValidationError

    original = require(11, parsing, "parse_and_create_resource",
                       ("logical_id", "resource_json", "resources_map", "account_id", "region_name"))

    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):  # noqa: ANN001
        try:
            return original(logical_id, resource_json, resources_map, account_id, region_name)
        except (KeyError, ValidationError):
            raise  # KeyError: moto's own lookups of not-yet-created resources; ValidationError: named already
        except Exception as err:  # noqa: BLE001 - any failure of moto's model code, named for the user
            raise ValidationError(message=f"{logical_id} ({resource_json.get('Type')}) could not be created: "
                                          f"{type(err).__name__}: {err}") from err

    install(11, parsing, "parse_and_create_resource", parse_and_create_resource)
