"""User mechanisms on the command line: ``--plugin MODULE[:CALLABLE]``, the
:data:`PLUGINS_ENV` variable, and the registry listing of ``--help``.

A plugin registers mechanisms with :func:`product_noise.register_mechanism` when its module is
imported (or when its ``CALLABLE`` is run). The plugins must be imported before the subcommand
parsers are built, since those compute their ``--mechanism`` choices from the registry: so
:func:`main <product_noise.cli.main>` reads the ``--plugin`` options from the arguments before
the subcommand (:func:`plugin_arguments`) and imports them first (:func:`load_cli_plugins`).
Mechanisms that installed packages ship in the entry-point group ``product_noise.mechanisms``
are loaded by the registry itself.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Collection, Sequence

from ..mechanisms.registry import import_plugins, mechanism_specs
from ..validation import InputError
from .command import CLIError, warn

__all__ = ["PLUGINS_ENV", "plugin_arguments", "env_plugins", "load_cli_plugins", "registry_help"]

#: comma-separated plugins imported before those given with ``--plugin``
PLUGINS_ENV = "PRODUCT_NOISE_PLUGINS"
_OPTION = "--plugin"
#: subcommands with a ``--plugin`` option of their own (mechanism names checked when they run)
OWN_PLUGIN_COMMANDS = frozenset({"compare"})


def _is_plugin_option(tok: str) -> bool:
    return tok == _OPTION or tok.startswith(_OPTION + "=")


def plugin_arguments(argv: Sequence[str], commands: Collection[str]) -> list[str]:
    """The values of the ``--plugin`` options, which go before the subcommand.

    Parameters
    ----------
    argv : sequence of str
        The command line without the program name.
    commands : collection of str
        The subcommand names (``--plugin`` options end at the first of them).

    Returns
    -------
    plugins : list of str
        ``MODULE`` or ``MODULE:CALLABLE`` strings, in order. A trailing ``--plugin`` without a
        value is left for the parser to report.

    Raises
    ------
    CLIError
        If ``--plugin`` follows a subcommand other than those of :data:`OWN_PLUGIN_COMMANDS`
        (its ``--mechanism`` choices are computed before its options are read, so the plugin
        would come too late).
    """
    out: list[str] = []
    it = iter(argv)
    for tok in it:
        if tok == "--":
            break
        if tok in commands:
            if tok in OWN_PLUGIN_COMMANDS:
                break  # it reads its own --plugin options (its names are checked at run time)
            if any(_is_plugin_option(t) for t in it):
                raise CLIError(
                    f"--plugin goes before the command: product-noise --plugin MODULE {tok} ..."
                )
            break
        if tok == _OPTION:
            value = next(it, None)
            if value is None:
                break
            out.append(value)
        elif _is_plugin_option(tok):
            out.append(tok[len(_OPTION) + 1 :])
    return out


def env_plugins() -> list[str]:
    """The plugins named in :data:`PLUGINS_ENV` (comma-separated; blanks ignored)."""
    raw = os.environ.get(PLUGINS_ENV, "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def load_cli_plugins(plugins: Sequence[str]) -> list[str]:
    """Load the entry-point plugins, then import each of ``plugins``.

    A broken entry-point plugin is one ``warning:`` line (the registry skips it); a plugin the
    user named that fails is a :class:`CLIError` naming it (one ``error:`` line, exit 2).

    Parameters
    ----------
    plugins : sequence of str
        ``MODULE`` or ``MODULE:CALLABLE`` strings.

    Returns
    -------
    names : list of str
        The mechanism names the named plugins registered.

    Raises
    ------
    CLIError
        If a plugin cannot be imported, or raises while it registers its mechanisms.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        mechanism_specs()  # the registry's first use loads the entry points
    for w in caught:
        warn(str(w.message))
    names: list[str] = []
    for item in plugins:
        if not item or item.startswith(":") or item.endswith(":"):
            raise CLIError(f"--plugin must be MODULE or MODULE:CALLABLE, got {item!r}")
        try:
            names += import_plugins([item])
        except InputError:  # names the plugin or the mechanism already: one line, exit 2
            raise
        except Exception as exc:  # the user's own code failed: still their input, exit 2
            raise CLIError(
                f"mechanism plugin {item!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
    return names


def registry_help() -> str:
    """Every registered mechanism with its label and description (for ``--help``).

    Returns
    -------
    text : str
        One line per mechanism, ``name  label  description [user]``, registry order.
    """
    specs = mechanism_specs()
    width = max(len(s.name) for s in specs)
    label_width = max(len(s.calibration) for s in specs)
    lines = [f"mechanisms (the registry; --plugin MODULE or ${PLUGINS_ENV} adds yours):"]
    for s in specs:
        note = f"{s.description}{f' ({s.caveat})' if s.caveat else ''}"
        user = "  [user]" if s.user else ""
        lines.append(f"  {s.name:<{width}}  {s.calibration:<{label_width}}  {note}{user}")
    legend = (
        "labels: verified = exact (or proven) privacy of the noise actually added; claimed = a "
        "paper's or user's formula, not a guarantee; unverified = a sampler with no proof: "
        "never reported as verified, auditable for an empirical lower bound."
    )
    lines += textwrap.wrap(legend, width=88, subsequent_indent="  ")
    return "\n".join(lines)
