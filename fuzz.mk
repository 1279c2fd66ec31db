fuzz-smoke:
	@echo "fuzz: no drivers yet"
