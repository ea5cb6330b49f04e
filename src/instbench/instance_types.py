"""Offline parser of EC2 instance type names (``m7i-flex.large``, ``c6gn.metal``, ``u-6tb1.metal``).

Why it exists: the controller has to reject a bad ``--instance-types`` value *before* the first
paid API call (a typo, a shell metacharacter, a size that does not exist), and the CLI wants to
explain a name without credentials. DescribeInstanceTypes stays the truth for architecture and
CPU vendor (DESIGN.md, principle 4); this parser is the offline fallback, and its tests check it
against every instance type name in botocore's EC2 model and every type in moto's copy of
DescribeInstanceTypes, so it is right for the names AWS sells rather than for a naive pattern.

The grammar (from the "Instance type naming conventions" page of the Amazon EC2 Instance Types
guide)::

    SERIES GENERATION [PROCESSOR] [CAPABILITIES...] [-VARIANT] . SIZE
      m       7           i                            -flex    . large
      c       6           g          n                          . metal
      is      4           g          e n                        . 2xlarge
      u       7           i                            -12tb    . 224xlarge
      p       6                      e                 -gb200   . 36xlarge

plus two irregular shapes: the first high-memory types ``u-<N>tb<GEN>`` (``u-6tb1.metal``) and
the chip-named Mac families ``mac-<chip>`` (``mac-m4.metal``), which carry no generation digit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from instbench.errors import InvalidInstanceType

Vendor = Literal["Intel", "AMD", "AWS", "Apple", "NVIDIA"]
Architecture = Literal["x86_64", "arm64"]

#: Longest name accepted. Real names are at most ~20 characters (``u7inh-32tb.480xlarge``);
#: the cap keeps pasted garbage out of error messages and journals.
MAX_NAME_LENGTH = 40

# Series: the letters before the generation digit, with what AWS says the series is for.
# Source: "Instance type naming conventions" and the per-category specification pages of the
# Amazon EC2 Instance Types guide (current and previous generation).
SERIES: dict[str, str] = {
    "a": "general purpose (AWS Graviton, first generation)",
    "c": "compute optimised",
    "cc": "cluster compute (previous generation)",
    "cg": "cluster GPU (previous generation)",
    "cr": "high-memory cluster (previous generation)",
    "d": "dense HDD storage",
    "dl": "deep learning accelerators",
    "f": "FPGA accelerated",
    "g": "graphics / GPU accelerated",
    "gr": "GPU accelerated, more memory per GPU",
    "h": "HDD storage, high throughput",
    "hi": "high I/O SSD storage (previous generation)",
    "hpc": "high performance computing",
    "hs": "high storage density (previous generation)",
    "i": "storage optimised (NVMe)",
    "im": "storage optimised, 1:4 vCPU to memory",
    "inf": "AWS Inferentia accelerators",
    "is": "storage optimised, 1:6 vCPU to memory",
    "m": "general purpose",
    "mac": "macOS",
    "p": "GPU accelerated",
    "r": "memory optimised",
    "t": "burstable general purpose",
    "trn": "AWS Trainium accelerators",
    "u": "high memory",
    "vt": "video transcoding",
    "x": "memory intensive",
    "z": "high frequency, memory optimised",
}

# The processor letter right after the generation.
PROCESSOR_VENDORS: dict[str, Vendor] = {"a": "AMD", "g": "AWS", "i": "Intel"}

# Capability letters after the processor letter, as readable names. Letters AWS uses in one
# series only are restricted to it so that a typo such as ``m7f`` is caught, not guessed at.
CAPABILITIES: dict[str, str] = {
    "b": "ebs-optimised",  # block storage: higher EBS bandwidth and IOPS
    "d": "local-nvme",  # instance store NVMe SSDs
    "e": "extra-mem/storage",  # more memory (x2iedn, p4de) or more local storage (i3en)
    "f": "fractional-gpu",  # g6f, gr6f: a fraction of one GPU
    "h": "hpe-platform",  # u7inh: AWS does not spell the letter out; it runs on HPE hosts
    "n": "network-optimised",
    "q": "qualcomm-ai",  # dl2q: Qualcomm AI 100 accelerators
    "s": "small-variant",  # g3s: the single-GPU, smaller sibling of g3
    "u": "ultraserver",  # trn2u: Trainium2 UltraServer nodes
    "z": "high-frequency",
}
_LETTER_SERIES: dict[str, frozenset[str]] = {
    "f": frozenset({"g", "gr"}),
    "h": frozenset({"u"}),
    "q": frozenset({"dl"}),
    "s": frozenset({"g"}),
    "u": frozenset({"trn"}),
}

# CPU vendor of families whose name carries no processor letter, keyed by series+generation.
# Facts from the processor column of the AWS "Amazon EC2 Instance Types" specification pages
# (general purpose, compute, memory, storage, accelerated, HPC and previous generation) and
# their Manufacturer in DescribeInstanceTypes. AWS named the CPU only from the fifth
# generation on, and not at all for most accelerated families, so these must be looked up.
DEFAULT_VENDORS: dict[str, Vendor] = {
    # general purpose and burstable
    "a1": "AWS",  # Graviton (first generation)
    "m1": "Intel",
    "m2": "Intel",
    "m3": "Intel",
    "m4": "Intel",
    "m5": "Intel",  # m5, m5d, m5dn, m5n, m5zn (m5a/m5ad carry the 'a')
    "t1": "Intel",
    "t2": "Intel",
    "t3": "Intel",  # t3a carries the 'a'
    "mac1": "Intel",  # Core i7 (Coffee Lake) Mac mini
    "mac2": "Apple",  # M1, and mac2-m1ultra / mac2-m2 / mac2-m2pro
    # compute optimised
    "c1": "Intel",
    "c3": "Intel",
    "c4": "Intel",
    "c5": "Intel",  # c5, c5d, c5n
    "cc1": "Intel",
    "cc2": "Intel",
    # memory optimised
    "cr1": "Intel",
    "r3": "Intel",
    "r4": "Intel",
    "r5": "Intel",  # r5, r5b, r5d, r5dn, r5n
    "u1": "Intel",  # u-3tb1 ... u-24tb1
    "x1": "Intel",  # x1, x1e
    "z1": "Intel",  # z1d
    # storage optimised
    "d2": "Intel",
    "d3": "Intel",  # d3, d3en
    "h1": "Intel",
    "hi1": "Intel",
    "hs1": "Intel",
    "i2": "Intel",
    "i3": "Intel",  # i3, i3en
    # accelerated computing
    "cg1": "Intel",
    "dl1": "Intel",  # Habana Gaudi with Xeon (Cascade Lake)
    "dl2": "Intel",  # dl2q: Qualcomm AI 100 with Xeon
    "f1": "Intel",
    "f2": "AMD",  # 3rd generation EPYC
    "g2": "Intel",
    "g3": "Intel",  # g3, g3s
    "g4": "Intel",  # g4dn (g4ad carries the 'a')
    "g5": "AMD",  # g5: 2nd generation EPYC (g5g carries the 'g')
    "g6": "AMD",  # g6, g6e, g6f: 3rd generation EPYC
    "gr6": "AMD",  # gr6, gr6f
    "g7": "Intel",  # g7, g7e
    "inf1": "Intel",
    "inf2": "AMD",
    "p2": "Intel",
    "p3": "Intel",  # p3, p3dn
    "p4": "Intel",  # p4d, p4de
    "p5": "AMD",  # p5, p5e: 3rd generation EPYC (p5en is the exception below)
    "p6": "Intel",  # p6-b200, p6-b300 (p6e-gb200 is the exception below)
    "trn1": "Intel",  # trn1, trn1n
    "trn2": "Intel",  # trn2, trn2u
    "vt1": "Intel",
}
# Where one member of a series+generation differs from the rest.
_STEM_VENDORS: dict[str, Vendor] = {"p5en": "Intel"}  # Sapphire Rapids, unlike p5/p5e
_VARIANT_VENDORS: dict[str, Vendor] = {"gb200": "NVIDIA"}  # p6e-gb200: Grace CPUs

_ARCHITECTURES: dict[Vendor, Architecture] = {
    "Intel": "x86_64",
    "AMD": "x86_64",
    "AWS": "arm64",
    "Apple": "arm64",
    "NVIDIA": "arm64",
}

_SIZE_WORDS = ("nano", "micro", "small", "medium", "large", "xlarge", "metal")
_SIZE_RE = re.compile(
    r"nano|micro|small|medium|large|xlarge|metal"
    r"|(?P<mult>[1-9][0-9]{0,2})xlarge|metal-(?P<metal>[1-9][0-9]{0,2})xl"
)
_STANDARD_RE = re.compile(
    r"(?P<series>[a-z]+)(?P<gen>[1-9][0-9]?)(?P<letters>[a-z]*)(?:-(?P<variant>[a-z0-9]+))?"
)
_LEGACY_U_RE = re.compile(r"u-(?P<variant>[1-9][0-9]?tb)(?P<gen>[1-9])")
_MAC_CHIP_RE = re.compile(r"mac-(?P<variant>m[1-9][0-9]?(?:pro|max|ultra)?)")
# Hyphenated variants, and the series each may follow.
_MAC_CHIP_VARIANT = re.compile(r"m[1-9][0-9]?(?:pro|max|ultra)?")  # mac2-m2pro
_MEMORY_VARIANT = re.compile(r"[1-9][0-9]?tb")  # u7i-12tb
_ACCELERATOR_VARIANT = re.compile(r"[a-z]{1,3}[1-9][0-9]{1,3}")  # p6-b200, p6e-gb200

_ALLOWED_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
# Characters a shell acts on (command separators, expansion, quoting, redirection).
_SHELL_METACHARACTERS = frozenset(";&|$`<>(){}[]*?!~#'\"\\\n\r")
_EXAMPLE = "m7i.large"


@dataclass(frozen=True, slots=True)
class InstanceTypeInfo:
    """What an instance type name says about the machine, without asking AWS.

    `generation` is None only for the chip-named Mac families (``mac-m4``), whose names carry
    no generation digit. `processor` is the processor letter when the name has one; `vendor`
    then follows it, otherwise it comes from `DEFAULT_VENDORS`. `variant` is the hyphenated
    qualifier of the family (``flex``, ``m2pro``, ``12tb``, ``b200``) or None.
    """

    instance_type: str
    family: str
    series: str
    generation: int | None
    processor: str | None
    vendor: Vendor
    architecture: Architecture
    attributes: tuple[str, ...]
    size: str
    is_metal: bool
    variant: str | None
    purpose: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping; the first seven keys are the `types parse --json` contract."""
        return {
            "instance_type": self.instance_type,
            "family": self.family,
            "generation": self.generation,
            "vendor": self.vendor,
            "architecture": self.architecture,
            "attributes": list(self.attributes),
            "size": self.size,
            "series": self.series,
            "processor": self.processor,
            "variant": self.variant,
            "is_metal": self.is_metal,
            "purpose": self.purpose,
        }


