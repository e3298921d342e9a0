"""Start-up shared by the subcommands: the console's logging, the experiment config, multi-host.

The console is quiet by default: warnings of mmae_jax itself, progress bars and results.
TensorFlow's C++ start-up lines, absl / orbax / TFDS log records and Python warnings appear
only with ``--verbose``.

``--config FILE_OR_NAME[:ARGS]`` takes a config file, or the name of a config shipped with
the package (``ravdess``, ``demo`` ...: the files of the repository's ``configs/`` folder,
installed as the package ``mmae_jax.configs``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
from pathlib import Path

from mmae_jax.config.names import canonical
from mmae_jax.errors import ConfigError

CONFIG_USAGE = "--config FILE_OR_NAME[:ARGS] [--config.KEY=VALUE ...]"
CONFIG_HELP = """\
--config FILE_OR_NAME[:ARGS]
                      the experiment config: a config file (configs/ravdess.py)
                      or the name of a shipped one:
                      {names};
                      ARGS are key=value pairs for its get_config, e.g.
                      ravdess:strategy=ffls,protocol=kfold,fold=2
--config.KEY=VALUE    change one field of the config, e.g. --config.batch_size=32
                      --config.data.data_dir=/data/tfds (a misspelled KEY is an error)"""
# Loggers that speak at INFO/WARNING about their own internals; quiet unless --verbose.
LIBRARY_LOGGERS = ("absl", "tensorflow", "orbax", "tensorflow_datasets", "jax._src.distributed", "py.warnings")


def configure_logging(verbose: bool = False) -> None:
    """One logging set-up for every command: INFO of everything with ``verbose``, else warnings
    of mmae_jax only (library chatter and Python warnings hidden)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose
                        else "%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(not verbose)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def start_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow and keep it off the accelerators (tf.data runs on the host, the GPUs/TPUs
    belong to JAX); the C++ lines both print (start-up, a failed cuInit on a machine with CUDA
    libraries and no GPU) are hidden unless ``verbose``."""
    with contextlib.nullcontext() if verbose else stderr_silenced():
        import tensorflow  # noqa: F401  (the import prints the lines)
        hide_accelerators_from_tensorflow()


def hide_accelerators_from_tensorflow() -> None:
    """tf.data runs on the host; TF must never allocate GPU/TPU memory that JAX needs."""
    import tensorflow as tf
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU")


@contextlib.contextmanager
def stderr_silenced():
    """File descriptor 2 goes to a temporary file (C++ writes there too); replayed on failure."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("multi-host (leave out on one host; detected on TPU pods and SLURM)")
    group.add_argument("--coordinator-address", help="host:port of process 0")
    group.add_argument("--num-processes", type=int)
    group.add_argument("--process-id", type=int)
    group.add_argument("--distributed-timeout", type=int, default=300, metavar="SECONDS",
                       help="give up when the processes have not all joined within this time")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Usage and help of ``--config`` / ``--config.KEY=VALUE`` (parsed by ml_collections), and
    ``--print-config``; the parser hands the config arguments on as ``args.config_argv``."""
    group = parser.add_argument_group("experiment config", CONFIG_HELP.format(names=", ".join(named_configs())))
    group.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    usage = parser.format_usage().removeprefix("usage: ").rstrip()
    parser.usage = f"{usage}\n       {' ' * len(parser.prog)} {CONFIG_USAGE}"
    parser.set_defaults(accepts_config=True)


def start(args: argparse.Namespace) -> None:
    """``jax.distributed`` when several hosts (TensorFlow was started by ``main``)."""
    from mmae_jax.train.mesh import initialize

    initialize(args.coordinator_address, args.num_processes, args.process_id,
               timeout_s=getattr(args, "distributed_timeout", 300))


def named_config_dirs() -> list[Path]:
    """Where named configs live: in a checkout its ``configs/`` (first: the code beside it), and the
    installed ``mmae_jax.configs``."""
    checkout = Path(__file__).resolve().parents[2] / "configs"
    dirs = [checkout] if checkout.is_dir() else []
    spec = importlib.util.find_spec("mmae_jax.configs") if _importable("mmae_jax.configs") else None
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) for p in spec.submodule_search_locations if Path(p).resolve() != checkout]
    return dirs


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def named_configs() -> list[str]:
    """The names ``--config`` accepts besides file paths."""
    return sorted({p.stem for d in named_config_dirs() for p in d.glob("*.py") if not p.stem.startswith("_")})


def resolve_config_spec(spec: str) -> str:
    """``FILE_OR_NAME[:ARGS]`` -> ``FILE[:ARGS]``: an existing file as given, else a shipped config."""
    target, colon, args = spec.partition(":")
    if Path(target).is_file():
        return spec
    name = target.removesuffix(".py")
    if name and "/" not in name and os.sep not in name:
        for directory in named_config_dirs():
            if (directory / f"{name}.py").is_file():
                return f"{directory / name}.py{colon}{args}"
    raise ConfigError(f"config {target!r} is neither a file nor a shipped config",
                      f"give a config file, or one of: {', '.join(named_configs())}")


def _resolve_config_argv(config_argv: list[str]) -> list[str]:
    """The arguments with the value of ``--config`` resolved (``--config X`` and ``--config=X``)."""
    argv = list(config_argv)
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            argv[i] = "--config=" + resolve_config_spec(arg.removeprefix("--config="))
        elif arg == "--config" and i + 1 < len(argv):
            argv[i + 1] = resolve_config_spec(argv[i + 1])
    return argv


def load_config(config_argv: list[str]):
    """Parse ``--config FILE_OR_NAME[:ARGS]`` and any ``--config.x=y`` overrides (typos fail: locked config)."""
    from absl import flags
    from ml_collections import config_flags

    flag_values = flags.FlagValues()
    argv = ["mmae-jax", *_resolve_config_argv(config_argv)]
    # sys_argv: the overrides come from these arguments, not from sys.argv (in-process calls).
    config_flags.DEFINE_config_file("config", None, "experiment config file", flag_values=flag_values,
                                    lock_config=True, sys_argv=argv)
    try:
        flag_values(argv)
    except (flags.Error, AttributeError, KeyError) as error:   # an unknown or malformed --config.KEY
        raise _config_argument_error(error, argv) from error
    if flag_values.config is None:
        raise ConfigError("no experiment config given", f"add {CONFIG_USAGE}")
    return canonical(flag_values.config)


def _config_argument_error(error: Exception, argv: list[str]) -> ConfigError:
    """One line for a config that does not parse: the config file's own error (a bad ``:ARGS``
    value), or the ``--config.KEY`` the config does not have."""
    text = str(error).strip()
    if "Traceback (most recent call last)" in text:   # ml_collections passes get_config's error on as text
        name, _, message = text.splitlines()[-1].partition(": ")
        if name.endswith("Error") and name.rpartition(".")[2] in ("ConfigError", "UserError"):
            return ConfigError(message)
        return ConfigError(f"the config file failed: {text.splitlines()[-1]}", "fix the config file or its ARGS")
    innermost = error
    while innermost.__cause__ or innermost.__context__:
        innermost = innermost.__cause__ or innermost.__context__
    if isinstance(innermost, KeyError):
        name = str(innermost.args[0] if innermost.args else innermost).strip("'\"")
        keys = [arg.split("=")[0] for arg in argv if arg.startswith("--config.") and
                name in arg.split("=")[0].removeprefix("--config.").split(".")]
        return ConfigError(f"unknown config field {keys[0] if keys else name}",
                           "check its spelling; --print-config lists every field")
    return ConfigError(f"bad config argument: {text.splitlines()[0] if text else type(error).__name__}",
                       "give a value of the field's type; --print-config shows every field")
