# shellcheck shell=bash
# External test suites, each in a guest boot of its own on the kernel under
# test, after the lab's own passes: ndctl's test suite (NDCTL_SRC, here) and
# xfstests (XFSTESTS_SRC, lab/lib/xfstests.sh). Both use the helpers here:
# src_key and src_snapshot (the cache key and copy of a source checkout),
# external_boot (the guest) and external_summary_one (the summary lines).
#
# NDCTL_SRC=DIR is an ndctl checkout (v83 or later: v83 fixed dax.sh's
# parsing of trace-cmd's output). The lab runs ndctl's meson suites "ndctl"
# and "dax" with the nfit_test modules (the test module pass), on the lab's
# emulated pmem: the nfit_test buses, the two QEMU NVDIMMs (ACPI.NFIT, with
# labels) and the memmap= e820 range. Results: RUN_DIR/ndctl/.
#
# nfit_test has two modes (LAB_NDCTL_NFIT, default "default real"; one guest
# boot each): "default", its vmalloc() memory at made-up addresses, and
# "real", its PMEM ranges in the reserved memory of LAB_NFIT_RESERVE with a
# real ZONE_DEVICE memmap (the series' tools/testing/nvdimm patch; the guest
# puts the module options in /run/modprobe.d, so that every load by ndctl's
# tests takes them). Results of the real mode: RUN_DIR/ndctl-real/. A kernel
# whose nfit_test has no such mode (no reserved_base parameter: vanilla)
# runs the default mode only, and the summary says so.
#
# ndctl is built on the HOST, not in the guest: the guest is the host's own
# root file system (virtme-ng), so binaries built here run there unchanged,
# and building under TCG would take many times longer. The build lives in the
# lab cache, $CACHE/ndctl/KEY/{src,build}; KEY is the short hash of the
# checkout's HEAD (plus a hash of its uncommitted changes, if any), so ndctl
# is rebuilt only when its source changes. The source is copied there too:
# meson's test commands name the source directory, and the guest must run
# the very scripts that were built, whatever happens to the checkout
# meanwhile. Nothing of ndctl ever lands in the daxpage repository, except
# our own patches to its tests, lab/ndctl-patches/*.patch, applied to that
# copy in name order (LAB_NDCTL_PATCHES=0: ndctl as checked out); they are
# part of KEY.
#
# Knobs: LAB_NDCTL_ALLOW_OLD=1 runs an ndctl older than v83 (loudly);
# LAB_NDCTL_TESTS="NAME..." runs only those tests (meson test names);
# LAB_NDCTL_SKIP="NAME..." (default NDCTL_SKIP_DEFAULT) are tests the lab
# does not run, each a skip with NDCTL_SKIP_WHY's reason ("" runs them all);
# LAB_NDCTL_TIMEOUT_MULT (meson --timeout-multiplier; tests have 600 s each;
# default 1 with KVM, 4 with TCG); LAB_NDCTL_GUEST_TIMEOUT (seconds for the
# whole guest; default 3600 with KVM, 10800 with TCG, where v81's 36 tests
# of the two suites took 31-37 minutes on 2 busy cores; v85 has 37);
# LAB_NDCTL_NVDIMM_SIZE
# (default 6G: daxctl-devices.sh needs a 4 GiB namespace on one NVDIMM);
# LAB_NDCTL_NFIT ("default", "real" or both, in that order: nfit_test's modes);
# LAB_NDCTL_REPEAT (1-100, default 1: rounds, the selected tests run again
# that many times in one guest; with LAB_NDCTL_TESTS, for tests that fail
# only now and then: every run is a result, and the summary counts them per
# test; the guest timeout stays the same); LAB_NDCTL_PATCHES (1, the
# default: apply lab/ndctl-patches/; 0: ndctl as checked out). A test named
# in both LAB_NDCTL_TESTS and LAB_NDCTL_SKIP runs.

NDCTL_MIN_VERSION=83
# firmware-update.sh activates firmware with the system quiesced
# (hibernate_quiet_exec(): devices frozen and thawed). The guest's root file
# system is 9p over virtio, whose driver cannot be frozen and thawed: after
# the thaw nothing in the guest's user space runs again, and the guest hangs
# until its timeout (seen on 6.12.117 + v7 and 7.3.4 + the series with
# HIBERNATION, 2026-12-07). Without HIBERNATION the activation fails with
# -ENOTSUPP (524) and so does the test: it cannot pass in this guest.
NDCTL_SKIP_DEFAULT="firmware-update.sh"
declare -gA NDCTL_SKIP_WHY=(
	[firmware-update.sh]="its firmware activation freezes the guest's devices, and the guest's 9p root file system does not come back from that (the guest hangs)"
)
NDCTL_VERSION=""
NDCTL_OLD=0
NDCTL_BUILD_DIR=""

# ndctl_src_version DIR: the version in ndctl's meson.build project().
ndctl_src_version() {
	sed -nE "/^project\(/,/^\)/ s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'([^']*)'.*/\1/p" \
		"$1/meson.build" | head -n1
}

