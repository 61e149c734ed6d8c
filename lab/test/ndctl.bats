#!/usr/bin/env bats
# ndctl's suites in the lab (lab/lib/external.sh, lab/guest/ndctl.sh):
# nfit_test's two modes (LAB_NDCTL_NFIT), the check that a kernel's
# nfit_test has the real-memmap mode, rounds (LAB_NDCTL_REPEAT), our ndctl
# patches (LAB_NDCTL_PATCHES), what the host makes of a guest's results and
# kernel log, the summary; and lab/guest/ndctl.sh itself, run here with
# stubs for what it does to a guest and a fake meson. The QEMU boot is not
# run here (lab/test/guest.bats has the boot).
# The globals set here (RUN_DIR, STAGE_DIR, ...) are read by the functions
# under test; the single-quoted '$' is memmap='s own (SIZE$BASE); the stubs
# are called by the functions under test; each test's exports are its own.
# shellcheck disable=SC2034,SC2016,SC2317,SC2030,SC2031

bats_require_minimum_version 1.5.0

setup() {
	load helper
	lab_source
	# shellcheck source=lab/lib/external.sh
	source "$BATS_TEST_DIRNAME/../lib/external.sh"
	RUN_DIR=$BATS_TEST_TMPDIR/run
	STAGE_DIR=$BATS_TEST_TMPDIR/stage
	mkdir -p "$RUN_DIR" "$STAGE_DIR/test/lib/modules/7.3.4-daxpage/updates"
	NDCTL_SRC=$BATS_TEST_TMPDIR/ndctl
	LAB_NFIT_RESERVE='512M$11G'
	unset LAB_NDCTL_NFIT
}

# fake_ko PATH MODINFO...: an object file whose .modinfo section holds the
# MODINFO strings (e.g. parm=NAME:TEXT), which modinfo reads like a module's.
fake_ko() {
	local ko=$1
	shift
	printf '%s\0' "$@" >"$BATS_TEST_TMPDIR/modinfo"
	echo 'int x;' >"$BATS_TEST_TMPDIR/x.c"
	gcc -c "$BATS_TEST_TMPDIR/x.c" -o "$BATS_TEST_TMPDIR/x.o"
	objcopy --add-section .modinfo="$BATS_TEST_TMPDIR/modinfo" "$BATS_TEST_TMPDIR/x.o" "$ko"
}

@test "LAB_NDCTL_NFIT: both modes by default, default first; other words, a mode twice or none refused with the fix" {
	run -0 ndctl_nfit_modes
	[[ $output == $'default\nreal' ]]
	LAB_NDCTL_NFIT='real default' run -0 ndctl_nfit_modes
	[[ $output == $'default\nreal' ]]
	LAB_NDCTL_NFIT=real run -0 ndctl_nfit_modes
	[[ $output == real ]]
	LAB_NDCTL_NFIT=default run -0 ndctl_nfit_modes
	[[ $output == default ]]
	for bad in vmalloc 'real real' '' 'default,real'; do
		LAB_NDCTL_NFIT=$bad run -1 ndctl_nfit_modes
		[[ $output == *"LAB_NDCTL_NFIT='$bad' is not a list of nfit_test modes (default, real)"* ]]
		[[ $output == *"set LAB_NDCTL_NFIT=default or LAB_NDCTL_NFIT=real"* ]]
	done
}

@test "the real-memmap mode runs only where the staged nfit_test has reserved_base" {
	local mods=$STAGE_DIR/test/lib/modules
	run -2 ndctl_nfit_real_capable "$mods"
	[[ $output == "no nfit_test module under $mods" ]]
	echo 'not a module' >"$mods/7.3.4-daxpage/updates/nfit_test.ko"
	run -2 ndctl_nfit_real_capable "$mods"
	[[ $output == "modinfo cannot read $mods/7.3.4-daxpage/updates/nfit_test.ko: "* ]]
	fake_ko "$mods/7.3.4-daxpage/updates/nfit_test.ko" name=nfit_test 'parm=hot_add:ignored'
	run -1 ndctl_nfit_real_capable "$mods"
	[[ $output == *"this kernel's nfit_test has no real-memmap mode (no reserved_base parameter"* ]]
	fake_ko "$mods/7.3.4-daxpage/updates/nfit_test.ko" name=nfit_test \
		'parm=reserved_base:physical base' 'parm=reserved_size:size'
	run -0 ndctl_nfit_real_capable "$mods"
	[[ $output == "$mods/7.3.4-daxpage/updates/nfit_test.ko" ]]
}

