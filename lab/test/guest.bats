#!/usr/bin/env bats
# The guest-path logic (lab/lib/guest.sh): what a guest boot shares with the
# guest, and how a guest that fails is reported. virtme-ng is replaced by a
# stub that records its arguments and plays one outcome; the real boot of a
# checkout under /tmp is 'lab/lab check''s guest-paths check.
# The globals set here (KDIR, LAB_DIR, LAB_GUEST_TIMEOUT, ...) are read by
# the functions under test.
# shellcheck disable=SC2034,SC2030,SC2031

bats_require_minimum_version 1.5.0

setup() {
	load helper
	lab_source
	mkdir -p "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/out"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH
	KDIR=$BATS_TEST_TMPDIR/kdir
	LAB_GUEST_TIMEOUT=30
	LAB_NVDIMM_SIZE=16M
}

# stub_vng SCRIPT: a vng that records its arguments (one per line) in
# $BATS_TEST_TMPDIR/vng.args, then runs SCRIPT (stdout is the guest's
# output, stderr the console).
stub_vng() {
	{
		echo '#!/bin/bash'
		printf '%s\n' "printf '%s\\n' \"\$@\" >'$BATS_TEST_TMPDIR/vng.args'"
		printf '%s\n' "$1"
	} >"$BATS_TEST_TMPDIR/bin/vng"
	chmod +x "$BATS_TEST_TMPDIR/bin/vng"
}

@test "a checkout and a cache under /tmp are shared at their own paths; the run directory at /tmp/daxpage-out" {
	LAB_DIR=/tmp/clone/lab
	run -0 guest_share_args /tmp/clone/results/.run-x /tmp/c/stage/series/test/lib/modules /tmp/c/bin/series
	[ "${lines[0]}" = "--rwdir=/tmp/daxpage-out=/tmp/clone/results/.run-x" ]
	printf '%s\n' "${lines[@]}" | grep -qx -- '--rodir=/tmp/clone/lab=/tmp/clone/lab'
	printf '%s\n' "${lines[@]}" | grep -qx -- '--rodir=/tmp/c/bin/series=/tmp/c/bin/series'
	printf '%s\n' "${lines[@]}" | grep -qx -- '--rodir=/tmp/c/stage/series/test/lib/modules=/tmp/c/stage/series/test/lib/modules'
	[ "${#lines[@]}" -eq 4 ]
}

@test "shares: parents before what lies inside them, duplicates once, trailing slashes dropped" {
	LAB_DIR=/var/tmp/x/lab
	run -0 guest_share_args /o /var/tmp/x/lab/sub/ /var/tmp/x/lab /a
	[ "${lines[1]}" = "--rodir=/a=/a" ]
	[ "${lines[2]}" = "--rodir=/var/tmp/x/lab=/var/tmp/x/lab" ]
	[ "${lines[3]}" = "--rodir=/var/tmp/x/lab/sub=/var/tmp/x/lab/sub" ]
	[ "${#lines[@]}" -eq 4 ]
}

@test "paths virtme-ng cannot share are refused with the cause and the fix" {
	local p
	# shellcheck disable=SC2016 # a literal $ is the point
	for p in "/tmp/a b" "/tmp/a=b" "/tmp/a,b" "/tmp/a'b" '/tmp/$x' "/tmp/a;b" /tmp/a@b /tmp/a:b /tmp/a~b; do
		run -1 path_check "the lab's checkout" "$p"
		[[ ${lines[0]} == *"ERROR:"*"has characters the guest boot cannot pass to virtme-ng"* ]]
		[[ ${lines[1]} == *"fix:"* ]]
	done
	# shellcheck disable=SC2088 # a literal ~ is the point
	for p in cache ./x '~/x'; do
		run -1 path_check DAXPAGE_CACHE "$p"
		[[ ${lines[0]} == *"is not an absolute path"* ]]
	done
	run -0 path_check x /tmp/daxpage.clone-1/a_b+c
}

