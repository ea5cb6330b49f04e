"""The offline instance type name parser, on the families naive matching gets wrong.

Besides a hand-checked table, every name in botocore's EC2 model must parse, and for every type
in moto's copy of DescribeInstanceTypes the parsed vendor, architecture and bare-metal flag must
match what AWS reports: so a new family AWS starts selling shows up here as a failing test.
"""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.model import StringShape

from instbench.errors import InvalidInstanceType, UserError
from instbench.instance_types import (
    CAPABILITIES,
    InstanceTypeInfo,
    parse_instance_type,
    parse_many,
    split_type_list,
)

INTEL, AMD, AWS, APPLE, NVIDIA = "Intel", "AMD", "AWS", "Apple", "NVIDIA"
X86, ARM = "x86_64", "arm64"
D = "local-nvme"
N = "network-optimised"
E = "extra-mem/storage"
Z = "high-frequency"
B = "ebs-optimised"
FLEX = "flex"
Q = "qualcomm-ai"
F = "fractional-gpu"
S = "small-variant"
U = "ultraserver"
H = "hpe-platform"

# name, family, series, generation, processor letter, vendor, architecture, attributes, size
VALID: list[tuple[str, str, str, int | None, str | None, str, str, tuple[str, ...], str]] = [
    # general purpose, burstable, flex
    ("m7i.large", "m7i", "m", 7, "i", INTEL, X86, (), "large"),
    ("m7i.48xlarge", "m7i", "m", 7, "i", INTEL, X86, (), "48xlarge"),
    ("m7i.metal-24xl", "m7i", "m", 7, "i", INTEL, X86, (), "metal-24xl"),
    ("m7i-flex.large", "m7i-flex", "m", 7, "i", INTEL, X86, (FLEX,), "large"),
    ("c7i-flex.2xlarge", "c7i-flex", "c", 7, "i", INTEL, X86, (FLEX,), "2xlarge"),
    ("m8i-flex.xlarge", "m8i-flex", "m", 8, "i", INTEL, X86, (FLEX,), "xlarge"),
    ("m7a.medium", "m7a", "m", 7, "a", AMD, X86, (), "medium"),
    ("m7g.medium", "m7g", "m", 7, "g", AWS, ARM, (), "medium"),
    ("m6gd.xlarge", "m6gd", "m", 6, "g", AWS, ARM, (D,), "xlarge"),
    ("m8g.metal-24xl", "m8g", "m", 8, "g", AWS, ARM, (), "metal-24xl"),
    ("m5.large", "m5", "m", 5, None, INTEL, X86, (), "large"),
    ("m5zn.metal", "m5zn", "m", 5, None, INTEL, X86, (Z, N), "metal"),
    ("m5dn.large", "m5dn", "m", 5, None, INTEL, X86, (D, N), "large"),
    ("m6idn.large", "m6idn", "m", 6, "i", INTEL, X86, (D, N), "large"),
    ("m8idb.large", "m8idb", "m", 8, "i", INTEL, X86, (D, B), "large"),
    ("m8azn.medium", "m8azn", "m", 8, "a", AMD, X86, (Z, N), "medium"),
    ("a1.medium", "a1", "a", 1, None, AWS, ARM, (), "medium"),
    ("a1.metal", "a1", "a", 1, None, AWS, ARM, (), "metal"),
    ("t2.micro", "t2", "t", 2, None, INTEL, X86, (), "micro"),
    ("t3.nano", "t3", "t", 3, None, INTEL, X86, (), "nano"),
    ("t3a.small", "t3a", "t", 3, "a", AMD, X86, (), "small"),
    ("t4g.medium", "t4g", "t", 4, "g", AWS, ARM, (), "medium"),
    ("mac1.metal", "mac1", "mac", 1, None, INTEL, X86, (), "metal"),
    ("mac2.metal", "mac2", "mac", 2, None, APPLE, ARM, (), "metal"),
    ("mac2-m2.metal", "mac2-m2", "mac", 2, None, APPLE, ARM, (), "metal"),
    ("mac2-m2pro.metal", "mac2-m2pro", "mac", 2, None, APPLE, ARM, (), "metal"),
    ("mac2-m1ultra.metal", "mac2-m1ultra", "mac", 2, None, APPLE, ARM, (), "metal"),
    ("mac-m4.metal", "mac-m4", "mac", None, None, APPLE, ARM, (), "metal"),
    ("mac-m4pro.metal", "mac-m4pro", "mac", None, None, APPLE, ARM, (), "metal"),
    # compute optimised
    ("c5.large", "c5", "c", 5, None, INTEL, X86, (), "large"),
    ("c5a.large", "c5a", "c", 5, "a", AMD, X86, (), "large"),
    ("c5ad.large", "c5ad", "c", 5, "a", AMD, X86, (D,), "large"),
    ("c5n.18xlarge", "c5n", "c", 5, None, INTEL, X86, (N,), "18xlarge"),
    ("c6gn.16xlarge", "c6gn", "c", 6, "g", AWS, ARM, (N,), "16xlarge"),
    ("c7gn.metal", "c7gn", "c", 7, "g", AWS, ARM, (N,), "metal"),
    ("c7g.metal", "c7g", "c", 7, "g", AWS, ARM, (), "metal"),
    ("c7i.large", "c7i", "c", 7, "i", INTEL, X86, (), "large"),
    ("c8g.xlarge", "c8g", "c", 8, "g", AWS, ARM, (), "xlarge"),
    ("c8ine.large", "c8ine", "c", 8, "i", INTEL, X86, (N, E), "large"),
    # memory optimised
    ("r5b.large", "r5b", "r", 5, None, INTEL, X86, (B,), "large"),
    ("r6a.large", "r6a", "r", 6, "a", AMD, X86, (), "large"),
    ("r7iz.metal-16xl", "r7iz", "r", 7, "i", INTEL, X86, (Z,), "metal-16xl"),
    ("r8g.large", "r8g", "r", 8, "g", AWS, ARM, (), "large"),
    ("x1.16xlarge", "x1", "x", 1, None, INTEL, X86, (), "16xlarge"),
    ("x1e.xlarge", "x1e", "x", 1, None, INTEL, X86, (E,), "xlarge"),
    ("x2gd.metal", "x2gd", "x", 2, "g", AWS, ARM, (D,), "metal"),
    ("x2iedn.xlarge", "x2iedn", "x", 2, "i", INTEL, X86, (E, D, N), "xlarge"),
    ("x2iezn.metal", "x2iezn", "x", 2, "i", INTEL, X86, (E, Z, N), "metal"),
    ("x8g.16xlarge", "x8g", "x", 8, "g", AWS, ARM, (), "16xlarge"),
    ("x8aedz.large", "x8aedz", "x", 8, "a", AMD, X86, (E, D, Z), "large"),
    ("z1d.metal", "z1d", "z", 1, None, INTEL, X86, (D,), "metal"),
    ("u-6tb1.metal", "u-6tb1", "u", 1, None, INTEL, X86, (), "metal"),
    ("u-12tb1.112xlarge", "u-12tb1", "u", 1, None, INTEL, X86, (), "112xlarge"),
    ("u-3tb1.56xlarge", "u-3tb1", "u", 1, None, INTEL, X86, (), "56xlarge"),
    ("u7i-12tb.224xlarge", "u7i-12tb", "u", 7, "i", INTEL, X86, (), "224xlarge"),
    ("u7in-16tb.224xlarge", "u7in-16tb", "u", 7, "i", INTEL, X86, (N,), "224xlarge"),
    ("u7inh-32tb.480xlarge", "u7inh-32tb", "u", 7, "i", INTEL, X86, (N, H), "480xlarge"),
    # storage optimised
    ("i3.metal", "i3", "i", 3, None, INTEL, X86, (), "metal"),
    ("i3en.large", "i3en", "i", 3, None, INTEL, X86, (E, N), "large"),
    ("i4g.large", "i4g", "i", 4, "g", AWS, ARM, (), "large"),
    ("i4i.metal", "i4i", "i", 4, "i", INTEL, X86, (), "metal"),
    ("i7ie.metal-24xl", "i7ie", "i", 7, "i", INTEL, X86, (E,), "metal-24xl"),
    ("i8ge.large", "i8ge", "i", 8, "g", AWS, ARM, (E,), "large"),
    ("im4gn.large", "im4gn", "im", 4, "g", AWS, ARM, (N,), "large"),
    ("is4gen.xlarge", "is4gen", "is", 4, "g", AWS, ARM, (E, N), "xlarge"),
    ("d2.xlarge", "d2", "d", 2, None, INTEL, X86, (), "xlarge"),
    ("d3.2xlarge", "d3", "d", 3, None, INTEL, X86, (), "2xlarge"),
    ("d3en.xlarge", "d3en", "d", 3, None, INTEL, X86, (E, N), "xlarge"),
    ("h1.2xlarge", "h1", "h", 1, None, INTEL, X86, (), "2xlarge"),
    # high performance computing
    ("hpc7g.16xlarge", "hpc7g", "hpc", 7, "g", AWS, ARM, (), "16xlarge"),
    ("hpc7a.96xlarge", "hpc7a", "hpc", 7, "a", AMD, X86, (), "96xlarge"),
    ("hpc6a.48xlarge", "hpc6a", "hpc", 6, "a", AMD, X86, (), "48xlarge"),
    ("hpc6id.32xlarge", "hpc6id", "hpc", 6, "i", INTEL, X86, (D,), "32xlarge"),
    # accelerated computing
    ("g4ad.xlarge", "g4ad", "g", 4, "a", AMD, X86, (D,), "xlarge"),
    ("g4dn.xlarge", "g4dn", "g", 4, None, INTEL, X86, (D, N), "xlarge"),
    ("g4dn.metal", "g4dn", "g", 4, None, INTEL, X86, (D, N), "metal"),
    ("g5.xlarge", "g5", "g", 5, None, AMD, X86, (), "xlarge"),
    ("g5g.xlarge", "g5g", "g", 5, "g", AWS, ARM, (), "xlarge"),
    ("g6e.xlarge", "g6e", "g", 6, None, AMD, X86, (E,), "xlarge"),
    ("g6f.large", "g6f", "g", 6, None, AMD, X86, (F,), "large"),
    ("gr6.4xlarge", "gr6", "gr", 6, None, AMD, X86, (), "4xlarge"),
    ("g3s.xlarge", "g3s", "g", 3, None, INTEL, X86, (S,), "xlarge"),
    ("inf1.2xlarge", "inf1", "inf", 1, None, INTEL, X86, (), "2xlarge"),
    ("inf2.xlarge", "inf2", "inf", 2, None, AMD, X86, (), "xlarge"),
    ("trn1.32xlarge", "trn1", "trn", 1, None, INTEL, X86, (), "32xlarge"),
    ("trn1n.32xlarge", "trn1n", "trn", 1, None, INTEL, X86, (N,), "32xlarge"),
    ("trn2u.48xlarge", "trn2u", "trn", 2, None, INTEL, X86, (U,), "48xlarge"),
    ("dl1.24xlarge", "dl1", "dl", 1, None, INTEL, X86, (), "24xlarge"),
    ("dl2q.24xlarge", "dl2q", "dl", 2, None, INTEL, X86, (Q,), "24xlarge"),
    ("p2.xlarge", "p2", "p", 2, None, INTEL, X86, (), "xlarge"),
    ("p3dn.24xlarge", "p3dn", "p", 3, None, INTEL, X86, (D, N), "24xlarge"),
    ("p4d.24xlarge", "p4d", "p", 4, None, INTEL, X86, (D,), "24xlarge"),
    ("p4de.24xlarge", "p4de", "p", 4, None, INTEL, X86, (D, E), "24xlarge"),
    ("p5.48xlarge", "p5", "p", 5, None, AMD, X86, (), "48xlarge"),
    ("p5e.48xlarge", "p5e", "p", 5, None, AMD, X86, (E,), "48xlarge"),
    ("p5en.48xlarge", "p5en", "p", 5, None, INTEL, X86, (E, N), "48xlarge"),
    ("p6-b200.48xlarge", "p6-b200", "p", 6, None, INTEL, X86, (), "48xlarge"),
    ("p6e-gb200.36xlarge", "p6e-gb200", "p", 6, None, NVIDIA, ARM, (E,), "36xlarge"),
    ("f1.2xlarge", "f1", "f", 1, None, INTEL, X86, (), "2xlarge"),
    ("f2.12xlarge", "f2", "f", 2, None, AMD, X86, (), "12xlarge"),
    ("vt1.3xlarge", "vt1", "vt", 1, None, INTEL, X86, (), "3xlarge"),
    # previous generation
    ("cc2.8xlarge", "cc2", "cc", 2, None, INTEL, X86, (), "8xlarge"),
    ("cr1.8xlarge", "cr1", "cr", 1, None, INTEL, X86, (), "8xlarge"),
    ("hs1.8xlarge", "hs1", "hs", 1, None, INTEL, X86, (), "8xlarge"),
]


