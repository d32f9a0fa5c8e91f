#!/bin/sh
# Drop options whose dependency (second column of $1) is not =y in $2.
deps=$1; cfg=$2
while read -r opt dep; do
	if grep -q "^$opt=y" "$cfg" && ! grep -q "^$dep=y" "$cfg"; then
		sed -i "s/^$opt=y\$/# $opt is not set/" "$cfg"
	fi
done < "$deps"
