import pytest

from arena_ray.errors import ConfigError
from arena_ray.judging.prompts import available, load_template


def test_shipped_templates_load_and_carry_versions():
    names = available()
    assert "pairwise-v1" in names and "pairwise-v2-hardened" in names
    for name in names:
        t = load_template(name)
        assert t.version == name


def test_messages_place_answers_in_order():
    t = load_template("pairwise-v1")
    msgs = t.messages("What is 2+2?", "It is 4.", "Five.")
    assert msgs[0].role == "system" and msgs[1].role == "user"
    user = msgs[1].content
    assert user.index("What is 2+2?") < user.index("It is 4.") < user.index("Five.")
    assert "{answer_1}" not in user and "{question}" not in user


def test_answers_with_braces_and_placeholders_are_left_alone():
    t = load_template("pairwise-v1")
    tricky = 'def f(): return {"a": 1} {answer_2} {question}'
    user = t.messages("Q?", tricky, "second")[1].content
    assert tricky in user
    assert user.count("second") == 1


def test_bad_templates(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_template("pairwise-v999")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\nuser: '{question} {answer_1}'\noutput_regex: '.*'\n")
    with pytest.raises(ConfigError, match="answer_2"):
        load_template(str(bad))
