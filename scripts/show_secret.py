"""Print a deployed token secret's state without its value.

Usage: show_secret.py SECRET_ID. Waits up to a minute for the first rotation
that the schedule starts on create, then prints the rotation settings, the
version stages, the non-secret fields and the password's length only.
"""

import json
import sys
import time

import boto3

PLACEHOLDER = "pending-first-rotation"
WAIT_SECONDS = 60


def current_value(client, secret_id):
    return json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])


def wait_for_first_rotation(client, secret_id):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if current_value(client, secret_id).get("password") != PLACEHOLDER:
            return True
        time.sleep(1)
    return False


def main(secret_id):
    client = boto3.client("secretsmanager")
    rotated = wait_for_first_rotation(client, secret_id)
    description = client.describe_secret(SecretId=secret_id)
    value = current_value(client, secret_id)

    print(f"secret            {description['ARN']}")
    print(f"rotation enabled  {description.get('RotationEnabled')}")
    print(f"schedule          {description.get('RotationRules', {}).get('ScheduleExpression')}")
    print(f"rotation function {description.get('RotationLambdaARN')}")
    for version_id, stages in description.get("VersionIdsToStages", {}).items():
        print(f"version           {version_id} {','.join(stages)}")
    for field in ("username", "host", "port", "dbname", "engine"):
        print(f"{field:<17} {value.get(field)}")
    if rotated:
        print(f"password          a DSQL auth token of {len(value['password'])} characters (not shown)")
    else:
        print("password          still the placeholder: the first rotation has not finished")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
