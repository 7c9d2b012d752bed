#!/bin/sh
# Regenerates the golden files in this directory with sox (Debian: apt-get
# install -y --no-install-recommends sox). Run from anywhere:
#
#	go generate ./codec    (or: sh codec/testdata/gen.sh)
#
# sox is deterministic here: -D disables dither and repeatable mode (-R) is
# the default. The tests compare G.711 decoding bit-exactly with these files
# and the resampler by SNR.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# All 256 G.711 codes, 0x00 to 0xFF, decoded by sox to signed 16-bit
# little-endian samples.
i=0
while [ $i -lt 256 ]; do
	printf "\\$(printf %03o $i)"
	i=$((i + 1))
done >"$tmp/codes.bin"
sox -t ul -r 8000 -c 1 "$tmp/codes.bin" -t raw -e signed-integer -b 16 -L ulaw_decode_sox.s16
sox -t al -r 8000 -c 1 "$tmp/codes.bin" -t raw -e signed-integer -b 16 -L alaw_decode_sox.s16

# 2 s linear sweeps over the telephone band at half scale, and sox's
# very-high-quality resampling of them.
sox -D -n -r 8000 -b 16 -c 1 sweep8k.wav synth 2 sine 300:3400 vol 0.5
sox -D -n -r 16000 -b 16 -c 1 sweep16k.wav synth 2 sine 300:3400 vol 0.5
sox -D sweep8k.wav sweep8k_to16k_sox.wav rate -v 16k
sox -D sweep16k.wav sweep16k_to8k_sox.wav rate -v 8k
