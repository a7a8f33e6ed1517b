"""``tune eval``: every model answers the preset's held-out prompts through the run engine, and
the answers are scored with the preset's own filters and, optionally, an LLM judge.

- :mod:`.prompts`: the held-out records and the prompt a tuned model expects for each;
- :mod:`.stages`: the internal plugin that turns a list of requests into a pipeline run;
- :mod:`.backends`: a ``--model`` spec (``base``, a model id, a ``.gguf`` file, a folder) to
  the generate stage that answers it;
- :mod:`.judge`: pairwise and 1-10 judge prompts, reply parsing, Wilson intervals;
- :mod:`.runner`: the runs, the scoring and the results;
- :mod:`.report`: the terminal table, ``eval.json`` and ``eval.html``.
"""
