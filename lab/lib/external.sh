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
# ndctl is built on the HOST, not in the guest: the guest is the host's own
# root file system (virtme-ng), so binaries built here run there unchanged,
# and building under TCG would take many times longer. The build lives in the
# lab cache, $CACHE/ndctl/KEY/{src,build}; KEY is the short hash of the
# checkout's HEAD (plus a hash of its uncommitted changes, if any), so ndctl
# is rebuilt only when its source changes. The source is copied there too:
# meson's test commands name the source directory, and the guest must run
# the very scripts that were built, whatever happens to the checkout
# meanwhile. Nothing of ndctl ever lands in the daxpage repository.
#
# Knobs: LAB_NDCTL_ALLOW_OLD=1 runs an ndctl older than v83 (loudly);
# LAB_NDCTL_TESTS="NAME..." runs only those tests (meson test names);
# LAB_NDCTL_TIMEOUT_MULT (meson --timeout-multiplier; tests have 600 s each;
# default 1 with KVM, 4 with TCG); LAB_NDCTL_GUEST_TIMEOUT (seconds for the
# whole guest; default 3600 with KVM, 10800 with TCG, where the 36 tests of
# the two suites took 31-37 minutes on 2 busy cores); LAB_NDCTL_NVDIMM_SIZE
# (default 6G: daxctl-devices.sh needs a 4 GiB namespace on one NVDIMM).

NDCTL_MIN_VERSION=83
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

# ndctl_suite: build ndctl, boot the kernel under test (KDIR) with this
# run's staged test modules and accel (as cmd_run left them) and run ndctl's
# suites; results in RUN_DIR/ndctl/. Returns 0 when the guest ran the suites
# to their end (whatever the verdicts), 1 when it did not or ndctl did not
# build: the lab's own results are kept either way.
ndctl_suite() {
	local accel out=$RUN_DIR/ndctl rc=0 mult tmo n
	accel=$(<"$RUN_DIR/accel")
	ndctl_check_src
	rm -rf "$out"
	mkdir -p "$out/test"
	NDCTL_BUILD_DIR=$CACHE/ndctl/$(src_key "$NDCTL_SRC")/build
	if ! stage ndctl-build ndctl_build_contained "${NDCTL_BUILD_DIR%/build}"; then
		echo "ndctl suite: not run: building ndctl v$NDCTL_VERSION failed (log: ${NDCTL_BUILD_DIR%/build}/build.log)" |
			tee "$out/summary.txt" >&2
		return 1
	fi
	ndctl_tests "$NDCTL_BUILD_DIR" >"$out/all-tests.tsv" || true
	if [[ -n ${LAB_NDCTL_TESTS:-} ]]; then
		awk -F'\t' -v l=" $LAB_NDCTL_TESTS " 'index(l, " " $1 " ")' "$out/all-tests.tsv" >"$out/test/tests.tsv"
	else
		cp "$out/all-tests.tsv" "$out/test/tests.tsv"
	fi
	if [[ ! -s $out/test/tests.tsv ]]; then
		echo "ndctl suite: not run: meson lists no tests${LAB_NDCTL_TESTS:+ named $LAB_NDCTL_TESTS} in the ndctl and dax suites (meson introspect $NDCTL_BUILD_DIR --tests)" |
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
		echo "tests=${LAB_NDCTL_TESTS:-}"
	} >"$out/test/params"
	{
		echo "ndctl v$NDCTL_VERSION, source $NDCTL_SRC ($(basename "$(dirname "$NDCTL_BUILD_DIR")"))"
		[[ $NDCTL_OLD == 0 ]] ||
			echo "OLD: below v$NDCTL_MIN_VERSION, run because LAB_NDCTL_ALLOW_OLD=1 (before v83, dax.sh reads trace-cmd's output by column)"
		echo "build: $NDCTL_BUILD_DIR"
		echo "tests: $n (suites ndctl, dax${LAB_NDCTL_TESTS:+; LAB_NDCTL_TESTS=$LAB_NDCTL_TESTS})"
		echo "guest: $accel, meson --timeout-multiplier $mult, guest timeout ${tmo}s, 2x ${LAB_NDCTL_NVDIMM_SIZE:-6G} NVDIMM, memmap=$LAB_MEMMAP"
	} >"$out/version"
	log "ndctl suite: $n tests on the test modules ($accel; up to ${tmo}s; results: $out)"
	# meson's test commands name the source copy beside the build.
	stage guest-ndctl external_boot test "$out" ndctl.sh "$NDCTL_BUILD_DIR" \
		"${LAB_NDCTL_NVDIMM_SIZE:-6G}" "$tmo" "${NDCTL_BUILD_DIR%/build}/src" || rc=$?
	ndctl_collect "$out" "$rc"
	return "$rc"
}

