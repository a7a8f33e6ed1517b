"""A fake OpenAI-compatible server in its own process, for benchmarks.

Runs :class:`synthtune.core.testing.FakeOpenAI` (lean mode: no schema validation, no request log)
with the given latency, jitter, rate limits and faults, prints its base URL on stdout, and serves
until stdin closes. Running it in a separate process keeps it off the client's event loop and GIL.

    python bench/fake_server.py --latency 0.1 --jitter 0.02 --rpm 600
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from synthtune.core.testing import FakeOpenAI, body_digest
from synthtune.core.testing.limits import Faults

FILLER = (
    "The story turns when a stranger arrives and everything changes for our hero, who must "
    "choose between love and duty. "
) * 40


def lean_responder(chars: int) -> Any:
    """A cheap answer of ``chars`` characters that still differs per request body."""

    def respond(body: dict[str, Any]) -> str:
        return f"[{body_digest(body)[:12]}] {FILLER[: max(0, chars - 15)]}"

    return respond


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--rpm", type=float, default=None)
    parser.add_argument("--tpm", type=float, default=None)
    parser.add_argument("--burst-seconds", type=float, default=1.0)
    parser.add_argument("--chars", type=int, default=1200, help="characters per answer")
    parser.add_argument("--server-error", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=0.0)
    parser.add_argument("--malformed", type=float, default=0.0)
    parser.add_argument("--reset", type=float, default=0.0, help="connections dropped without an answer")
    parser.add_argument("--html", type=float, default=0.0, help="200 answers with an HTML page")
    parser.add_argument("--retry-after", type=float, default=0.5)
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a hang fault holds a request")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    faults = None
    if args.server_error or args.rate_limit or args.timeout or args.malformed or args.reset or args.html:
        faults = Faults(
            server_error=args.server_error,
            rate_limit=args.rate_limit,
            timeout=args.timeout,
            malformed=args.malformed,
            reset=args.reset,
            html=args.html,
            retry_after=args.retry_after,
            hang=args.hang,
            seed=args.seed,
        )
    server = FakeOpenAI(
        lean_responder(args.chars),
        latency=args.latency,
        jitter=args.jitter,
        seed=args.seed,
        rpm=args.rpm,
        tpm=args.tpm,
        burst_seconds=args.burst_seconds,
        faults=faults,
        validate=False,
        keep_requests=False,
    )
    server.start()
    print(server.base_url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop()


if __name__ == "__main__":
    main()
