"""segaudit's tests: they mirror the package (see CONTRIBUTING.md)."""