def parse_instance_type(name: str) -> InstanceTypeInfo:
    """Parse one EC2 instance type name, or raise `InvalidInstanceType` with a one-line fix.

    Nothing is stripped or lower-cased silently: the name is used verbatim in API calls and
    storage keys, so a name that needs repair is rejected with the repaired form as the hint.
    """
    _check_characters(name)
    family, dot, size = name.partition(".")
    if not dot or not family or not size or "." in size:
        raise _invalid(name, f"expected FAMILY.SIZE such as {_example_for(family)}")
    info = _parse_family(name, family)
    is_metal = _check_size(name, size)
    series, generation, processor, letters, variant = info
    vendor = _vendor(name, family, series, generation, processor, letters, variant)
    return InstanceTypeInfo(
        instance_type=name,
        family=family,
        series=series,
        generation=generation,
        processor=processor,
        vendor=vendor,
        architecture=_ARCHITECTURES[vendor],
        attributes=tuple(CAPABILITIES[c] for c in letters)
        + (("flex",) if variant == "flex" else ()),
        size=size,
        is_metal=is_metal,
        variant=variant,
        purpose=SERIES[series],
    )


def parse_many(names: Iterable[str]) -> list[InstanceTypeInfo]:
    """Parse every name, in order; the first invalid one raises (before anything is used)."""
    return [parse_instance_type(name) for name in names]


