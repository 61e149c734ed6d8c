#!/usr/bin/env bats
# lab/lab's arguments and its locks: bad input is refused before any work
# (no package, download, worktree or build), and a second run on a busy
# worktree waits, then stops with the holder named.

bats_require_minimum_version 1.5.0

setup() {
	LAB=$BATS_TEST_DIRNAME/../lab
	export DAXPAGE_CACHE=$BATS_TEST_TMPDIR/cache DAXPAGE_RESULTS=$BATS_TEST_TMPDIR/results
}

# refused ARGS...: lab/lab ARGS exits 1 at once with a cause and a fix, and
# has made neither the cache nor the results directory.
refused() {
	run -1 timeout 20 "$LAB" "$@"
	[[ $output == *"ERROR:"* && $output == *"fix:"* ]]
	[ ! -e "$DAXPAGE_CACHE" ]
	[ ! -e "$DAXPAGE_RESULTS" ]
}

@test "every command without --series reads its targets and gets to its input checks" {
	# Under set -u an array that was declared but never set is unbound in
	# bash 5.2: a command without --series must still reach the check of
	# a bad LAB_GUEST_MEM, not stop at "unbound variable".
	local c
	for c in check run compare bench bisect-build; do
		LAB_GUEST_MEM=bogus refused "$c"
		[[ $output == *"LAB_GUEST_MEM=bogus is not a size"* ]]
		[[ $output != *unbound* ]]
	done
}

@test "run --passes bogus is refused before any work" {
	refused run --passes bogus
	[[ $output == *"unknown module pass 'bogus'"* ]]
}

@test "--passes none: only with an external suite, never in compare" {
	refused run --passes none
	[[ $output == *"--passes none runs no module pass, and neither NDCTL_SRC nor XFSTESTS_SRC is set"* ]]
	[[ $output == *"name a pass (--passes prod)"* ]]
	refused run --passes "none prod"
	[[ $output == *"unknown module pass 'none'"* ]]
	mkdir -p "$BATS_TEST_TMPDIR/ndctl/test"
	printf '%s\n' "project('ndctl', 'c'," "  version : '85'," ')' >"$BATS_TEST_TMPDIR/ndctl/meson.build"
	echo "x = find_program('firmware-update.sh')" >"$BATS_TEST_TMPDIR/ndctl/test/meson.build"
	NDCTL_SRC=$BATS_TEST_TMPDIR/ndctl refused compare --series 6.12.y --passes none
	[[ $output == *"compare compares the module passes, and --passes none runs none"* ]]
}

@test "run: an option without its value, an unknown option, series or mode" {
	refused run --label
	[[ $output == *"option --label needs a value"* ]]
	refused run --passes
	refused run --frobnicate
	[[ $output == *"unknown option --frobnicate"* ]]
	refused run --series linus
	[[ $output == *"unknown series 'linus' (no series/linus/base.pin; targets: 6.12.y mainline)"* ]]
	[[ $output == *"fix:"*"use --series with one of: 6.12.y mainline"* ]]
	[ "${#lines[@]}" -eq 2 ]
	refused run --series
	refused run --series ../series
	refused run --series ""
	refused run --series --base
	[[ $output == *"option --series needs a value, not the option '--base'"* ]]
	# the old variants are gone: a series is data, not an option value
	refused run --variant mainline
	[[ $output == *"unknown option --variant"* ]]
	refused run --mode fast
	refused run --passes "test test"
	refused run --passes ""
	refused run --series 6.12.y --label ../x
	refused run --label --debug
	[[ $output == *"option --label needs a value, not the option '--debug'"* ]]
	refused run --label -x
}

@test "run: --label names one run, so it needs --series when there are several targets" {
	refused run --label mine
	[[ $output == *"--label names one run's results, and without --series there is a run per target (6.12.y mainline)"* ]]
	[[ $output == *"fix:"*"add --series T"* ]]
	refused run --base --label mine --passes test
}

@test "run: --base-rev without --base-tree, --base-tree that is not there" {
	refused run --base-rev v6.12
	[[ $output == *"--base-rev needs --base-tree"* ]]
	refused run --series 6.12.y --base-tree "$BATS_TEST_TMPDIR/nope"
	refused run --series 6.12.y --base-tree ""
	mkdir -p "$BATS_TEST_TMPDIR/notgit"
	refused run --series 6.12.y --base-tree "$BATS_TEST_TMPDIR/notgit"
	[[ $output == *"has no commit HEAD"* ]]
	refused compare --base-tree "$BATS_TEST_TMPDIR/notgit"
	[[ $output == *"compare sets --base-tree itself"* ]]
}

