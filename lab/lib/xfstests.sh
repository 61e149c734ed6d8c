# shellcheck shell=bash
# xfstests (fstests) on the kernel under test: XFSTESTS_SRC=DIR, an xfstests
# checkout. Modelled on the ndctl runner (lab/lib/external.sh): its own guest
# boot after the lab's passes, a host build in the lab cache, results in
# RUN_DIR/xfstests/, lines in the summary, and no effect on the run's exit
# status (bad input stops the run before the kernel build instead).
#
# The guest boots with the PRODUCTION modules (the run's prod staging), makes
# one fsdax namespace (map=dev) on each QEMU NVDIMM, and runs
# "./check -g dax" ("-g dax,quick" with lab/lab run --full) for FSTYP=xfs,
# then FSTYP=ext4: TEST_DEV on the first NVDIMM, SCRATCH_DEV on the second,
# both mounted with -o dax=always (xfs made with -m rmapbt=1). See
# lab/guest/xfstests.sh.
#
# xfstests is built on the HOST (the guest is the host's root file system,
# read-only over 9p; see external.sh for why): the checkout's files are
# copied to $CACHE/xfstests/KEY/xfstests and built there with plain make
# (libtoolize, autoconf and configure run from it). KEY is the checkout's
# short HEAD, plus a hash of its uncommitted changes (src_key), so the
# copy is rebuilt only when the source changes. In the guest an overlay
# makes that tree writable (check writes next to itself); results go to the
# run directory as they are written.
#
# Results, per file system FS (xfs, ext4): RUN_DIR/xfstests/FS/ holds
# check.log (check's output), results/ (xfstests' own: result.xml, and
# TEST.out.bad, TEST.full, TEST.dmesg of failed tests), local.config,
# results.tsv (test, status pass|fail|notrun, seconds, reason), suite.tap.
# RUN_DIR/xfstests/prod/ holds the guest's setup steps (suite.tap,
# results.tsv, log/), and the whole kernel log (dmesg.txt, followed as it is
# written). RUN_DIR/xfstests/splats.txt: kernel log splats (SPLAT_RE), each
# with the file system and test it came from (xfstests writes "run fstests
# TEST at DATE" into the kernel log before each test). summary.txt: the
# lines for the run's summary.
#
# Knobs: LAB_XFSTESTS_TESTS="generic/413 xfs/550 ..." runs only those tests
# (each on the file systems whose tests it belongs to: generic/ on both);
# LAB_XFSTESTS_FSTYPES (default "xfs ext4"); LAB_XFSTESTS_GUEST_TIMEOUT
# (seconds for the whole guest; default 7200 with TCG, 3600 with KVM; with
# --full 86400 and 21600; check is stopped 10 minutes before it, and each
# file system gets an equal share of the time left when its turn comes);
# LAB_XFSTESTS_NVDIMM_SIZE (default 6G, each of the two NVDIMMs).
#
# Users: tests that need fsgqa, fsgqa2, 123456-fsgqa or the group fsgqa get
# them in the guest only (copies of /etc/passwd and /etc/group bound over
# the originals for that boot); the host's /etc is never changed. If that
# fails, those tests report "not run".

XFSTESTS_FULL=0
XFSTESTS_FSTYPES_OK=(xfs ext4)
XFSTESTS_CHECKED=0
XFSTESTS_DESC=""
XFSTESTS_TREE=""

