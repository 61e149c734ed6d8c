#!/bin/bash
# daxpage guest probe: do a checkout and a cache under /tmp and /var/tmp reach
# the guest? Run by 'lab/lab check' (guest_paths_probe) from a copy of lab/
# under /tmp, with a binary directory under /tmp and the modules under
# /var/tmp: the paths of a new user's first clone, which the guest's own
# file systems there would hide without the lab's shares.
#
# usage: paths.sh PASS OUTDIR BINDIR (as suite.sh); BINDIR (under /tmp)
# holds "true", a copy of /bin/true; the modules bound over /lib/modules
# come from under /var/tmp. Writes OUTDIR/PASS/suite.tap and ends with
# "daxpage: suite done".
set -euo pipefail

OUT=$2/$1
BIN=$3
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=lab/guest/lib.sh
. "$HERE/lib.sh"

guest_start
probe() {
	local name=$1
	shift
	if "$@" >>"$OUT/log/probe.log" 2>&1; then tap_result "$name" ok; else tap_result "$name" fail; fi
}
probe paths-script-under-tmp test "${HERE#/tmp/}" != "$HERE" -a -r "$HERE/lib.sh"
probe paths-bin-under-tmp test "${BIN#/tmp/}" != "$BIN" -a -x "$BIN/true"
probe paths-bin-runs "$BIN/true"
# /var/tmp is a file system of the guest's own (virtme-ng mounts a tmpfs
# there): the modules below it on the host reach the guest only as a share.
probe paths-var-tmp-is-the-guests-own test "$(findmnt -n -o FSTYPE /var/tmp)" = tmpfs
probe paths-modules-bound-from-var-tmp test -d "/lib/modules/$(uname -r)/kernel"
probe paths-modprobe modprobe libnvdimm
d=$(mktemp -d /run/daxpage-paths.XXXXXX)
probe paths-on-dax-tmp-bin-under-tmp on_dax_tmp "$d" "$BIN/true"
echo "daxpage: suite done"
