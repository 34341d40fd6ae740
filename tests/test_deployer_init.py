"""`deployer init`: the starter settings file, without any AWS call."""

import json

from deployer_cli import EXIT_BAD_INPUT, EXIT_OK, build_deployer, deployer_env, run_deployer

# A closed port: any AWS call would fail, so success shows that none was made.
NO_AWS = "http://127.0.0.1:9"


def test_init_writes_starter_file(tmp_path):
    build_deployer()

    result = run_deployer(["init", "--output", "json"], env=deployer_env(NO_AWS), cwd=tmp_path)

    assert result.returncode == EXIT_OK, result.stderr
    assert json.loads(result.stdout) == {"path": "deploy.yaml"}
    text = (tmp_path / "deploy.yaml").read_text()
    assert "stack_name: dsql-tokens" in text
    assert "# rotation_schedule: rate(4 hours)" in text


def test_init_keeps_existing_file(tmp_path):
    build_deployer()
    (tmp_path / "deploy.yaml").write_text("stack_name: mine\n")

    result = run_deployer(["init"], env=deployer_env(NO_AWS), cwd=tmp_path)

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "deploy.yaml already exists; edit it, or pass --force to replace it" in result.stderr
    assert (tmp_path / "deploy.yaml").read_text() == "stack_name: mine\n"


def test_starter_file_renders_once_edited(tmp_path):
    build_deployer()
    env = deployer_env(NO_AWS)
    path = tmp_path / "settings.yaml"
    assert run_deployer(["init", "--config", str(path)], env=env, cwd=tmp_path).returncode == EXIT_OK
    path.write_text(path.read_text().replace("<cluster-id>.dsql", "abcdefghijklmnopqrstuvwxyz.dsql"))

    result = run_deployer(["render", "--config", str(path), "--code-bucket", "bucket", "--code-key", "key.zip"],
                          env=env, cwd=tmp_path)

    assert result.returncode == EXIT_OK, result.stderr
    assert "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws" in result.stdout


def test_missing_config_points_to_init(tmp_path):
    build_deployer()

    result = run_deployer(["render", "--config", "absent.yaml"], env=deployer_env(NO_AWS), cwd=tmp_path)

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert result.stderr.count("absent.yaml not found") == 1, result.stderr
    assert "Create it with `deployer init --config absent.yaml`" in result.stderr, result.stderr
    assert "os error" not in result.stderr, result.stderr


def test_quoted_port_names_setting(tmp_path):
    build_deployer()
    env = deployer_env(NO_AWS)
    path = tmp_path / "settings.yaml"
    assert run_deployer(["init", "--config", str(path)], env=env, cwd=tmp_path).returncode == EXIT_OK
    text = path.read_text().replace("<cluster-id>.dsql", "abcdefghijklmnopqrstuvwxyz.dsql")
    path.write_text(text.replace("# database_port: 5432", "database_port: '5432'"))

    result = run_deployer(["render", "--config", str(path)], env=env, cwd=tmp_path)

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    expected = f"invalid `database_port` \"5432\" in {path}: use a whole number from 1 to 65535, without quotes"
    assert expected in result.stderr
    assert "u16" not in result.stderr
