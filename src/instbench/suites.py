"""User-defined suites (controller side): load a TOML file, validate it, ship it as JSON.

A suite file describes commands to benchmark and how to read a number from each:

    name = "python-startup"
    version = "1.0"

    [[benchmarks]]
    name = "interpreter_start"
    command = ["python3", "-c", "import json,time; ..."]
    parse = { kind = "json", path = "seconds" }
    unit = "s"
    higher_is_better = false
    timeout_s = 60
    repeats = 5

Everything is checked here, before anything is launched or run, with one-line errors
(`UserError`, exit 2): unknown keys, key-safe names, argv without NUL or newlines, a shell
only with an explicit `shell = true`, regexes that compile and have the named group,
bounded timeouts and repeats. The rules are the constants of `instbench.agent.suite`,
which checks the JSON artifact again on the machine with the standard library; pydantic
here gives precise messages and the schema, the agent's copy guards whatever path the
JSON took.

The validated suite becomes a JSON artifact (`to_artifact`) carrying the sha256 of the
TOML file: `run --local` hands the agent a file; a fleet run (`SuiteArtifact`) uploads it
once per run as artifacts/{sha256}.json next to agent.pyz, and each suite task's instance
fetches it by presigned GET and checks its sha256 (`--suite-url`, `--suite-sha256`), so
suite text never reaches the user data or a shell.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from instbench.agent import suite as agent_suite
from instbench.errors import UserError
from instbench.limits import MAX_SUITE_FILE_BYTES, read_bounded

# MAX_SUITE_FILE_BYTES (instbench.limits): a larger suite file is refused, read no further
# (no hand-written suite is near it).


def _no_control(value: str) -> str:
    if any(c in value for c in ("\x00", "\n", "\r")):
        raise ValueError("must not contain NUL or newline characters")
    return value


Line = Annotated[str, AfterValidator(_no_control)]
Description = Annotated[str, Field(max_length=agent_suite.MAX_TEXT), AfterValidator(_no_control)]
CommandName = Annotated[str, Field(pattern=agent_suite.COMMAND_NAME)]
PackageName = Annotated[str, Field(pattern=agent_suite.PACKAGE_NAME)]
Arg = Annotated[str, Field(max_length=agent_suite.MAX_ARG_CHARS), AfterValidator(_no_control)]


class _Model(BaseModel):
    """Strict: unknown keys are errors and no type is coerced ("3" is not 3)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("lists a name twice")
    return values


class SuiteRequirements(_Model):
    """What must exist on the machine before any command of the suite runs."""

    commands: Annotated[
        list[CommandName], Field(max_length=agent_suite.MAX_REQUIREMENTS), AfterValidator(_unique)
    ] = Field(default_factory=list, description="Commands that must be found on PATH.")
    packages: Annotated[
        list[PackageName], Field(max_length=agent_suite.MAX_REQUIREMENTS), AfterValidator(_unique)
    ] = Field(
        default_factory=list,
        description="Packages that must be installed (checked with rpm or dpkg-query).",
    )


class JsonParse(_Model):
    """The command prints JSON (the whole output, or its last line); `path` finds the number."""

    kind: Literal["json"]
    path: str = Field(
        pattern=agent_suite.JSON_PATH,
        max_length=agent_suite.MAX_TEXT,
        description="Dotted path, digits index lists: 'results.0.ops_per_s'.",
    )
    source: Literal["stdout", "stderr"] = "stdout"


class RegexParse(_Model):
    """A regular expression whose named group holds the number."""

    kind: Literal["regex"]
    pattern: Line = Field(max_length=1000, description="Python regex, searched line-wise.")
    group: str = Field(default="value", pattern=agent_suite.GROUP_NAME)
    match: Literal["first", "last"] = "first"
    source: Literal["stdout", "stderr"] = "stdout"

    @model_validator(mode="after")
    def _compiles(self) -> RegexParse:
        problem = agent_suite.check_regex(self.pattern, self.group)
        if problem:
            raise ValueError(problem)
        return self


