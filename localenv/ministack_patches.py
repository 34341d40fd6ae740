"""Patches that make MiniStack 1.5.33 behave as AWS does where this project depends on it.

`apply()` must run inside the emulator's own process before it serves requests;
`python -m localenv.serve` does that. The patches replace module attributes of
`ministack.services.secretsmanager` (its request router looks handlers up at call
time) and add entries to the CloudFormation resource-handler table in place.

Each function below names the AWS behaviour it reproduces. MiniStack's own
behaviour that they replace:
  - RotateSecret copied the current value into a new version, promoted it at once
    and never invoked the rotation function;
  - GetSecretValue returned a version that has no value as a success;
  - PutSecretValue overwrote an existing version whatever its value;
  - CloudFormation rejected AWS::SecretsManager::ResourcePolicy and
    AWS::SecretsManager::RotationSchedule, and `Ref` of a secret returned its name.

NOTE: nothing runs rotations on their schedule. A rotation starts only when
RotateSecret is called, which includes creating or updating a RotationSchedule
with RotateImmediatelyOnUpdate true.
"""

import fnmatch
import json
import logging
import re
import threading
import time
import uuid

from ministack.core.responses import (
    error_response_json,
    get_account_id,
    get_region,
    json_response,
    request_scope,
)
from ministack.services import lambda_svc
from ministack.services import secretsmanager as sm
from ministack.services.cloudformation import drift, provisioners

logger = logging.getLogger("localenv.patches")

ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
SECRETS_MANAGER_PRINCIPAL = "secretsmanager.amazonaws.com"

# MiniStack's handlers that the patches call or wrap, saved by apply().
_originals = {}


def apply():
    """Install every patch. Calling it again does nothing."""
    if _originals:
        return
    _originals["get_secret_value"] = sm._get_secret_value
    _originals["put_secret_value"] = sm._put_secret_value
    _originals["put_resource_policy"] = sm._put_resource_policy
    _originals["describe_secret"] = sm._describe_secret

    sm._rotate_secret = rotate_secret
    sm._get_secret_value = get_secret_value
    sm._put_secret_value = put_secret_value
    sm._put_resource_policy = put_resource_policy
    sm._describe_secret = describe_secret
    _register_cloudformation_handlers()
    logger.info("localenv patches applied to MiniStack")


# ---------------------------------------------------------------------------
# Secrets Manager API
# ---------------------------------------------------------------------------


def _error(code, message):
    return error_response_json(code, message, 400)


