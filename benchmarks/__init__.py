"""Speed and memory benchmarks against Meta's reference, run from the repository root as modules
(`.venv/bin/python -m benchmarks.video`), so that they import `samstream` and the tests' oracle helpers
(`tests.oracle`) by name."""
