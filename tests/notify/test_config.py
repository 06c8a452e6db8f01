"""``[[notify]]`` and the two [server] keys: what loads, what is refused and how it is said.
The boundary is fuzzed: only ConfigError may come out, naming a key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.config import dump_config
from tests.config_fuzz import FUZZ, assert_only_config_errors, load, problems, toml_value


def test_defaults_and_a_full_target(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[server]\npublic_url = "https://gw.example.org"\nlanguage = "en"\n'
        '[[notify]]\nurl = "ntfy://ntfy.sh/embalse"\n'
        '[[notify]]\nurl = "tgram://123456:ABCdef/4567"\nmin_severity = "critical"\n'
        'measurements = ["ph"]\nevents = ["raised"]\nrepeat_minutes = 0.5\n',
    )
    first, second = config.notify
    assert (first.min_severity, first.measurements, first.repeat_minutes) == ("warning", None, 0)
    assert first.events == ["raised", "escalated", "offline", "cleared"]
    assert (second.min_severity, second.events, second.repeat_minutes) == (
        "critical", ["raised"], 0.5,
    )  # fmt: skip
    assert (config.server.public_url, config.server.language) == ("https://gw.example.org", "en")
    assert load(tmp_path, "").server.language == "es"


def test_every_problem_names_its_key_and_no_secret(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        '[server]\npublic_url = "gw.example.org"\nlanguage = "fr"\n'
        '[[notify]]\nurl = "nope://s3cret@host"\n'
        '[[notify]]\nurl = "json://h/x"\nmin_severity = "loud"\nevents = ["exploded"]\n'
        'repeat_minutes = -1\nmeasurements = ["PH!"]\n'
        '[[notify]]\nurl = "json://h/x"\n',
    )
    assert found[0].startswith("server.public_url: must look like https://")
    assert found[1].startswith("server.language: ")
    keys = [line.split(":", 1)[0] for line in found[2:]]
    assert keys == [
        "notify[0].url", "notify[1].min_severity", "notify[1].measurements",
        "notify[1].events[0]", "notify[1].repeat_minutes",
    ]  # fmt: skip
    assert not any("s3cret" in line for line in found)
    assert (
        found[2] == "notify[0].url: not an apprise URL (mailto://, tgram://, ntfy://, json://...)"
    )
    dupes = problems(tmp_path, '[[notify]]\nurl = "json://h/x"\n[[notify]]\nurl = "json://h/x"\n')
    assert dupes == ["notify[1].url: the same target as notify[0]"]


def test_the_dump_hides_the_secrets_of_a_target(tmp_path: Path) -> None:
    config = load(tmp_path, '[[notify]]\nurl = "mailto://me:s3cret@smtp.example.com?to=a@b.c"\n')
    dumped = dump_config(config)
    assert "s3cret" not in dumped
    assert '"url": "mailto://smtp.example.com"' in dumped


text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
urls = text | st.sampled_from(
    ["mailto://", "json://", "tgram://", "ntfy://", "mailto://a@b", "json://h:99999/x"]
).flatmap(lambda scheme: text.map(lambda tail: scheme + tail))
values = (
    st.integers(-(2**70), 2**70) | st.floats() | st.booleans() | text | st.lists(text, max_size=3)
)
tables = st.fixed_dictionaries(
    {"url": urls},
    optional={
        "min_severity": values | st.sampled_from(["info", "warning", "critical"]),
        "measurements": values,
        "events": values | st.lists(st.sampled_from(["raised", "offline", "nope"]), max_size=3),
        "repeat_minutes": values,
        "odd": values,
    },
)


@FUZZ
@given(targets=st.lists(tables, max_size=3))
def test_any_notify_tables_give_a_config_or_config_error(
    tmp_path: Path, targets: list[dict[str, Any]]
) -> None:
    lines = []
    for table in targets:
        lines.append("[[notify]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    source = "\n".join(lines) + "\n"
    try:
        tomllib.loads(source)
    except tomllib.TOMLDecodeError:
        return  # our encoding of an odd value; the file boundary is fuzzed elsewhere
    config = assert_only_config_errors(lambda: load(tmp_path, source))
    if config is not None:
        assert len(config.notify) == len(targets)
