"""What a benchmark declares about itself: its parameters (typed, with ranges), what it
needs on the instance, how it runs, and the context it runs in.

Why a module of its own: the registry (`registry.py`) lists benchmarks and the built-ins
(`builtins.py`) declare them, and both need these types without importing each other.
This module is part of agent.pyz: stdlib-only, Python 3.9.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from instbench.benchmarks.errors import BenchmarkInputError

PARAMETER_KINDS = ("int", "float", "bool", "str")

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
RESERVED_NAMES = ("suite",)
"""Names no benchmark may take: `suite` is the section of `performance_data` (and the
`benchmark_suite` entry and storage path component) of user-defined suites."""
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
"""A distribution package name: what dnf, yum and apt-get accept, minus anything a shell
or the package manager's option parser could act on (no leading '-', no spaces, no ':')."""
_PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# ------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Parameter:
    """One tunable of a benchmark. `default=None` means "chosen for the machine/mode"."""

    name: str
    kind: str
    """One of PARAMETER_KINDS."""
    help: str
    default: Any = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[str, ...] = ()
    default_note: Optional[str] = None
    """How the value is chosen when `default` is None (shown by `benchmarks describe`)."""

    def __post_init__(self) -> None:
        if not _PARAM_NAME.match(self.name):
            raise ValueError(f"invalid parameter name {self.name!r}")
        if self.kind not in PARAMETER_KINDS:
            raise ValueError(f"parameter {self.name}: kind must be one of {PARAMETER_KINDS}")
        if self.default is not None:
            self.check(self.default, "<default>")

    def check(self, value: Any, benchmark: str = "") -> Any:
        """The value if it is valid for this parameter, else BenchmarkInputError (one line).

        None is always accepted (it means "choose"). Ints are accepted for float
        parameters; bools are never accepted as numbers.
        """
        where = f"{benchmark}: " if benchmark else ""
        if value is None:
            return None
        kind_ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(float(value)),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
        }[self.kind]
        if not kind_ok:
            raise BenchmarkInputError(
                f"{where}parameter {self.name} must be {self._kind_text()}, got {value!r}"
            )
        if self.kind == "float":
            value = float(value)
        if self.kind in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise BenchmarkInputError(
                    f"{where}parameter {self.name} must be >= {_num(self.minimum)}, got {value}"
                )
            if self.maximum is not None and value > self.maximum:
                raise BenchmarkInputError(
                    f"{where}parameter {self.name} must be <= {_num(self.maximum)}, got {value}"
                )
        if self.choices and value not in self.choices:
            raise BenchmarkInputError(
                f"{where}parameter {self.name} must be one of {', '.join(self.choices)}, "
                f"got {value!r}"
            )
        return value

    def parse(self, text: str, benchmark: str = "") -> Any:
        """Convert command-line text ('5', '2.5', 'true') and check it."""
        where = f"{benchmark}: " if benchmark else ""
        raw = text.strip()
        value: Any = raw
        try:
            if self.kind == "int":
                value = int(raw)
            elif self.kind == "float":
                value = float(raw)
        except ValueError:
            raise BenchmarkInputError(
                f"{where}parameter {self.name} must be {self._kind_text()}, got {text!r}"
            ) from None
        if self.kind == "bool":
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise BenchmarkInputError(
                    f"{where}parameter {self.name} must be true or false, got {text!r}"
                )
            value = lowered in ("true", "1", "yes")
        return self.check(value, benchmark)

    def _kind_text(self) -> str:
        return {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
            self.kind, "a string"
        )

    def allowed(self) -> str:
        """What the parameter accepts, in words: 'an integer from 100 to 40000'."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        text = self._kind_text()
        low, high = self.minimum, self.maximum
        if self.kind not in ("int", "float"):
            return text
        if low is not None and high is not None:
            return f"{text} from {_num(low)} to {_num(high)}"
        if low is not None:
            return f"{text} >= {_num(low)}"
        if high is not None:
            return f"{text} <= {_num(high)}"
        return text

    def format(self, value: Any) -> str:
        """The command-line text of a checked value, which `parse` reads back as it was."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return repr(value)
        return str(value)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready description (for `benchmarks describe --json`)."""
        return {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "default_note": self.default_note,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices),
            "help": self.help,
        }


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


@dataclass(frozen=True)
class Requirements:
    """What a benchmark needs on the instance before it can run."""

    c_compiler: bool = False
    openmp: bool = False
    packages: Tuple[str, ...] = ()
    """Distribution packages by their Amazon Linux (dnf) name, e.g. ('openblas-devel',).
    The fleet's user data installs them before the agent runs (zipapp runtime; best
    effort: a failed install is logged and the benchmark reports what it lacks)."""
    commands: Tuple[str, ...] = ()
    """Executables that must be on PATH, e.g. ('openssl',)."""

    def __post_init__(self) -> None:
        # Checked here, where a benchmark is declared, so a plugin with a hostile or
        # malformed package name fails to register instead of reaching user data.
        for name in self.packages:
            if not isinstance(name, str) or not _PACKAGE.fullmatch(name):
                raise ValueError(f"invalid package name {name!r}")
        if len(set(self.packages)) != len(self.packages):
            raise ValueError("a package is listed twice")

    def labels(self) -> Tuple[str, ...]:
        """Short labels: ('c-compiler', 'openmp', 'package:x', 'command:y')."""
        out: List[str] = []
        if self.c_compiler:
            out.append("c-compiler")
        if self.openmp:
            out.append("openmp")
        out.extend(f"package:{p}" for p in self.packages)
        out.extend(f"command:{c}" for c in self.commands)
        return tuple(out)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {
            "c_compiler": self.c_compiler,
            "openmp": self.openmp,
            "packages": list(self.packages),
            "commands": list(self.commands),
        }


@dataclass(frozen=True)
class RunContext:
    """What a benchmark's runner gets: validated parameters and the agent's environment."""

    params: Mapping[str, Any]
    """Every declared parameter, validated; None where the benchmark should choose."""
    quick: bool
    cache_dir: Path
    """Where compiled kernels are cached on this machine."""
    log: Callable[[str], None]
    collection_method: str = "local"
    """'local', 'sandbox' or 'aws': where the agent runs (storage writes to disks only on
    aws; elsewhere to files it creates)."""


Runner = Callable[[RunContext], Tuple[Dict[str, Any], Dict[str, Any]]]
"""Runs a benchmark: returns (its performance_data section, build info). Build info keys
the agent records: compiler, cflags, binary_cached, openmp, compile_s."""


@dataclass(frozen=True)
class BenchmarkInfo:
    """What the controller and the agent know about a benchmark before running it."""

    name: str
    version: str
    description: str
    run: Runner
    parameters: Tuple[Parameter, ...] = ()
    requires: Requirements = field(default_factory=Requirements)
    origin: str = "built-in"
    """'built-in', or 'plugin <distribution> <version>' for an entry-point benchmark."""
    instances: int = 1
    """Machines one measurement needs: 2 for a benchmark between a server and a client
    (`network`), which the controller must launch as a pair."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"invalid benchmark name {self.name!r}: lower-case letters, digits, _ "
                "(it becomes a JSON key and a storage path component)"
            )
        if self.name in RESERVED_NAMES:
            raise ValueError(f"benchmark name {self.name!r} is reserved for user-defined suites")
        if not self.version.strip():
            raise ValueError(f"benchmark {self.name}: version is empty")
        if not self.description.strip() or "\n" in self.description:
            raise ValueError(f"benchmark {self.name}: description must be one line")
        if not callable(self.run):
            raise ValueError(f"benchmark {self.name}: run is not callable")
        if self.instances not in (1, 2):
            raise ValueError(f"benchmark {self.name}: instances must be 1 or 2")
        seen = [p.name for p in self.parameters]
        if len(set(seen)) != len(seen):
            raise ValueError(f"benchmark {self.name}: parameter declared twice")

    @property
    def needs(self) -> Tuple[str, ...]:
        """Requirement labels, e.g. ('c-compiler', 'openmp')."""
        return self.requires.labels()

    @property
    def runs_in_agent(self) -> bool:
        """True for built-ins: only they are inside agent.pyz."""
        return self.origin == "built-in"

    def parameter(self, name: str) -> Parameter:
        """The declared parameter `name`; BenchmarkInputError naming the known ones."""
        for p in self.parameters:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise BenchmarkInputError(
            f"{self.name}: unknown parameter {name!r}; known parameters: {known}"
        )

    def validate_params(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """Every declared parameter with its checked value (or default); one-line errors."""
        for key in values:
            self.parameter(key)
        return {
            p.name: p.check(values[p.name], self.name) if p.name in values else p.default
            for p in self.parameters
        }

    def parse_params(self, items: Mapping[str, str]) -> Dict[str, Any]:
        """Like validate_params, from command-line text values."""
        return self.validate_params(
            {key: self.parameter(key).parse(text, self.name) for key, text in items.items()}
        )

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready description (for `benchmarks list/describe --json`)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "origin": self.origin,
            "runs_in_agent": self.runs_in_agent,
            "instances": self.instances,
            "requires": self.requires.as_dict(),
            "parameters": [p.as_dict() for p in self.parameters],
        }
