"""What every model of the result schema shares: strict parsing (unknown keys rejected,
frozen) and finite numbers.

Why a module of its own: the document's sections live in several modules
(memory_results, compute_results, io_results, schema), all built on this base.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# allow_inf_nan=False is checked inside pydantic-core: a Python validator per number cost
# a third of ingest's validation time (hundreds of numbers per document).
Finite = Annotated[float, Field(allow_inf_nan=False)]
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ResultModel(BaseModel):
    """Base: unknown keys are rejected so a typo or a foreign document never passes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CompilerInfo(ResultModel):
    """The compiler that built the kernels on the target."""

    path: str = Field(description="Executable used.")
    name: Literal["gcc", "clang", "cc", "other"] = Field(description="Compiler family.")
    version: str = Field(description="First line of `--version`.")