@test "ndctl_suite: a kernel without the real-memmap mode runs the default mode alone and says why" {
	# Everything but the choice of modes is stubbed: the build, the boots.
	ndctl_check_src() { NDCTL_VERSION=85; }
	src_key() { echo k; }
	stage() { return 0; }
	ndctl_suite_mode() { echo "$1" >>"$BATS_TEST_TMPDIR/modes"; }
	fake_ko "$STAGE_DIR/test/lib/modules/7.3.4-daxpage/updates/nfit_test.ko" name=nfit_test
	run -0 ndctl_suite
	[[ $(cat "$BATS_TEST_TMPDIR/modes") == default ]]
	[[ $(cat "$RUN_DIR/ndctl-real/summary.txt") == "ndctl suite (nfit_test in real-memmap mode): not run: this kernel's nfit_test has no real-memmap mode"* ]]
	rm "$BATS_TEST_TMPDIR/modes"
	fake_ko "$STAGE_DIR/test/lib/modules/7.3.4-daxpage/updates/nfit_test.ko" name=nfit_test 'parm=reserved_base:base'
	run -0 ndctl_suite
	[[ $(cat "$BATS_TEST_TMPDIR/modes") == $'default\nreal' ]]
	[[ ! -e $RUN_DIR/ndctl-real/summary.txt ]]
	# A guest that did not finish makes the suite's status 1; so does a
	# staging without nfit_test (not a kernel without the mode).
	ndctl_suite_mode() { [[ $1 == default ]]; }
	run -1 ndctl_suite
	ndctl_suite_mode() { return 0; }
	rm "$STAGE_DIR/test/lib/modules/7.3.4-daxpage/updates/nfit_test.ko"
	run -1 ndctl_suite
	[[ $(cat "$RUN_DIR/ndctl-real/summary.txt") == *"not run: no nfit_test module under"* ]]
}

@test "a real-mode guest's kernel log: nfit_test's loads per test, the summary counts them and names the real-mode files" {
	local out=$RUN_DIR/ndctl-real
	mkdir -p "$out/test"
	printf '%s\t%s\t%s\n' libndctl ndctl libndctl create.sh ndctl create.sh pmem-ns ndctl pmem-ns >"$out/test/tests.tsv"
	printf '%s\t%s\t%s\t%s\t%s\n' ndctl/libndctl ok 10 OK '' ndctl/create.sh ok 5 OK '' \
		ndctl/pmem-ns fail 3 FAIL 'FAIL (exit status 1), see log/pmem-ns.log' >"$out/test/results.tsv"
	printf '%s\n' 'ok 1 - ndctl/libndctl' 'ok 2 - ndctl/create.sh' 'not ok 3 - ndctl/pmem-ns' >"$out/test/suite.tap"
	cat >"$out/test/dmesg.txt" <<'EOF'
[    5.0] nfit_test: real-memmap mode: PMEM SPA ranges in 0x2c0000000-0x2dfffffff
[    9.0] daxpage-ndctl: begin libndctl
[   10.0] nfit_test: real-memmap mode: PMEM SPA ranges in 0x2c0000000-0x2dfffffff
[   11.0] nfit_test: real-memmap mode: PMEM SPA ranges in 0x2c0000000-0x2dfffffff
[   12.0] daxpage-ndctl: end libndctl rc=0
[   13.0] daxpage-ndctl: begin create.sh
[   14.0] nfit_test: unknown parameter 'reserved_base' ignored
[   14.0] nfit_test: unknown parameter 'reserved_size' ignored
[   15.0] daxpage-ndctl: end create.sh rc=0
[   16.0] daxpage-ndctl: begin pmem-ns
[   17.0] daxpage-ndctl: end pmem-ns rc=1
EOF
	: >"$out/test-console.log"
	printf '%s\n' 'ndctl v85, source /x (k)' >"$out/version"
	NDCTL_BUILD_DIR=$BATS_TEST_TMPDIR/none/build
	run -0 ndctl_collect "$out" 0 real
	[[ $(cat "$out/nfit-loads.tsv") == $'(between tests)\t1\t0\ncreate.sh\t0\t1\nlibndctl\t2\t0' ]]
	run -0 cat "$out/summary.txt"
	[[ ${lines[0]} == "ndctl suite (nfit_test in real-memmap mode): ndctl v85, source /x (k)" ]]
	[[ ${lines[1]} == "  tests (pass test): 2 ok, 1 failed (0 timed out), 0 skipped; results: ndctl-real/results.tsv, ndctl-real/test/suite.tap" ]]
	[[ ${lines[2]} == "  nfit_test loaded in real-memmap mode 3 times, by 1 tests (ndctl-real/nfit-loads.tsv); loads that ignored the options: 1" ]]
	[[ $output == *"  failed: ndctl/pmem-ns  (FAIL (exit status 1), see log/pmem-ns.log)"* ]]
	[[ $output == *"(log/ is ndctl-real/test/log/;"* ]]
	# The default mode says which mode it was, and that it saw loads in
	# real-memmap mode (a modprobe.d file from elsewhere) when there were.
	run -0 ndctl_summary_lines "$out" default
	[[ ${lines[0]} == "ndctl suite (nfit_test in its default mode): ndctl v85, source /x (k)" ]]
	[[ ${lines[2]} == "  NOTE: nfit_test loaded in real-memmap mode 3 times in its default mode's guest"* ]]
	printf 'x\t0\t0\n' >"$out/nfit-loads.tsv"
	run -0 ndctl_summary_lines "$out" default
	[[ $output != *"real-memmap mode"* ]]
}

