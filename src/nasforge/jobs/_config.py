"""The config base of every job: YAML loading, defaults, validation before anything is written, the resume merge.

A job's config is a plain dataclass on top of ``JobOptions``: its fields are the job's options with their
defaults, ``validate`` checks everything that needs no data, ``JOB`` names the job (recorded in its run) and
``RESUME_MAY_CHANGE`` lists the options a resumed run may change (empty: the job cannot resume). Callers pass the
options that were *given* (``given``/``merge_given``): a new run fills the others with the defaults, a resumed
run with the stored run's values.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from nasforge.errors import NasforgeError

C = TypeVar("C", bound="JobOptions")


@dataclass(kw_only=True)
class JobOptions:
    """The options every job has; subclasses add theirs (all keyword-only, so any may have a default)."""

    JOB: ClassVar[str] = "job"
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ()

    out: str | None = None

    # -- the options given --------------------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def _check_keys(cls, keys: Any, where: str) -> None:
        known = cls.names()
        for k in keys:
            if k not in known:
                raise NasforgeError(f"{where}unknown {cls.JOB} option {k!r}; allowed: {', '.join(sorted(known))}")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The mapping of a ``--config`` file, checked against the job's options (one clear line if not)."""
        p = Path(path)
        if not p.is_file():
            raise NasforgeError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as e:
            raise NasforgeError(f"config file {p} is not UTF-8 text (byte {e.start})") from None
        except yaml.YAMLError as e:
            raise NasforgeError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise NasforgeError(f"config file {p} must hold a mapping of options, got {type(data).__name__}")
        if data.get("job") == cls.JOB:  # a run's own config.yaml may be given back
            del data["job"]
        known = cls.names()
        for k in data:
            if k not in known:
                raise NasforgeError(f"config file {p}: unknown key {k!r}; allowed: {', '.join(sorted(known))}")
        return data

    @classmethod
    def given(cls: type[C], options: C | Mapping[str, Any]) -> dict[str, Any]:
        """The options that were given: a mapping's keys (checked against the fields), or the fields of a config
        that differ from the defaults (pass a mapping to give a default value explicitly)."""
        if isinstance(options, JobOptions):
            default = cls.defaults()
            return {n: getattr(options, n) for n in cls.names()
                    if default is None or getattr(options, n) != getattr(default, n)}
        cls._check_keys(options, "")
        return dict(options)

    @classmethod
    def defaults(cls: type[C]) -> C | None:
        """The config with every default (None when an option has no default, e.g. the one-shot method)."""
        try:
            return cls()
        except TypeError:
            return None

    @classmethod
    def merge_given(cls, config: str | os.PathLike[str] | None, flags: Mapping[str, Any]) -> dict[str, Any]:
        """The options of a ``--config`` file with the flags given on top (None = not given). Mapping options
        (``space_options``, ...) merge key by key, list options (``constraints``) add up."""
        out: dict[str, Any] = {} if config is None else {k: v for k, v in cls.from_yaml(config).items()
                                                          if v is not None}
        cls._check_keys(flags, "")
        for k, v in flags.items():
            if v is None:
                continue
            old = out.get(k)
            if isinstance(v, Mapping) and isinstance(old, Mapping):
                out[k] = {**old, **v}
            elif isinstance(v, list) and isinstance(old, list):
                out[k] = [*old, *v]
            else:
                out[k] = v
        return out

    # -- new and resumed runs -----------------------------------------------------------------------
    @classmethod
    def new(cls: type[C], given: Mapping[str, Any]) -> C:
        """A config for a new run: the defaults with ``given`` on top, validated."""
        cls._check_keys(given, "")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in given
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise NasforgeError(f"{cls.JOB}: missing option {', '.join(missing)} (give it as a flag or a --config key)")
        cls.check_values(given)
        cfg = cls(**given)
        cfg.validate()
        return cfg

    @classmethod
    def of(cls: type[C], options: C | Mapping[str, Any]) -> C:
        """The config of a new run from what a job was called with: a config (validated), or the options given
        on top of the defaults (``new``)."""
        if isinstance(options, Mapping):
            return cls.new(options)
        cls.check_values({f.name: getattr(options, f.name) for f in dataclasses.fields(options)})
        options.validate()
        return options

    @classmethod
    def resumed(cls: type[C], stored: Mapping[str, Any], given: Mapping[str, Any], where: str | Path) -> C:
        """The stored run's config with the given options that may change on resume; any other option given
        must equal the stored one (for mapping options: the stored mapping holds each given key with its value)."""
        if not cls.RESUME_MAY_CHANGE:
            raise NasforgeError(f"cannot resume {where}: a {cls.JOB} run cannot be resumed; start a new one in a "
                                "new directory")
        cls._check_keys(given, "")
        cls.check_values(given)
        known = cls.names()
        try:
            old = cls(**{k: v for k, v in stored.items() if k in known})
        except TypeError:
            raise NasforgeError(f"cannot resume {where}: its stored config is not a {cls.JOB} config") from None
        for key, value in given.items():
            if key == "out" or key in cls.RESUME_MAY_CHANGE:
                continue
            was = getattr(old, key)
            if isinstance(value, Mapping) and isinstance(was, Mapping):
                same = all(k in was and was[k] == v for k, v in value.items())  # stored holds resolved options
            else:  # compared as the config holds it (e.g. constraints in canonical keys)
                same = was == getattr(dataclasses.replace(old, **{key: value}), key)
            if not same:
                raise NasforgeError(f"cannot resume {where}: {key} was {was!r}, now {value!r}; on resume only "
                                    f"{', '.join(cls.RESUME_MAY_CHANGE)} may change")
        new = dataclasses.replace(old, **{k: given[k] for k in cls.RESUME_MAY_CHANGE if k in given},
                                  out=str(where))
        new.validate()
        return new

    @classmethod
    def check_values(cls, values: Mapping[str, Any]) -> None:
        """Each value has its option's type (from the field's annotation: ``int``, ``float``, ``str``, ``bool``,
        ``None``, ``dict[...]``, ``list[...]``), floats are finite, ``seed`` is >= 0 and learning rates are > 0;
        else one line naming the option. A YAML config gives any value (``seed: 1.5``, ``space_options: [1, 2]``,
        ``lr: .inf``): checked here before anything uses it."""
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        for name, value in values.items():
            if name not in types:
                continue
            allowed = [t.strip().split("[")[0] for t in types[name].split("|")]
            if not any(_is(value, t) for t in allowed) or ("list[str]" in types[name] and isinstance(value, list)
                                                          and not all(isinstance(v, str) for v in value)):
                raise NasforgeError(f"{cls.JOB} option {name} must be {' or '.join(_WORDS.get(t, t) for t in allowed)}"
                                    f", got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise NasforgeError(f"{cls.JOB} option {name} must be a finite number, got {value!r}")
            if name == "seed" and isinstance(value, int) and value < 0:
                raise NasforgeError(f"{cls.JOB} option seed must be an integer >= 0, got {value!r}")
            # arch_lr 0 is meaningful: the architecture weights stay where they start (an ablation)
            low_ok = name == "arch_lr"
            if ((name == "lr" or name.endswith("_lr")) and isinstance(value, int | float)
                    and (value < 0 or (value == 0 and not low_ok))):
                raise NasforgeError(f"{cls.JOB} option {name} must be a learning rate {'>= 0' if low_ok else '> 0'}"
                                    f", got {value!r}")

    def validate(self) -> None:
        """Check every option that needs no data; raise ``NasforgeError`` (one line) on the first bad one."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def positive_ints(cfg: JobOptions, *names: str) -> None:
    """Each named option is an integer > 0 (not a bool)."""
    for name in names:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise NasforgeError(f"{name} must be a positive integer, got {v!r}")


_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false", "None": "null",
          "dict": "a mapping", "list": "a list (of strings where it holds strings)"}


def _is(value: Any, type_name: str) -> bool:
    """``value`` fits the annotation word ``type_name`` (an unknown word accepts anything)."""
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "None":
        return value is None
    if type_name == "dict":
        return isinstance(value, Mapping)
    if type_name == "list":
        return isinstance(value, list | tuple)
    return type_name not in _WORDS


@dataclass(kw_only=True)
class BackendOptions(JobOptions):
    """Where a job's evaluations run, shared by the jobs that evaluate many things (search, benchmark):
    ``backend`` (``local`` | ``ray``), ``ray_address`` (HOST:PORT of a running cluster; default: a local Ray
    instance), ``trial_resources`` (``cpu=1,gpu=0.5,memory=2GB`` or a mapping) and ``in_flight`` (evaluations asked
    ahead; default ``workers``). See ``nasforge.runner._backends``."""

    backend: str = "local"
    ray_address: str | None = None
    trial_resources: str | dict[str, Any] | None = None
    in_flight: int | None = None

    def validate_backend(self) -> None:
        """One line for an unknown backend, Ray not installed, a bad resource or ``in_flight``; connects to
        nothing (the runner connects before it writes the run folder)."""
        from nasforge.runner._backends import check_backend, parse_resources

        check_backend(self.backend, self.ray_address)
        parse_resources(self.trial_resources)
        if self.in_flight is not None:
            positive_ints(self, "in_flight")

    def backend_options(self) -> dict[str, Any]:
        """The keyword arguments of ``run_search`` for these options."""
        return {"backend": self.backend, "ray_address": self.ray_address, "trial_resources": self.trial_resources,
                "in_flight": self.in_flight}
