"""Pure domain rules: no Kafka, DuckDB, PDF, HTTP or CLI imports (enforced by import-linter)."""
