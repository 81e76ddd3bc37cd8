"""cluster.yaml against the cluster-launcher schema that ships with the installed Ray."""
import json
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml

ROOT = Path(__file__).parents[1]
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


@pytest.fixture
def cluster():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_matches_rays_schema(cluster):
    jsonschema.validate(cluster, SCHEMA)


def test_schema_check_catches_a_mistake(cluster):
    cluster["available_node_types"]["gpu_worker"]["min_workers"] = "none"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cluster, SCHEMA)


def test_head_and_autoscaling_gpu_workers_that_install_raygm(cluster):
    types = cluster["available_node_types"]
    assert cluster["head_node_type"] in types
    gpu = types["gpu_worker"]
    assert gpu["min_workers"] < gpu["max_workers"] <= cluster["max_workers"]
    assert gpu["node_config"]["InstanceType"].startswith(("g", "p"))  # AWS GPU families
    assert any("pip install" in c and "raygm" in c for c in cluster["setup_commands"])
    assert any("--dashboard-host=0.0.0.0" in c for c in cluster["head_start_ray_commands"])
