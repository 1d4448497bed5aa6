"""The clinic's tests: a package, so that its conftest is ``clinic_tests.conftest`` and
meets no other project's ``conftest`` in a type checker or a test run."""
