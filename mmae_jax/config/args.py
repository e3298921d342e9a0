"""The ``ARGS`` of ``--config FILE:ARGS``: ``key=value`` pairs separated by commas, each value
read as the type of the key's default (as big_vision's ``parse_arg``).

    parse_arg("strategy=ffls,fold=2", strategy="fslf", fold=0, runlocal=False)
    -> ConfigDict(strategy="ffls", fold=2, runlocal=False)
"""

from __future__ import annotations

import ml_collections

from mmae_jax.config.names import ARG_FIELDS, renamed
from mmae_jax.config.validate import check_args
from mmae_jax.errors import ConfigError

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _typed(key: str, raw: str, default):
    """``raw`` as the type of ``default`` (bool, int, float or str); ConfigError when it is not one."""
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() not in TRUE + FALSE:
            raise ConfigError(f"config arg {key}={raw!r} is not a truth value", f"give {key}=true or {key}=false")
        return text.lower() in TRUE
    if isinstance(default, (int, float)):
        try:
            return type(default)(text)
        except ValueError as error:
            raise ConfigError(f"config arg {key}={raw!r} is not a number",
                              f"{key} takes {'an integer' if isinstance(default, int) else 'a number'}") from error
    return text


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """``arg`` (``key=value,...``) over ``defaults``; an unknown key or a value not of its default's
    type is a ConfigError. The allowed values are checked by ``validate.check_args``."""
    values = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in defaults:
            raise ConfigError(f"bad config arg {item!r}",
                              f"use key=value with key one of {', '.join(sorted(defaults))}")
        values[key] = renamed(ARG_FIELDS.get(key, key), _typed(key, raw, defaults[key]))
    check_args(values)
    return ml_collections.ConfigDict(values)