# ndctl_collect OUT GUEST_RC: complete the results of a guest that did not
# finish (every test without a result is "not run"), attribute the kernel
# log's splats to the tests (by the wrapper's markers), write OUT/results.tsv
# (name, pass, status, seconds, kernel log, reason), OUT/splats.txt and
# OUT/summary.txt.
ndctl_collect() {
	local out=$1 grc=$2 klog tap=$1/test/suite.tap name suite n why hits
	touch "$tap" "$out/test/results.tsv"
	if [[ $grc -ne 0 ]]; then
		why="the guest did not finish (hang, panic or timeout; see ndctl/test-console.log)"
		n=$(grep -c . "$tap" || true)
		while IFS=$'\t' read -r name suite _; do
			grep -qE "^(not )?ok [0-9]+ - $suite/$name( |$)" "$tap" && continue
			n=$((n + 1))
			echo "not ok $n - $suite/$name # not run: $why" >>"$tap"
			printf '%s\tfail\t-\t-\tnot run: %s\n' "$suite/$name" "$why" >>"$out/test/results.tsv"
		done <"$out/test/tests.tsv"
		echo "not ok $((n + 1)) - guest-completed # $why" >>"$tap"
		printf 'guest-completed\tfail\t-\t-\t%s\n' "$why" >>"$out/test/results.tsv"
	fi
	# The kernel log: the guest's dmesg, or the console when the guest
	# never saved it. A line between "begin P" and "end P" belongs to the
	# test whose program is P.
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
	awk -F'\t' -v OFS='\t' '
		FNR == NR { prog[$2 "/" $1] = $3; next }
		FILENAME ~ /splats.txt$/ { hit[$1] = 1; next }
		{ p = ($1 in prog) ? prog[$1] : "-"
		  print $1, "test", $2, $3, (p in hit) ? "splat" : "-", $5 }
	' <(awk -F'\t' -v OFS='\t' '{print $1, $2, $3}' "$out/test/tests.tsv") \
		"$out/splats.txt" "$out/test/results.tsv" >"$out/results.tsv"
	ndctl_summary_lines "$out" >"$out/summary.txt"
	sed 's/^/[lab]   /' "$out/summary.txt"
}

# ndctl_summary_lines OUT: the lines for the run's summary.
ndctl_summary_lines() {
	local out=$1 nok nfail nskip ntmo nsplat f
	local -a tests
	# Counts of ndctl's tests only: the setup steps and guest-completed
	# show up in the "failed:" lines below.
	nok=$(awk -F'\t' '$1 ~ /^(ndctl|dax)\// && $3 == "ok"' "$out/results.tsv" | wc -l)
	nfail=$(awk -F'\t' '$1 ~ /^(ndctl|dax)\// && $3 == "fail"' "$out/results.tsv" | wc -l)
	nskip=$(awk -F'\t' '$3 == "skip"' "$out/results.tsv" | wc -l)
	ntmo=$(awk -F'\t' '$4 == "TIMEOUT"' "$out/test/results.tsv" | wc -l)
	nsplat=$(awk -F'\t' '$5 == "splat"' "$out/results.tsv" | wc -l)
	echo "ndctl suite: $(head -n1 "$out/version")"
	grep '^OLD:' "$out/version" | sed 's/^/  /' || true
	echo "  tests (pass test): $nok ok, $nfail failed ($ntmo timed out), $nskip skipped; results: ndctl/results.tsv, ndctl/test/suite.tap"
	awk -F'\t' '$3 == "fail" {printf "  failed: %s  (%s)\n", $1, $6}' "$out/results.tsv"
	[[ $nfail -eq 0 ]] || echo "  (log/ is ndctl/test/log/; a failed test can leave state that fails the next ones)"
	if grep -q . "$out/splats.txt"; then
		echo "  kernel log splats: $(grep -c . "$out/splats.txt") lines, $nsplat tests; ndctl/splats.txt"
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
	external_summary_one "$1/ndctl" "ndctl suite" NDCTL_SRC \
		"set NDCTL_SRC to an ndctl >= v$NDCTL_MIN_VERSION checkout"
	external_summary_one "$1/xfstests" xfstests XFSTESTS_SRC \
		"set XFSTESTS_SRC to an xfstests checkout"
}