# ndctl_check_src: refuse a NDCTL_SRC that is not an ndctl checkout, or is
# older than v83 (unless LAB_NDCTL_ALLOW_OLD=1), and malformed LAB_NDCTL_*
# knobs. Cheap: call it before the kernel build, so that bad input fails the
# run at once rather than after an hour.
ndctl_check_src() {
	local src=$NDCTL_SRC v t
	[[ -z $NDCTL_VERSION ]] || return 0
	if [[ ! -f $src/meson.build || ! -f $src/test/meson.build ]] ||
		! grep -q "^project('ndctl'" "$src/meson.build"; then
		die "NDCTL_SRC=$src is not an ndctl checkout (no meson.build of project ndctl and test/meson.build)" \
			"point NDCTL_SRC at a clone of ndctl v$NDCTL_MIN_VERSION or later (https://github.com/pmem/ndctl)"
	fi
	for t in ${LAB_NDCTL_TESTS:-}; do
		grep -qF "'$t'" "$src/test/meson.build" ||
			die "LAB_NDCTL_TESTS names '$t', which $src/test/meson.build does not define" \
				"use meson test names of the ndctl and dax suites (meson test --list), e.g. LAB_NDCTL_TESTS='libndctl dax-ext4.sh'"
	done
	for t in ${LAB_NDCTL_SKIP-$NDCTL_SKIP_DEFAULT}; do
		grep -qF "'$t'" "$src/test/meson.build" ||
			die "LAB_NDCTL_SKIP names '$t', which $src/test/meson.build does not define" \
				"use meson test names (meson test --list), or LAB_NDCTL_SKIP= to skip none"
	done
	ndctl_nfit_modes >/dev/null
	[[ ${LAB_NDCTL_PATCHES:-1} == [01] ]] ||
		die "LAB_NDCTL_PATCHES=${LAB_NDCTL_PATCHES:-} is neither 1 (apply lab/ndctl-patches/) nor 0 (ndctl as checked out)" \
			"unset it, or set LAB_NDCTL_PATCHES=0 or 1"
	[[ ${LAB_NDCTL_REPEAT:-1} =~ ^[1-9][0-9]{0,2}$ && ${LAB_NDCTL_REPEAT:-1} -le 100 ]] ||
		die "LAB_NDCTL_REPEAT=${LAB_NDCTL_REPEAT:-} is not a number of runs from 1 to 100" \
			"unset it (each test once), or set e.g. LAB_NDCTL_REPEAT=20 LAB_NDCTL_TESTS=inject-error.sh"
	[[ ${LAB_NDCTL_TIMEOUT_MULT:-1} =~ ^[0-9]+(\.[0-9]+)?$ && ${LAB_NDCTL_GUEST_TIMEOUT:-900} =~ ^[0-9]+$ &&
		${LAB_NDCTL_GUEST_TIMEOUT:-900} -ge 900 ]] ||
		die "LAB_NDCTL_TIMEOUT_MULT=${LAB_NDCTL_TIMEOUT_MULT:-} or LAB_NDCTL_GUEST_TIMEOUT=${LAB_NDCTL_GUEST_TIMEOUT:-} is not a number (or is under 900 s)" \
			"unset them for the defaults, or set numbers, e.g. LAB_NDCTL_TIMEOUT_MULT=4 LAB_NDCTL_GUEST_TIMEOUT=10800"
	v=$(ndctl_src_version "$src")
	[[ $v =~ ^[0-9]+ ]] ||
		die "cannot read ndctl's version from $src/meson.build (got '$v')" \
			"point NDCTL_SRC at an ndctl release checkout (v$NDCTL_MIN_VERSION or later)"
	NDCTL_VERSION=$v
	if (( ${v%%.*} >= NDCTL_MIN_VERSION )); then
		return 0
	fi
	[[ ${LAB_NDCTL_ALLOW_OLD:-0} == 1 ]] ||
		die "NDCTL_SRC=$src is ndctl v$v; the lab needs v$NDCTL_MIN_VERSION or later (v83 fixed dax.sh's trace-cmd parsing)" \
			"check out v$NDCTL_MIN_VERSION or later there (git -C $src checkout v85), or set LAB_NDCTL_ALLOW_OLD=1 to run it anyway"
	NDCTL_OLD=1
	warn "************************************************************************"
	warn "ndctl v$v is older than v$NDCTL_MIN_VERSION: running it because LAB_NDCTL_ALLOW_OLD=1."
	warn "Its dax.sh reads trace-cmd's output by column (fixed in v83): dax-ext4.sh"
	warn "and dax-xfs.sh may fail for that alone. The results record the version."
	warn "************************************************************************"
}