def split_type_list(text: str) -> list[str]:
    """Split a ``--instance-types`` value (``"m7i.large, c7g.large"``) into validated names.

    Items are trimmed around the commas; an empty item (``a,,b`` or a trailing comma) and a
    type listed twice are errors rather than silently fixed, because either usually means the
    list is not what the user meant, and a duplicate would double the cost of a run.
    """
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise InvalidInstanceType(
            "no instance types given: pass a comma-separated list such as m7i.large,c7g.large"
        )
    seen: set[str] = set()
    for position, item in enumerate(items, start=1):
        if not item:
            raise InvalidInstanceType(
                f"empty item {position} in instance type list {_show(text)}: "
                "remove the extra comma (e.g. m7i.large,c7g.large)"
            )
        parse_instance_type(item)
        if item in seen:
            raise InvalidInstanceType(
                f"instance type {item} is listed twice in {_show(text)}: list each type once "
                "(use --samples for repeats)"
            )
        seen.add(item)
    return items


def _check_characters(name: str) -> None:
    """Reject empty, oversized, spaced, shell-active, upper-case or otherwise odd names."""
    if not name:
        raise InvalidInstanceType(
            f"invalid instance type '': the name is empty; give one such as {_EXAMPLE}"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid(
            name,
            f"too long ({len(name)} characters, at most {MAX_NAME_LENGTH}); "
            f"give one such as {_EXAMPLE}",
        )
    # Leading/trailing whitespace (a pasted newline) gets the whitespace hint below instead.
    shell = sorted({c for c in name.strip() if c in _SHELL_METACHARACTERS})
    if shell:
        raise _invalid(
            name,
            f"contains shell metacharacters {' '.join(ascii(c) for c in shell)}; an instance "
            f"type has only a-z, 0-9, '-' and '.', such as {_EXAMPLE}",
        )
    if any(c.isspace() for c in name):
        stripped = name.strip()
        if stripped and not any(c.isspace() for c in stripped):
            hint = f"write it as {stripped}"
        else:
            hint = "give one type per argument, such as m7i.large"
        raise _invalid(name, f"contains whitespace; {hint}")
    if "," in name:
        raise _invalid(name, "contains ','; give one type per argument, such as m7i.large")
    if name != name.lower() and set(name.lower()) <= _ALLOWED_CHARS:
        raise _invalid(name, f"EC2 instance types are lower case; use {name.lower()}")
    bad = sorted({c for c in name if c not in _ALLOWED_CHARS})
    if bad:
        shown = " ".join(ascii(c) for c in bad)
        raise _invalid(
            name,
            f"contains {shown}; an instance type has only a-z, 0-9, '-' and '.', "
            f"such as {_EXAMPLE}",
        )


def _parse_family(name: str, family: str) -> tuple[str, int | None, str | None, str, str | None]:
    """Split a family into (series, generation, processor letter, capability letters, variant)."""
    if match := _LEGACY_U_RE.fullmatch(family):
        return "u", int(match["gen"]), None, "", match["variant"]
    if match := _MAC_CHIP_RE.fullmatch(family):
        return "mac", None, None, "", match["variant"]
    match = _STANDARD_RE.fullmatch(family)
    if match is None:
        raise _invalid(
            name,
            f"family {family!r} is not SERIES+GENERATION+LETTERS (such as m7i, c7gn, "
            "m7i-flex, u-6tb1); check the spelling",
        )
    series, generation = match["series"], int(match["gen"])
    if series not in SERIES:
        raise _invalid(
            name,
            f"unknown family series {series!r}; known series are {', '.join(sorted(SERIES))}",
        )
    letters: str = match["letters"]
    processor = letters[0] if letters[:1] in PROCESSOR_VENDORS else None
    capabilities = letters[1:] if processor else letters
    _check_capabilities(name, family, series, capabilities)
    variant: str | None = match["variant"]
    if variant is not None:
        _check_variant(name, family, series, variant)
    return series, generation, processor, capabilities, variant


def _check_capabilities(name: str, family: str, series: str, letters: str) -> None:
    """Every capability letter must be known, appear once, and belong to this series."""
    for index, letter in enumerate(letters):
        if letter in PROCESSOR_VENDORS:
            raise _invalid(
                name,
                f"letter {letter!r} in family {family!r} is out of place: the processor "
                "letter (a, g or i) comes right after the generation, as in m7i or c7gn",
            )
        if letter not in CAPABILITIES:
            raise _invalid(
                name,
                f"unknown capability letter {letter!r} in family {family!r}; known letters "
                f"are {', '.join(sorted(CAPABILITIES))}",
            )
        if letter in letters[:index]:
            raise _invalid(name, f"letter {letter!r} appears twice in family {family!r}")
        allowed = _LETTER_SERIES.get(letter)
        if allowed is not None and series not in allowed:
            raise _invalid(
                name,
                f"letter {letter!r} ({CAPABILITIES[letter]}) is not used with series "
                f"{series!r} (only {', '.join(sorted(allowed))}); check the spelling",
            )


def _check_variant(name: str, family: str, series: str, variant: str) -> None:
    """A hyphenated qualifier must be one AWS uses for this kind of family."""
    if variant == "flex":
        return
    if series == "mac" and _MAC_CHIP_VARIANT.fullmatch(variant):
        return
    if series == "u" and _MEMORY_VARIANT.fullmatch(variant):
        return
    if series == "p" and _ACCELERATOR_VARIANT.fullmatch(variant):
        return
    raise _invalid(
        name,
        f"unknown variant '-{variant}' in family {family!r}; AWS uses -flex (m7i-flex), "
        "a Mac chip (mac2-m2pro), a memory size (u7i-12tb) or a GPU model (p6-b200)",
    )


def _check_size(name: str, size: str) -> bool:
    """Validate the size word; True for bare-metal sizes (``metal``, ``metal-24xl``)."""
    match = _SIZE_RE.fullmatch(size)
    if match is None or match["mult"] == "1" or match["metal"] == "1":
        raise _invalid(
            name,
            f"unknown size {size!r}; use one of {', '.join(_SIZE_WORDS)}, "
            "NNxlarge (2xlarge, 48xlarge) or metal-NNxl (metal-24xl)",
        )
    return size.startswith("metal")


def _vendor(
    name: str,
    family: str,
    series: str,
    generation: int | None,
    processor: str | None,
    letters: str,
    variant: str | None,
) -> Vendor:
    """The processor letter decides; otherwise the documented vendor of the family."""
    if processor is not None:
        return PROCESSOR_VENDORS[processor]
    if series == "mac" and generation is None:
        return "Apple"  # mac-m4, mac-m4pro, mac-m3ultra, ...
    if variant in _VARIANT_VENDORS:
        return _VARIANT_VENDORS[variant]
    stem = f"{series}{generation}{letters}"
    if stem in _STEM_VENDORS:
        return _STEM_VENDORS[stem]
    key = f"{series}{generation}"
    if key in DEFAULT_VENDORS:
        return DEFAULT_VENDORS[key]
    raise _invalid(
        name,
        f"family {family!r} names no processor (a, g or i) and is not a family instbench "
        f"knows; check the spelling (e.g. {series}{generation}i, {series}{generation}g)",
    )


def _example_for(family: str) -> str:
    """A size hint built on the user's own family when it parses (``m7i`` -> ``m7i.large``).

    Mac families come only as ``.metal``; the high-memory ``u`` families have no common size,
    so they get the generic example.
    """
    suffix = ".metal" if family.startswith("mac") else ".large"
    if not family or family.startswith("u"):
        return _EXAMPLE
    try:
        parse_instance_type(family + suffix)
    except InvalidInstanceType:
        return _EXAMPLE
    return family + suffix


def _show(text: str) -> str:
    """Quote user text for a one-line message: escaped (no newlines) and length-capped."""
    if len(text) > MAX_NAME_LENGTH:
        return f"{text[:MAX_NAME_LENGTH]!r}..."
    return repr(text)


def _invalid(name: str, reason: str) -> InvalidInstanceType:
    return InvalidInstanceType(f"invalid instance type {_show(name)}: {reason}")