class SuiteBenchmarkModel(_Model):
    """One measured command."""

    name: str = Field(pattern=agent_suite.BENCHMARK_NAME)
    description: Description = ""
    command: list[Arg] = Field(
        min_length=1,
        max_length=agent_suite.MAX_ARGS,
        description="argv, executed without a shell; with shell = true, one string run "
        "by /bin/sh -c.",
    )
    shell: bool = False
    parse: Annotated[JsonParse | RegexParse, Field(discriminator="kind")]
    unit: Annotated[str, Field(min_length=1, max_length=agent_suite.MAX_UNIT)]
    higher_is_better: bool
    timeout_s: float = Field(
        default=300.0, ge=agent_suite.MIN_TIMEOUT_S, le=agent_suite.MAX_TIMEOUT_S
    )
    repeats: int = Field(default=3, ge=1, le=agent_suite.MAX_REPEATS)
    requirements: SuiteRequirements = Field(default_factory=SuiteRequirements)

    @model_validator(mode="after")
    def _command(self) -> SuiteBenchmarkModel:
        _no_control(self.unit)
        if not self.unit.strip():
            raise ValueError("unit must not be empty")
        try:
            agent_suite.check_command(list(self.command), self.shell, "command")
        except agent_suite.SuiteError as exc:
            raise ValueError(str(exc).removeprefix("suite: ")) from None
        return self


class SuiteModel(_Model):
    """A suite file."""

    name: str = Field(pattern=agent_suite.SUITE_NAME)
    version: str = Field(pattern=agent_suite.VERSION)
    description: Description = ""
    requirements: SuiteRequirements = Field(default_factory=SuiteRequirements)
    benchmarks: list[SuiteBenchmarkModel] = Field(
        min_length=1, max_length=agent_suite.MAX_BENCHMARKS
    )

    @model_validator(mode="after")
    def _whole(self) -> SuiteModel:
        names = [b.name for b in self.benchmarks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"benchmark name {dupes[0]!r} is used twice")
        worst = sum(b.timeout_s * b.repeats for b in self.benchmarks)
        if worst > agent_suite.MAX_TOTAL_S:
            raise ValueError(
                f"timeouts x repeats add up to {worst:.0f} s, above the "
                f"{agent_suite.MAX_TOTAL_S:.0f} s limit"
            )
        return self