# xfstests_check_src: refuse an XFSTESTS_SRC that is not an xfstests
# checkout, and malformed LAB_XFSTESTS_* knobs; install (as root) or name
# (otherwise) the packages xfstests needs. Cheap: cmd_run calls it before
# the kernel build, so that bad input fails the run at once.
xfstests_check_src() {
	local src=$XFSTESTS_SRC t fs d ok
	[[ $XFSTESTS_CHECKED == 0 ]] || return 0
	if [[ ! -x $src/check || ! -d $src/tests/generic || ! -f $src/common/rc ]] ||
		! grep -qs '^AC_INIT(\[xfstests\]' "$src/configure.ac"; then
		die "XFSTESTS_SRC=$src is not an xfstests checkout (no executable check, tests/generic, common/rc and configure.ac of xfstests)" \
			"point XFSTESTS_SRC at a clone of xfstests (git://git.kernel.org/pub/scm/fs/xfs/xfstests-dev.git)"
	fi
	for fs in ${LAB_XFSTESTS_FSTYPES:-xfs ext4}; do
		[[ " ${XFSTESTS_FSTYPES_OK[*]} " == *" $fs "* ]] ||
			die "LAB_XFSTESTS_FSTYPES names '$fs'; the lab runs xfstests on ${XFSTESTS_FSTYPES_OK[*]}" \
				"unset it, or set LAB_XFSTESTS_FSTYPES=xfs, =ext4 or ='xfs ext4'"
	done
	for t in ${LAB_XFSTESTS_TESTS:-}; do
		d=${t%%/*}
		[[ $t =~ ^[a-z0-9]+/[0-9]+$ && -f $src/tests/$t ]] ||
			die "LAB_XFSTESTS_TESTS names '$t', which is not a test of $src (tests/$t)" \
				"use xfstests test names such as generic/413 or xfs/550 (ls $src/tests/generic)"
		ok=0
		for fs in ${LAB_XFSTESTS_FSTYPES:-xfs ext4}; do
			[[ $d == generic || $d == "$fs" ]] && ok=1
		done
		[[ $ok == 1 ]] ||
			die "LAB_XFSTESTS_TESTS names '$t', but the lab runs xfstests on ${LAB_XFSTESTS_FSTYPES:-xfs ext4} only" \
				"use generic/, xfs/ or ext4/ tests (of a file system in LAB_XFSTESTS_FSTYPES)"
	done
	[[ ${LAB_XFSTESTS_GUEST_TIMEOUT:-900} =~ ^[0-9]+$ && ${LAB_XFSTESTS_GUEST_TIMEOUT:-900} -ge 900 ]] ||
		die "LAB_XFSTESTS_GUEST_TIMEOUT=${LAB_XFSTESTS_GUEST_TIMEOUT:-} is not a number of seconds of at least 900" \
			"unset it for the default (TCG 7200 s, KVM 3600 s), or set e.g. LAB_XFSTESTS_GUEST_TIMEOUT=10800"
	[[ ${LAB_XFSTESTS_NVDIMM_SIZE:-6G} =~ ^[1-9][0-9]*G$ ]] ||
		die "LAB_XFSTESTS_NVDIMM_SIZE=${LAB_XFSTESTS_NVDIMM_SIZE:-} is not a size in GiB like 6G" \
			"unset it for the default (6G), or set e.g. LAB_XFSTESTS_NVDIMM_SIZE=8G"
	deps_ensure xfstests
	XFSTESTS_DESC=$(git -c safe.directory="$src" -C "$src" describe --tags --always 2>/dev/null || echo "no git")
	XFSTESTS_CHECKED=1
}

# xfstests_build DIR: install the xfstests packages if needed (deps group
# xfstests), then copy XFSTESTS_SRC to DIR/xfstests and build it there,
# unless that source was built in DIR before. Dies on failure: the caller
# runs it in a subshell.
xfstests_build() {
	local dir=$1 key logf=$1/build.log t
	key=${dir##*/}
	deps_ensure xfstests
	if external_build_lock xfstests "$dir" "xfstests $XFSTESTS_DESC ($key)"; then
		return 0
	fi
	log "xfstests $XFSTESTS_DESC ($key): building in $dir (log: $logf)"
	rm -rf "$dir"
	src_snapshot "$XFSTESTS_SRC" "$dir/xfstests"
	printf 'source: %s (%s, %s)\nmake -j%s\n' "$XFSTESTS_SRC" "$XFSTESTS_DESC" "$key" "$JOBS" >"$logf"
	(cd "$dir/xfstests" && make -j"$JOBS") >>"$logf" 2>&1 ||
		die "building xfstests failed: $(grep -m1 -E 'error:|Error|not found|No such' "$logf" | cut -c1-160) (log: $logf)" \
			"install what the log names as missing (lab/lib/deps.sh, DEPS_XFSTESTS_BUILD), or fix XFSTESTS_SRC=$XFSTESTS_SRC (try make there)"
	for t in check ltp/fsstress ltp/fsx src/feature tests/generic/group.list; do
		[[ -e $dir/xfstests/$t ]] ||
			die "the xfstests build made no $t (log: $logf)" \
				"fix XFSTESTS_SRC=$XFSTESTS_SRC so that make builds it (try make there)"
	done
	printf '%s\n' "$XFSTESTS_SRC $key $XFSTESTS_DESC" >"$dir/built"
	exec {EXTERNAL_LOCKFD}>&-
	ok "xfstests built: $dir/xfstests"
}

# xfstests_build_contained DIR: xfstests_build in a subshell, so that a
# failed build (die) ends only the xfstests suite, after the lab's passes.
xfstests_build_contained() { (xfstests_build "$1"); }

