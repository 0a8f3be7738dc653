"""Command-line options declared once, as dataclass fields: the parser is built from them and the parsed
namespace read back into the dataclass (what fairseq's `gen_parser_from_dataclass` does for its configs, for
lskd's own commands, which do not all import fairseq).

    @dataclass(frozen=True)
    class Options:
        beam: int = option(5, "beam size", group="decoding")
        keep_empty: bool = option(False, "keep empty hypotheses")

A field's flag is --its-name (or `flag=`); a bool with default False is a store_true flag, one with default True
needs a `flag="--no-..."` (store_false); `type=` converts the string (default: the field's type); `roles`
limits a field to some subcommands; fields without `option()` metadata are not on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Callable, Dict, Optional, Sequence


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: Optional[str] = None, group: str = "",
           type: Optional[Callable] = None, choices: Optional[Sequence] = None, aliases: Sequence[str] = (),
           roles: Optional[Sequence[str]] = None, required: bool = False, nargs: Optional[str] = None,
           default_factory=dataclasses.MISSING):
    """A dataclass field that is also a command-line option."""
    meta = {"help": help, "flag": flag, "group": group, "type": type, "choices": choices, "aliases": tuple(aliases),
            "roles": roles, "required": required, "nargs": nargs}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"option": meta})
    return dataclasses.field(default=default, metadata={"option": meta})


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _plain(hint):
    """Optional[T] -> T: what argparse converts the string with."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint


def add_options(parser: argparse.ArgumentParser, cls, role: Optional[str] = None,
                groups: Optional[Dict[str, Any]] = None) -> None:
    """Add an argument for every option field of `cls` (those of `role` where fields name roles)."""
    hints = typing.get_type_hints(cls)
    groups = {} if groups is None else groups
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if meta is None or (role is not None and meta["roles"] and role not in meta["roles"]):
            continue
        if meta["group"] and meta["group"] not in groups:
            groups[meta["group"]] = parser.add_argument_group(meta["group"])
        target = groups.get(meta["group"], parser)
        flags = [meta["flag"] or "--" + f.name.replace("_", "-"), *meta["aliases"]]
        default = _default(f)
        kw: Dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        if hints[f.name] is bool and meta["type"] is None:
            kw["action"] = "store_false" if default else "store_true"
        else:
            kw.update(type=meta["type"] or _plain(hints[f.name]), default=default)
            kw.update({key: meta[key] for key in ("choices", "required", "nargs") if meta[key]})
        target.add_argument(*flags, **kw)


def from_args(cls, args: argparse.Namespace, **fixed):
    """The dataclass of a parsed namespace: its option fields from `args`, the others from `fixed` or defaults."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
             if "option" in f.metadata and hasattr(args, f.name)}
    return cls(**{**given, **fixed})
