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
    assert any("pip install -e '.[all]'" in command for command in cluster["setup_commands"])
