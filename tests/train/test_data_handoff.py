"""Training data reaches the workers through Ray Data, whole and in file order: each worker converts the rows
exactly as the driver checked them, and the trainer's sampler (not Ray) shards them by rank, as before. And the
fixed costs around a run: the controller's polling, the final checkpoint moved rather than copied."""
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena_ray.errors import InputError
from arena_ray.settings.train import TrainConfig
from arena_ray.train import run
from arena_ray.train.formats import preference_messages, rows_for
from arena_ray.train.worker import shard_rows

TEMPLATE = "Q: {instruction}\nA:"


class Shard:
    """What ray.train.get_dataset_shard gives a worker: an iterator over the file's blocks, in order."""

    def __init__(self, path, block_rows):
        self.table = pq.read_table(path)
        self.block_rows = block_rows

    def iter_batches(self, batch_format, batch_size):
        assert batch_format == "pyarrow" and batch_size is None  # whole blocks, no re-batching
        yield from (pa.Table.from_batches([b]) for b in self.table.to_batches(max_chunksize=self.block_rows))


def curated(tmp_path, rows, name="data.parquet"):
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=3)  # several row groups, as a large file
    return path


SFT = [{"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}],
        "instruction_id": f"i{i}"} for i in range(10)]
PAIRS = [{**preference_messages(f"Q{i}", f"good {i}", f"bad {i}"), "battle_id": f"b{i}"} for i in range(7)]


@pytest.mark.parametrize("method,rows,template", [("sft", SFT, None), ("sft", SFT, TEMPLATE), ("dpo", PAIRS, None),
                                                  ("rm", PAIRS, TEMPLATE)])
def test_workers_train_on_the_rows_the_driver_checked(tmp_path, monkeypatch, method, rows, template):
    monkeypatch.setattr(run, "BATCH_ROWS", 4)  # the driver reads in batches that do not match the blocks
    path = curated(tmp_path, rows)
    driver = [row for batch in run.read_examples(method, path, template) for row in batch]
    for block_rows in (1, 4, 100):
        assert rows_for(method, shard_rows(Shard(path, block_rows)), str(path), template) == driver
    assert driver == rows_for(method, pq.read_table(path).to_pylist(), str(path), template)  # as before


def test_a_bad_row_is_named_by_its_place_in_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "BATCH_ROWS", 4)
    path = curated(tmp_path, SFT[:6] + [{"messages": [{"role": "user", "content": "no answer"}],
                                         "instruction_id": "x"}])
    with pytest.raises(InputError, match=r"data\.parquet\[row 6\]: field 'messages' must end with an assistant"):
        run.check_examples("sft", path, tmp_path, 64, None)
    assert run.check_examples("sft", curated(tmp_path, SFT, "ok.parquet"), tmp_path, 64, None) == 10
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist(SFT).slice(0, 0), empty)
    with pytest.raises(run.NoTrainingData, match=r"empty\.parquet: no sft examples"):
        run.check_examples("sft", empty, tmp_path, 64, None)


def test_the_dataset_goes_to_every_worker_whole_and_in_order(tmp_path):
    dataset = object()  # a Ray Dataset in train(); the trainer only holds it until fit
    trainer = run.torch_trainer("dpo", tmp_path / "base", dataset, tmp_path / "out", TrainConfig(num_workers=2),
                                tmp_path / "ray_train", source="dpo.parquet", completion_template=TEMPLATE)
    assert trainer.datasets == {"train": dataset}
    assert trainer.data_config._datasets_to_split == []  # no split by Ray: accelerate's sampler shards by rank
    assert trainer.data_config._get_user_execution_options("train").preserve_order
    config = trainer.train_loop_config
    assert "rows" not in config  # nothing pickled into the config
    assert (config["source"], config["completion_template"], config["method"]) == ("dpo.parquet", TEMPLATE, "dpo")


def test_the_controller_polls_often_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv(run.HEALTH_CHECK_INTERVAL, "3")
    run.torch_trainer("sft", tmp_path / "base", None, tmp_path / "out", TrainConfig(), tmp_path / "ray_train")
    assert os.environ[run.HEALTH_CHECK_INTERVAL] == "3"  # the user's setting
    monkeypatch.delenv(run.HEALTH_CHECK_INTERVAL)
    run.torch_trainer("sft", tmp_path / "base", None, tmp_path / "out", TrainConfig(), tmp_path / "ray_train")
    assert os.environ[run.HEALTH_CHECK_INTERVAL] == "0.5"  # read by fit(), passed on to Ray Train's controller


class Checkpoint:
    def __init__(self, path, filesystem):
        self.path, self.filesystem, self.copied_to = str(path), filesystem, None

    def to_directory(self, path):
        self.copied_to = path


def test_the_checkpoint_is_moved_not_copied_when_it_can_be(tmp_path):
    from pyarrow.fs import LocalFileSystem

    folder = tmp_path / "ray_train" / "checkpoint_0"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    run.take_checkpoint(Checkpoint(folder, LocalFileSystem()), tmp_path / "out.tmp")
    assert (tmp_path / "out.tmp" / "model.safetensors").read_bytes() == b"weights" and not folder.exists()
    remote = Checkpoint("bucket/run/checkpoint_0", filesystem=object())  # e.g. S3: downloaded
    run.take_checkpoint(remote, tmp_path / "x")
    assert remote.copied_to == str(tmp_path / "x")
    elsewhere = Checkpoint(tmp_path / "missing", LocalFileSystem())  # a rename that fails (another filesystem)
    run.take_checkpoint(elsewhere, tmp_path / "y")
    assert elsewhere.copied_to == str(tmp_path / "y")
