"""The test suite, a package so that tests and benchmarks import its helpers by one name (`tests.helpers`,
`tests.oracle`) from the repository root."""