@test "the guest command checks that the script and the modules are visible before it runs" {
	run -0 guest_command /tmp/clone/lab/guest/suite.sh test /tmp/c/stage/series/test/lib/modules /tmp/c/bin/series
	[[ ${lines[0]} == "if [ ! -r /tmp/clone/lab/guest/suite.sh ]; then"* ]]
	[[ $output == *"mount --bind /tmp/c/stage/series/test/lib/modules /lib/modules"* ]]
	[ "${lines[-1]}" = "bash /tmp/clone/lab/guest/suite.sh test /tmp/daxpage-out /tmp/c/bin/series" ]
	# It runs in a plain shell: a script that is not there is reported.
	run -97 sh -c "$(guest_command /nonexistent/suite.sh test /tmp /tmp)"
	[ "$output" = "daxpage: guest-error: /nonexistent/suite.sh is not visible in the guest" ]
}

@test "the --exec virtme-ng puts on the kernel command line stays short" {
	run -0 guest_exec test
	[[ $output == "echo 'daxpage: guest up'; bash /tmp/daxpage-out/.guest-test.sh; "* ]]
	# shellcheck disable=SC2016 # $? is the guest's
	[[ $output == *'echo "daxpage: guest-exit $?"' ]]
	[ "${#output}" -lt 120 ]
}

@test "shares too long for the kernel command line: refused, exit code 3, before virtme-ng runs" {
	local long
	long=/tmp/$(printf 'x%.0s' {1..300})
	stub_vng 'exit 0'
	run -3 boot_suite test "$BATS_TEST_TMPDIR/out" "$long/a" "$long/b" tcg "$long/c"
	[[ $output == *"too long for the kernel command line"* ]]
	[ ! -e "$BATS_TEST_TMPDIR/vng.args" ]
}

@test "boot_suite passes the shares and the guest command to virtme-ng" {
	LAB_DIR=/tmp/clone/lab
	stub_vng 'echo "daxpage: guest up"; echo "daxpage: [    1s] run: x"; echo "daxpage: suite done"'
	run -0 boot_suite test "$BATS_TEST_TMPDIR/out" /tmp/c/mods /tmp/c/bin/series tcg /tmp/c/ndctl/k/src
	grep -qx -- '--rodir=/tmp/clone/lab=/tmp/clone/lab' "$BATS_TEST_TMPDIR/vng.args"
	grep -qx -- '--rodir=/tmp/c/ndctl/k/src=/tmp/c/ndctl/k/src' "$BATS_TEST_TMPDIR/vng.args"
	grep -qx -- "--rwdir=/tmp/daxpage-out=$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/vng.args"
	grep -qx -- '--disable-kvm' "$BATS_TEST_TMPDIR/vng.args"
	grep -qx "echo 'daxpage: guest up'; bash /tmp/daxpage-out/.guest-test.sh; echo \"daxpage: guest-exit \$?\"" "$BATS_TEST_TMPDIR/vng.args"
	grep -qx "bash /tmp/clone/lab/guest/suite.sh test /tmp/daxpage-out /tmp/c/bin/series" "$BATS_TEST_TMPDIR/out/.guest-test.sh"
	# The NVDIMM backing files of the boot are gone afterwards.
	[ -z "$(ls -A "$DAXPAGE_CACHE/vm")" ]
}

@test "a script the guest cannot see: 'did not start', exit code 3, not a kernel bug" {
	stub_vng 'echo "Linux version 6.12.117" >&2
		echo "daxpage: guest up"
		echo "daxpage: guest-error: /tmp/clone/lab/guest/suite.sh is not visible in the guest"
		echo "last console line" >&2; exit 97'
	run -3 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest booted but suite.sh did not start: /tmp/clone/lab/guest/suite.sh is not visible in the guest; not a kernel problem"* ]]
	[[ $output == *"last console line"* ]]
	run -0 guest_failure_fix 3 /c.log
	[[ $output == *"lab issue"* && $output != *"kernel bug"* ]]
}

@test "a suite that exits before its first check: its exit code is reported" {
	stub_vng 'echo "daxpage: guest up"; echo "bash: line 1: oops" >&2; echo "daxpage: guest-exit 127"; exit 127'
	run -3 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"did not start: suite.sh exited with 127 before its first check"* ]]
}

@test "a kernel that panics before user space: exit code 2" {
	stub_vng 'echo "Linux version 6.12.117" >&2; echo "Kernel panic - not syncing: VFS" >&2; exit 1'
	run -2 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest kernel crashed before user space: Kernel panic - not syncing: VFS"* ]]
}

