"""The reward endpoint's request checks (OpenRLHF's remote-reward body), without serving it."""
import pytest

from arena_ray.serving.openai_api import BadRequest
from arena_ray.train.reward_endpoint import MAX_QUERIES, MAX_QUERY_CHARS, reward_inputs


def test_openrlhf_bodies_are_read():
    assert reward_inputs({"query": ["p a", "p b"], "prompts": ["p", "p"], "labels": ["", ""]}) == (
        ["p a", "p b"], ["p", "p"])
    assert reward_inputs({"query": ["x"]}) == (["x"], [""])


@pytest.mark.parametrize("body, status, needle", [
    ({}, 400, "'query' must be"), ({"query": "x"}, 400, "'query' must be"), ({"query": [1]}, 400, "'query' must be"),
    ({"query": ["a", "b"], "prompts": ["a"]}, 400, "one per query"),
    ({"query": ["a"] * (MAX_QUERIES + 1)}, 413, "at most"), ({"query": ["a" * (MAX_QUERY_CHARS + 1)]}, 413, "at most"),
])
def test_bad_or_unbounded_bodies_are_refused(body, status, needle):
    with pytest.raises(BadRequest, match=needle) as err:
        reward_inputs(body)
    assert err.value.status == status
