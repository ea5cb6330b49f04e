"""The boot script of a benchmark instance, rendered from a template with escaped values.

User data runs as root on a machine we pay for; a value that could break out of its
quoting (a task id with `$(...)`, a URL with a quote) would run arbitrary commands. So
every value is validated against a strict pattern first, and then shell-quoted with
`shlex.quote` by the template's `shq` filter; the Jinja environment refuses to output
any expression that did not go through `shq`, so a template edit cannot forget it.
The result must fit EC2's 16 KB limit, checked here because moto does not check it.

Two runtimes run the same agent with the same arguments and upload the same result:

- ``zipapp`` (the default): the script installs a compiler and python3, then the
  packages the task's benchmarks declare in the registry (`packages`, e.g. OpenBLAS for
  linpack; best effort: a failed install is logged and does not stop the run, the
  benchmark itself then records or reports what it lacks), fetches agent.pyz by presigned
  GET, checks its sha256 and runs it.
- ``container``: the script installs and starts docker, pulls ``image`` (the Dockerfile's
  agent image: the agent as ENTRYPOINT, the compiler inside) and runs it with the work
  directory mounted at ``/work``. The instance has no credentials (DESIGN principle 2: no
  instance profile), so the image must be pullable anonymously: a public registry such as
  ECR Public (``public.ecr.aws/ALIAS/REPO:TAG``). A private ECR URI
  (``ACCOUNT.dkr.ecr.REGION.amazonaws.com/...``) is refused up front with that reason,
  rather than failing on the instance at `docker pull` after it has been paid for.
  The image carries its own toolchain: `packages` are not installed on the host.

A user-defined suite never appears in the script: a suite task passes the agent only the
presigned URL of the suite's JSON artifact and its sha256 (`--suite-url`,
`--suite-sha256`, both in `AGENT_OPTIONS` with strict forms); the agent fetches the
artifact, checks the digest and validates it again before running anything.
"""

from __future__ import annotations

import functools
import re
import shlex
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2

from instbench.aws.launch import USER_DATA_LIMIT
from instbench.errors import UserDataTooLarge, UserError

__all__ = ["USER_DATA_LIMIT"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_BENCHMARK = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_INSTANCE_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\.[a-z0-9-]{1,20}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")
# RFC 3986 characters minus the ones a shell or a header could act on: quotes, `$`,
# backquote, backslash, whitespace, `<>{}|^`. Presigned S3 URLs need none of them.
_URL_CHARS = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+$")
# An image reference, fully qualified: registry/repository[:tag][@sha256:digest]. The
# registry is a lowercase DNS name with a dot (optionally :port), so a bare Docker Hub
# name cannot be mistaken for a registry; path components follow the OCI distribution
# spec. Nothing a shell or docker's own option parser could act on can match (no
# whitespace, quotes, `$`, `;`, and no leading `-`).
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?P<registry>{_LABEL}(?:\.{_LABEL})+(?::[0-9]{{1,5}})?)"
    rf"/(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
_IMAGE_MAX = 255 + 1 + 128 + 1 + 71
"""docker's limit on a name (255) plus the longest tag and digest."""
_PRIVATE_ECR = re.compile(r"\d{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")

RUNTIMES = ("zipapp", "container")
"""How the instance runs the agent: the zipapp fetched by presigned URL, or an image."""

_COUNT = re.compile(r"^[1-9][0-9]{0,11}$")
_COUNT0 = re.compile(r"^(0|[1-9][0-9]{0,5})$")
_PRICE_VALUE = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,9})?(e-?[0-9]{1,2})?$")
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+$")
"""A URL option's value; `validate` also applies `_check_url`, as for the agent URL."""
# A distribution package name (registry.Requirements.packages): what dnf, yum and
# apt-get accept, minus a leading '-' (an option to the package manager), whitespace,
# quotes, ':' and anything else a shell could act on. Rendered only through shq.
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
MAX_PACKAGES = 32
# A benchmark parameter (registry.parse_assignments): BENCH.NAME=VALUE, the value a number,
# a word, a path or a URL. No whitespace, quotes, `$`, backquote, `;` or anything else a
# shell could act on, although the value is rendered only through shq like every other.
_PARAM = re.compile(r"^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,63}=[A-Za-z0-9._~:/@+,%=-]{1,512}$")

_ADVERTISED_ITEM = r"[a-z_]{1,40}=[0-9]{1,12}(\.[0-9]{1,6})?"
_ADVERTISED = re.compile(rf"^{_ADVERTISED_ITEM}(,{_ADVERTISED_ITEM}){{0,15}}$")
"""The storage benchmark's advertised limits: key=number pairs (keys checked by the agent)."""


