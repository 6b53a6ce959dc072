"""The ground's file helpers: JSON the project writes is always valid; output paths are checked before work."""
import json
import math

import pytest

from arena_ray.errors import ConfigError
from arena_ray.records.outputs import output_dir, output_file
from arena_ray.records.tables import json_text


def test_non_finite_numbers_are_written_as_null():
    text = json_text({"spearman": math.nan, "ci": [1.0, math.inf, -math.inf], "n": 3, "nested": {"x": (math.nan,)}})
    assert json.loads(text) == {"spearman": None, "ci": [1.0, None, None], "n": 3, "nested": {"x": [None]}}
    assert "NaN" not in text and "Infinity" not in text


def test_output_paths(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "battles.jsonl").write_text("x")
    assert output_dir(run / "rated", [run]) == run / "rated"          # a folder of its own inside the input
    assert output_file(run / "report.html", [run], own=("report.html",)) == run / "report.html"
    for call, needle in ((lambda: output_dir(run, [run]), "would write into the input"),
                         (lambda: output_dir(tmp_path, [run / "battles.jsonl"]), "would write into the input"),
                         (lambda: output_dir(run / "battles.jsonl"), "is a file"),
                         (lambda: output_file(run, []), "is a directory"),
                         (lambda: output_file(run / "battles.jsonl", [run]), "would overwrite the input"),
                         (lambda: output_file(run / "battles.jsonl" / "x.json"), "is a file, not a directory")):
        with pytest.raises(ConfigError, match=needle):
            call()
