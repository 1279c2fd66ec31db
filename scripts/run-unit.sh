#!/usr/bin/env bash
# Runs every unit-test binary given as arguments and prints one summary line.
set -u
passed=0; failed=0; bad=0
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n1)
	p=$(printf '%s' "$line" | sed -E 's/^([0-9]+) passed.*/\1/'); p=${p:-0}
	f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/'); f=${f:-0}
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		bad=$((bad+1)); printf '%s\n' "$out" | tail -n 40; echo "FAIL $t (exit $rc)"
		[ "$f" -eq 0 ] && f=1
	else
		echo "ok   $t: $line"
	fi
	passed=$((passed+p)); failed=$((failed+f))
done
echo "unit: $passed passed, $failed failed"
[ "$bad" -eq 0 ]
