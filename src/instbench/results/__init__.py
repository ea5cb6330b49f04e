"""Result documents: schema (pydantic models), JSON Schema export and validation."""