# xfstests_groups: the groups check runs ("dax", or "dax,quick" with --full).
xfstests_groups() {
	if [[ $XFSTESTS_FULL == 1 ]]; then echo dax,quick; else echo dax; fi
}

# xfstests_list TREE FS: the tests check is to run on FS, as check picks
# them (tests/generic and tests/FS, by group.list; or LAB_XFSTESTS_TESTS),
# sorted. Used to name the tests that got no result.
xfstests_list() {
	local tree=$1 fs=$2 g d t
	if [[ -n ${LAB_XFSTESTS_TESTS:-} ]]; then
		for t in $LAB_XFSTESTS_TESTS; do
			d=${t%%/*}
			[[ $d == generic || $d == "$fs" ]] && echo "$t"
		done
	else
		for g in $(xfstests_groups | tr , ' '); do
			for d in generic "$fs"; do
				awk -v g="$g" -v d="$d" '!/^#/ { for (i = 2; i <= NF; i++) if ($i == g) { print d "/" $1; next } }' \
					"$tree/tests/$d/group.list"
			done
		done
	fi | sort -t/ -k1,1 -k2,2n -u
}

# xfstests_suite: build xfstests, boot the kernel under test (KDIR) with
# this run's staged production modules and accel, and run check on each
# file system; results in RUN_DIR/xfstests/. Returns 0 when the guest ran
# to its end (whatever the verdicts), 1 when it did not or xfstests did not
# build: the lab's own results are kept either way.
xfstests_suite() {
	local accel out=$RUN_DIR/xfstests rc=0 tmo fs n dir tests=()
	accel=$(<"$RUN_DIR/accel")
	xfstests_check_src
	rm -rf "$out"
	mkdir -p "$out/prod"
	dir=$CACHE/xfstests/$(src_key "$XFSTESTS_SRC")
	XFSTESTS_TREE=$dir/xfstests
	if ! stage xfstests-build xfstests_build_contained "$dir"; then
		echo "xfstests: not run: building xfstests $XFSTESTS_DESC failed (log: $dir/build.log)" |
			tee "$out/summary.txt" >&2
		return 1
	fi
	n=0
	for fs in ${LAB_XFSTESTS_FSTYPES:-xfs ext4}; do
		mkdir -p "$out/$fs"
		xfstests_list "$XFSTESTS_TREE" "$fs" >"$out/$fs/tests.txt"
		if [[ -s $out/$fs/tests.txt ]]; then
			tests+=("$fs")
			n=$((n + $(wc -l <"$out/$fs/tests.txt")))
		fi
	done
	if [[ ${#tests[@]} -eq 0 ]]; then
		echo "xfstests: not run: no tests in group $(xfstests_groups)${LAB_XFSTESTS_TESTS:+ among LAB_XFSTESTS_TESTS=$LAB_XFSTESTS_TESTS} for ${LAB_XFSTESTS_FSTYPES:-xfs ext4}" |
			tee "$out/summary.txt" >&2
		return 1
	fi
	if ((XFSTESTS_FULL)); then
		tmo=$(accel_default "$accel" "${LAB_XFSTESTS_GUEST_TIMEOUT:-}" 21600 86400)
	else
		tmo=$(accel_default "$accel" "${LAB_XFSTESTS_GUEST_TIMEOUT:-}" 3600 7200)
	fi
	{
		echo "fstypes=${tests[*]}"
		echo "groups=$(xfstests_groups)"
		echo "tests=${LAB_XFSTESTS_TESTS:-}"
		# check inside the guest stops 10 minutes before the host kills
		# the guest, so that a test stuck in the kernel leaves a report.
		echo "deadline=$((tmo - 600))"
	} >"$out/prod/params"
	{
		echo "xfstests $XFSTESTS_DESC, source $XFSTESTS_SRC (${dir##*/})"
		echo "build: $XFSTESTS_TREE"
		echo "check ${LAB_XFSTESTS_TESTS:-"-g $(xfstests_groups)"} on ${tests[*]}: $n tests"
		echo "guest: $accel, production modules, guest timeout ${tmo}s, 2x ${LAB_XFSTESTS_NVDIMM_SIZE:-6G} NVDIMM, fsdax map=dev, -o dax=always"
	} >"$out/version"
	log "xfstests: $n tests (${LAB_XFSTESTS_TESTS:-"-g $(xfstests_groups)"} on ${tests[*]}) with the production modules ($accel; up to ${tmo}s; results: $out)"
	stage guest-xfstests external_boot prod "$out" xfstests.sh "$XFSTESTS_TREE" \
		"${LAB_XFSTESTS_NVDIMM_SIZE:-6G}" "$tmo" || rc=$?
	xfstests_collect "$out" "$rc"
	return "$rc"
}