# ndctl_nfit_modes: the nfit_test modes of LAB_NDCTL_NFIT, one per line, in
# the order they run (default first); dies on a word that is not a mode, a
# mode named twice, or none.
ndctl_nfit_modes() {
	local m d=0 r=0
	for m in ${LAB_NDCTL_NFIT-default real}; do
		case $m in
		default) d=$((d + 1)) ;;
		real) r=$((r + 1)) ;;
		*) d=9 ;;
		esac
	done
	((d + r > 0 && d < 2 && r < 2)) ||
		die "LAB_NDCTL_NFIT='${LAB_NDCTL_NFIT-}' is not a list of nfit_test modes (default, real), each at most once" \
			"unset it for both modes, or set LAB_NDCTL_NFIT=default or LAB_NDCTL_NFIT=real"
	((d == 0)) || echo default
	((r == 0)) || echo real
}

# ndctl_nfit_real_capable MODDIR: whether the nfit_test module under MODDIR
# (a staged lib/modules) has the real-memmap mode (a reserved_base
# parameter). Prints the module's path, or why not; returns 1 when it has
# no such mode, 2 when there is no module or modinfo cannot read it (a
# broken staging, not a kernel without the mode).
ndctl_nfit_real_capable() {
	local ko parms
	ko=$(find "$1" -name 'nfit_test.ko*' -print -quit 2>/dev/null)
	if [[ -z $ko ]]; then
		echo "no nfit_test module under $1"
		return 2
	fi
	if ! parms=$(modinfo -F parm "$ko" 2>&1); then
		echo "modinfo cannot read $ko: $parms"
		return 2
	fi
	if ! grep -q '^reserved_base:' <<<"$parms"; then
		echo "this kernel's nfit_test has no real-memmap mode (no reserved_base parameter; the series' tools/testing/nvdimm patch adds it)"
		return 1
	fi
	echo "$ko"
}

# ndctl_patches: our patches to ndctl that this run applies, one path per
# line in name order: lab/ndctl-patches/*.patch, none with
# LAB_NDCTL_PATCHES=0.
ndctl_patches() {
	[[ ${LAB_NDCTL_PATCHES:-1} == 1 ]] || return 0
	find "$LAB_DIR/ndctl-patches" -maxdepth 1 -name '*.patch' 2>/dev/null | LC_ALL=C sort
}

# ndctl_key: the cache key of the ndctl build: NDCTL_SRC's (src_key), and
# with patches a hash of them.
ndctl_key() {
	local key p
	key=$(src_key "$NDCTL_SRC")
	p=$(ndctl_patches)
	[[ -z $p ]] || key+=-p$(xargs -d '\n' cat <<<"$p" | sha256sum | cut -c1-8)
	echo "$key"
}

# ndctl_apply_patches SRC: apply ndctl_patches to the copy SRC; die with
# the patch's name when one does not apply.
ndctl_apply_patches() {
	local p
	while IFS= read -r p; do
		[[ -n $p ]] || continue
		patch -d "$1" -p1 --batch --forward --fuzz=0 --quiet <"$p" ||
			die "our ndctl patch ${p##*/} does not apply to NDCTL_SRC=$NDCTL_SRC (v$NDCTL_VERSION), exactly (or it is in there already)" \
				"use the ndctl release the patch was written for (see its diff), or LAB_NDCTL_PATCHES=0 to run ndctl as it is"
		log "ndctl: applied ${p##*/}"
	done < <(ndctl_patches)
}

# src_git DIR ARGS...: git in the checkout DIR, also when it belongs to
# another user (git would refuse it as "dubious ownership").
src_git() { git -c safe.directory="$1" -C "$1" "${@:2}"; }

# src_key DIR: the cache key of an external suite's source DIR: the short
# HEAD, plus a hash of the uncommitted changes (tracked and untracked) when
# there are any; a content hash when DIR is not a git checkout.
src_key() {
	local dir=$1 head
	if head=$(src_git "$dir" rev-parse --short=12 HEAD 2>/dev/null); then
		if [[ -z $(src_git "$dir" status --porcelain 2>/dev/null) ]]; then
			echo "$head"
		else
			echo "$head-dirty-$( { src_git "$dir" diff HEAD --binary
				src_git "$dir" ls-files -z -o --exclude-standard |
					(cd "$dir" && xargs -0r sha256sum); } | sha256sum | cut -c1-8)"
		fi
	else
		echo "tree-$(cd "$dir" && find . -path ./.git -prune -o -type f -print0 |
			LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum | cut -c1-12)"
	fi
}

# src_snapshot DIR DEST: copy the source DIR's files (a git checkout: the
# tracked and untracked files git does not ignore) to DEST.
src_snapshot() {
	local dir=$1 dest=$2
	mkdir -p "$dest"
	if src_git "$dir" rev-parse -q --verify HEAD >/dev/null 2>&1; then
		# (--ignore-failed-read: a tracked file deleted in the checkout.)
		src_git "$dir" ls-files -z -c -o --exclude-standard |
			(cd "$dir" && tar --null --ignore-failed-read --warning=no-failed-read -T - -cf -) | tar -xf - -C "$dest"
	else
		cp -a "$dir/." "$dest/"
	fi
}

