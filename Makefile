# The two Quick start commands (README.md) and a few conveniences.
.PHONY: demo test setup stack-start stack-stop sanity units functional integration benchmark

demo:            ## set up, start the local stack, provision example tenants, print how to connect
	./scripts/demo

test:            ## the whole test suite (what CI runs)
	./scripts/test all

setup:
	./scripts/setup

stack-start:
	./tests/stack/start

stack-stop:
	./tests/stack/stop

sanity units functional integration:
	./scripts/test $@
