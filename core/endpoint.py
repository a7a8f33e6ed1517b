"""Which endpoint answers a run's requests, from the generate plugin's optional
``generate_endpoint`` hook.

The core asks once per run, before any request is keyed, and puts the endpoint's ``id`` in every
request (:attr:`~synthtune.core.models.GenerationRequest.endpoint`), so the run store never serves
one server's answers for another's. A plugin without the hook, or one returning ``None``, leaves
every key as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from synthtune.core.errors import ConfigError, PluginError

if TYPE_CHECKING:  # kept out of the import path: plugins import this module for ``Endpoint``
    from synthtune.core.models import RunContext
    from synthtune.core.plugins import PluginHost
    from synthtune.core.presets import StageChoice


class Endpoint(BaseModel):
    """The server (or in-process model) that answers a run's generation requests.

    ``id`` goes into every request's cache key: it should name what changes the answers (the kind
    of server, its host, the model it really serves) and nothing that changes between two runs
    against the same server (a port picked at start-up, a key). ``priced`` is False when list
    prices do not apply to its answers (a local server): their cost is then unknown, never a
    price looked up by the model's name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    priced: bool = True


def endpoint_for(host: PluginHost, choice: StageChoice, context: RunContext) -> Endpoint | None:
    """The endpoint the preset's generate plugin (``choice``) says will answer, or None."""
    try:
        call = host.stage(choice.plugin, "generate_endpoint")
    except ConfigError:  # the plugin does not implement the optional hook
        return None
    endpoint = call(settings=choice.settings, context=context)
    if endpoint is None or isinstance(endpoint, Endpoint):
        return endpoint
    problem = TypeError(f"returned {type(endpoint).__name__}, not an Endpoint")
    raise PluginError(choice.plugin, "generate_endpoint", problem)
