# The two Quick start commands (README.md) and a few conveniences.
.PHONY: demo demo-releases test setup stack-start stack-stop sanity units functional integration lint format benchmark

demo:            ## set up, start the local stack, provision example tenants, print how to connect
	./scripts/demo

demo-releases:   ## the platform release + three application releases on the kwok cluster, rotate, audit
	./scripts/demo-releases

test:            ## the whole test suite (what CI runs)
	./scripts/test all

setup:
	./scripts/setup

stack-start:
	./tests/stack/start

stack-stop:
	./tests/stack/stop

sanity units functional integration lint format:  ## format: ruff lint and format check (scripts/format applies them)
	./scripts/test $@

benchmark:       ## fleet benchmark (tests/benchmark): the role vs the minimal-proof floor at N=100, 1000, 10000 (naive loop at 100); not part of make test
	./tests/benchmark/run