@test "a kernel that panics after user space, before the suite's first check: a crash (5), not a lab problem" {
	stub_vng 'echo "daxpage: guest up"; echo "Kernel panic - not syncing: x" >&2; exit 1'
	run -5 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest kernel crashed before suite.sh started: Kernel panic - not syncing: x"* ]]
	[[ $output != *"not a kernel problem"* ]]
}

@test "a guest that hangs before the suite's first check: a hang (4)" {
	LAB_GUEST_TIMEOUT=1
	stub_vng 'echo "daxpage: guest up"; exec sleep 60'
	run -4 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest hung before suite.sh started: no result after 1s"* ]]
}

@test "a kernel that hangs in boot: stopped after LAB_BOOT_TIMEOUT, not LAB_GUEST_TIMEOUT; exit code 2" {
	LAB_BOOT_TIMEOUT=2
	LAB_GUEST_TIMEOUT=120
	stub_vng 'echo "Linux version 7.3.4" >&2; echo "9p: Installing v9fs" >&2; sleep 100'
	SECONDS=0
	run -2 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	((SECONDS < 60))
	[[ $output == *"the guest kernel did not reach user space (no \"Run ... as init process\") within 2s (LAB_BOOT_TIMEOUT) and was stopped; its console's last line: 9p: Installing v9fs"* ]]
	[[ -f $BATS_TEST_TMPDIR/out/.test-boot-hung ]]
	[[ $(guest_failure_fix 2 c) == *"a boot stopped by LAB_BOOT_TIMEOUT"* ]]
}

@test "a kernel that reached user space is not the boot watchdog's: a slow user space meets LAB_GUEST_TIMEOUT" {
	LAB_BOOT_TIMEOUT=2
	LAB_GUEST_TIMEOUT=6
	stub_vng 'echo "Linux version 7.3.4" >&2; echo "Run /usr/lib/virtme/init as init process" >&2; sleep 100'
	run -2 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest kernel started but never reached user space (rc=124)"* ]]
	[[ ! -e $BATS_TEST_TMPDIR/out/.test-boot-hung ]]
}

@test "a panic before user space is reported as the panic, even when the watchdog stopped the guest" {
	LAB_BOOT_TIMEOUT=2
	stub_vng 'echo "Linux version 7.3.4" >&2; echo "Kernel panic - not syncing: VFS" >&2; sleep 100'
	run -2 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest kernel crashed before user space: Kernel panic - not syncing: VFS"* ]]
}

@test "virtme-ng that fails before the kernel starts: exit code 3" {
	stub_vng 'echo "error: cannot access /x on the host" >&2; exit 2'
	run -3 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"virtme-ng or QEMU stopped before the kernel started (rc=2; not a kernel problem)"* ]]
	[[ $output == *"error: cannot access /x on the host"* ]]
}

@test "a guest that hangs in the suite: exit code 4 after LAB_GUEST_TIMEOUT" {
	LAB_GUEST_TIMEOUT=1
	stub_vng 'echo "daxpage: guest up"; echo "daxpage: [    0s] run: x"; exec sleep 60'
	run -4 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest hung in suite.sh: no result after 1s"* ]]
}

@test "a guest that crashes in the suite: exit code 5, with the splat" {
	stub_vng 'echo "daxpage: guest up"; echo "daxpage: [    0s] run: x"; echo "BUG: oops" >&2; exit 1'
	run -5 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest kernel crashed in suite.sh: BUG: oops"* ]]
}

@test "a guest that stops in the suite without a splat: exit code 5" {
	stub_vng 'echo "daxpage: guest up"; echo "daxpage: [    0s] run: x"; exit 1'
	run -5 boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
	[[ $output == *"the guest stopped before suite.sh ended (rc=1)"* ]]
}

@test "a tree counts as 'from scratch' with configure's host tools built, not with one kernel object" {
	# shellcheck source=lab/lib/build.sh
	source "$BATS_TEST_DIRNAME/../lib/build.sh"
	mkdir -p "$KDIR/scripts/kconfig" "$KDIR/tools/objtool" "$KDIR/fs"
	touch "$KDIR/scripts/kconfig/conf.o" "$KDIR/tools/objtool/objtool.o"
	run -0 build_from_scratch "$KDIR"
	touch "$KDIR/fs/inode.o"
	run -1 build_from_scratch "$KDIR"
}

