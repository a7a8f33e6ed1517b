"""``python -m synthtune.core.cli``: the ``tune`` command without its console script."""

from synthtune.core.cli import main

main()
