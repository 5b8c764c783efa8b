# Shortcuts for `./run COMMAND`; `./run` alone works where make is missing.
.PHONY: build test test-tl3 bench grade release record work
build test test-tl3 bench record work:
	./run $@
grade:
	./run grade $(ARGS)
release:
	./run release $(ARGS)
