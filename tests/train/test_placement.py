"""Placement of training: a CPU run stays on CPU on a GPU host (workers see no GPU, gloo, use_cpu), and a setting
the cluster can never place fails at start naming it instead of waiting in Ray's placement."""
import time

import pytest

from arena_ray.errors import ConfigError, TrainingError
from arena_ray.settings.train import TrainConfig
from arena_ray.train import placement, run
from arena_ray.train.placement import CLUSTER_RESOURCES, Capacity, cpu_worker_env, require, require_gpus
from arena_ray.train.run import placement_needs, torch_trainer
from arena_ray.train.worker import _training_args

GPU_HOST_DRIVER_ENV = {"CUDA_VISIBLE_DEVICES": "0", "PATH": "/usr/bin"}  # the driver of a one-GPU host


def test_cpu_run_on_a_gpu_host_builds_cpu_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # the host's GPU is visible to the driver
    cpu = TrainConfig(num_workers=2, use_gpu=False)
    trainer = torch_trainer("sft", tmp_path / "base", [], tmp_path / "out", cpu, tmp_path / "ray_train")
    assert trainer.backend_config.backend == "gloo"
    assert trainer.scaling_config.use_gpu is False and trainer.scaling_config.num_workers == 2
    env = trainer.run_config.worker_runtime_env["env_vars"]
    # runtime_env env_vars win over the driver's environment in the worker processes
    worker = {**GPU_HOST_DRIVER_ENV, **env}
    assert worker["CUDA_VISIBLE_DEVICES"] == "" and worker["RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"] == "1"
    assert worker["DS_ACCELERATOR"] == "cpu"
    # and transformers is told to run on CPU
    args = _training_args(lambda **kw: kw, cpu, str(tmp_path), 1, {})
    assert args["use_cpu"] is True and args["bf16"] is False

    gpu = TrainConfig(num_workers=2, use_gpu=True, bf16=True)
    trainer = torch_trainer("sft", tmp_path / "base", [], tmp_path / "out", gpu, tmp_path / "ray_train")
    assert trainer.backend_config.backend == "nccl" and trainer.scaling_config.use_gpu is True
    assert "CUDA_VISIBLE_DEVICES" not in trainer.run_config.worker_runtime_env.get("env_vars", {})
    assert _training_args(lambda **kw: kw, gpu, str(tmp_path), 0, {})["use_cpu"] is False


def _check(method, settings, resources):
    for needs, setting in placement_needs(method, settings):
        require(resources, needs, setting)


def test_gpu_setting_on_a_cluster_without_gpus_names_the_setting():
    with pytest.raises(ConfigError) as err:
        _check("sft", TrainConfig(use_gpu=True, num_workers=2), {"CPU": 8.0})
    assert str(err.value) == ("train.sft.use_gpu: true (num_workers: 2, one GPU each) needs 2 GPUs but the Ray "
                              "cluster has 0 (ray.cluster_resources())")
    _check("sft", TrainConfig(use_gpu=True, num_workers=2), {"CPU": 8.0, "GPU": 2.0})
    _check("dpo", TrainConfig(num_workers=2), {"CPU": 8.0})  # CPU runs need no GPU
    with pytest.raises(ConfigError, match=r"train\.rm: num_workers x cpus_per_worker \(4 x 4\) needs 16 CPUs but "
                                          r"the Ray cluster has 8"):
        _check("rm", TrainConfig(num_workers=4, cpus_per_worker=4), {"CPU": 8.0})


def test_require_helpers():
    require_gpus({"GPU": 1.0}, 1, "ppo.use_gpu: true")
    require({"CPU": 2.0}, {"GPU": 0, "CPU": 1.5}, "x")
    with pytest.raises(ConfigError, match=r"^ppo\.use_gpu: true needs 1 GPUs but the Ray cluster has 0 \(src\)$"):
        require_gpus({"CPU": 4.0}, 1, "ppo.use_gpu: true", "src")
    assert cpu_worker_env()["CUDA_VISIBLE_DEVICES"] == ""


def sft_data(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "sft.parquet"
    pq.write_table(pa.table({"messages": [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]]}),
                   path)
    return path