# The $ of memmap=SIZE$BASE is literal here.
# shellcheck disable=SC2016
@test "the guest layout: the defaults pass; the nfit_test reserve is checked for form, size, alignment, RAM and overlaps" {
	run -0 guest_layout_check
	LAB_NFIT_RESERVE='512M!12G' run -1 guest_layout_check
	[[ $output == *"is not SIZE\$BASE"* ]]
	LAB_NFIT_RESERVE='512M' run -1 guest_layout_check
	[[ $output == *"is not SIZE\$BASE"* ]]
	LAB_NFIT_RESERVE='524289K$12G' run -1 guest_layout_check
	[[ $output == *"is not SIZE\$BASE"* ]]
	LAB_NFIT_RESERVE='600M$12G' run -1 guest_layout_check
	[[ $output == *"at least 512 MiB at a 128 MiB boundary"* ]]
	LAB_NFIT_RESERVE='256M$12G' run -1 guest_layout_check
	[[ $output == *"at least 512 MiB at a 128 MiB boundary"* ]]
	LAB_NFIT_RESERVE='512M$12100M' run -1 guest_layout_check
	[[ $output == *"128 MiB boundary"* ]]
	LAB_NFIT_RESERVE='1G$14G' run -1 guest_layout_check
	[[ $output == *"past the guest's RAM"* ]]
	LAB_NFIT_RESERVE='512M$10G' run -1 guest_layout_check
	[[ $output == *"overlaps memmap=3G!8G"* ]]
	LAB_NFIT_RESERVE='512M$5G' run -1 guest_layout_check
	[[ $output == *"starts below 8 GiB"* ]]
	LAB_NFIT_RESERVE='512M$1G' run -1 guest_layout_check
	[[ $output == *"starts below 8 GiB"* ]]
	LAB_NFIT_RESERVE='512M$12G' run -0 guest_layout_check
	# The default fits the 10 GiB guest the ndctl runs use; 9 GiB does not.
	LAB_GUEST_MEM=10G run -0 guest_layout_check
	LAB_GUEST_MEM=9G run -1 guest_layout_check
	[[ $output == *"raise LAB_GUEST_MEM to at least 10G"* ]]
}

# The $ of memmap=SIZE$BASE is literal here.
# shellcheck disable=SC2016
@test "boot_suite puts the e820 range and the nfit_test reserve on the kernel command line" {
	stub_vng 'echo "daxpage: guest up"; echo "daxpage: suite done"'
	LAB_DIR=$BATS_TEST_TMPDIR/lab
	mkdir -p "$LAB_DIR/guest" "$BATS_TEST_TMPDIR/mods" "$BATS_TEST_TMPDIR/binx"
	touch "$LAB_DIR/guest/suite.sh"
	CACHE=$BATS_TEST_TMPDIR/cache
	run -0 boot_suite test "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/mods" "$BATS_TEST_TMPDIR/binx" tcg
	grep -q -- 'memmap=3G!8G memmap=512M\$11G hung_task' "$BATS_TEST_TMPDIR/vng.args"
}

@test "an aborted run stops its guest: boot_kill ends the boot's process group and its watchdog, and nothing else" {
	setsid sleep 60 &
	local victim=$! other
	setsid sleep 60 &
	other=$!
	sleep 0.5
	BOOT_PID="" BOOT_WATCHDOG=""
	boot_kill
	kill -0 "$victim"
	BOOT_PID=$victim
	boot_kill
	sleep 0.5
	run -1 kill -0 "$victim"
	kill -0 "$other"
	kill "$other"
}

@test "a signal to the lab during a boot ends the guest too, and the lab dies of the signal" {
	stub_vng 'echo "daxpage: guest up"; exec sleep 97'
	# (TERM: an asynchronous subshell cannot take INT, which bash ignores
	# there; boot_suite handles INT, TERM and HUP alike.)
	(
		boot_suite test "$BATS_TEST_TMPDIR/out" /m /b tcg
		echo "carried on" >"$BATS_TEST_TMPDIR/after"
	) &
	local lab=$! i
	for ((i = 0; i < 50; i++)); do
		pgrep -f '^sleep 97$' >/dev/null && break
		sleep 0.2
	done
	pgrep -f '^sleep 97$' >/dev/null
	kill -TERM "$lab"
	local st=0
	wait "$lab" || st=$?
	[[ $st == 143 ]]
	sleep 0.5
	run -1 pgrep -f '^sleep 97$'
	[[ ! -e $BATS_TEST_TMPDIR/after ]]
}
