"""One module per CLI command: plain functions that take typed options and return what the
CLI prints (and the exit code where a command has one besides 0)."""