# accel_default ACCEL KNOB KVM_DEFAULT TCG_DEFAULT: KNOB if set, else the
# default for ACCEL (kvm or tcg): for guest timeouts and the like.
accel_default() {
	if [[ -n $2 ]]; then
		echo "$2"
	elif [[ $1 == kvm ]]; then
		echo "$3"
	else
		echo "$4"
	fi
}

# external_boot PASS OUT SCRIPT BINDIR NVDIMM_SIZE TIMEOUT [DIR...]: boot
# the kernel under test (KDIR) with this run's staged PASS modules ("test"
# or "prod") and accel, and run the guest script SCRIPT (lab/guest/) with
# BINDIR, two NVDIMMs of NVDIMM_SIZE and a guest timeout of TIMEOUT seconds;
# BINDIR and each DIR are shared with the guest at their own paths; results
# in OUT (boot_suite, lab/lib/guest.sh). Returns boot_suite's status.
external_boot() {
	local pass=$1 out=$2 bindir=$4 mods accel
	# These shadow the globals that boot_suite reads, for this boot only.
	# shellcheck disable=SC2034
	local GUEST_SCRIPT=$LAB_DIR/guest/$3 LAB_NVDIMM_SIZE=$5 LAB_GUEST_TIMEOUT=$6
	shift 6
	mods=$STAGE_DIR/$pass/lib/modules
	accel=$(<"$RUN_DIR/accel")
	boot_suite "$pass" "$out" "$mods" "$bindir" "$accel" "$@"
}

# external_build_lock NAME DIR DESC: take NAME's build lock,
# $CACHE/NAME/.lock (one build at a time: another lab run may be at it; not
# the kernel's build.lock), on fd EXTERNAL_LOCKFD. If DIR was built before
# (DIR/built), release it, say so and return 0; else return 1 with the
# lock held for the caller's build (released when it is done, or when its
# subshell ends).
external_build_lock() {
	local name=$1 dir=$2 desc=$3
	mkdir -p "$CACHE/$name"
	exec {EXTERNAL_LOCKFD}>"$CACHE/$name/.lock"
	flock "$EXTERNAL_LOCKFD"
	[[ -f $dir/built ]] || return 1
	exec {EXTERNAL_LOCKFD}>&-
	log "$desc: using the build in $dir"
}

