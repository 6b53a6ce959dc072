"""deploy/: every manifest parses and validates against its schema — pod templates and the PVC against the
Kubernetes OpenAPI schemas (strict, from the kubernetes-validate package), the KubeRay resources' own fields
against the subset of the ray.io/v1 CRDs they use (written from the KubeRay API reference), the cluster-launcher
YAML against Ray's own ray-schema.json — and the pieces agree with each other and with the code."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

import arena_ray.arena.metrics as arena_metrics
import arena_ray.train.worker as train_worker
from arena_ray import settings as cfg
from arena_ray.cli import build_parser
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S_VERSION = "v1.33.0"


def k8s_validator(kind_file: str):
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"{K8S_VERSION}-local-strict"
    defs = json.loads((base / "_definitions.json").read_text())
    registry = Registry().with_resource("/api/_definitions.json", Resource.from_contents(defs))
    schema = json.loads((base / kind_file).read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


POD_TEMPLATE = k8s_validator("podtemplatespec-v1.json")

GROUP = {"type": "object", "required": ["rayStartParams", "template"], "additionalProperties": False,
         "properties": {"groupName": {"type": "string"}, "replicas": {"type": "integer", "minimum": 0},
                        "minReplicas": {"type": "integer", "minimum": 0}, "maxReplicas": {"type": "integer"},
                        "rayStartParams": {"type": "object", "additionalProperties": {"type": "string"}},
                        "template": {"type": "object"}, "serviceType": {"type": "string"}}}
CLUSTER_SPEC = {"type": "object", "required": ["headGroupSpec"], "additionalProperties": False,
                "properties": {"rayVersion": {"type": "string"}, "enableInTreeAutoscaling": {"type": "boolean"},
                               "headGroupSpec": GROUP,
                               "workerGroupSpecs": {"type": "array", "items": {**GROUP, "required": [
                                   "groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams",
                                   "template"]}}}}
KUBERAY = {
    "RayCluster": CLUSTER_SPEC,
    "RayJob": {"type": "object", "required": ["entrypoint", "rayClusterSpec"], "additionalProperties": False,
               "properties": {"entrypoint": {"type": "string"}, "runtimeEnvYAML": {"type": "string"},
                              "shutdownAfterJobFinishes": {"type": "boolean"},
                              "ttlSecondsAfterFinished": {"type": "integer"}, "backoffLimit": {"type": "integer"},
                              "rayClusterSpec": CLUSTER_SPEC}},
    "RayService": {"type": "object", "required": ["serveConfigV2", "rayClusterConfig"], "additionalProperties": False,
                   "properties": {"serveConfigV2": {"type": "string"}, "rayClusterConfig": CLUSTER_SPEC}},
}


def documents() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def kuberay() -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in documents() if d.get("apiVersion") == "ray.io/v1"]


def cluster_spec(doc: dict) -> dict:
    return {"RayCluster": lambda s: s, "RayJob": lambda s: s["rayClusterSpec"],
            "RayService": lambda s: s["rayClusterConfig"]}[doc["kind"]](doc["spec"])


def groups(doc: dict) -> list[dict]:
    spec = cluster_spec(doc)
    return [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]


def test_every_manifest_is_checked():
    kinds = sorted(d.get("kind", "launcher") for _, d in documents())
    assert kinds == ["PersistentVolumeClaim", "RayCluster", "RayJob", "RayService", "launcher"]


@pytest.mark.parametrize("path,doc", kuberay(), ids=lambda v: v.name if isinstance(v, Path) else "")
def test_kuberay_resources_validate(path, doc):
    jsonschema.validate(doc["spec"], KUBERAY[doc["kind"]])
    for group in groups(doc):
        errors = sorted(POD_TEMPLATE.iter_errors(group["template"]), key=str)
        assert not errors, f"{path}: {errors[0].message} at {list(errors[0].absolute_path)}"


def test_pvc_validates():
    (pvc,) = [d for _, d in documents() if d.get("kind") == "PersistentVolumeClaim"]
    assert not list(k8s_validator("persistentvolumeclaim-v1.json").iter_errors(pvc))


def test_cluster_launcher_validates_against_rays_schema():
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    launcher = yaml.safe_load((DEPLOY / "cluster-launcher" / "aws-h100.yaml").read_text())
    jsonschema.validate(launcher, schema)
    assert launcher["head_node_type"] in launcher["available_node_types"]


def test_images_ray_versions_and_gpus_agree():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    tag = re.search(r"-t (\S+) \.", dockerfile).group(1)
    base_ray = re.search(r"FROM rayproject/ray:(\d+\.\d+\.\d+)", dockerfile).group(1)
    launcher = yaml.safe_load((DEPLOY / "cluster-launcher" / "aws-h100.yaml").read_text())
    assert launcher["docker"]["image"] == tag
    # The OpenRLHF hand-off runs the Python the cluster config names, from the venv the image builds.
    openrlhf_python = yaml.safe_load((ROOT / "configs" / "cluster-h100.yaml").read_text())["ppo"]["openrlhf"]["python"]
    venv = re.search(r"python -m venv (\S+) && (\S+)/bin/pip install [^\n]*openrlhf", dockerfile)
    assert venv and openrlhf_python == f"{venv.group(1)}/bin/python"
    for path, doc in kuberay():
        assert cluster_spec(doc)["rayVersion"] == base_ray, path
        for group in groups(doc):
            (container,) = group["template"]["spec"]["containers"]
            assert container["image"] == tag, path
            gpus = container["resources"]["limits"].get("nvidia.com/gpu", "0")
            assert group["rayStartParams"]["num-gpus"] == gpus, f"{path}: num-gpus != GPU limit"
            assert {"name": "shared", "mountPath": "/mnt/shared"} in container["volumeMounts"], path


def test_entrypoints_and_serve_apps_point_at_real_configs_and_models():
    (job,) = [d for _, d in kuberay() if d["kind"] == "RayJob"]
    args = build_parser().parse_args(job["spec"]["entrypoint"].split()[1:])
    config = cfg.load(ROOT / args.config)
    assert args.func.__name__ == "_flywheel" and config.flywheel is not None
    assert config.run_dir.startswith("/mnt/shared/") and config.flywheel.dir.startswith("/mnt/shared/")
    (service,) = [d for _, d in kuberay() if d["kind"] == "RayService"]
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    from arena_ray.serving import app

    for application in serve_config["applications"]:
        module, func = application["import_path"].split(":")
        assert module == app.__name__ and hasattr(app, func)
        served = cfg.load(ROOT / application["args"]["config"])
        assert application["args"]["model"] in served.models and application["name"] == application["args"]["model"]


def test_grafana_panels_query_metrics_the_code_exports():
    dashboard = json.loads((DEPLOY / "grafana" / "arena_ray_dashboard.json").read_text())
    queried = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"ray_(arena_\w+)", t["expr"])}
    source = Path(arena_metrics.__file__).read_text() + Path(train_worker.__file__).read_text()
    defined = set(re.findall(r'"(arena_\w+)"', source))
    assert {q.removesuffix("_total") for q in queried} <= defined
    assert len(dashboard["panels"]) >= 10