@test "run: --base-tree replaces one target's base: without --series it is refused when there are two targets" {
	local tree=$BATS_TEST_TMPDIR/linux
	mkdir -p "$tree/fs"
	touch "$tree/Makefile" "$tree/fs/dax.c"
	git -C "$tree" init -q
	git -C "$tree" add -A
	git -C "$tree" -c user.name=t -c user.email=t@example.org commit -q -m base
	refused run --base-tree "$tree"
	[[ $output == *"--base-tree replaces the base of one target, and series/ has 2 (6.12.y mainline)"* ]]
	[[ $output == *"fix:"*"add --series T to name it (one of: 6.12.y mainline)"* ]]
	[ "${#lines[@]}" -eq 2 ]
	refused run --base --base-tree "$tree" --base-rev HEAD
	[[ $output == *"--base-tree replaces the base of one target"* ]]
	# named, the tree passes these checks: what stops it here is the knob
	LAB_GUEST_CPUS=x refused run --series mainline --base-tree "$tree"
	[[ $output == *"LAB_GUEST_CPUS=x"* ]]
}

@test "run: malformed knobs in the environment" {
	LAB_GUEST_CPUS=two refused run
	[[ $output == *"LAB_GUEST_CPUS=two is not a positive whole number"* ]]
	LAB_ACCEL=xen refused run
	LAB_GUEST_TIMEOUT=0 refused run
	LAB_NVDIMM_SIZE=lots refused run
	LAB_GUEST_MEM=8G refused run
	[[ $output == *"past the guest's RAM"* ]]
	NDCTL_SRC=$BATS_TEST_TMPDIR refused run
	[[ $output == *"is not an ndctl checkout"* ]]
	LAB_BENCH_BOOTS=0 refused bench
	[[ $output == *"LAB_BENCH_BOOTS=0 is not a positive whole number"* ]]
	LAB_BENCH_BOOTS=10 refused bench
	[[ $output == *"LAB_BENCH_BOOTS=10 is more than 9 boots"* ]]
}

@test "check, deps, compare, bench and bisect-build refuse what they do not take" {
	refused check --label x
	refused check --series nope
	[[ $output == *"unknown series 'nope'"* ]]
	refused deps extra
	refused deps --series nope
	refused compare --label x
	[[ $output == *"compare sets --label itself"* ]]
	refused compare --base
	refused compare --series nope
	refused compare --series 6.12.y --passes nope
	refused compare-table --series nope
	refused compare-table --debug
	refused bench --kernels ""
	refused bench --kernels "6.12.y linus"
	[[ $output == *"unknown kernel 'linus'"* ]]
	[[ $output == *"fix:"*"6.12.y-base 6.12.y mainline-base mainline"* ]]
	refused bench --kernels "mainline mainline"
	refused bench --kernels "vanilla-base"
	refused bench --series nope
	refused bench --variants "vanilla series"
	[[ $output == *"unknown option --variants"* ]]
	refused bench-table --kernels x
	refused bisect-build --arch vax
	refused bisect-build --arch
	refused bisect-build --series nope
	refused bisect-build --series mainline --arch vax
	refused frobnicate
}

@test "cross_want: the DAX symbols per arch; arm64-64k is arm64's list plus 64 KiB pages and FS_DAX_PMD" {
	# shellcheck source=lab/cmd/bisect-build.sh
	source "$BATS_TEST_DIRNAME/../cmd/bisect-build.sh"
	local a64 k64
	[[ $(cross_want s390) == "FS_DAX=y DCSSBLK=m DAX=y EROFS_FS=y" ]]
	a64=$(cross_want arm64)
	k64=$(cross_want arm64-64k)
	[[ $a64 == *"ZONE_DEVICE=y FS_DAX=y"* && $a64 == *EROFS_FS=y* && $a64 != *ARM64_64K_PAGES* ]]
	[[ $k64 == "ARM64_64K_PAGES=y FS_DAX_PMD=y $a64" ]]
	[[ $(cross_want riscv64) == "$a64" ]]
	refused bisect-build --arch arm64-64k --allmodconfig
	[[ $output == *"--allmodconfig is for x86_64 only"* ]]
}