# ndctl_build DIR: install the ndctl packages if needed (lab/lib/deps.sh,
# group ndctl), then build ndctl and its tests in DIR ($CACHE/ndctl/KEY),
# unless that source was built there before. Dies on failure: the caller
# runs it in a subshell.
ndctl_build() {
	local dir=$1 key logf=$1/build.log
	local -a opts=(-Dtest=enabled -Ddestructive=enabled -Ddocs=disabled)
	key=${dir##*/}
	deps_ensure ndctl
	if external_build_lock ndctl "$dir" "ndctl v$NDCTL_VERSION ($key)"; then
		return 0
	fi
	log "ndctl v$NDCTL_VERSION ($key): building in $dir (log: $logf)"
	rm -rf "$dir"
	src_snapshot "$NDCTL_SRC" "$dir/src"
	ndctl_apply_patches "$dir/src"
	# Debian 12 ships no systemd-dev (systemd.pc); ndctl wants it only to
	# install its units, which the lab never installs.
	if grep -qs "option('systemd'" "$dir/src/meson_options.txt" "$dir/src/meson.options"; then
		opts+=(-Dsystemd=disabled)
	fi
	printf 'source: %s (%s)\nmeson setup %s\n' "$NDCTL_SRC" "$key" "${opts[*]}" >"$logf"
	meson setup "${opts[@]}" "$dir/build" "$dir/src" >>"$logf" 2>&1 ||
		die "meson setup of ndctl failed (log: $logf)" \
			"install what the log names as missing (lab/lib/deps.sh, DEPS_NDCTL_BUILD), or fix NDCTL_SRC"
	meson compile -C "$dir/build" >>"$logf" 2>&1 ||
		die "building ndctl failed (log: $logf)" "fix the build of NDCTL_SRC=$NDCTL_SRC (try meson compile there)"
	printf '%s\n' "$NDCTL_SRC $key v$NDCTL_VERSION" >"$dir/built"
	exec {EXTERNAL_LOCKFD}>&-
	ok "ndctl built: $dir/build"
}

# ndctl_build_contained DIR: ndctl_build in a subshell, so that a failed
# build (die) ends only the ndctl suite, after the lab's own passes ran.
ndctl_build_contained() { (ndctl_build "$1"); }

# ndctl_tests BUILD: "name<TAB>suite<TAB>program" for every test of the
# suites ndctl and dax, in meson's order (from meson's own list; the program
# is what lab/guest/ndctl.sh's wrapper sees as the last argument).
ndctl_tests() {
	meson introspect "$1" --tests | jq -r '.[] | (.suite[] | sub("^ndctl:"; "")) as $s
		| select($s == "ndctl" or $s == "dax")
		| [.name, $s, (.cmd[-1] | split("/") | last)] | @tsv'
}

# ndctl_suite: build ndctl, then per nfit_test mode of LAB_NDCTL_NFIT boot
# the kernel under test (KDIR) with this run's staged test modules and accel
# (as cmd_run left them) and run ndctl's suites (ndctl_suite_mode). Returns
# 0 when every guest ran the suites to their end (whatever the verdicts), or
# a mode was not run because this kernel's nfit_test lacks it; 1 when a
# guest did not finish or ndctl did not build: the lab's own results are
# kept either way.
ndctl_suite() {
	local mode rc=0 out why crc
	local -a modes
	ndctl_check_src
	mapfile -t modes < <(ndctl_nfit_modes)
	rm -rf "$RUN_DIR/ndctl" "$RUN_DIR/ndctl-real"
	NDCTL_BUILD_DIR=$CACHE/ndctl/$(ndctl_key)/build
	if ! stage ndctl-build ndctl_build_contained "${NDCTL_BUILD_DIR%/build}"; then
		for mode in "${modes[@]}"; do
			out=$(ndctl_out_dir "$mode")
			mkdir -p "$out"
			echo "ndctl suite$(ndctl_mode_words "$mode"): not run: building ndctl v$NDCTL_VERSION failed (log: ${NDCTL_BUILD_DIR%/build}/build.log)" |
				tee "$out/summary.txt" >&2
		done
		return 1
	fi
	if ((${LAB_NDCTL_REPEAT:-1} > 1)) && [[ -z ${LAB_NDCTL_TESTS:-} ]]; then
		warn "LAB_NDCTL_REPEAT=$LAB_NDCTL_REPEAT without LAB_NDCTL_TESTS: every round runs both suites, within one guest timeout"
	fi
	for mode in "${modes[@]}"; do
		if [[ $mode == real ]]; then
			crc=0
			why=$(ndctl_nfit_real_capable "$STAGE_DIR/test/lib/modules") || crc=$?
			if ((crc != 0)); then
				out=$(ndctl_out_dir real)
				mkdir -p "$out"
				echo "ndctl suite$(ndctl_mode_words real): not run: $why" | tee "$out/summary.txt" >&2
				((crc == 1)) || rc=1
				continue
			fi
		fi
		ndctl_suite_mode "$mode" || rc=1
	done
	return "$rc"
}

# ndctl_out_dir MODE: the results directory of nfit_test mode MODE.
ndctl_out_dir() {
	if [[ $1 == real ]]; then
		echo "$RUN_DIR/ndctl-real"
	else
		echo "$RUN_DIR/ndctl"
	fi
}

# ndctl_mode_words MODE: the words the summary adds to "ndctl suite".
ndctl_mode_words() {
	if [[ $1 == real ]]; then
		echo " (nfit_test in real-memmap mode)"
	else
		echo " (nfit_test in its default mode)"
	fi
}

# ndctl_suite_mode MODE: one guest boot that runs ndctl's suites with
# nfit_test in MODE (default or real); results in ndctl_out_dir MODE.
# Returns 0 when the guest ran the suites to their end, else 1.
ndctl_suite_mode() {
	local mode=$1 accel out rc=0 mult tmo n p sel names t
	accel=$(<"$RUN_DIR/accel")
	out=$(ndctl_out_dir "$mode")
	rm -rf "$out"
	mkdir -p "$out/test"
	ndctl_tests "$NDCTL_BUILD_DIR" >"$out/all-tests.tsv" || true
	if [[ -n ${LAB_NDCTL_TESTS:-} ]]; then
		awk -F'\t' -v l=" $LAB_NDCTL_TESTS " 'index(l, " " $1 " ")' "$out/all-tests.tsv" >"$out/test/selected.tsv"
	else
		cp "$out/all-tests.tsv" "$out/test/selected.tsv"
	fi
	# The lab's skips: out of the guest's list, into skipped.tsv (name,
	# suite, reason), which ndctl_collect adds to the results.
	sel=" $(cut -f1 "$out/test/selected.tsv" | xargs) "
	: >"$out/test/skipped.tsv"
	for t in ${LAB_NDCTL_SKIP-$NDCTL_SKIP_DEFAULT}; do
		[[ $sel == *" $t "* ]] || continue
		if [[ " ${LAB_NDCTL_TESTS:-} " == *" $t "* ]]; then
			warn "running $t although the lab skips it by default: LAB_NDCTL_TESTS names it (${NDCTL_SKIP_WHY[$t]:-})"
			continue
		fi
		printf '%s\t%s\t%s\n' "$t" "$(awk -F'\t' -v n="$t" '$1 == n {print $2; exit}' "$out/test/selected.tsv")" \
			"skipped by the lab (LAB_NDCTL_SKIP): ${NDCTL_SKIP_WHY[$t]:-named in LAB_NDCTL_SKIP}" >>"$out/test/skipped.tsv"
	done
	awk -F'\t' -v s=" $(cut -f1 "$out/test/skipped.tsv" | xargs) " '!index(s, " " $1 " ")' "$out/test/selected.tsv" \
		>"$out/test/tests.tsv"
	# The guest runs the suites by name when it is not all of them.
	names=""
	cmp -s "$out/test/tests.tsv" "$out/all-tests.tsv" || names=$(cut -f1 "$out/test/tests.tsv" | xargs)
	if [[ ! -s $out/test/tests.tsv ]]; then
		echo "ndctl suite$(ndctl_mode_words "$mode"): not run: meson lists no tests${LAB_NDCTL_TESTS:+ named $LAB_NDCTL_TESTS} in the ndctl and dax suites (meson introspect $NDCTL_BUILD_DIR --tests)" |
			tee "$out/summary.txt" >&2
		return 1
	fi
	n=$(wc -l <"$out/test/tests.tsv")
	mult=$(accel_default "$accel" "${LAB_NDCTL_TIMEOUT_MULT:-}" 1 4)
	tmo=$(accel_default "$accel" "${LAB_NDCTL_GUEST_TIMEOUT:-}" 3600 10800)
	{
		echo "timeout_multiplier=$mult"
		# meson inside the guest stops 10 minutes before the host kills
		# the guest, so that a test stuck in the kernel leaves a report.
		echo "deadline=$((tmo - 600))"
		echo "tests=$names"
		echo "nfit_mode=$mode"
		echo "repeat=${LAB_NDCTL_REPEAT:-1}"
	} >"$out/test/params"
	{
		echo "ndctl v$NDCTL_VERSION, source $NDCTL_SRC ($(basename "$(dirname "$NDCTL_BUILD_DIR")"))"
		[[ $NDCTL_OLD == 0 ]] ||
			echo "OLD: below v$NDCTL_MIN_VERSION, run because LAB_NDCTL_ALLOW_OLD=1 (before v83, dax.sh reads trace-cmd's output by column)"
		echo "build: $NDCTL_BUILD_DIR"
		p=$(ndctl_patches | xargs -rn1 basename | xargs)
		echo "our patches: ${p:-none${LAB_NDCTL_PATCHES:+ (LAB_NDCTL_PATCHES=$LAB_NDCTL_PATCHES)}}"
		echo "tests: $n (suites ndctl, dax${LAB_NDCTL_TESTS:+; LAB_NDCTL_TESTS=$LAB_NDCTL_TESTS}; skipped by the lab: $(cut -f1 "$out/test/skipped.tsv" | xargs))$( ((${LAB_NDCTL_REPEAT:-1} == 1)) || echo ", each run ${LAB_NDCTL_REPEAT} times")"
		if [[ $mode == real ]]; then
			echo "nfit_test: real-memmap mode (memmap=$LAB_NFIT_RESERVE)"
		else
			echo "nfit_test: default mode (vmalloc() memory)"
		fi
		echo "guest: $accel, meson --timeout-multiplier $mult, guest timeout ${tmo}s, 2x ${LAB_NDCTL_NVDIMM_SIZE:-6G} NVDIMM, memmap=$LAB_MEMMAP"
	} >"$out/version"
	log "ndctl suite$(ndctl_mode_words "$mode"): $n tests on the test modules ($accel; up to ${tmo}s; results: $out)"
	# meson's test commands name the source copy beside the build.
	stage "guest-ndctl$([[ $mode == default ]] || echo "-$mode")" external_boot test "$out" ndctl.sh "$NDCTL_BUILD_DIR" \
		"${LAB_NDCTL_NVDIMM_SIZE:-6G}" "$tmo" "${NDCTL_BUILD_DIR%/build}/src" || rc=$?
	ndctl_collect "$out" "$rc" "$mode"
	((rc == 0)) || return 1
}

# ndctl_collect OUT GUEST_RC [MODE]: complete the results of a guest that
# did not finish (every test without a result is "not run"), attribute the
# kernel log's splats and nfit_test's loads to the tests (by the wrapper's
# markers), write OUT/results.tsv (name, pass, status, seconds, kernel log,
# reason), OUT/splats.txt, OUT/nfit-loads.tsv and OUT/summary.txt. MODE is
# nfit_test's (default or real; default when not given).
ndctl_collect() {
	local out=$1 grc=$2 mode=${3:-default} klog tap=$1/test/suite.tap name suite n why hits rounds got
	touch "$tap" "$out/test/results.tsv"
	rounds=$(sed -n 's/^repeat=//p' "$out/test/params" 2>/dev/null | tail -n1)
	rounds=${rounds:-1}
	# The lab's skips (ndctl_suite_mode), once each.
	while IFS=$'\t' read -r name suite why; do
		[[ -n $name ]] || continue
		n=$(grep -c . "$tap" || true)
		echo "ok $((n + 1)) - $suite/$name # SKIP $why" >>"$tap"
		printf '%s\tskip\t-\t-\t%s\n' "$suite/$name" "$why" >>"$out/test/results.tsv"
	done < <(cat "$out/test/skipped.tsv" 2>/dev/null)
	if [[ $grc -ne 0 ]]; then
		why="the guest did not finish (hang, panic or timeout; see ${out##*/}/test-console.log)"
		n=$(grep -c . "$tap" || true)
		while IFS=$'\t' read -r name suite _; do
			got=$(awk -F'\t' -v t="$suite/$name" '$1 == t' "$out/test/results.tsv" | wc -l)
			((got < rounds)) || continue
			n=$((n + 1))
			if ((rounds == 1)); then
				echo "not ok $n - $suite/$name # not run: $why" >>"$tap"
				printf '%s\tfail\t-\t-\tnot run: %s\n' "$suite/$name" "$why" >>"$out/test/results.tsv"
			else
				echo "not ok $n - $suite/$name # not run in $((rounds - got)) of $rounds rounds: $why" >>"$tap"
				printf '%s\tfail\t-\t-\tnot run in %s of %s rounds: %s\n' "$suite/$name" \
					"$((rounds - got))" "$rounds" "$why" >>"$out/test/results.tsv"
			fi
		done <"$out/test/tests.tsv"
		echo "not ok $((n + 1)) - guest-completed # $why" >>"$tap"
		printf 'guest-completed\tfail\t-\t-\t%s\n' "$why" >>"$out/test/results.tsv"
	fi
	# The kernel log: the guest's dmesg, or the console when the guest
	# never saved it. A line between "begin P" and "end P" belongs to the
	# test whose program is P (P#K: its run in round K).
	klog=$out/test/dmesg.txt
	[[ -s $klog ]] || klog=$out/test-console.log
	awk -v re="$SPLAT_RE" '
		/daxpage-ndctl: begin / { cur = $NF; next }
		/daxpage-ndctl: end / { cur = ""; next }
		$0 ~ re { print (cur == "" ? "(between tests)" : cur) "\t" $0 }
	' "$klog" 2>/dev/null >"$out/splats.txt" || true
	# Also the console of the whole boot, for what dmesg.txt may miss.
	if [[ $klog != "$out/test-console.log" ]] && ! hits=$(scan_splats "$out/test-console.log"); then
		grep -q . "$out/splats.txt" || awk '{print "(console)\t" $0}' <<<"$hits" >>"$out/splats.txt"
	fi
	# nfit_test's loads per test (the program between the markers): in
	# real-memmap mode (its init message), and loads that ignored the
	# mode's options (a kernel without it logs "unknown parameter").
	awk -v OFS='\t' '
		/daxpage-ndctl: begin / { cur = $NF; sub(/#[0-9]+$/, "", cur); next }
		/daxpage-ndctl: end / { cur = ""; next }
		/nfit_test: real-memmap mode/ { k = cur == "" ? "(between tests)" : cur; real[k]++; seen[k] = 1 }
		/nfit_test: unknown parameter .reserved_base. ignored/ { k = cur == "" ? "(between tests)" : cur; ign[k]++; seen[k] = 1 }
		END { for (k in seen) print k, real[k] + 0, ign[k] + 0 }
	' "$klog" 2>/dev/null | sort >"$out/nfit-loads.tsv" || true
	# A result row's program, with rounds the program of its round (its
	# K-th row that is not a "not run" line), has a splat or not.
	awk -F'\t' -v OFS='\t' -v rounds="$rounds" '
		FNR == NR { prog[$2 "/" $1] = $3; next }
		FILENAME ~ /splats.txt$/ { hit[$1] = 1; next }
		{ p = ($1 in prog) ? prog[$1] : "-"
		  if (rounds > 1 && p != "-" && $5 !~ /^not run/) p = p "#" (++k[$1])
		  print $1, "test", $2, $3, (p in hit) ? "splat" : "-", $5 }
	' <(awk -F'\t' -v OFS='\t' '{print $1, $2, $3}' "$out/test/tests.tsv") \
		"$out/splats.txt" "$out/test/results.tsv" >"$out/results.tsv"
	ndctl_summary_lines "$out" "$mode" >"$out/summary.txt"
	sed 's/^/[lab]   /' "$out/summary.txt"
}

# ndctl_summary_lines OUT [MODE]: the lines for the run's summary (MODE:
# nfit_test's, default or real; default when not given).
ndctl_summary_lines() {
	local out=$1 mode=${2:-default} nok nfail nnotrun nskip ntmo nsplat f d=${1##*/} nreal nign ntests rounds what=tests
	local -a tests
	rounds=$(sed -n 's/^repeat=//p' "$out/test/params" 2>/dev/null | tail -n1)
	[[ ${rounds:-1} == 1 ]] || what="test runs, $rounds rounds"
	# Counts of ndctl's tests only: the setup steps and guest-completed
	# show up in the "failed:" lines below.
	nok=$(awk -F'\t' '$1 ~ /^(ndctl|dax)\// && $3 == "ok"' "$out/results.tsv" | wc -l)
	nfail=$(awk -F'\t' '$1 ~ /^(ndctl|dax)\// && $3 == "fail" && $6 !~ /^not run/' "$out/results.tsv" | wc -l)
	nnotrun=$(awk -F'\t' '$1 ~ /^(ndctl|dax)\// && $3 == "fail" && $6 ~ /^not run/' "$out/results.tsv" | wc -l)
	nskip=$(awk -F'\t' '$3 == "skip"' "$out/results.tsv" | wc -l)
	ntmo=$(awk -F'\t' '$4 == "TIMEOUT"' "$out/test/results.tsv" | wc -l)
	nsplat=$(awk -F'\t' '$5 == "splat" {t[$1] = 1} END {print length(t)}' "$out/results.tsv")
	echo "ndctl suite$(ndctl_mode_words "$mode"): $(head -n1 "$out/version")"
	grep '^OLD:' "$out/version" | sed 's/^/  /' || true
	echo "  $what (pass test): $nok ok, $nfail failed ($ntmo timed out), $nskip skipped$( ((nnotrun == 0)) || echo ", $nnotrun not run (failures too, below)"); results: $d/results.tsv, $d/test/suite.tap"
	read -r ntests nreal nign < <(awk -F'\t' '$1 !~ /^\(/ && $2 > 0 {t++} {r += $2; i += $3}
		END {print t + 0, r + 0, i + 0}' "$out/nfit-loads.tsv" 2>/dev/null || echo 0 0 0)
	if [[ $mode == real ]]; then
		echo "  nfit_test loaded in real-memmap mode $nreal times, by $ntests tests ($d/nfit-loads.tsv); loads that ignored the options: $nign"
	elif ((nreal > 0)); then
		echo "  NOTE: nfit_test loaded in real-memmap mode $nreal times in its default mode's guest (options from a modprobe.d file outside the lab?); $d/nfit-loads.tsv"
	fi
	# Rounds: the runs of each test (not the rounds it missed: those are a
	# line of their own, "not run in K of N rounds"), then the failures.
	[[ ${rounds:-1} == 1 ]] || awk -F'\t' '$1 ~ /^(ndctl|dax)\// && $6 !~ /^not run/ { n[$1]++; c[$1, $3]++ }
		END { for (t in n)
			printf "  %s: %d runs: %d ok, %d failed, %d skipped\n", t, n[t], c[t, "ok"], c[t, "fail"], c[t, "skip"] }' \
		"$out/results.tsv" | sort
	awk -F'\t' '$3 == "fail" {printf "  failed: %s  (%s)\n", $1, $6}' "$out/results.tsv"
	[[ $nfail -eq 0 ]] || echo "  (log/ is $d/test/log/; a failed test can leave state that fails the next ones)"
	if grep -q . "$out/splats.txt"; then
		echo "  kernel log splats: $(grep -c . "$out/splats.txt") lines, $nsplat tests; $d/splats.txt"
	else
		echo "  kernel log splats: none"
	fi
	# check_dmesg (test/common) greps "journalctl -k" for "Call Trace";
	# the virtme-ng guest runs no journald, so journalctl finds no journal,
	# prints nothing, and check_dmesg passes whatever the kernel logged.
	# The lab's per-test scan above stands in for it.
	tests=()
	for f in "$(dirname "$NDCTL_BUILD_DIR")"/src/test/*.sh; do
		grep -q '^[[:space:]]*check_dmesg ' "$f" 2>/dev/null || continue
		awk -F'\t' -v p="${f##*/}" '$3 == p {f = 1} END {exit !f}' "$out/test/tests.tsv" &&
			tests+=("${f##*/}")
	done
	[[ ${#tests[@]} -eq 0 ]] ||
		echo "  no journald in the guest: check_dmesg is blind in ${tests[*]} (the splat scan covers them)"
}

# external_summary_one DIR NAME SRCVAR HINT: the summary lines of the
# external suite whose results are in DIR (its summary.txt), or why there
# are none: SRCVAR (the variable that turns it on) is not set, with HINT,
# or the suite did not complete.
external_summary_one() {
	if [[ -f $1/summary.txt ]]; then
		cat "$1/summary.txt"
	elif [[ -z ${!3:-} ]]; then
		echo "$2: not run ($4)"
	else
		echo "$2: did not complete (see the log above)"
	fi
}

# external_summary RUN_DIR: the external suites' lines for summary.txt.
external_summary() {
	local mode
	if [[ -z ${NDCTL_SRC:-} ]]; then
		external_summary_one "$1/ndctl" "ndctl suite" NDCTL_SRC \
			"set NDCTL_SRC to an ndctl >= v$NDCTL_MIN_VERSION checkout"
	else
		for mode in $(ndctl_nfit_modes); do
			external_summary_one "$(RUN_DIR=$1 ndctl_out_dir "$mode")" \
				"ndctl suite$(ndctl_mode_words "$mode")" NDCTL_SRC ""
		done
	fi
	external_summary_one "$1/xfstests" xfstests XFSTESTS_SRC \
		"set XFSTESTS_SRC to an xfstests checkout"
}