class LoadedSuite(_Model):
    """A validated suite and the sha256 of the file it came from."""

    suite: SuiteModel
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    path: str

    def to_artifact(self) -> bytes:
        """The JSON artifact the agent runs (stable bytes: sorted keys)."""
        doc = {
            "format": agent_suite.FORMAT,
            "source_sha256": self.source_sha256,
            "suite": self.suite.model_dump(mode="json"),
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def artifact_sha256(self) -> str:
        """sha256 of `to_artifact()`: what the instance checks before it runs anything."""
        return hashlib.sha256(self.to_artifact()).hexdigest()


@dataclass(frozen=True)
class SuiteArtifact:
    """A validated suite as a fleet run ships it: the exact artifact bytes and their sha256.

    A fleet keeps the bytes, not the TOML path: the journal stores them (`as_params`), so
    `--resume` launches the very suite the run was planned and partly run with, even when
    the file has changed or gone since; and the digest the instances check is the digest
    of these bytes, whichever process computed them.
    """

    name: str
    version: str
    data: bytes
    sha256: str

    @classmethod
    def from_loaded(cls, loaded: LoadedSuite) -> SuiteArtifact:
        """The artifact of a suite file validated by `load_suite`."""
        data = loaded.to_artifact()
        return cls(
            name=loaded.suite.name,
            version=loaded.suite.version,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
        )

    @classmethod
    def from_bytes(cls, data: bytes, sha256: str, origin: str = "<artifact>") -> SuiteArtifact:
        """Rebuild from stored bytes (the journal): the digest must match and the artifact
        must pass the agent's check again; UserError (one line) otherwise."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise UserError(f"suite {origin}: invalid artifact sha256 {sha256!r}")
        try:
            suite = agent_suite.suite_from_artifact(data, sha256)
        except agent_suite.SuiteError as exc:
            raise UserError(f"suite {origin}: {str(exc).removeprefix('suite: ')}") from None
        return cls(name=suite.name, version=suite.version, data=data, sha256=sha256)

    @property
    def worst_case_s(self) -> float:
        """How long the suite runs when every command uses its whole timeout, every repeat
        (the artifact was validated when this object was made, so it parses)."""
        suite = agent_suite.suite_from_artifact(self.data)
        return sum(b.timeout_s * b.repeats for b in suite.benchmarks)

    def as_params(self) -> dict[str, str]:
        """JSON-ready form for the run journal (the artifact is ASCII JSON text)."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "artifact": self.data.decode("utf-8"),
        }

    @classmethod
    def from_params(cls, params: object, origin: str = "journal") -> SuiteArtifact:
        """Inverse of `as_params`; UserError (one line) on anything else."""
        if not isinstance(params, dict):
            raise UserError(f"suite in the {origin} is not an object")
        text, digest = params.get("artifact"), params.get("sha256")
        if not isinstance(text, str) or not isinstance(digest, str):
            raise UserError(f"suite in the {origin} lacks its artifact or sha256")
        return cls.from_bytes(text.encode("utf-8"), digest, origin)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("json", "regex") or part.startswith("function-"):
            continue  # union tags and validator names are not keys the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = _location(tuple(err["loc"]))
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "string_pattern_mismatch":
        message = f"{err.get('input')!r} is not allowed (must match {err['ctx']['pattern']})"
    more = exc.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {message}{suffix}" if where else f"{message}{suffix}"


def parse_suite(raw: bytes, origin: str = "<suite>") -> LoadedSuite:
    """Validate suite TOML bytes; UserError with one line naming the file and the field."""
    if len(raw) > MAX_SUITE_FILE_BYTES:
        raise UserError(f"suite {origin}: {len(raw)} bytes, above {MAX_SUITE_FILE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"suite {origin}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"suite {origin}: invalid TOML: {exc}") from None
    try:
        model = SuiteModel.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"suite {origin}: {_first_error(exc)}") from None
    loaded = LoadedSuite(
        suite=model, source_sha256=hashlib.sha256(raw).hexdigest(), path=str(origin)
    )
    # The agent's stdlib check must accept what pydantic accepted; if the two ever
    # disagree, say so here rather than on a paid instance.
    try:
        agent_suite.suite_from_artifact(loaded.to_artifact())
    except agent_suite.SuiteError as exc:
        raise UserError(f"suite {origin}: rejected by the agent's check: {exc}") from None
    return loaded


def load_suite(path: Path) -> LoadedSuite:
    """Read and validate a suite file (`--suite FILE.toml`)."""
    # Read with a bound, never trusting stat: --suite /dev/zero reports size 0.
    return parse_suite(read_bounded(path, MAX_SUITE_FILE_BYTES, "suite"), str(path))


_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]")


def write_artifact(loaded: LoadedSuite, directory: Path) -> Path:
    """Write the JSON artifact into `directory`; its path (named after the suite)."""
    path = directory / f"suite-{_SAFE_FILE.sub('_', loaded.suite.name)}.json"
    path.write_bytes(loaded.to_artifact())
    return path


__all__ = [
    "MAX_SUITE_FILE_BYTES",
    "JsonParse",
    "LoadedSuite",
    "RegexParse",
    "SuiteArtifact",
    "SuiteBenchmarkModel",
    "SuiteModel",
    "SuiteRequirements",
    "load_suite",
    "parse_suite",
    "write_artifact",
]