@test "the summary: one block per mode asked for" {
	mkdir -p "$RUN_DIR/ndctl" "$RUN_DIR/ndctl-real"
	echo "ndctl suite (nfit_test in its default mode): D" >"$RUN_DIR/ndctl/summary.txt"
	echo "ndctl suite (nfit_test in real-memmap mode): R" >"$RUN_DIR/ndctl-real/summary.txt"
	run -0 external_summary "$RUN_DIR"
	[[ ${lines[0]} == *": D" && ${lines[1]} == *": R" ]]
	LAB_NDCTL_NFIT=real run -0 external_summary "$RUN_DIR"
	[[ ${lines[0]} == *": R" && $output != *": D"* ]]
	rm "$RUN_DIR/ndctl-real/summary.txt"
	run -0 external_summary "$RUN_DIR"
	[[ ${lines[1]} == "ndctl suite (nfit_test in real-memmap mode): did not complete (see the log above)" ]]
	rm -r "$RUN_DIR/ndctl"
	NDCTL_SRC="" run -0 external_summary "$RUN_DIR"
	[[ ${lines[0]} == "ndctl suite: not run (set NDCTL_SRC to an ndctl >= v83 checkout)" ]]
}

@test "the guest finds the reserved range: the first memmap=SIZE\$BASE, not the e820 memmap=SIZE!BASE" {
	# shellcheck source=lab/guest/lib.sh
	source "$BATS_TEST_DIRNAME/../guest/lib.sh"
	local c=$BATS_TEST_TMPDIR/cmdline
	echo 'console=ttyS0 memmap=3G!8G memmap=512M$11G quiet' >"$c"
	run -0 nfit_real_range "$c"
	[[ $output == "$((512 << 20)) $((11 << 30))" ]]
	echo 'memmap=1024K$0x2c0000000' >"$c"
	run -0 nfit_real_range "$c"
	[[ $output == "1048576 $((0x2c0000000))" ]]
	echo 'console=ttyS0 memmap=3G!8G' >"$c"
	run -1 nfit_real_range "$c"
	[[ -z $output ]]
	run -0 size_bytes 2T
	[[ $output == $((2 << 40)) ]]
}

