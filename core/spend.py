"""Spend: what a request is expected to cost, what an answer did cost, and the run's cost cap.

Prices come from :func:`synthtune.core.pricing.price_table` (USD per 1M tokens). Input tokens are
counted with tiktoken exactly as the OpenAI cookbook counts chat prompts; output tokens are the
request's ``max_tokens`` when it sets one (a ceiling: the answer cannot be longer) or an expected
length otherwise. A model with no price has an unknown cost (``None``), never zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from synthtune.core.models import GenerationRequest, Usage
from synthtune.core.pricing import ModelPrice, PriceTable, price_table
from synthtune.core.tokens import count_messages

log = logging.getLogger("synthtune")

# Expected completion length for requests that set no max_tokens (an expectation, not a ceiling).
DEFAULT_OUTPUT_TOKENS = 512

# OpenAI's fine-tuning default n_epochs="auto", as the OpenAI cookbook's data-preparation notebook
# reproduces it: 3 epochs, raised so that small sets see about 100 examples, lowered so that large
# sets see at most about 25,000, and kept between 1 and 25.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def default_epochs(examples: int) -> int:
    """The number of epochs OpenAI's ``n_epochs="auto"`` is expected to pick for ``examples``."""
    if examples <= 0:
        return TARGET_EPOCHS
    if examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // examples)
    if examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // examples)
    return TARGET_EPOCHS


def priced_as_batch(generate_settings: Any) -> bool:
    """Whether a generate backend's answers are billed at the Batch API discount: true when its
    settings have ``mode = "batch"`` (the ``openai`` plugin's batch mode)."""
    return getattr(generate_settings, "mode", "online") == "batch"


class RequestEstimate(NamedTuple):
    """Expected tokens and dollars of one request (``cost`` None: the model has no price)."""

    input_tokens: int
    output_tokens: int
    output_is_ceiling: bool
    cost: float | None


def estimate_request(
    request: GenerationRequest, *, output_tokens: int = DEFAULT_OUTPUT_TOKENS, batch: bool = False
) -> RequestEstimate:
    """Tokens and dollars ``request`` is expected to cost; its ``model`` must be set."""
    assert request.model is not None
    messages = request.message_dicts()
    prompt = count_messages(messages, request.model)
    ceiling = request.params.max_tokens is not None
    completion = request.params.max_tokens if ceiling else output_tokens
    assert completion is not None
    cost = price_table().generation_cost(request.model, prompt, completion, batch=batch)
    return RequestEstimate(prompt, completion, ceiling, cost)


def usage_cost(model: str | None, usage: Usage, *, batch: bool = False) -> float | None:
    """Dollars an answer cost, from the usage the server reported; None when unpriced."""
    if not model:
        return None
    return price_table().generation_cost(model, usage.prompt_tokens, usage.completion_tokens, batch=batch)


class AnswerPricer:
    """:func:`usage_cost` for one run: the price table is read and each model's price looked
    up once, not for every answer."""

    def __init__(self, *, batch: bool) -> None:
        self.batch = batch
        self._table: PriceTable | None = None
        self._prices: dict[str, ModelPrice | None] = {}

    def __call__(self, model: str | None, usage: Usage) -> float | None:
        if not model:
            return None
        table = self._table
        if table is None:
            table = self._table = price_table()
        price = self._prices.get(model, _UNKNOWN)
        if price is _UNKNOWN:
            price = self._prices[model] = table.lookup(model)
        return table.cost_at(price, usage.prompt_tokens, usage.completion_tokens, batch=self.batch)


_UNKNOWN: Any = object()


@dataclass
class SpendCap:
    """A hard cap on a run's generation spend.

    A request is admitted only while the spend so far, plus the estimates reserved for requests
    still in flight, plus its own estimate stays within the cap. Once one request is refused, no
    later one is admitted (the run stops feeding the backend, so what was sent is a prefix of the
    run's requests). Estimates use ``max_tokens`` as the output length, a ceiling, so the actual
    spend stays below the cap whenever every request sets ``max_tokens``.
    """

    cap: float
    spent: float = 0.0
    reserved: dict[str, float] = field(default_factory=dict)
    stopped: bool = False
    refused: int = 0

    @property
    def projected(self) -> float:
        return self.spent + sum(self.reserved.values())

    def admit(self, key: str, estimate: float) -> bool:
        """Reserve ``estimate`` for ``key`` and return True, or refuse (and stop) when it would
        cross the cap."""
        if not self.stopped and self.projected + estimate <= self.cap:
            self.reserved[key] = estimate
            return True
        if not self.stopped:
            log.warning(
                "cost cap $%.4f reached: spent $%.4f, $%.4f reserved in flight, next request ~$%.4f; "
                "no more requests are sent",
                self.cap,
                self.spent,
                self.projected - self.spent,
                estimate,
            )
        self.stopped = True
        self.refused += 1
        return False

    def settle(self, key: str, cost: float | None) -> None:
        """Replace the reservation of ``key`` by what its answer actually cost."""
        self.reserved.pop(key, None)
        self.spent += cost or 0.0
