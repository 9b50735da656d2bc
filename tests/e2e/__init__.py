"""End-to-end tests: a real ``rapport serve`` process; one package, so that its
server stops before the tests that follow."""
