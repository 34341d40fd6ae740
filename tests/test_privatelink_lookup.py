"""The cluster's PrivateLink service name, looked up by the deployer.

With a VPC and no `dsql_service_name`, `up`, `diff` and `render` ask DSQL's
GetVpcEndpointServiceName for the cluster's name, which the interface
endpoint in the template needs. MiniStack 1.5.33 serves that call for
clusters made with CreateCluster, as control-plane records only (no
database), and returns a name derived from the cluster id, as AWS returns one
per cluster.
"""

import pytest
import yaml

from deployer_cli import EXIT_FAILED, build_deployer, deployer_env, run_deployer, run_json
from localenv.emulator import Emulator

UNKNOWN_CLUSTER = "a" * 26


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    build_deployer()
    with Emulator(tmp_path_factory.mktemp("privatelink-emulator")) as emulator:
        yield emulator


def vpc_render_flags(cluster_id):
    """Flags for `render` of a VPC stack that names no service name and
    needs no artifacts stack and no rotator build."""
    return [
        "--stack-name", "privatelink",
        "--cluster-endpoint", f"{cluster_id}.dsql.us-east-1.on.aws",
        "--vpc-id", "vpc-0123456789abcdef0",
        "--vpc-cidr", "10.0.0.0/16",
        "--subnet-ids", "subnet-0123456789abcdef0",
        "--code-bucket", "artifacts",
        "--code-key", "rotator/0123.zip",
    ]


def test_render_looks_up_service_name(emulator):
    dsql = emulator.client("dsql")
    cluster_id = dsql.create_cluster(deletionProtectionEnabled=False)["identifier"]
    expected = dsql.get_vpc_endpoint_service_name(identifier=cluster_id)["serviceName"]

    rendered = run_json(["render", *vpc_render_flags(cluster_id)], env=deployer_env(emulator.endpoint_url))

    template = yaml.safe_load(rendered["template"])
    assert expected.startswith("com.amazonaws.us-east-1.dsql-")
    assert template["Parameters"]["DsqlServiceName"]["Default"] == expected


def test_given_service_name_skips_lookup(emulator):
    given = "com.amazonaws.us-east-1.dsql-b2c3"

    rendered = run_json(
        ["render", *vpc_render_flags(UNKNOWN_CLUSTER), "--dsql-service-name", given],
        env=deployer_env(emulator.endpoint_url),
    )

    template = yaml.safe_load(rendered["template"])
    assert template["Parameters"]["DsqlServiceName"]["Default"] == given


def test_lookup_of_unknown_cluster_fails(emulator):
    result = run_deployer(["render", *vpc_render_flags(UNKNOWN_CLUSTER)], env=deployer_env(emulator.endpoint_url))

    assert result.returncode == EXIT_FAILED
    assert "GetVpcEndpointServiceName" in result.stderr
    assert UNKNOWN_CLUSTER in result.stderr
    assert "set `dsql_service_name`" in result.stderr
    assert result.stdout == ""