@test "LAB_NDCTL_NFIT and LAB_NDCTL_REPEAT are checked with NDCTL_SRC, with the fix" {
	mkdir -p "$NDCTL_SRC/test"
	printf '%s\n' "project('ndctl', 'c'," "  version : '85'," ')' >"$NDCTL_SRC/meson.build"
	echo "firmware_update = find_program('firmware-update.sh')" >"$NDCTL_SRC/test/meson.build"
	run -0 ndctl_check_src
	NDCTL_VERSION="" LAB_NDCTL_SKIP=nope.sh run -1 ndctl_check_src
	[[ $output == *"LAB_NDCTL_SKIP names 'nope.sh', which $NDCTL_SRC/test/meson.build does not define"* ]]
	for bad in 0 101 x 1.5; do
		NDCTL_VERSION="" LAB_NDCTL_REPEAT=$bad run -1 ndctl_check_src
		[[ $output == *"LAB_NDCTL_REPEAT=$bad is not a number of runs from 1 to 100"* ]]
		[[ $output == *"LAB_NDCTL_REPEAT=20 LAB_NDCTL_TESTS=inject-error.sh"* ]]
	done
	NDCTL_VERSION="" LAB_NDCTL_REPEAT=18446744073709551617 run -1 ndctl_check_src
	NDCTL_VERSION="" LAB_NDCTL_REPEAT=100 run -0 ndctl_check_src
	NDCTL_VERSION="" LAB_NDCTL_NFIT=both run -1 ndctl_check_src
	[[ $output == *"LAB_NDCTL_NFIT='both' is not a list of nfit_test modes"* ]]
}

@test "rounds: the summary counts each test's runs, apart from the rounds it missed, and lists each failure" {
	local out=$RUN_DIR/ndctl
	mkdir -p "$out/test"
	printf '%s\n' 'ndctl v85, source /x (k)' >"$out/version"
	echo repeat=4 >"$out/test/params"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' \
		ndctl/inject-error.sh test ok 20 - '' \
		ndctl/inject-error.sh test fail 21 - 'FAIL (exit status 1), see log/inject-error.sh.2.log' \
		ndctl/inject-error.sh test ok 19 - '' \
		ndctl/btt-errors.sh test skip 2 - 'no badblocks' \
		ndctl/btt-errors.sh test skip 2 - 'no badblocks' \
		ndctl/btt-errors.sh test skip 2 - 'no badblocks' \
		ndctl/inject-error.sh test fail - - 'not run in 1 of 4 rounds: the guest did not finish' \
		ndctl/btt-errors.sh test fail - - 'not run in 1 of 4 rounds: the guest did not finish' >"$out/results.tsv"
	: >"$out/splats.txt"
	: >"$out/test/results.tsv"
	NDCTL_BUILD_DIR=$BATS_TEST_TMPDIR/none/build
	run -0 ndctl_summary_lines "$out" default
	[[ ${lines[1]} == "  test runs, 4 rounds (pass test): 2 ok, 1 failed (0 timed out), 3 skipped, 2 not run (failures too, below); results: ndctl/results.tsv, ndctl/test/suite.tap" ]]
	[[ ${lines[2]} == "  ndctl/btt-errors.sh: 3 runs: 0 ok, 0 failed, 3 skipped" ]]
	[[ ${lines[3]} == "  ndctl/inject-error.sh: 3 runs: 2 ok, 1 failed, 0 skipped" ]]
	[[ ${lines[4]} == "  failed: ndctl/inject-error.sh  (FAIL (exit status 1), see log/inject-error.sh.2.log)" ]]
	[[ ${lines[5]} == "  failed: ndctl/inject-error.sh  (not run in 1 of 4 rounds: the guest did not finish)" ]]
}

@test "a guest that stops part-way through the rounds: one line per test for the rounds it missed" {
	local out=$RUN_DIR/ndctl
	mkdir -p "$out/test"
	printf '%s\n' 'ndctl v85, source /x (k)' >"$out/version"
	echo repeat=3 >"$out/test/params"
	printf '%s\t%s\t%s\n' inject-error.sh ndctl inject-error.sh clear.sh ndctl clear.sh >"$out/test/tests.tsv"
	printf '%s\t%s\t%s\t%s\t%s\n' ndctl/inject-error.sh ok 10 OK '' ndctl/clear.sh ok 3 OK '' \
		ndctl/inject-error.sh ok 10 OK '' >"$out/test/results.tsv"
	printf '%s\n' 'ok 1 - ndctl/inject-error.sh' 'ok 2 - ndctl/clear.sh' 'ok 3 - ndctl/inject-error.sh' >"$out/test/suite.tap"
	: >"$out/test-console.log"
	NDCTL_BUILD_DIR=$BATS_TEST_TMPDIR/none/build
	run -0 ndctl_collect "$out" 4 default
	run -0 cat "$out/test/results.tsv"
	[[ ${lines[3]} == $'ndctl/inject-error.sh\tfail\t-\t-\tnot run in 1 of 3 rounds: the guest did not finish'* ]]
	[[ ${lines[4]} == $'ndctl/clear.sh\tfail\t-\t-\tnot run in 2 of 3 rounds: the guest did not finish'* ]]
	[[ ${lines[5]} == $'guest-completed\tfail'* ]]
	run -0 cat "$out/summary.txt"
	[[ $output == *"  ndctl/clear.sh: 1 runs: 1 ok, 0 failed, 0 skipped"* ]]
	[[ $output == *"  ndctl/inject-error.sh: 2 runs: 2 ok, 0 failed, 0 skipped"* ]]
}

