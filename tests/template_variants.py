"""Settings flags for every combination that changes the rotation template:
database role, network, key and number of application roles."""

import itertools

CLUSTER_ENDPOINT = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"
VPC_ID = "vpc-0123456789abcdef0"
VPC_CIDR = "10.20.0.0/16"
SUBNET_IDS = "subnet-0123456789abcdef0,subnet-0123456789abcdef1"
DSQL_SERVICE_NAME = "com.amazonaws.us-east-1.dsql-a1b2"

ROLES = (True, False)
NETWORKS = ("public", "vpc", "vpc-existing-endpoints")
KEYS = ("aws-managed", "create", "given")
ROLE_COUNTS = (0, 1, 3)


def variant_id(admin, network, key, roles):
    """Return a short name such as `admin-vpc-create-3roles`."""
    role = "admin" if admin else "app"
    return f"{role}-{network}-{key}-{roles}roles"


def all_variants():
    """Yield (id, admin, network, key, roles) for all 54 combinations."""
    for admin, network, key, roles in itertools.product(ROLES, NETWORKS, KEYS, ROLE_COUNTS):
        yield variant_id(admin, network, key, roles), admin, network, key, roles


def variant_flags(admin, network, key, roles, *, account="111122223333", given_key_arn=None,
                  vpc_id=VPC_ID, subnet_ids=SUBNET_IDS, endpoint_ids=None):
    """Return the deployer flags of one variant. `given_key_arn` is the key
    ARN used when `key` is "given", and `endpoint_ids` are the two existing
    endpoint ids used when `network` is "vpc-existing-endpoints"."""
    flags = ["--database-user", "admin" if admin else "app_reader"]

    for number in range(1, roles + 1):
        flags += ["--application-role-arn", f"arn:aws:iam::{account}:role/app/reader-{number}"]

    if key == "given":
        arn = given_key_arn or f"arn:aws:kms:us-east-1:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        flags += ["--kms-key", arn]
    else:
        flags += ["--kms-key", key]

    if network != "public":
        flags += ["--vpc-id", vpc_id, "--vpc-cidr", VPC_CIDR, "--subnet-ids", subnet_ids,
                  "--dsql-service-name", DSQL_SERVICE_NAME]
    if network == "vpc-existing-endpoints":
        secrets_endpoint, dsql_endpoint = endpoint_ids or ("vpce-0123456789abcdef0", "vpce-0123456789abcdef1")
        flags += ["--secretsmanager-endpoint-id", secrets_endpoint, "--dsql-endpoint-id", dsql_endpoint]
    return flags