def test_train_checks_placement_before_asking_for_workers(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(placement, "cluster_capacity", lambda: Capacity({"CPU": 8.0}, CLUSTER_RESOURCES, False))
    monkeypatch.setattr(run, "torch_trainer", lambda *a, **k: pytest.fail("workers were asked for"))
    monkeypatch.setattr("ray.is_initialized", lambda: True)  # as inside a workflow's session (faked capacity)
    with pytest.raises(ConfigError, match=r"train\.sft\.use_gpu: true"):
        run.train("sft", tiny_model_dir, sft_data(tmp_path), tmp_path / "out", TrainConfig(use_gpu=True))
    # The inputs are checked first, without a cluster: a missing base model is named before any placement.
    with pytest.raises(TrainingError, match="no config.json"):
        run.train("sft", tmp_path / "base", sft_data(tmp_path), tmp_path / "out", TrainConfig(use_gpu=True))


def test_an_autoscaling_cluster_may_still_add_gpus(monkeypatch, caplog):
    monkeypatch.setattr(placement, "cluster_capacity", lambda: Capacity({"CPU": 16.0}, CLUSTER_RESOURCES, True))
    with caplog.at_level("WARNING", logger=placement.__name__):
        run.check_placement("sft", TrainConfig(use_gpu=True))
    assert "train.sft.use_gpu: true" in caplog.text and "autoscaler" in caplog.text


# `__autoscaling_status` as Ray 2.60 writes it: a local cluster's read-only monitor, and a launcher cluster.
READONLY = (b'{"autoscaler_report": {"active_nodes": {"node_ce2fa34c4fde75ae5fefe54ef7b050d3577802ddbc4962e5b9151447": '
            b'1}, "idle_nodes": null, "pending_launches": {}, "node_type_mapping": {"ce2fa34c4fde75ae5fefe54ef7b050d3577'
            b'802ddbc4962e5b9151447": "node_ce2fa34c4fde75ae5fefe54ef7b050d3577802ddbc4962e5b9151447"}, "legacy": true}}')
LAUNCHER = (b'{"autoscaler_report": {"active_nodes": {"head": 1}, "idle_nodes": null, "pending_launches": {}, '
            b'"node_type_mapping": {"10.0.0.1": "head"}, "legacy": true}}')


def test_autoscaler_detection():
    assert not placement.autoscaler_may_add_nodes(READONLY, autoscaler_v2=False)
    assert not placement.autoscaler_may_add_nodes(None, autoscaler_v2=False)
    assert placement.autoscaler_may_add_nodes(LAUNCHER, autoscaler_v2=False)
    assert placement.autoscaler_may_add_nodes(None, autoscaler_v2=True)


def test_capacity_counts_what_the_autoscaler_may_add(monkeypatch):
    """A GPU worker group scaled to zero (deploy/kuberay: minReplicas 0) is not a cluster without GPUs."""
    import ray
    import ray.autoscaler.v2.utils as autoscaler_utils
    import ray.experimental.internal_kv as internal_kv
    from ray._private.state import state

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "memory": 1e9})
    monkeypatch.setattr(autoscaler_utils, "is_autoscaler_v2", lambda fetch_from_server=False: False)
    monkeypatch.setattr(internal_kv, "_internal_kv_get", lambda key: READONLY)
    monkeypatch.setattr(state, "get_max_resources_from_cluster_config", lambda: {"CPU": 784, "GPU": 64})
    capacity = placement.cluster_capacity()
    assert capacity.resources == {"CPU": 784, "GPU": 64, "memory": 1e9} and not capacity.may_grow
    assert "autoscaler" in capacity.source
    monkeypatch.setattr(state, "get_max_resources_from_cluster_config", lambda: None)  # a fixed cluster
    assert placement.cluster_capacity() == Capacity({"CPU": 16.0, "memory": 1e9}, CLUSTER_RESOURCES, False)
    monkeypatch.setattr(internal_kv, "_internal_kv_get", lambda key: LAUNCHER)  # its largest size unknown
    assert placement.cluster_capacity().may_grow


@pytest.mark.slow
def test_gpu_training_on_a_real_cpu_cluster_fails_at_start(local_ray, tmp_path, tiny_model_dir):
    import ray

    if ray.cluster_resources().get("GPU"):
        pytest.skip("this cluster has GPUs")
    from ray.experimental.internal_kv import _internal_kv_get

    deadline = time.monotonic() + 30
    while _internal_kv_get("__autoscaling_status") is None and time.monotonic() < deadline:
        time.sleep(0.5)  # the monitor's first report (a fixed cluster: read-only node types)
    assert placement.cluster_capacity().may_grow is False
    with pytest.raises(ConfigError, match=r"train\.sft\.use_gpu: true .* has 0 \(ray\.cluster_resources\(\)\)"):
        run.train("sft", tiny_model_dir, sft_data(tmp_path), tmp_path / "out", TrainConfig(use_gpu=True))
