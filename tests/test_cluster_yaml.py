"""cluster.yaml is a valid Ray cluster-launcher file with the shape the README promises."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray.autoscaler
import yaml

from tests.conftest import REPO_ROOT


def load_cluster() -> dict:
    return yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_validates_against_rays_schema():
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(load_cluster(), schema)


def test_head_schedules_nothing_and_workers_have_gpus():
    cluster = load_cluster()
    types = cluster["available_node_types"]
    assert types[cluster["head_node_type"]]["resources"] == {"CPU": 0}
    workers = [t for name, t in types.items() if name != cluster["head_node_type"]]
    assert workers and all(t["node_config"]["InstanceType"].startswith(("g5", "p4", "p5", "g6")) for t in workers)
    assert any("pip install" in command and "-e '.[all]'" in command for command in cluster["setup_commands"])


def test_every_node_starts_with_token_authentication_and_the_token_reaches_it():
    cluster = load_cluster()
    starts = [c for c in cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"] if " start " in c]
    assert len(starts) == 2 and all(command.startswith("RAY_AUTH_MODE=token ") for command in starts)
    assert cluster["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_the_dashboard_is_not_exposed_to_the_network():
    commands = " ".join(load_cluster()["head_start_ray_commands"])
    assert "0.0.0.0" not in commands and "--dashboard-host=127.0.0.1" in commands


def test_nodes_install_into_a_python_the_project_supports():
    setup = " ".join(load_cluster()["setup_commands"])
    requires = (REPO_ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.12"' in requires and "--python 3.11" in setup
