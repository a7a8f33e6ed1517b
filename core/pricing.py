"""Model prices, from a data file users can override.

Prices are USD per 1M tokens. The bundled table is ``core/prices.toml``; ``$SYNTHTUNE_PRICES``
names a TOML file of the same layout whose entries replace the bundled ones model by model.
A model with no price (a local server, an unknown name) has cost ``None``: unknown, not zero.
"""

from __future__ import annotations

import functools
import os
import tomllib
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from synthtune.core.errors import ConfigError
from synthtune.core.tokens import base_model

PRICES_ENV = "SYNTHTUNE_PRICES"


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: float | None = Field(default=None, ge=0)
    output: float | None = Field(default=None, ge=0)
    training: float | None = Field(default=None, ge=0)
    fine_tuned_input: float | None = Field(default=None, ge=0)
    fine_tuned_output: float | None = Field(default=None, ge=0)


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_discount: float = Field(default=0.5, ge=0, le=1)
    models: dict[str, ModelPrice] = Field(default_factory=dict)

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of ``model``: exact name, else the longest known prefix (dated snapshots),
        else for fine-tuned ``ft:BASE:...`` models the base model's fine-tuned prices."""
        name = base_model(model)
        if name in self.models:
            price = self.models[name]
        else:
            prefixes = [known for known in self.models if name.startswith(known + "-")]
            if not prefixes:
                return None
            price = self.models[max(prefixes, key=len)]
        if model.startswith("ft:"):
            return ModelPrice(input=price.fine_tuned_input, output=price.fine_tuned_output)
        return price

    def generation_cost(
        self, model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False
    ) -> float | None:
        """Dollars for one completion, or None when the model has no price."""
        return self.cost_at(self.lookup(model), prompt_tokens, completion_tokens, batch=batch)

    def cost_at(
        self, price: ModelPrice | None, prompt_tokens: int, completion_tokens: int, *, batch: bool = False
    ) -> float | None:
        """Dollars for one completion at ``price`` (a :meth:`lookup` result), or None."""
        if price is None or price.input is None or price.output is None:
            return None
        cost = (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000
        return cost * (1 - self.batch_discount) if batch else cost

    def training_cost(self, model: str, training_tokens: int) -> float | None:
        """Dollars to train ``training_tokens`` (tokens in the file x epochs), or None."""
        price = self.lookup(model)
        if price is None or price.training is None:
            return None
        return training_tokens * price.training / 1_000_000


def _parse(text: str, origin: str) -> PriceTable:
    try:
        return PriceTable.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{origin}: invalid TOML: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{origin}: {loc}: {first['msg']}") from None


@functools.cache
def _load(override: str | None) -> PriceTable:
    table = _parse(files("synthtune.core").joinpath("prices.toml").read_text(), "core/prices.toml")
    if override:
        path = Path(override)
        if not path.is_file():
            raise ConfigError(f"${PRICES_ENV}: no such file: {override}")
        extra = _parse(path.read_text(encoding="utf-8"), override)
        table = PriceTable(
            batch_discount=extra.batch_discount
            if "batch_discount" in extra.model_fields_set
            else table.batch_discount,
            models={**table.models, **extra.models},
        )
    return table


def price_table() -> PriceTable:
    """The bundled prices with the user's overrides applied."""
    return _load(os.environ.get(PRICES_ENV))


def user_price(model: str) -> ModelPrice | None:
    """The price the user's own file (``$SYNTHTUNE_PRICES``) gives ``model``, when it gives one
    the bundled table does not (a local model's price, say)."""
    override = os.environ.get(PRICES_ENV)
    if not override:
        return None
    price = _load(override).lookup(model)
    return price if price is not None and price != _load(None).lookup(model) else None
