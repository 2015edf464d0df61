"""Label Studio: connection, projects and label configs, idempotent push, incremental pull,
sync state, the recipe steps, and the JSON export reader."""
