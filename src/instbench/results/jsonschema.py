"""JSON Schema of the result document, exported from the pydantic models.

The exported file (`instbench/schemas/result-v1.schema.json`) is committed and published
beside the data; a test fails when the models and the file disagree, so the published
schema can never drift from what the code validates. Regenerate with:

    python -m instbench.results.jsonschema --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from instbench.results.schema import DATA_VERSION, ResultDocument

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "result-v1.schema.json"


def export_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a v1 result document."""
    schema = ResultDocument.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://instbench.dev/schemas/result-v1.schema.json"
    schema["title"] = "instbench result document"
    schema["x-data-version"] = DATA_VERSION
    return schema


def schema_text() -> str:
    """Stable text form of the schema (sorted keys, trailing newline)."""
    return json.dumps(export_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        SCHEMA_PATH.write_text(schema_text())
        print(f"wrote {SCHEMA_PATH}")
    else:
        sys.stdout.write(schema_text())