def _ec2_model_type_names() -> list[str]:
    """Every InstanceType value in the EC2 API model that botocore ships."""
    model = botocore.session.get_session().get_service_model("ec2")
    shape = model.shape_for("InstanceType")
    assert isinstance(shape, StringShape)
    return list(shape.enum)


@pytest.mark.parametrize(
    ("name", "family", "series", "generation", "processor", "vendor", "arch", "attributes", "size"),
    VALID,
    ids=[row[0] for row in VALID],
)
def test_parses_real_instance_types(
    name: str,
    family: str,
    series: str,
    generation: int | None,
    processor: str | None,
    vendor: str,
    arch: str,
    attributes: tuple[str, ...],
    size: str,
) -> None:
    info = parse_instance_type(name)
    assert info == InstanceTypeInfo(
        instance_type=name,
        family=family,
        series=series,
        generation=generation,
        processor=processor,
        vendor=vendor,  # type: ignore[arg-type]
        architecture=arch,  # type: ignore[arg-type]
        attributes=attributes,
        size=size,
        is_metal=size.startswith("metal"),
        variant=info.variant,
        purpose=info.purpose,
    )


def test_table_covers_enough_distinct_real_names() -> None:
    names = [row[0] for row in VALID]
    assert len(set(names)) == len(names) >= 60
    assert not set(names) - set(_ec2_model_type_names()), "table names must be real types"


