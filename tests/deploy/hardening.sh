#!/usr/bin/env bash
# hardening.sh: every shipped binary (billing-* and billingctl under
# BUILD/workers and BUILD/deploy, the ones deploy/Dockerfile copies and the
# dev broker) carries the hardening of the top CMakeLists.txt, read back from
# the ELF file with readelf (binutils; no extra package):
#   - PIE: ELF type DYN with the PIE flag;
#   - full RELRO: a GNU_RELRO segment and immediate binding (BIND_NOW / NOW);
#   - no executable stack (GNU_STACK RW, not RWE);
#   - the stack protector: the binary calls __stack_chk_fail;
#   - _FORTIFY_SOURCE (optimised builds only): checked libc functions
#     (__*_chk) are linked instead of the plain ones;
#   - control-flow protection (-fcf-protection): every object file of the
#     shipped programs and of the common library carries the IBT and SHSTK
#     property note. It is read from the objects, not the linked programs:
#     the linker keeps the note only when every input has it, and Debian's
#     glibc start files (Scrt1.o, crti.o) do not, so no program linked on
#     Debian 12 carries it whatever we compile;
#   - stack clash protection leaves no mark in the code it emits (it
#     probes the stack only in frames larger than a page), so the compile
#     flags of each shipped target are read back instead.
#
#   hardening.sh BUILD_DIR
# Exit 0 when every binary passes, 1 naming each binary and what it lacks,
# 77 (skipped) when readelf is not installed.
set -euo pipefail
build=${1:?usage: hardening.sh BUILD_DIR}
command -v readelf >/dev/null || { echo "readelf not installed: skipped"; exit 77; }
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
mapfile -t bins < <(find "$build/workers" "$build/deploy" -type f -perm -u+x \
  \( -name 'billing-*' -o -name billingctl \) | sort)
[ "${#bins[@]}" -ge 8 ] || { echo "FAIL: expected the 7 programs and the dev broker under $build, found ${#bins[@]}" >&2; exit 1; }

failed=0
for b in "${bins[@]}"; do
  name=${b#"$build"/}
  missing=()
  header=$(readelf -hW "$b")
  dynamic=$(readelf -dW "$b")
  segments=$(readelf -lW "$b")
  symbols=$(readelf --dyn-syms -W "$b")
  grep -q 'Type: *DYN' <<<"$header" && grep -Eq 'FLAGS_1.*\bPIE\b' <<<"$dynamic" || missing+=(PIE)
  grep -q 'GNU_RELRO' <<<"$segments" || missing+=(RELRO)
  grep -Eq '\(FLAGS\).*\bBIND_NOW\b|FLAGS_1.*\bNOW\b' <<<"$dynamic" || missing+=(BIND_NOW)
  grep -E 'GNU_STACK' <<<"$segments" | grep -q 'RWE' && missing+=(non-executable-stack)
  grep -q ' __stack_chk_fail' <<<"$symbols" || missing+=(stack-protector)
  if [ "$type" != Debug ]; then
    grep -E ' __[a-z_]+_chk(@| |$)' <<<"$symbols" | grep -vq __stack_chk_fail || missing+=(FORTIFY_SOURCE)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "FAIL: $name lacks ${missing[*]}" >&2
    failed=1
  else
    echo "hardened: $name"
  fi
done
mapfile -t objs < <(find "$build/workers" "$build/common" "$build/deploy" -name '*.o' -path '*/CMakeFiles/*' | sort)
[ "${#objs[@]}" -ge 20 ] || { echo "FAIL: expected the object files of the programs under $build, found ${#objs[@]}" >&2; exit 1; }
for o in "${objs[@]}"; do
  readelf -nW "$o" | grep -Eq 'x86 feature:.*IBT.*SHSTK' || { echo "FAIL: ${o#"$build"/} lacks the IBT/SHSTK note (-fcf-protection)" >&2; failed=1; }
done
mapfile -t flags < <(find "$build/workers" "$build/common" "$build/deploy" -name flags.make -path '*/CMakeFiles/*' | sort)
for f in "${flags[@]}"; do
  grep -q -- '-fstack-clash-protection' "$f" || { echo "FAIL: ${f#"$build"/} compiles without -fstack-clash-protection" >&2; failed=1; }
done
[ "$failed" -eq 0 ] || exit 1
echo "hardening: ${#objs[@]} object files with IBT/SHSTK (cf-protection), ${#flags[@]} targets compiled with -fstack-clash-protection"
echo "hardening: ${#bins[@]} binaries ($type build): PIE, full RELRO, BIND_NOW, NX stack, stack protector$([ "$type" != Debug ] && echo ', FORTIFY_SOURCE')"
