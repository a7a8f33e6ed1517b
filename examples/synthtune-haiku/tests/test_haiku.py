"""The example plugin's own tests, written with synthtune's public fixtures."""

from __future__ import annotations

from synthtune.core import RunContext
from synthtune.core.testkit import make_sample
from synthtune_haiku import HaikuFilterSettings, filter

HAIKU = "river under ice\nthe old cat watches it breathe\nspring is not yet here"


def test_filter_wants_three_short_lines() -> None:
    context = RunContext(run_id="test", seed=0)
    assert filter(make_sample(HAIKU), HaikuFilterSettings(), context).kept
    assert filter(make_sample("one long line"), HaikuFilterSettings(), context).reason == "not 3 lines (1)"


def test_the_preset_writes_one_example_per_haiku(synthtune_run, synthtune_fake_openai) -> None:
    synthtune_fake_openai.responder = lambda body: HAIKU
    out = synthtune_run("haiku", limit=4)
    assert len(out.train) == 4 and out.line_errors() == []
    assert out.train[0]["messages"][-1]["content"] == HAIKU
