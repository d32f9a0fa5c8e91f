#!/bin/sh
# Fake merge: -m -O OUT BASE FRAGMENTS...; later values replace earlier ones.
[ "$1" = "-m" ] && shift
[ "$1" = "-O" ] && { out=$2; shift 2; }
base=$1; shift
for f in "$@"; do
	for opt in $(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=.*/\1/p; s/^# \(CONFIG_[A-Z0-9_]*\) is not set/\1/p' "$f"); do
		sed -i "/^$opt=/d; /^# $opt is not set/d" "$base"
	done
	cat "$f" >> "$base"
done
echo "merged into $base"
