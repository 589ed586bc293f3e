"""Every `OFFERSEAL_*` variable OfferSeal reads: its name, the `Settings` attribute it sets, how
its text is read and what it means. `config.py` builds the settings from this table, and
docs/configuration.md is generated from it (`offerseal config docs`)."""

from .core import CORE
from .kinds import Variable, parse_bool, parse_duration, parse_list, parse_size
from .providers import PROVIDERS

VARIABLES: tuple[Variable, ...] = (*CORE, *PROVIDERS)

__all__ = [
    "VARIABLES",
    "Variable",
    "parse_bool",
    "parse_duration",
    "parse_list",
    "parse_size",
]