def test_variants_and_purpose() -> None:
    assert parse_instance_type("m7i-flex.large").variant == "flex"
    assert parse_instance_type("mac2-m2pro.metal").variant == "m2pro"
    assert parse_instance_type("u7i-12tb.224xlarge").variant == "12tb"
    assert parse_instance_type("u-6tb1.metal").variant == "6tb"
    assert parse_instance_type("p6-b200.48xlarge").variant == "b200"
    assert parse_instance_type("m7i.large").variant is None
    assert parse_instance_type("c7g.large").purpose == "compute optimised"


def test_every_instance_type_in_the_ec2_api_model_parses() -> None:
    names = _ec2_model_type_names()
    assert len(names) > 1000
    failures = []
    for name in names:
        try:
            parse_instance_type(name)
        except InvalidInstanceType as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


def test_vendor_architecture_and_metal_match_describe_instance_types() -> None:
    """moto ships DescribeInstanceTypes output recorded from AWS: the parser must agree."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    assert len(INSTANCE_TYPES) > 1000
    mismatches = []
    for name, facts in INSTANCE_TYPES.items():
        info = parse_instance_type(name)
        processor = facts["ProcessorInfo"]
        # arm64_mac / x86_64_mac are the Mac flavours of the same instruction sets.
        arches = {a.removesuffix("_mac") for a in processor["SupportedArchitectures"]}
        arch = "arm64" if "arm64" in arches else "x86_64"
        got = (info.vendor, info.architecture, info.is_metal)
        want = (processor["Manufacturer"], arch, facts["BareMetal"])
        if got != want:
            mismatches.append(f"{name}: parsed {got}, AWS says {want}")
    assert not mismatches, "\n".join(mismatches)


def test_to_dict_leads_with_the_json_contract_and_serialises() -> None:
    data = parse_instance_type("c7gn.metal").to_dict()
    assert list(data)[:7] == [
        "instance_type",
        "family",
        "generation",
        "vendor",
        "architecture",
        "attributes",
        "size",
    ]
    assert json.loads(json.dumps(data)) == data
    assert data["attributes"] == ["network-optimised"]
    assert data["is_metal"] is True


def test_every_capability_letter_has_a_readable_name() -> None:
    assert all(len(letter) == 1 and name for letter, name in CAPABILITIES.items())


INVALID: list[tuple[str, str]] = [
    ("m7i", "expected FAMILY.SIZE such as m7i.large"),
    ("mac2", "expected FAMILY.SIZE such as mac2.metal"),
    ("m7i.", "expected FAMILY.SIZE"),
    (".large", "expected FAMILY.SIZE"),
    ("m7i.large.x", "expected FAMILY.SIZE"),
    ("m7i.huge", "unknown size 'huge'"),
    ("m7i.1xlarge", "unknown size '1xlarge'"),
    ("m7i.metal-", "unknown size 'metal-'"),
    ("m7i.large;rm -rf /", "contains shell metacharacters ';'"),
    ("$(reboot).large", "contains shell metacharacters"),
    ("m7i.large`id`", "contains shell metacharacters '`'"),
    ("m7i.large|sh", "contains shell metacharacters '|'"),
    ("m7i.large\nreboot", "contains shell metacharacters '\\n'"),
    ("", "the name is empty"),
    ("M7I.LARGE", "lower case; use m7i.large"),
    ("m7i.Large", "lower case; use m7i.large"),
    ("zz9.large", "unknown family series 'zz'"),
    ("7i.large", "is not SERIES+GENERATION+LETTERS"),
    ("m0.large", "is not SERIES+GENERATION+LETTERS"),
    (" m7i.large", "contains whitespace; write it as m7i.large"),
    ("m7i.large\n", "contains whitespace; write it as m7i.large"),
    ("m7i .large", "contains whitespace; give one type per argument"),
    ("\t", "contains whitespace"),
    ("m" * 300 + ".large", "too long (306 characters, at most 40)"),
    ("m7ix.large", "unknown capability letter 'x'"),
    ("m7idd.large", "letter 'd' appears twice"),
    ("m7di.large", "out of place"),
    ("m7f.large", "letter 'f' (fractional-gpu) is not used with series 'm'"),
    ("m9.large", "names no processor"),
    ("m7i-foo.large", "unknown variant '-foo'"),
    ("m7i-12tb.large", "unknown variant '-12tb'"),
    ("m7i_x.large", "contains '_'"),
    ("m7i.lärge", "contains '\\xe4'"),
    ("m7i.large\x00", "contains '\\x00'"),
    ("m7i.large,c7g.large", "contains ','"),
]


@pytest.mark.parametrize(("name", "expected"), INVALID, ids=[repr(n[:20]) for n, _ in INVALID])
def test_invalid_names_get_one_clear_line(name: str, expected: str) -> None:
    with pytest.raises(InvalidInstanceType) as caught:
        parse_instance_type(name)
    message = str(caught.value)
    assert expected in message
    assert message.startswith("invalid instance type ")
    assert message.isprintable() and "\n" not in message
    assert len(message) < 300
    assert isinstance(caught.value, UserError) and caught.value.exit_code == 2


def test_parse_many_keeps_order_and_stops_at_the_first_bad_name() -> None:
    infos = parse_many(["c7g.large", "m7i.large", "c7g.large"])
    assert [i.instance_type for i in infos] == ["c7g.large", "m7i.large", "c7g.large"]
    with pytest.raises(InvalidInstanceType, match=r"m7i\.huge"):
        parse_many(["c7g.large", "m7i.huge", "zz9.large"])
    assert parse_many([]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("m7i.large, c7g.large", ["m7i.large", "c7g.large"]),
        (" m7i.large ,c7g.large,  r8g.xlarge ", ["m7i.large", "c7g.large", "r8g.xlarge"]),
        ("m7i.large", ["m7i.large"]),
        ("u-6tb1.metal,mac2-m2pro.metal", ["u-6tb1.metal", "mac2-m2pro.metal"]),
    ],
)
def test_split_type_list(text: str, expected: list[str]) -> None:
    assert split_type_list(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no instance types given"),
        (" , ", "no instance types given"),
        ("m7i.large,,c7g.large", "empty item 2"),
        ("m7i.large,", "empty item 2"),
        (",m7i.large", "empty item 1"),
        ("m7i.large, m7i.large", "m7i.large is listed twice"),
        ("m7i.large, m7i.huge", "unknown size 'huge'"),
        ("m7i.large;rm -rf /,c7g.large", "shell metacharacters"),
        ("m7i.large c7g.large", "contains whitespace"),
    ],
)
def test_split_type_list_rejects(text: str, expected: str) -> None:
    with pytest.raises(InvalidInstanceType) as caught:
        split_type_list(text)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
