"""pydantic's plugin look-up, skipped: reconciler validates its policy with no plugin.

The first time pydantic builds a validator it looks for plugins: the ``pydantic`` entry
points of every installed package. That costs ``plan`` about a tenth of its CPU time (the
import of ``importlib.metadata``, then every package's metadata read), for plugins this
program never uses.

pydantic's own switch is ``PYDANTIC_DISABLE_PLUGINS=__all__``, but the module of pydantic
that reads it imports ``importlib.metadata`` before reading it. So unless the switch says
otherwise (unset means off here), a stand-in takes that module's place, holding the one
function pydantic calls (``get_plugins``, which finds none). The environment is left as it
is: the processes reconciler starts (an ``env.py`` that may use a plugin) see what the user
set. Someone who wants pydantic plugins in reconciler sets ``PYDANTIC_DISABLE_PLUGINS=``
(empty), and nothing here happens. Imported first by ``reconciler.policy``, before pydantic.
The stand-in replaces a private module: should pydantic ever need more of it, validating any
policy fails at once, which every policy test shows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from types import ModuleType

SWITCH = "PYDANTIC_DISABLE_PLUGINS"
OFF = ("__all__", "1", "true")
"""The values for which pydantic looks for no plugin at all."""
LOADER = "pydantic.plugin._loader"


def _no_plugins() -> Iterable[object]:
    return ()


def skip_plugin_lookup() -> None:
    if os.environ.get(SWITCH, "__all__") not in OFF or LOADER in sys.modules:
        return
    stand_in = ModuleType(LOADER, "pydantic plugins are off here (reconciler.policy.plugins)")
    stand_in.get_plugins = _no_plugins  # type: ignore[attr-defined]
    sys.modules[LOADER] = stand_in


skip_plugin_lookup()