def _lookup_secret_for_change(secret_id):
    """Return (secret, None), or (None, error response) for a secret that a
    mutating call may not change: missing, scheduled for deletion or a replica."""
    _, secret = sm._resolve(secret_id)
    if not secret:
        return None, _error("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    if secret.get("DeletedDate"):
        return None, _error(
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
        )
    if sm._is_replica(secret):
        return None, sm._replica_mutation_error()
    return secret, None


def _has_value(version):
    return version.get("SecretString") is not None or version.get("SecretBinary") is not None


def rotate_secret(data):
    """Start a rotation as Secrets Manager's RotateSecret does.

    Validation happens first: the secret must exist, a rotation function must be
    given or already stored, its resource policy must let
    secretsmanager.amazonaws.com invoke it, and no earlier rotation may be
    unfinished. AWS counts a rotation as unfinished while AWSPENDING sits on a
    version other than AWSCURRENT, and rejects a new one with
    InvalidRequestException. A ClientRequestToken that already names a version
    returns that version and starts nothing, which makes retries idempotent.

    The call then stores the function and rules, turns rotation on, creates the
    new version with the AWSPENDING label and no value, and returns its id.
    createSecret, setSecret, testSecret and finishSecret are invoked afterwards on
    a background thread. With RotateImmediately false only the configuration is
    stored.

    NOTE: AWS reattempts an unfinished rotation when it rejects a new one, and
    with RotateImmediately false it runs testSecret as a check. Neither is
    reproduced here. A function that does not exist is reported with the same
    AccessDeniedException as a missing permission, which is a guess.
    """
    secret, error = _lookup_secret_for_change(data.get("SecretId"))
    if error:
        return error

    lambda_arn = data.get("RotationLambdaARN") or secret.get("RotationLambdaARN")
    if not lambda_arn:
        return _error(
            "InvalidRequestException",
            "No Lambda rotation function ARN is associated with this secret.",
        )
    rules = data.get("RotationRules") or secret.get("RotationRules")
    if rules:
        rules_error = validate_rotation_rules(rules)
        if rules_error:
            return _error("InvalidParameterException", rules_error)
    if not _function_policy_allows_secrets_manager(lambda_arn, secret["ARN"]):
        return error_response_json(
            "AccessDeniedException",
            "Secrets Manager cannot invoke the specified Lambda function. Ensure that the "
            f"function policy grants access to the principal {SECRETS_MANAGER_PRINCIPAL}.",
            400,
        )

    token = data.get("ClientRequestToken") or str(uuid.uuid4())
    if token in secret["Versions"]:
        return json_response({"ARN": secret["ARN"], "Name": secret["Name"], "VersionId": token})
    pending_id, _ = sm._find_stage_version(secret, "AWSPENDING")
    current_id, _ = sm._find_stage_version(secret, "AWSCURRENT")
    if pending_id and pending_id != current_id:
        return _error(
            "InvalidRequestException",
            "A previous rotation isn't complete. That rotation will be reattempted.",
        )

    secret["RotationLambdaARN"] = lambda_arn
    if rules:
        secret["RotationRules"] = rules
    secret["RotationEnabled"] = True
    if data.get("RotateImmediately") is False:
        sm._sync_replicas(secret)
        return json_response({"ARN": secret["ARN"], "Name": secret["Name"]})

    # A stray AWSPENDING left on the current version by an earlier rotation
    # moves to the new version, because a staging label is on one version at most.
    sm._remove_stage_everywhere(secret, "AWSPENDING")
    secret["Versions"][token] = {
        "SecretString": None,
        "SecretBinary": None,
        "CreatedDate": int(time.time()),
        "Stages": ["AWSPENDING"],
    }
    sm._sync_replicas(secret)
    _start_rotation_thread(secret["ARN"], lambda_arn, token)
    return json_response({"ARN": secret["ARN"], "Name": secret["Name"], "VersionId": token})


_RATE_EXPRESSION = re.compile(r"^rate\((\d+) (hour|hours|day|days)\)$")
_CRON_EXPRESSION = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_DURATION = re.compile(r"^(\d{1,2})h$")


def validate_rotation_rules(rules):
    """Return why `rules` is an invalid RotationRules structure, or None.

    The limits are those the Secrets Manager API model documents (botocore
    1.43): AutomaticallyAfterDays or ScheduleExpression but not both,
    AutomaticallyAfterDays from 1 to 1000, a rate of at least 4 hours, and a
    Duration window that ends within the UTC day and before the next window.
    `rate(N days)` is limited to 1 to 1000 days like AutomaticallyAfterDays,
    which is this emulator's assumption, and `cron(...)` is only checked for
    its six fields.
    """
    if "AutomaticallyAfterDays" in rules and "ScheduleExpression" in rules:
        return "Specify AutomaticallyAfterDays or ScheduleExpression in RotationRules, not both."

    days = rules.get("AutomaticallyAfterDays")
    if days is not None and not (isinstance(days, int) and 1 <= days <= 1000):
        return f"AutomaticallyAfterDays must be an integer from 1 to 1000, got {days!r}."

    interval_hours = None
    expression = rules.get("ScheduleExpression")
    if expression is not None:
        rate = _RATE_EXPRESSION.match(expression)
        if rate:
            count, unit = int(rate.group(1)), rate.group(2)
            if unit.startswith("hour") and count < 4:
                return f"ScheduleExpression {expression!r} is invalid: a rate in hours must be at least 4 hours."
            if unit.startswith("day") and not 1 <= count <= 1000:
                return f"ScheduleExpression {expression!r} is invalid: a rate in days must be from 1 to 1000."
            interval_hours = count if unit.startswith("hour") else count * 24
        elif not _CRON_EXPRESSION.match(expression):
            return f"ScheduleExpression {expression!r} is invalid: expected rate(N hours), rate(N days) or cron(...)."

    duration = rules.get("Duration")
    if duration is not None:
        match = _DURATION.match(duration)
        if not match or not 1 <= int(match.group(1)) <= 24:
            return f"Duration {duration!r} is invalid: expected 1h to 24h."
        if interval_hours is not None and int(match.group(1)) > interval_hours:
            return f"Duration {duration!r} is longer than the rotation interval of {expression}."
    return None


def _function_policy_allows_secrets_manager(lambda_arn, secret_arn):
    """Return whether the function exists and its resource policy allows
    secretsmanager.amazonaws.com to invoke it for `secret_arn`.

    Of the statement's conditions, ArnLike/ArnEquals on AWS:SourceArn and
    StringEquals on AWS:SourceAccount are evaluated. A statement with any other
    condition key does not count, because the key cannot be evaluated here.
    """
    func, _config, _name = lambda_svc._get_base_func_record_for_ref(lambda_arn)
    if not func:
        return False
    for statement in func.get("policy", {}).get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal != "*" and not (isinstance(principal, dict) and principal.get("Service") == SECRETS_MANAGER_PRINCIPAL):
            continue
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        if not any(action in ("lambda:InvokeFunction", "lambda:*", "*") for action in actions):
            continue
        if _conditions_match(statement.get("Condition", {}), secret_arn):
            return True
    return False


def _conditions_match(condition, secret_arn):
    source_account = secret_arn.split(":")[4]
    for operator, keys in condition.items():
        for key, expected in keys.items():
            expected_values = [expected] if isinstance(expected, str) else expected
            if key.lower() == "aws:sourcearn" and operator in ("ArnLike", "ArnEquals"):
                if not any(fnmatch.fnmatchcase(secret_arn, pattern) for pattern in expected_values):
                    return False
            elif key.lower() == "aws:sourceaccount" and operator == "StringEquals":
                if source_account not in expected_values:
                    return False
            else:
                return False
    return True


def _start_rotation_thread(secret_arn, lambda_arn, version_id):
    thread = threading.Thread(
        target=_run_rotation,
        args=(get_account_id(), get_region(), secret_arn, lambda_arn, version_id),
        name=f"rotation-{version_id}",
        daemon=True,
    )
    thread.start()


def _run_rotation(account_id, region, secret_arn, lambda_arn, version_id):
    """Invoke the four rotation steps in order, as Secrets Manager does.

    Each event carries Step, SecretId (the ARN), ClientRequestToken (the new
    version id) and RotationToken. The first step that fails ends the rotation
    and leaves the AWSPENDING version in place. Promotion to AWSCURRENT is the
    function's work in finishSecret, never this runner's. A rotation whose four
    steps succeed sets LastRotatedDate.
    """
    rotation_token = str(uuid.uuid4())
    with request_scope(account_id, region):
        for step in ROTATION_STEPS:
            event = {
                "Step": step,
                "SecretId": secret_arn,
                "ClientRequestToken": version_id,
                "RotationToken": rotation_token,
            }
            failure = _invoke_rotation_step(lambda_arn, event)
            if failure:
                logger.error(
                    "Rotation of %s (version %s) failed at step %s: %s",
                    secret_arn, version_id, step, failure,
                )
                return
            logger.info("Rotation of %s (version %s): step %s succeeded", secret_arn, version_id, step)
        _, secret = sm._resolve(secret_arn, use_arn_scope=True)
        if secret:
            secret["LastRotatedDate"] = int(time.time())
        logger.info("Rotation of %s (version %s) finished", secret_arn, version_id)


def _invoke_rotation_step(lambda_arn, event):
    """Invoke the function in-process, as MiniStack's SNS and Step Functions do.
    Return a description of the failure, or None on success."""
    func, config, name = lambda_svc._get_func_record_for_ref(lambda_arn)
    if not func or not config:
        return f"function {name} not found"
    record = lambda_svc._execution_record_for_config(func, config)
    try:
        result = lambda_svc._execute_function_with_config_scope(record, event)
    except Exception as exc:  # noqa: BLE001 - the emulator's executor may raise anything; log it and stop.
        return f"invocation raised {exc!r}"
    if result.get("error") or result.get("throttle"):
        return json.dumps(result.get("body"), default=str)
    return None


def get_secret_value(data):
    """Raise ResourceNotFoundException for a version that exists but has no value,
    as GetSecretValue does for the AWSPENDING version that RotateSecret creates
    before createSecret fills it in. Everything else is MiniStack's handler."""
    _, secret = sm._resolve(data.get("SecretId"))
    if secret and not secret.get("DeletedDate"):
        version_id = data.get("VersionId")
        if version_id:
            version = secret["Versions"].get(version_id)
            label = f"VersionId: {version_id}"
        else:
            stage = data.get("VersionStage", "AWSCURRENT")
            _, version = sm._find_stage_version(secret, stage)
            label = f"staging label: {stage}"
        if version is not None and not _has_value(version):
            return _error(
                "ResourceNotFoundException",
                f"Secrets Manager can't find the specified secret value for {label}",
            )
    return _originals["get_secret_value"](data)


def put_secret_value(data):
    """Store a secret version with PutSecretValue's rules for ClientRequestToken
    and staging labels.

    A token that names a version without a value (the one RotateSecret created)
    fills that version in. A token that names a version with the same value
    succeeds and changes nothing. A token that names a version with a different
    value raises ResourceExistsException, because an existing version cannot be
    modified. A staging label given in VersionStages moves from whichever version
    had it, and moving AWSCURRENT moves AWSPREVIOUS to the version that lost it.
    """
    secret, error = _lookup_secret_for_change(data.get("SecretId"))
    if error:
        return error
    token = data.get("ClientRequestToken")
    stages = data.get("VersionStages") or ["AWSCURRENT"]
    version = secret["Versions"].get(token) if token else None

    if version is None:
        response = _originals["put_secret_value"](data)
        if response[0] < 400:
            version_id = json.loads(response[2])["VersionId"]
            for stage in stages:
                if stage != "AWSCURRENT":
                    sm._remove_stage_everywhere(secret, stage, except_version_id=version_id)
        return response

    new_value = (data.get("SecretString"), data.get("SecretBinary"))
    if _has_value(version):
        if (version.get("SecretString"), version.get("SecretBinary")) != new_value:
            return _error(
                "ResourceExistsException",
                f"You can't modify an existing version, you can only create new versions. Version {token} already has a different value.",
            )
    else:
        version["SecretString"], version["SecretBinary"] = new_value
        for stage in stages:
            if stage == "AWSCURRENT":
                sm._apply_current_promotion(secret, token)
            else:
                sm._remove_stage_everywhere(secret, stage, except_version_id=token)
                sm._add_stage(secret, token, stage)
        secret["LastChangedDate"] = int(time.time())
        sm._sync_replicas(secret)
    return json_response({
        "ARN": secret["ARN"],
        "Name": secret["Name"],
        "VersionId": token,
        "VersionStages": list(version["Stages"]),
    })


def put_resource_policy(data):
    """Reject a policy that grants broad access when BlockPublicPolicy is true,
    as PutResourcePolicy does, and a policy that is not valid JSON.

    NOTE: AWS decides "broad access" with an automated reasoning tool. The
    approximation here treats an Allow statement whose principal is "*" (or
    {"AWS": "*"}) and that has no Condition as public.
    """
    try:
        policy = json.loads(data.get("ResourcePolicy") or "")
    except json.JSONDecodeError as exc:
        return _error("MalformedPolicyDocumentException", f"The resource policy is not valid JSON: {exc}")
    if data.get("BlockPublicPolicy") and _policy_is_public(policy):
        return _error(
            "PublicPolicyException",
            "The BlockPublicPolicy parameter is set, and the resource policy grants broad access to the secret.",
        )
    return _originals["put_resource_policy"](data)


def _policy_is_public(policy):
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        if statement.get("Effect") != "Allow" or statement.get("Condition"):
            continue
        principal = statement.get("Principal")
        if principal == "*":
            return True
        if isinstance(principal, dict):
            aws = principal.get("AWS")
            if aws == "*" or (isinstance(aws, list) and "*" in aws):
                return True
    return False


def describe_secret(data):
    """Add LastRotatedDate to DescribeSecret once a rotation has finished, as AWS
    reports it. VersionIdsToStages and RotationRules come from MiniStack's own
    handler, in the shape AWS returns.

    NOTE: RotationRules are returned as they were set. AWS also fills in
    AutomaticallyAfterDays computed from the schedule, and returns
    NextRotationDate; neither is reproduced.
    """
    response = _originals["describe_secret"](data)
    if response[0] >= 400:
        return response
    _, secret = sm._resolve(data.get("SecretId"))
    if not secret or not secret.get("LastRotatedDate"):
        return response
    body = json.loads(response[2])
    body["LastRotatedDate"] = secret["LastRotatedDate"]
    return json_response(body)


# ---------------------------------------------------------------------------
# CloudFormation
# ---------------------------------------------------------------------------


def _register_cloudformation_handlers():
    handlers = provisioners._RESOURCE_HANDLERS
    secret_handlers = handlers["AWS::SecretsManager::Secret"]
    _originals["secret_create"] = secret_handlers["create"]
    _originals["secret_update"] = secret_handlers["update"]
    _originals["secret_delete"] = secret_handlers["delete"]
    secret_handlers.update(create=_secret_create, update=_secret_update, delete=_secret_delete)

    handlers["AWS::SecretsManager::ResourcePolicy"] = {
        "create": _resource_policy_create,
        "update": _resource_policy_update,
        "delete": _resource_policy_delete,
    }
    handlers["AWS::SecretsManager::RotationSchedule"] = {
        "create": _rotation_schedule_create,
        "update": _rotation_schedule_update,
        "delete": _rotation_schedule_delete,
    }
    # SecretId is create-only for both types, so changing it replaces the resource.
    provisioners._REPLACING_PROPERTIES["AWS::SecretsManager::ResourcePolicy"] = ("SecretId",)
    provisioners._REPLACING_PROPERTIES["AWS::SecretsManager::RotationSchedule"] = ("SecretId",)

    read_secret, drift_properties = drift._DRIFT_READERS["AWS::SecretsManager::Secret"]
    drift._DRIFT_READERS["AWS::SecretsManager::Secret"] = (
        lambda physical_id, props: read_secret(_secret_name(physical_id), props),
        drift_properties,
    )


def _secret_name(physical_id):
    """Map a secret's physical id (its ARN, after these patches) to the name that
    MiniStack stores the secret under."""
    if not physical_id.startswith("arn:"):
        return physical_id
    name, _ = sm._resolve(physical_id, use_arn_scope=True)
    if name:
        return name
    # A deleted secret: its name is the ARN's resource less the "-" and six
    # random characters that Secrets Manager appends.
    return physical_id.split(":secret:", 1)[-1][:-7]


def _secret_create(logical_id, props, stack_name):
    """Create the secret with its ARN as physical id, so that `Ref` returns the
    ARN, as CloudFormation does for AWS::SecretsManager::Secret."""
    _name, attributes = _originals["secret_create"](logical_id, props, stack_name)
    return attributes["Arn"], attributes


def _secret_update(physical_id, old_props, new_props, stack_name, logical_id=None):
    _physical_id, attributes = _originals["secret_update"](
        _secret_name(physical_id), old_props, new_props, stack_name, logical_id,
    )
    return attributes["Arn"], attributes


def _secret_delete(physical_id, props):
    _originals["secret_delete"](_secret_name(physical_id), props)


def _raise_on_error(response, resource_type, operation):
    status, _headers, body = response
    if status >= 400:
        text = body.decode() if isinstance(body, bytes) else body
        raise ValueError(f"{resource_type}: {operation} failed: {text}")
    return json.loads(body)


def _put_policy_from_template(props):
    policy = props.get("ResourcePolicy")
    if not isinstance(policy, str):
        policy = json.dumps(policy)
    response = sm._put_resource_policy({
        "SecretId": props.get("SecretId"),
        "ResourcePolicy": policy,
        "BlockPublicPolicy": provisioners._cfn_bool(props.get("BlockPublicPolicy", False)),
    })
    return _raise_on_error(response, "AWS::SecretsManager::ResourcePolicy", "PutResourcePolicy")["ARN"]


def _resource_policy_create(logical_id, props, stack_name):
    """Attach the policy through PutResourcePolicy, honouring BlockPublicPolicy.
    The physical id, and so `Ref`, is the secret's ARN, as CloudFormation has it."""
    return _put_policy_from_template(props), {}


def _resource_policy_update(physical_id, old_props, new_props, stack_name):
    return _put_policy_from_template(new_props), {}


def _resource_policy_delete(physical_id, props):
    """Remove the policy as DeleteResourcePolicy does. A secret that is already
    gone leaves nothing to remove."""
    _, secret = sm._resolve(physical_id, use_arn_scope=True)
    if secret:
        sm._delete_resource_policy({"SecretId": secret["ARN"]})


def _rotation_rules_from_template(rules):
    """RotationRules as RotateSecret takes them. Template parameters arrive as
    strings, so AutomaticallyAfterDays is converted to an integer."""
    if not rules:
        return None
    converted = dict(rules)
    days = converted.get("AutomaticallyAfterDays")
    if isinstance(days, str) and days.isdigit():
        converted["AutomaticallyAfterDays"] = int(days)
    return converted


def _apply_rotation_schedule(props):
    """Configure rotation through RotateSecret, as CloudFormation does for
    AWS::SecretsManager::RotationSchedule: RotateImmediatelyOnUpdate (default
    true) starts a rotation at once, false only enables rotation and stores the
    rules. Returns the secret's ARN, which is the resource's physical id."""
    if props.get("HostedRotationLambda"):
        raise ValueError(
            "AWS::SecretsManager::RotationSchedule: HostedRotationLambda is not supported "
            "by this emulator; set RotationLambdaARN instead"
        )
    data = {
        "SecretId": props.get("SecretId"),
        "RotationLambdaARN": props.get("RotationLambdaARN"),
        "RotateImmediately": provisioners._cfn_bool(props.get("RotateImmediatelyOnUpdate", True)),
    }
    rules = _rotation_rules_from_template(props.get("RotationRules"))
    if rules:
        data["RotationRules"] = rules
    response = sm._rotate_secret(data)
    return _raise_on_error(response, "AWS::SecretsManager::RotationSchedule", "RotateSecret")["ARN"]


def _rotation_schedule_create(logical_id, props, stack_name):
    return _apply_rotation_schedule(props), {}


def _rotation_schedule_update(physical_id, old_props, new_props, stack_name):
    return _apply_rotation_schedule(new_props), {}


def _rotation_schedule_delete(physical_id, props):
    """Turn rotation off as CancelRotateSecret does. The function ARN and rules
    stay stored, so a later RotateSecret can turn rotation on again."""
    _, secret = sm._resolve(physical_id, use_arn_scope=True)
    if secret:
        secret["RotationEnabled"] = False
