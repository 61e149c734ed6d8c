# daxpage: the README's commands. Everything real lives in lab/lab (lab/cmd/COMMAND.sh).
LAB := lab/lab

.PHONY: help deps run check bisect-build compare bench clean

help:
	@$(LAB) help

deps:
	$(LAB) deps

run:
	$(LAB) run $(ARGS)

check:
	$(LAB) check $(ARGS)

bisect-build:
	$(LAB) bisect-build $(ARGS)

compare:
	$(LAB) compare $(ARGS)

bench:
	$(LAB) bench $(ARGS)

clean:
	rm -rf results
