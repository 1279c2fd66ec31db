#!/usr/bin/env bash
# Rejects banned C functions (unbounded or non-reentrant) in our sources.
set -u
cd "$(dirname "$0")/.."
pat='\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)[[:space:]]*\('
hits=$(grep -RInE "$pat" --include='*.c' --include='*.h' lib cp ctl dp tests/unit tests/fuzz bench 2>/dev/null | grep -v 'banned-ok' || true)
if [ -n "$hits" ]; then
	echo "banned functions used:"; echo "$hits"; exit 1
fi
echo "style: no banned functions"