def advertised_text(values: dict[str, float]) -> str:
    """{'volume_iops': 3000.0} -> 'volume_iops=3000' in the form `--storage-advertised` takes."""
    return ",".join(
        f"{key}={value:.6f}".rstrip("0").rstrip(".") for key, value in sorted(values.items())
    )


AGENT_OPTIONS: dict[str, re.Pattern[str]] = {
    "--array-size": _COUNT,
    "--ntimes": _COUNT,
    "--threads": _COUNT,
    "--duration-s": _COUNT,
    "--hourly-price-usd": _PRICE_VALUE,
    "--spot-interruptions": _COUNT0,
    "--suite-url": _HTTP_URL,
    "--suite-sha256": _SHA256,
    "--param": _PARAM,
    "--storage-advertised": _ADVERTISED,
}
"""Options the controller may pass through to the agent, each with the only form its value
may take: benchmark counts and parameters (`--param BENCH.NAME=VALUE`, repeatable), the
launch price and spot interruptions it records, and the presigned URL and sha256 (64
lowercase hex) of a suite artifact."""

_URL_OPTIONS = frozenset({"--suite-url"})
"""Options whose value must also pass the agent URL's check (`_check_url`)."""
_SUITE_OPTIONS = ("--suite-url", "--suite-sha256")
"""Given together, once each: a URL alone would run unverified bytes."""


@dataclass(frozen=True)
class UserDataParams:
    """Everything the boot script needs; all of it is validated by `render_user_data`."""

    run_id: str
    task_id: str
    sample: int
    instance_type: str
    region: str
    benchmarks: tuple[str, ...]
    agent_url: str
    agent_sha256: str
    result_url: str
    log_url: str
    watchdog_minutes: int
    collection_method: str = "aws"
    quick: bool = False
    market: str | None = None
    agent_args: tuple[str, ...] = ()
    result_content_type: str = "application/json"
    log_content_type: str = "text/plain"
    """Must match the content types the URLs were presigned with (they are signed)."""
    runtime: str = "zipapp"
    """`RUNTIMES`; the zipapp default renders exactly the script it always did."""
    image: str | None = None
    """The agent image for the container runtime (`check_image`); None for the zipapp."""
    packages: tuple[str, ...] = ()
    """Distribution packages to install before the agent runs (zipapp runtime only): what
    the task's benchmarks declare (`registry.packages_for`). Empty renders nothing, so a
    script without packages is byte for byte what it was before they existed."""

    @property
    def suite_task(self) -> bool:
        """True when the agent is given a suite artifact (`--suite-url` in agent_args)."""
        return "--suite-url" in self.agent_args[::2]


class _Quoted(str):
    """A string that has been through `shq`; the only kind the template may output."""