@test "build_locked: waits while another build holds build.lock, says so, then runs the command" {
	# shellcheck source=lab/lib/common.sh
	source "$BATS_TEST_DIRNAME/../lib/common.sh"
	# shellcheck source=lab/lib/build.sh
	source "$BATS_TEST_DIRNAME/../lib/build.sh"
	local f=$CACHE/build.lock i
	mkdir -p "$CACHE"
	# shellcheck disable=SC2016 # expanded by the inner bash
	flock "$f" bash -c 'touch "$1.held"; sleep 2' _ "$f" &
	for ((i = 0; i < 100; i++)); do
		[[ -e $f.held ]] && break
		sleep 0.1
	done
	[[ -e $f.held ]]
	# the command runs with the lock held: another flock -n on it fails
	# shellcheck disable=SC2016 # expanded by the inner bash
	run -0 build_locked bash -c '! flock -n "$0" true && echo built' "$f"
	[[ $output == *"another kernel build holds $f: waiting for it"* ]]
	[[ ${lines[-1]} == built ]]
	wait
	run -3 build_locked bash -c 'exit 3'
	[[ $output != *waiting* ]]
	# a lock file that cannot be opened is a failure, not a build
	CACHE=$BATS_TEST_TMPDIR/none run -1 build_locked true
}

@test "a checkout whose path the guest boot cannot carry is refused before any work" {
	local top="$BATS_TEST_TMPDIR/a b"
	mkdir -p "$top"
	cp -r "$BATS_TEST_DIRNAME/../../lab" "$BATS_TEST_DIRNAME/../../series" "$top/"
	LAB=$top/lab/lab refused run
	[[ $output == *"the lab's checkout '$top' has characters"* ]]
	DAXPAGE_CACHE="$BATS_TEST_TMPDIR/c,d" refused run
	[[ $output == *"DAXPAGE_CACHE"* ]]
	DAXPAGE_CACHE=relative/cache refused run
	[[ $output == *"is not an absolute path"* ]]
}

@test "lab_lock nests, and the last lab_unlock releases" {
	# shellcheck source=lab/lib/common.sh
	source "$BATS_TEST_DIRNAME/../lib/common.sh"
	lab_lock x "thing x"
	lab_lock x "thing x"
	lab_unlock x
	# still held: another process cannot take it
	run -1 flock -n "$DAXPAGE_CACHE/locks/x.lock" true
	lab_unlock x
	run -0 flock -n "$DAXPAGE_CACHE/locks/x.lock" true
	lab_unlock x
}

@test "a busy lock: the second taker waits, names the holder, and gets it when it is free" {
	# shellcheck source=lab/lib/common.sh
	source "$BATS_TEST_DIRNAME/../lib/common.sh"
	LOCK_OWNER="holder run" bash -c 'source "$1"; lab_lock x "thing x"; touch "$2"; sleep 3' \
		sh "$BATS_TEST_DIRNAME/../lib/common.sh" "$BATS_TEST_TMPDIR/held" 3>&- &
	while [ ! -e "$BATS_TEST_TMPDIR/held" ]; do sleep 0.1; done
	# shellcheck disable=SC2034 # read by lab_lock
	LAB_LOCK_TIMEOUT=30
	run -0 --separate-stderr lab_lock x "thing x"
	[ -z "$output" ]
	lines=("${stderr_lines[@]}")
	# (the messages go to stderr: lock holders may run inside $(...))
	[[ ${lines[0]} == *"thing x is in use by another lab run (pid "*", holder run, since "*"); waiting for it"* ]]
	[[ ${lines[1]} == *"thing x is free now"* ]]
	wait
}

@test "a busy worktree: a second run waits LAB_LOCK_TIMEOUT, then stops before doing anything" {
	# shellcheck source=lab/lib/common.sh
	source "$BATS_TEST_DIRNAME/../lib/common.sh"
	LOCK_OWNER="lab/lab run --series 6.12.y --label first" lab_lock wt-6.12.y-series "worktree wt/6.12.y-series"
	LAB_LOCK_TIMEOUT=1 run -1 timeout 300 "$LAB" run --series 6.12.y --label second --passes test
	[[ $output == *"worktree wt/6.12.y-series is in use by another lab run (pid $BASHPID, lab/lab run --series 6.12.y --label first, since "* ]]
	[[ $output == *"ERROR:"*"worktree wt/6.12.y-series is still in use by another lab run"*"after 1s"* ]]
	[[ $output == *"fix:"*"wait until that run ends"* ]]
	# It waited before packages, disk checks, results or the worktree.
	[[ $output != *"installing host packages"* ]]
	[ ! -e "$DAXPAGE_CACHE/wt" ]
	[ ! -e "$DAXPAGE_RESULTS" ]
	lab_unlock wt-6.12.y-series
}