@test "our ndctl patches: applied to the build's copy in name order, part of the cache key; LAB_NDCTL_PATCHES=0 leaves them out" {
	local src=$NDCTL_SRC copy=$BATS_TEST_TMPDIR/copy k0 k1
	LAB_DIR=$BATS_TEST_TMPDIR/lab
	mkdir -p "$src/test" "$LAB_DIR/ndctl-patches" "$copy/test"
	printf 'a\nb\n' >"$src/test/t.sh"
	printf 'a\nb\n' >"$copy/test/t.sh"
	printf '%s\n' "project('ndctl', 'c'," "  version : '85'," ')' >"$src/meson.build"
	echo "firmware_update = find_program('firmware-update.sh')" >"$src/test/meson.build"
	git -C "$src" init -q
	git -C "$src" add -A
	git -C "$src" -c user.name=t -c user.email=t@t commit -q -m t
	k0=$(ndctl_key)
	[[ $k0 == "$(src_key "$src")" ]]
	cat >"$LAB_DIR/ndctl-patches/0002-second.patch" <<'P'
--- a/test/t.sh
+++ b/test/t.sh
@@ -1,3 +1,3 @@
 a
-b2
+b3
 c
P
	cat >"$LAB_DIR/ndctl-patches/0001-first.patch" <<'P'
--- a/test/t.sh
+++ b/test/t.sh
@@ -1,2 +1,3 @@
 a
-b
+b2
+c
P
	run -0 ndctl_patches
	[[ $output == "$LAB_DIR/ndctl-patches/0001-first.patch"$'\n'"$LAB_DIR/ndctl-patches/0002-second.patch" ]]
	k1=$(ndctl_key)
	[[ $k1 == "$k0"-p???????? && $k1 != "$k0" ]]
	LAB_NDCTL_PATCHES=0 run -0 ndctl_key
	[[ $output == "$k0" ]]
	run -0 ndctl_apply_patches "$copy"
	[[ $(cat "$copy/test/t.sh") == $'a\nb3\nc' ]]
	# Applied twice (or to another ndctl): the patch's name, the fix.
	run -1 ndctl_apply_patches "$copy"
	[[ $output == *"our ndctl patch 0001-first.patch does not apply to NDCTL_SRC=$src"* ]]
	[[ $output == *"LAB_NDCTL_PATCHES=0 to run ndctl as it is"* ]]
	NDCTL_VERSION="" LAB_NDCTL_PATCHES=2 run -1 ndctl_check_src
	[[ $output == *"LAB_NDCTL_PATCHES=2 is neither 1"* ]]
}