def shq(value: object) -> _Quoted:
    """shlex.quote for the template; refuses types whose text form is not obvious."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"shq got {type(value).__name__}; pass str or int")
    text = str(value)
    if "\0" in text:
        raise ValueError("NUL byte in a user data value")
    return _Quoted(shlex.quote(text))


def _finalize(value: Any) -> Any:
    if isinstance(value, _Quoted):
        return value
    raise jinja2.TemplateError(f"unquoted value in user data template: {value!r}")


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=False,  # a shell script, not HTML: quoting is done by shq
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["shq"] = shq
    source = resources.files("instbench.fleet").joinpath("templates/userdata.sh.j2")
    return env.from_string(source.read_text(encoding="utf-8"))


def _check(pattern: re.Pattern[str], value: object, what: str) -> None:
    # fullmatch, not match: `$` alone would also accept a trailing newline.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UserError(f"invalid {what} for user data: {value!r}")


def _check_url(value: str, what: str) -> None:
    _check(_URL_CHARS, value, what)
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise UserError(f"invalid {what} for user data: {value!r} is not an http(s) URL")


def _check_count(value: object, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(f"invalid {what} for user data: {value!r} (expected {low}..{high})")


def check_image(image: object) -> str:
    """The image reference if the instance can pull it; UserError (one line) otherwise.

    Strict on purpose: the reference ends up in a root shell script and on docker's
    command line, so only the documented reference grammar is accepted; and a private ECR
    registry is refused because the instance has no credentials to log in with.
    """
    # fullmatch, not match: `$` would also accept a trailing newline.
    match = _IMAGE.fullmatch(image) if isinstance(image, str) else None
    if match is None or len(match[0]) > _IMAGE_MAX:
        raise UserError(
            f"invalid --image {image!r}: expected REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], "
            "e.g. public.ecr.aws/ALIAS/instbench-agent:1.0"
        )
    if _PRIVATE_ECR.fullmatch(match["registry"]):
        raise UserError(
            f"--image {image} is in a private ECR registry, which needs credentials the "
            "instances do not have (they run without an instance profile); push the image "
            "to a public registry such as ECR Public (public.ecr.aws/ALIAS/REPO:TAG)"
        )
    return match[0]


def check_runtime(runtime: object, image: object) -> None:
    """UserError (one line) unless (runtime, image) is a combination that can run.

    The container runtime needs an image and the zipapp runtime takes none: an `--image`
    that would silently be ignored is a mistake the user should hear about.
    """
    if runtime not in RUNTIMES:
        raise UserError(f"invalid --runtime {runtime!r}: use {' or '.join(RUNTIMES)}")
    if runtime == "container":
        if image is None:
            raise UserError("--runtime container needs --image REGISTRY/REPOSITORY[:TAG]")
        check_image(image)
    elif image is not None:
        raise UserError("--image is only used with --runtime container")


def check_agent_args(args: tuple[str, ...] | list[str]) -> None:
    """UserError (one line) unless `args` are OPTION VALUE pairs of `AGENT_OPTIONS`.

    Also called when a fleet's options are made, so a value the user data would refuse
    (a `--param` path with a space) fails before anything is planned or created.
    """
    if len(args) % 2:
        raise UserError(f"agent options must be OPTION VALUE pairs: {tuple(args)!r}")
    for option, value in zip(args[::2], args[1::2], strict=True):
        if option not in AGENT_OPTIONS:
            allowed = ", ".join(sorted(AGENT_OPTIONS))
            raise UserError(f"agent option {option!r} is not allowed; allowed: {allowed}")
        if not isinstance(value, str) or not AGENT_OPTIONS[option].fullmatch(value):
            if option == "--param":
                raise UserError(
                    f"--param {value!r} cannot be sent to an instance: a value there may "
                    "hold only letters, digits and . _ ~ : / @ + , % = -"
                )
            raise UserError(f"agent option {option}: invalid value {value!r}")
        if option in _URL_OPTIONS:
            _check_url(value, f"agent option {option}")


def validate(params: UserDataParams) -> None:
    """UserError (one line) for the first value that is not what it must be."""
    _check(_ID, params.run_id, "run id")
    _check(_ID, params.task_id, "task id")
    _check(_INSTANCE_TYPE, params.instance_type, "instance type")
    _check(_REGION, params.region, "region")
    _check(_SHA256, params.agent_sha256, "agent sha256")
    _check(_CONTENT_TYPE, params.result_content_type, "result content type")
    _check(_CONTENT_TYPE, params.log_content_type, "log content type")
    _check_count(params.sample, "sample", 0, 10_000)
    _check_count(params.watchdog_minutes, "watchdog minutes", 1, 7 * 24 * 60)
    if len(set(params.benchmarks)) != len(params.benchmarks):
        raise UserError(f"invalid benchmark list for user data: {params.benchmarks!r}")
    for name in params.benchmarks:
        _check(_BENCHMARK, name, "benchmark name")
    for url, what in (
        (params.agent_url, "agent URL"),
        (params.result_url, "result URL"),
        (params.log_url, "log URL"),
    ):
        _check_url(url, what)
    if params.collection_method not in {"aws", "sandbox"}:
        raise UserError(f"invalid collection method for user data: {params.collection_method!r}")
    if params.market not in {None, "on-demand", "spot"}:
        raise UserError(f"invalid market for user data: {params.market!r}")
    check_runtime(params.runtime, params.image)
    args = params.agent_args
    check_agent_args(args)
    given = list(args[::2])
    suite = [given.count(option) for option in _SUITE_OPTIONS]
    if suite not in ([0, 0], [1, 1]):
        raise UserError("agent options --suite-url and --suite-sha256 go together, once each")
    if not params.benchmarks and not params.suite_task:
        raise UserError(f"invalid benchmark list for user data: {params.benchmarks!r}")
    if not isinstance(params.packages, tuple) or len(params.packages) > MAX_PACKAGES:
        raise UserError(f"invalid package list for user data: {params.packages!r}")
    if len(set(params.packages)) != len(params.packages):
        raise UserError(f"package listed twice for user data: {params.packages!r}")
    for package in params.packages:
        _check(_PACKAGE, package, "package name")


def _render(params: UserDataParams) -> str:
    """Render without validation (tests use it to prove the quoting alone holds)."""
    return _template().render(p=params, agent_args=list(params.agent_args))


def render_user_data(params: UserDataParams) -> str:
    """The boot script for `params`: validated, quoted, and under EC2's 16 KB limit."""
    validate(params)
    script = _render(params)
    size = len(script.encode("utf-8"))
    if size > USER_DATA_LIMIT:
        raise UserDataTooLarge(f"user data is {size} bytes; EC2 accepts at most {USER_DATA_LIMIT}")
    return script
