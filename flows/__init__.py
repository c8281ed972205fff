"""The orchestration shell: settings, command line, datasets, flows and adapters."""