# xfstests_xml RESULT.XML: "test<TAB>status<TAB>seconds<TAB>reason" per
# testcase of xfstests' xunit report (check -R xunit-quiet rewrites it
# before every test and at the end). Status: pass, notrun (<skipped>) or
# fail (<failure>).
xfstests_xml() {
	awk -v RS='<' '
		function attr(s, a,   i, v) {
			i = index(s, " " a "=\"")
			if (!i) return ""
			v = substr(s, i + length(a) + 3)
			v = substr(v, 1, index(v, "\"") - 1)
			gsub(/[\t\r\n]+/, " ", v); sub(/ +$/, "", v)
			gsub(/&lt;/, "<", v); gsub(/&gt;/, ">", v); gsub(/&quot;/, "\"", v)
			gsub(/&apos;/, "\047", v); gsub(/&amp;/, "\\&", v)
			return v
		}
		/^testcase / { name = attr($0, "name"); secs = attr($0, "time"); st = "pass"; why = "" }
		/^skipped/ { st = "notrun"; why = attr($0, "message") }
		/^failure / { st = "fail"; why = attr($0, "message") }
		/^\/testcase>/ && name != "" { print name "\t" st "\t" (secs == "" ? "-" : secs) "\t" why; name = "" }
	' "$1"
}

# xfstests_collect OUT GUEST_RC: per file system, results.tsv and suite.tap
# from xfstests' report, every listed test without a result as a failure
# (with why); the kernel log's splats attributed to file system and test;
# OUT/summary.txt.
xfstests_collect() {
	local out=$1 grc=$2 fs why klog f hits started
	klog=$out/prod/dmesg.txt
	[[ -s $klog ]] || klog=$out/prod-console.log
	# A line after "run fstests T at" belongs to T; the guest script marks
	# the start and end of each file system's check run.
	awk -v re="$SPLAT_RE" '
		/daxpage-xfstests: begin / { fs = $NF; cur = "(setup)"; next }
		/daxpage-xfstests: end / { cur = "(after the tests)"; next }
		/ run fstests [^ ]+ at / { for (i = 1; i < NF; i++) if ($i == "fstests") cur = $(i + 1); next }
		$0 ~ re { print (fs == "" ? "-" : fs) "\t" (cur == "" ? "(boot)" : cur) "\t" $0 }
	' "$klog" 2>/dev/null >"$out/splats.txt" || true
	if [[ $klog != "$out/prod-console.log" ]] && ! hits=$(scan_splats "$out/prod-console.log"); then
		grep -q . "$out/splats.txt" || awk '{print "-\t(console)\t" $0}' <<<"$hits" >>"$out/splats.txt"
	fi
	for fs in ${LAB_XFSTESTS_FSTYPES:-xfs ext4}; do
		[[ -s $out/$fs/tests.txt ]] || continue
		f=$out/$fs/results/result.xml
		# (check names its results by their guest path.)
		if [[ -f $f ]]; then
			xfstests_xml "$f" | sed 's#/tmp/daxpage-out/#xfstests/#g' >"$out/$fs/results.tsv"
		else
			: >"$out/$fs/results.tsv"
		fi
		why=$(xfstests_why_none "$out" "$fs" "$grc")
		started=$(grep -oE '^[a-z0-9]+/[0-9]+' "$out/$fs/check.log" 2>/dev/null | tail -n1 || true)
		while IFS= read -r t; do
			grep -q "^$t	" "$out/$fs/results.tsv" && continue
			if [[ $t == "$started" ]]; then
				printf '%s\tfail\t-\tno result, was running: %s\n' "$t" "$why"
			else
				printf '%s\tfail\t-\tno result: %s\n' "$t" "$why"
			fi
		done <"$out/$fs/tests.txt" >>"$out/$fs/results.tsv"
		awk -F'\t' '{
			n++
			if ($2 == "pass") print "ok " n " - " $1
			else if ($2 == "notrun") print "ok " n " - " $1 " # SKIP " $4
			else { gsub(/#/, "", $4); print "not ok " n " - " $1 " # " $4 }
		}' "$out/$fs/results.tsv" >"$out/$fs/suite.tap"
	done
	xfstests_summary_lines "$out" >"$out/summary.txt"
	sed 's/^/[lab]   /' "$out/summary.txt"
}

# xfstests_ran OUT FS: the guest's verdict on check's run on FS
# ("status<TAB>reason" of FS/xfstests-ran; nothing if there is none).
xfstests_ran() {
	awk -F'\t' -v n="$2/xfstests-ran" '$1 == n {print $2 "\t" $3}' "$1/prod/results.tsv" 2>/dev/null || true
}

# xfstests_why_none OUT FS GUEST_RC: why the tests of FS that have no
# result in xfstests' report have none.
xfstests_why_none() {
	local out=$1 fs=$2 grc=$3 ran r
	ran=$(xfstests_ran "$out" "$fs")
	if [[ ! -f $out/$fs/results/result.xml ]]; then
		if r=$(grep -m1 '^daxpage: not started: ' "$out/$fs/check.log" 2>/dev/null); then
			echo "${r#daxpage: }"
		elif grep -q . "$out/$fs/check.log" 2>/dev/null; then
			echo "xfstests did not start: $(xfstests_start_error "$out/$fs")"
		elif [[ $grc -ne 0 ]]; then
			echo "the guest did not finish before check ran on $fs (see xfstests/prod-console.log)"
		else
			echo "check did not run (see xfstests/prod/results.tsv)"
		fi
	elif [[ $ran == fail* ]]; then
		echo "check stopped: ${ran#*$'\t'}"
	elif [[ $grc -ne 0 ]]; then
		echo "the guest did not finish (hang, panic or timeout; see xfstests/prod-console.log)"
	else
		echo "check reported no result for it"
	fi
}

# xfstests_start_error DIR: why check did not start, from its output.
xfstests_start_error() {
	local r
	r=$(grep -E 'not found|not a |required|failed|Error|error|cannot|No such' "$1/check.log" 2>/dev/null | tail -n1 || true)
	[[ -n $r ]] || r=$(grep . "$1/check.log" 2>/dev/null | tail -n1 || true)
	[[ -n $r ]] || r="check printed nothing"
	printf '%s' "${r:0:160}"
}

# xfstests_summary_lines OUT: the lines for the run's summary: per file
# system the counts (a test without a result counts as failed), why check
# did not start or stopped, and the failed tests (the first 25).
xfstests_summary_lines() {
	local out=$1 fs np nf nn nt secs tsv ran
	echo "xfstests: $(head -n1 "$out/version")"
	sed -n '3,4p' "$out/version" | sed 's/^/  /'
	awk -F'\t' '$2 == "fail" && $1 !~ /\/xfstests-ran$/ {printf "  setup failed: %s  (%s)\n", $1, $3}' \
		"$out/prod/results.tsv" 2>/dev/null
	for fs in ${LAB_XFSTESTS_FSTYPES:-xfs ext4}; do
		tsv=$out/$fs/results.tsv
		[[ -f $tsv ]] || continue
		np=$(awk -F'\t' '$2 == "pass"' "$tsv" | wc -l)
		nf=$(awk -F'\t' '$2 == "fail"' "$tsv" | wc -l)
		nn=$(awk -F'\t' '$2 == "notrun"' "$tsv" | wc -l)
		nt=$(grep -c . "$out/$fs/tests.txt")
		secs=$(cat "$out/$fs/seconds" 2>/dev/null || true)
		echo "  $fs: $np pass, $nf fail, $nn notrun (of $nt tests)${secs:+, check ran ${secs}s}; xfstests/$fs/results.tsv, xfstests/$fs/results/"
		ran=$(xfstests_ran "$out" "$fs")
		if [[ ! -f $out/$fs/results/result.xml ]]; then
			echo "    $(xfstests_why_none "$out" "$fs" 1): no test ran"
			continue
		fi
		[[ $ran != fail* ]] || echo "    check: ${ran#*$'\t'}"
		awk -F'\t' '$2 == "fail" && ++n <= 25 {printf "    failed: %s  (%s)\n", $1, substr($4, 1, 150)}
			END { if (n > 25) printf "    ... and %d more failed\n", n - 25 }' "$tsv"
	done
	if grep -q . "$out/splats.txt"; then
		echo "  kernel log splats: $(grep -c . "$out/splats.txt") lines, in: $(cut -f1,2 "$out/splats.txt" | tr '\t' ' ' | sort -u | paste -sd, | cut -c1-200); xfstests/splats.txt"
	else
		echo "  kernel log splats: none"
	fi
}
