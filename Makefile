# Shortcuts for `./run COMMAND`; `./run` alone works where make is missing.
.PHONY: build test test-tl3 bench grade release record
build test test-tl3 bench record:
	./run $@
grade:
	./run grade $(ARGS)
release:
	./run release $(ARGS)