@test "the project's ndctl patches: format-patch files of ndctl's test/ only, with our sign-off" {
	local p f
	for p in "$BATS_TEST_DIRNAME"/../ndctl-patches/*.patch; do
		# Each is a git format-patch with a subject, a sign-off, and a diff
		# of ndctl's test/ only.
		grep -q '^Subject: \[PATCH\] test/' "$p"
		grep -q '^Signed-off-by: daxpage developers <daxpage@example.org>$' "$p"
		f=$(sed -n 's|^+++ b/||p' "$p")
		[[ -n $f && $f != *$'\n'* && $f == test/* ]]
	done
}

# guest_harness: lab/guest/ndctl.sh runnable here: stubs (first in PATH) for
# what it would do to a guest (modprobe, mount, dmesg, udevadm, findmnt,
# modinfo), ndctl, and a meson that prints the lines FAKE_MESON_LINES names
# for the round in DAXPAGE_NDCTL_ROUND, then sleeps FAKE_MESON_SLEEP.
# G is the directory of the build, the results and the guest's /run.
guest_harness() {
	local b=$BATS_TEST_TMPDIR/bin c
	G=$BATS_TEST_TMPDIR/g
	mkdir -p "$b" "$G/build/ndctl" "$G/out/test" "$G/run"
	for c in dmesg modprobe mount udevadm findmnt; do
		printf '#!/bin/sh\nexit 0\n' >"$b/$c"
	done
	printf '#!/bin/sh\necho /lib/modules/x/updates/m.ko\n' >"$b/modinfo"
	printf '#!/bin/sh\necho "[]"\n' >"$G/build/ndctl/ndctl"
	cat >"$b/meson" <<'M'
#!/bin/bash
eval "echo \"\$FAKE_MESON_LINES_$DAXPAGE_NDCTL_ROUND\""
echo "round=$DAXPAGE_NDCTL_ROUND args=$*" >>"$BATS_TEST_TMPDIR/meson.calls"
sleep "${FAKE_MESON_SLEEP:-0}"
M
	chmod +x "$b"/* "$G/build/ndctl/ndctl"
	PATH=$b:$PATH
	export DAXPAGE_NDCTL_RUNDIR=$G/run BATS_TEST_TMPDIR
	printf '%s\t%s\t%s\n' inject-error.sh ndctl inject-error.sh clear.sh ndctl clear.sh >"$G/out/test/tests.tsv"
}

@test "the guest runs REPEAT rounds, each a meson test of its own, with a result per run and the round's log" {
	guest_harness
	printf '%s\n' timeout_multiplier=4 deadline=600 tests='inject-error.sh clear.sh' nfit_mode=default repeat=3 >"$G/out/test/params"
	export FAKE_MESON_LINES_1=$' 1/2 ndctl:ndctl / inject-error.sh   OK   10.00s\n 2/2 ndctl:ndctl / clear.sh   OK   3.00s'
	export FAKE_MESON_LINES_2=$' 1/2 ndctl:ndctl / inject-error.sh   FAIL   9.00s   exit status 1\n 2/2 ndctl:ndctl / clear.sh   OK   3.00s'
	export FAKE_MESON_LINES_3=$' 1/2 ndctl:ndctl / inject-error.sh   OK   10.00s\n 2/2 ndctl:ndctl / clear.sh   SKIP   1.00s'
	run -0 bash "$BATS_TEST_DIRNAME/../guest/ndctl.sh" test "$G/out" "$G/build"
	[[ ${lines[-1]} == "daxpage: suite done" ]]
	# Three meson runs, round by round, each with its own testlog.
	[[ $(grep -c . "$BATS_TEST_TMPDIR/meson.calls") == 3 ]]
	grep -q '^round=2 args=test -C .* --logbase testlog-2 .* inject-error.sh clear.sh$' "$BATS_TEST_TMPDIR/meson.calls"
	run -1 grep -q -- --repeat "$BATS_TEST_TMPDIR/meson.calls"
	run -0 grep -F ndctl/inject-error.sh "$G/out/test/results.tsv"
	[[ ${#lines[@]} == 3 ]]
	[[ ${lines[1]} == $'ndctl/inject-error.sh\tfail\t9.00\tFAIL\tFAIL (exit status 1), see log/inject-error.sh.2.log' ]]
	run -0 grep -c -F ndctl/clear.sh "$G/out/test/results.tsv"
	[[ $output == 3 ]]
}

@test "the guest's deadline: the rounds stop, and every test says how many rounds it missed" {
	guest_harness
	printf '%s\n' timeout_multiplier=4 deadline=2 tests='inject-error.sh clear.sh' nfit_mode=default repeat=3 >"$G/out/test/params"
	export FAKE_MESON_LINES_1=' 1/2 ndctl:ndctl / inject-error.sh   OK   1.00s' FAKE_MESON_SLEEP=20
	run -0 timeout 60 bash "$BATS_TEST_DIRNAME/../guest/ndctl.sh" test "$G/out" "$G/build"
	[[ $(grep -c . "$BATS_TEST_TMPDIR/meson.calls") == 1 ]]
	grep -qxF $'ndctl/inject-error.sh\tfail\t-\t-\tnot run in 2 of 3 rounds: meson stopped at the 2s deadline' "$G/out/test/results.tsv"
	grep -qxF $'ndctl/clear.sh\tfail\t-\t-\tnot run: meson stopped at the 2s deadline' "$G/out/test/results.tsv"
}

@test "real-memmap mode in the guest: no tmpfs for the options, or no reserved range: every test not run, with the reason" {
	guest_harness
	printf '%s\n' timeout_multiplier=4 deadline=600 tests= nfit_mode=real repeat=1 >"$G/out/test/params"
	# The stub findmnt says nothing (no tmpfs), and this host has no
	# reserved range on its command line: nothing is written, nothing runs.
	run -0 bash "$BATS_TEST_DIRNAME/../guest/ndctl.sh" test "$G/out" "$G/build"
	[[ ! -e $BATS_TEST_TMPDIR/meson.calls ]]
	grep -q '^not ok 1 - setup/nfit_test-real-options' "$G/out/test/suite.tap"
	grep -qxF $'ndctl/clear.sh\tfail\t-\t-\tnot run: the nfit_test options of real-memmap mode could not be set (log/setup-nfit_test-real-options.log)' "$G/out/test/results.tsv"
	# (This host's /proc/cmdline: no memmap=SIZE$BASE, or one and no tmpfs.)
	grep -qE 'no memmap=SIZE\$BASE on the kernel command line|not on a tmpfs of the guest: not writing there' \
		"$G/out/test/log/setup-nfit_test-real-options.log"
}

@test "nfit_real_options: the options for the reserved range, only onto a tmpfs" {
	# shellcheck source=lab/guest/lib.sh
	source "$BATS_TEST_DIRNAME/../guest/lib.sh"
	local c=$BATS_TEST_TMPDIR/cmdline d=$BATS_TEST_TMPDIR/run/modprobe.d
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH
	printf '#!/bin/sh\necho ext4\n' >"$BATS_TEST_TMPDIR/bin/findmnt"
	chmod +x "$BATS_TEST_TMPDIR/bin/findmnt"
	echo 'memmap=3G!8G memmap=512M$11G' >"$c"
	run -1 nfit_real_options "$c" "$d"
	[[ $output == "$BATS_TEST_TMPDIR/run is on 'ext4', not on a tmpfs of the guest: not writing there" ]]
	[[ ! -e $d ]]
	printf '#!/bin/sh\necho tmpfs\n' >"$BATS_TEST_TMPDIR/bin/findmnt"
	run -0 nfit_real_options "$c" "$d"
	[[ $(cat "$d/daxpage-nfit-real.conf") == "options nfit_test reserved_base=0x2c0000000 reserved_size=0x20000000" ]]
	echo 'memmap=3G!8G' >"$c"
	run -1 nfit_real_options "$c" "$d"
	[[ $output == "no memmap=SIZE\$BASE on the kernel command line (LAB_NFIT_RESERVE)" ]]
}

@test "--passes none: the run's summary says there was no module pass, and its verdict is not a PASS" {
	# shellcheck source=lab/lib/report.sh
	source "$BATS_TEST_DIRNAME/../lib/report.sh"
	local f
	for f in label target kind kernelrelease base series accel stages; do
		echo x >"$RUN_DIR/$f"
	done
	PASSES=()
	run -0 report "$RUN_DIR"
	[[ $output == *"module passes: none (--passes none; the external suites' lines follow the verdict)"* ]]
	[[ ${lines[-1]} == "verdict: none (no module pass)" ]]
	[[ $output != *"check "* && $output != *"kernel log splats"* && $output != *"test cases inside"* ]]
}

@test "the lab's skips: out of the guest's list (which then names its tests), a skip with the reason in the results" {
	ndctl_tests() { printf '%s\t%s\t%s\n' libndctl ndctl libndctl firmware-update.sh ndctl firmware-update.sh dm.sh dax dm.sh; }
	stage() { return 0; }
	echo tcg >"$RUN_DIR/accel"
	NDCTL_BUILD_DIR=$BATS_TEST_TMPDIR/none/build NDCTL_VERSION=85
	run -0 ndctl_suite_mode default
	local out=$RUN_DIR/ndctl
	[[ $(cut -f1 "$out/test/tests.tsv" | xargs) == "libndctl dm.sh" ]]
	grep -qx 'tests=libndctl dm.sh' "$out/test/params"
	grep -qxF $'ndctl/firmware-update.sh\ttest\tskip\t-\t-\tskipped by the lab (LAB_NDCTL_SKIP): its firmware activation freezes the guest\'s devices, and the guest\'s 9p root file system does not come back from that (the guest hangs)' "$out/results.tsv"
	grep -q '^ok 1 - ndctl/firmware-update.sh # SKIP skipped by the lab' "$out/test/suite.tap"
	grep -q 'skipped by the lab: firmware-update.sh' "$out/version"
	# LAB_NDCTL_SKIP= skips none: the guest runs the whole suites.
	LAB_NDCTL_SKIP="" run -0 ndctl_suite_mode default
	grep -qx 'tests=' "$out/test/params"
	[[ ! -s $out/test/skipped.tsv ]]
	# A subset without the skipped test: nothing to skip.
	LAB_NDCTL_TESTS=dm.sh run -0 ndctl_suite_mode default
	grep -qx 'tests=dm.sh' "$out/test/params"
	[[ ! -s $out/test/skipped.tsv ]]
}

@test "rounds: a splat is charged to the round it came from, and counted once per test" {
	local out=$RUN_DIR/ndctl
	mkdir -p "$out/test"
	printf '%s\n' 'ndctl v85, source /x (k)' >"$out/version"
	echo repeat=3 >"$out/test/params"
	printf '%s\t%s\t%s\n' inject-error.sh ndctl inject-error.sh >"$out/test/tests.tsv"
	printf '%s\t%s\t%s\t%s\t%s\n' ndctl/inject-error.sh ok 10 OK '' ndctl/inject-error.sh fail 9 FAIL 'FAIL, see x' \
		ndctl/inject-error.sh ok 10 OK '' >"$out/test/results.tsv"
	: >"$out/test/suite.tap"
	cat >"$out/test/dmesg.txt" <<'K'
[ 1.0] daxpage-ndctl: begin inject-error.sh#1
[ 2.0] daxpage-ndctl: end inject-error.sh#1 rc=0
[ 3.0] daxpage-ndctl: begin inject-error.sh#2
[ 3.5] WARNING: CPU: 0 PID: 1 at fs/dax.c:1 x
[ 4.0] daxpage-ndctl: end inject-error.sh#2 rc=1
[ 5.0] daxpage-ndctl: begin inject-error.sh#3
[ 5.5] nfit_test: real-memmap mode: PMEM SPA ranges in 0x2c0000000-0x2dfffffff
[ 6.0] daxpage-ndctl: end inject-error.sh#3 rc=0
K
	: >"$out/test-console.log"
	NDCTL_BUILD_DIR=$BATS_TEST_TMPDIR/none/build
	run -0 ndctl_collect "$out" 0 default
	run -0 cut -f5 "$out/results.tsv"
	[[ $output == $'-\nsplat\n-' ]]
	grep -q 'kernel log splats: 1 lines, 1 tests' "$out/summary.txt"
	# nfit_test's loads are per test, whatever the round.
	[[ $(cat "$out/nfit-loads.tsv") == $'inject-error.sh\t1\t0' ]]
}

@test "a test the lab skips by default runs when LAB_NDCTL_TESTS names it" {
	ndctl_tests() { printf '%s\t%s\t%s\n' libndctl ndctl libndctl firmware-update.sh ndctl firmware-update.sh; }
	stage() { return 0; }
	echo tcg >"$RUN_DIR/accel"
	NDCTL_BUILD_DIR=$BATS_TEST_TMPDIR/none/build NDCTL_VERSION=85
	LAB_NDCTL_TESTS=firmware-update.sh run -0 ndctl_suite_mode default
	[[ $output == *"running firmware-update.sh although the lab skips it by default: LAB_NDCTL_TESTS names it"* ]]
	grep -qx 'tests=firmware-update.sh' "$RUN_DIR/ndctl/test/params"
	[[ ! -s $RUN_DIR/ndctl/test/skipped.tsv ]]
}
