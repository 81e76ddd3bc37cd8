"""cluster.yaml against the cluster-launcher schema that ships with the installed Ray."""
import json
import re
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


def test_nodes_install_this_checkout_with_its_pins(cluster):
    """Every node runs the code the study was launched from, at the pinned versions; local
    environments and study storage do not travel."""
    [(target, source)] = cluster["file_mounts"].items()
    assert source == "." and target == "~/raygm"
    install = next(c for c in cluster["setup_commands"] if "pip install" in c and "raygm" in c)
    assert f"-c {target}/constraints.txt" in install and install.endswith(f"-e {target}")
    assert {".venv", "runs", ".git"} <= set(cluster["rsync_exclude"])


def test_head_and_autoscaling_gpu_workers_that_install_raygm(cluster):
    types = cluster["available_node_types"]
    assert cluster["head_node_type"] in types
    gpu = types["gpu_worker"]
    assert gpu["min_workers"] < gpu["max_workers"] <= cluster["max_workers"]
    assert gpu["node_config"]["InstanceType"].startswith(("g", "p"))  # AWS GPU families
    assert any("pip install" in c and "raygm" in c for c in cluster["setup_commands"])
    assert any("--dashboard-host=0.0.0.0" in c for c in cluster["head_start_ray_commands"])


def test_the_metrics_port_leaves_the_dashboards_ports_free(cluster):
    """Every node exports Ray's metrics on one port that is neither Ray's (6379, the
    dashboard's 8265) nor optuna-dashboard's default (8080)."""
    commands = cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"]
    ports = {int(p) for c in commands for p in re.findall(r"--metrics-export-port=(\d+)", c)}
    assert len(ports) == 1 and not ports & {6379, 8265, 8080}
