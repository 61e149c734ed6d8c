#!/usr/bin/env bats
# Targets (series/NAME/ with a base.pin) as data: listing, choosing one,
# its patches and pin; the labels and worktrees a run derives from them;
# the reproducers file of 'lab/lab check'; the compare and bench tables.
# Fixture checkouts (a copy of lab/ next to a series/ of the test's own)
# keep the project's series/ out of it, except where it is the point.
# The globals set here (TOP, RUN_BASE, ...) are read by the functions
# under test.
# shellcheck disable=SC2034,SC2154 # (SC2154: bats sets stderr)

bats_require_minimum_version 1.5.0

setup() {
	load helper
	lab_source
	# shellcheck source=lab/lib/tree.sh
	source "$BATS_TEST_DIRNAME/../lib/tree.sh"
	# shellcheck source=lab/lib/report.sh
	source "$BATS_TEST_DIRNAME/../lib/report.sh"
	# shellcheck source=lab/cmd/run.sh
	source "$BATS_TEST_DIRNAME/../cmd/run.sh"
	# shellcheck source=lab/cmd/compare.sh
	source "$BATS_TEST_DIRNAME/../cmd/compare.sh"
	# shellcheck source=lab/cmd/bench.sh
	source "$BATS_TEST_DIRNAME/../cmd/bench.sh"
	export DAXPAGE_RESULTS=$BATS_TEST_TMPDIR/results
	RESULTS=$DAXPAGE_RESULTS
	mkdir -p "$RESULTS"
}

# fixture_top: a checkout of the test's own: TOP with an empty series/.
fixture_top() {
	TOP=$BATS_TEST_TMPDIR/top
	mkdir -p "$TOP/series"
}

# pin DIR VERSION: a base.pin in series/DIR/ pinning kernel VERSION.
pin() {
	mkdir -p "$TOP/series/$1"
	printf '# a pin\nBASE_PACKAGE=linux-source-x\nBASE_VERSION=%s-1\nBASE_KERNELVERSION=%s\n' "$2" "$2" \
		>"$TOP/series/$1/base.pin"
}

@test "the project's targets: 6.12.y and mainline, with their pinned kernels" {
	run -0 series_targets
	[ "$output" = $'6.12.y\nmainline' ]
	run -0 target_kernelversion 6.12.y
	[ "$output" = 6.12.117 ]
	run -0 target_kernelversion mainline
	[ "$output" = 7.3.4 ]
	target_use mainline
	run -0 read_pin BASE_COMMIT
	[ "$output" = 755d548745427df8abf18609a501c5747026e1bb ]
	run -0 read_pin BASE_VERSION
	[ "$output" = "7.3.4-1~bpo13+1" ]
	target_use 6.12.y
	run -0 read_pin BASE_KERNELVERSION
	[ "$output" = 6.12.117 ]
	[ "$(series_patches | wc -l)" -eq 18 ]
}

@test "a target is a folder with a base.pin; others are not listed; the order is by version" {
	fixture_top
	pin 6.12.y 6.12.117
	pin mainline 7.3.4
	pin 6.6.y 6.6.80
	mkdir -p "$TOP/series/notes"
	touch "$TOP/series/README"
	run -0 series_targets
	[ "$output" = $'6.6.y\n6.12.y\nmainline' ]
}

@test "an unknown, empty or path-like target is refused with the cause, the known targets and the fix" {
	fixture_top
	pin a 1.0.0
	pin b 2.0.0
	mkdir -p "$TOP/series/notes"
	local t
	for t in c notes "" ../series a/ .; do
		run -1 target_check "$t"
		[[ ${lines[0]} == *"ERROR: unknown series '$t' (no series/$t/base.pin; targets: a b)"* ]]
		[[ ${lines[1]} == *"fix: use --series with one of: a b"* ]]
		[ "${#lines[@]}" -eq 2 ]
	done
	run -0 target_check b
	[ -z "$output" ]
}

@test "no target at all: the cause and the fix" {
	fixture_top
	run -1 target_check ""
	[[ ${lines[0]} == *"series/ has no target"* ]]
	[[ ${lines[1]} == *"fix:"* ]]
}

@test "a target's patches: NNNN-*.patch in order, without the cover letter; none is fine" {
	fixture_top
	pin t 1.0.0
	touch "$TOP/series/t/0000-cover-letter.patch" "$TOP/series/t/0002-b.patch" \
		"$TOP/series/t/0001-a.patch" "$TOP/series/t/notes.patch" "$TOP/series/t/0003-c.diff"
	target_use t
	run -0 series_patches
	[ "$output" = "$TOP/series/t/0001-a.patch"$'\n'"$TOP/series/t/0002-b.patch" ]
	pin empty 2.0.0
	target_use empty
	run -0 series_patches
	[ -z "$output" ]
	run -0 series_hash
	[ "$output" = none ]
}

@test "a pin without a key, or a target whose pin went missing: the cause and the fix" {
	fixture_top
	pin t 1.0.0
	target_use t
	run -1 read_pin BASE_COMMIT
	[[ $output == *"base pin $TOP/series/t/base.pin has no BASE_COMMIT"* ]]
	[[ $output == *"fix: add a BASE_COMMIT= line to series/t/base.pin"* ]]
	target_use gone
	run -1 read_pin BASE_VERSION
	[[ $output == *"base pin $TOP/series/gone/base.pin is missing"* ]]
}

@test "labels and worktrees: T and T-base, -debug; wt/T-series and wt/T-base; the scratch tree wt/am-T" {
	RUN_BASE=0 LAB_DEBUG=0
	[ "$(run_label 6.12.y)" = 6.12.y ]
	RUN_BASE=1
	[ "$(run_label mainline)" = mainline-base ]
	LAB_DEBUG=1
	[ "$(run_label mainline)" = mainline-base-debug ]
	RUN_BASE=0
	[ "$(run_label 6.12.y)" = 6.12.y-debug ]
	[ "$(run_kdir 6.12.y series)" = "$CACHE/wt/6.12.y-series" ]
	[ "$(run_kdir mainline base)" = "$CACHE/wt/mainline-base" ]
	target_use mainline
	[ "$(am_dir)" = "$CACHE/wt/am-mainline" ]
}

@test "am_alone: a patch that needs an earlier one's context does not apply alone; the tree is left clean" {
	local repo=$BATS_TEST_TMPDIR/repo
	git init -q "$repo"
	printf 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n' >"$repo/f"
	git -C "$repo" add f
	git -C "$repo" "${GIT_ID[@]}" commit -q -m base
	BASE_REPO=$repo BASE_COMMIT=$(git -C "$repo" rev-parse HEAD)
	sed -i 's/^four$/FOUR/' "$repo/f"
	git -C "$repo" "${GIT_ID[@]}" commit -q -a -m first
	sed -i 's/^three$/THREE/' "$repo/f"
	git -C "$repo" "${GIT_ID[@]}" commit -q -a -m second
	git -C "$repo" format-patch -q -o "$BATS_TEST_TMPDIR/p" "$BASE_COMMIT"
	target_use mainline
	mkdir -p "$CACHE/wt"
	lab_lock am-mainline "the scratch worktree"
	am_alone "$BATS_TEST_TMPDIR/p/0001-first.patch"
	grep -qx FOUR "$(am_dir)/f"
	run -1 am_alone "$BATS_TEST_TMPDIR/p/0002-second.patch"
	[ "$(git -C "$(am_dir)" rev-parse HEAD)" = "$BASE_COMMIT" ]
	[ -z "$(git -C "$(am_dir)" status --porcelain)" ]
	grep -q "patch does not apply" "$CACHE/am-mainline.log"
	lab_unlock am-mainline
}

# runs DIR STATUS-LINES...: a fixture run directory with results.tsv and
# subtests.tsv from lines "name pass status" (results) and
# "prog:case pass status" (subtests).
runs() {
	local dir=$RESULTS/$1 l
	shift
	mkdir -p "$dir"
	: >"$dir/results.tsv"
	: >"$dir/subtests.tsv"
	for l in "$@"; do
		if [[ ${l%% *} == *:* ]]; then
			tr ' ' '\t' <<<"$l" >>"$dir/subtests.tsv"
		else
			tr ' ' '\t' <<<"$l" >>"$dir/results.tsv"
		fi
	done
}

@test "reproducers: ok only when the base fails the key and the series passes it; anything else fails, saying what was seen" {
	runs base "xfs-reflink-umount test fail" "a-check test ok" "b-check prod fail" "c-check test fail" \
		"dax:dax.pin_truncate test fail" "dax:dax.x test skip"
	runs series "xfs-reflink-umount test ok" "a-check test ok" "b-check prod fail" \
		"dax:dax.pin_truncate test ok" "dax:dax.x test ok"
	local f=$BATS_TEST_TMPDIR/reproducers
	printf '%s\n' "# a comment" "" \
		$'xfs-reflink-umount (test)\treflink-umount\tthe clear_inode() BUG' \
		$'dax:dax.pin_truncate (test)\tpin-truncate\tWARN in dax_disassociate_entry()' \
		$'a-check (test)\tnot-a-bug\tpasses on both' \
		$'b-check (prod)\tstill-broken\tfails on both' \
		$'c-check (test)\tgone\tthe series run lacks it' \
		$'dax:dax.x (test)\tskipped\tskipped on the base' \
		$'xfs-reflink-umount (prod)\tnot-run\tneither run has the prod pass' >"$f"
	run -0 reproducers_eval "$f" "$RESULTS/base" "$RESULTS/series" 6.12.117
	[ "${#lines[@]}" -eq 7 ]
	[ "${lines[0]}" = $'ok\treproducer xfs-reflink-umount (test) (reflink-umount): fails on 6.12.117, passes with the series' ]
	[ "${lines[1]}" = $'ok\treproducer dax:dax.pin_truncate (test) (pin-truncate): fails on 6.12.117, passes with the series' ]
	[[ ${lines[2]} == $'fail\t'*"(not-a-bug)"*"6.12.117: ok, with the series: ok" ]]
	[[ ${lines[3]} == $'fail\t'*"(still-broken)"*"6.12.117: fail, with the series: fail" ]]
	[[ ${lines[4]} == $'fail\t'*"(gone)"*"6.12.117: fail, with the series: missing" ]]
	[[ ${lines[5]} == $'fail\t'*"(skipped)"*"6.12.117: skip, with the series: ok" ]]
	[[ ${lines[6]} == $'fail\t'*"(not-run)"*"6.12.117: missing, with the series: missing" ]]
}

@test "reproducers: a run that left no results counts as missing; malformed lines are failures, not skipped" {
	runs series "a-check test ok"
	local f=$BATS_TEST_TMPDIR/reproducers
	printf '%s\n' $'a-check (test)\tbug-a\ttext' 'a-check (test) bug-a no tabs' \
		$'a-check\tbug-b\tno pass in the key' $'a-check (test)\t\t' >"$f"
	run -0 reproducers_eval "$f" "$RESULTS/nonexistent" "$RESULTS/series" 7.3.4
	[ "${#lines[@]}" -eq 4 ]
	[[ ${lines[0]} == $'fail\treproducer a-check (test) (bug-a): should fail on 7.3.4'*"7.3.4: missing, with the series: ok" ]]
	[[ ${lines[1]} == $'fail\treproducers line 2 is not KEY<TAB>BUG-ID<TAB>text'* ]]
	[[ ${lines[2]} == $'fail\treproducers line 3 is not'* ]]
	[[ ${lines[3]} == $'fail\treproducers line 4 is not'* ]]
}

@test "every series' reproducers file is well-formed, and its keys are rows of the suite" {
	local f n bad c t cases
	for t in 6.12.y mainline; do
		f=$TOP/series/$t/reproducers
		[ -f "$f" ]
		n=$(grep -cvE '^(#|[[:space:]]*$)' "$f")
		[ "$n" -gt 0 ]
		run -0 reproducers_eval "$f" "$RESULTS/none" "$RESULTS/none" 1.2.3
		[ "${#lines[@]}" -eq "$n" ]
		# every line parsed: nothing malformed, every key looked up
		[[ $output != *"is not KEY"* ]]
		[ "$(grep -c 'missing, with the series: missing' <<<"$output")" -eq "$n" ]
		# the checks it names are the selftests, the reflink cases the
		# suite runs (REFLINK_CASES), the nfit_test mmap check and the
		# erofs case
		bad=$(grep -vE '^(#|[[:space:]]*$)' "$f" | cut -f1 | sed -E 's/(:.*)? \((test|prod)\)$//' |
			grep -vxE '[a-z0-9-]+-selftests-dax|xfs-reflink-[a-z0-9_]+|nfit_test-fsdax-mmap-read-unlink|erofs-chunk-dedupe' || true)
		[ -z "$bad" ]
		cases=$(sed -n '/^REFLINK_CASES=(/,/)/p' "$TOP/lab/guest/suite.sh" | tr -s '()\n\t=' ' ')
		while IFS= read -r c; do
			grep -qw -- "${c#xfs-reflink-}" <<<"$cases"
		done < <(grep -oE '^xfs-reflink-[a-z0-9_]+' "$f" | sort -u)
		if grep -q '^erofs-chunk-dedupe ' "$f"; then
			grep -q '^	tap_prog erofs-chunk-dedupe ' "$TOP/lab/guest/suite.sh"
		fi
		! grep -q '^nfit_test-' "$f" || grep -q 'check nfit_test-fsdax-mmap-read-unlink ' "$TOP/lab/guest/suite.sh"
	done
}

@test "compare table: base and base + series of each target, headed by the pinned kernel version" {
	fixture_top
	pin 6.12.y 6.12.117
	pin mainline 7.3.4
	runs compare-6.12.y-base "x-check test fail" "dax:dax.a test fail"
	runs compare-6.12.y "x-check test ok" "dax:dax.a test ok"
	runs compare-mainline-base "x-check test fail" "y-check prod ok"
	runs compare-mainline "x-check test ok"
	local l
	for l in compare-6.12.y-base compare-6.12.y compare-mainline-base compare-mainline; do
		echo 6.x-daxpage+ >"$RESULTS/$l/kernelrelease"
		: >"$RESULTS/$l/splats.txt"
	done
	printf 'a\nb\n' >"$RESULTS/compare-mainline-base/splats.txt"
	compare_parse_targets
	run -0 compare_table
	read -r -a head <<<"${lines[0]}"
	[ "${head[*]}" = "check (pass) 6.12.117 6.12.117+series 7.3.4 7.3.4+series" ]
	read -r -a row <<<"${lines[1]}"
	[ "${row[*]}" = "x-check (test) fail ok fail ok" ]
	read -r -a row <<<"${lines[2]}"
	[ "${row[*]}" = "y-check (prod) - - ok -" ]
	read -r -a row <<<"${lines[3]}"
	[ "${row[*]}" = "dax:dax.a (test) fail ok - -" ]
	[ "${lines[6]}" = "7.3.4: 6.x-daxpage+, 2 splat lines" ]
	[ -f "$RESULTS/compare.txt" ]
	compare_parse_targets --series mainline
	run -0 compare_table
	read -r -a head <<<"${lines[0]}"
	[ "${head[*]}" = "check (pass) 7.3.4 7.3.4+series" ]
	rm -r "$RESULTS/compare-mainline"
	run -1 compare_table
	[[ $output == *"results/compare-mainline/ is missing"* ]]
	[[ $output == *"lab/lab run --series mainline --label compare-mainline"* ]]
}

@test "bench: kernels T and T-base of every target by default; the ratio series/base per target" {
	fixture_top
	pin 6.12.y 6.12.117
	pin mainline 7.3.4
	bench_parse
	[ "${BENCH_KERNELS[*]}" = "6.12.y-base 6.12.y mainline-base mainline" ]
	bench_parse --series mainline
	[ "${BENCH_KERNELS[*]}" = "mainline-base mainline" ]
	local b row
	# Three boots each; 6.12.y-base's medians move by 10% between boots,
	# 6.12.y's by 2%: 1.11 is a result. mainline's is not (below).
	bench_boot() { # K BOOT MEDIAN
		mkdir -p "$RESULTS/bench-$1/bench$2"
		echo 7-daxpage+ >"$RESULTS/bench-$1/kernelrelease"
		printf '{"size_mib":1,"buffer_mib":1,"reps":5,"pmd_mapping":{"reflinked":{"pmd_served":%s,"fell_back":%s}},"figures":[{"name":"pte_fault","unit":"ns","min":%s,"median":%s}]}\n' \
			"$2" "$(( 640 - $2 ))" "$(( $3 - 1 ))" "$3" >"$RESULTS/bench-$1/bench$2/bench.json"
	}
	bench_boot 6.12.y-base 1 100; bench_boot 6.12.y-base 2 110; bench_boot 6.12.y-base 3 100
	bench_boot 6.12.y 1 110; bench_boot 6.12.y 2 111; bench_boot 6.12.y 3 112
	bench_boot mainline-base 1 50; bench_boot mainline-base 2 52; bench_boot mainline-base 3 50
	bench_parse
	run -0 --separate-stderr bench_table
	[[ $stderr == *"no figures for mainline "* ]]
	[[ ${lines[0]} == *"6.12.y-base min/median/spread"*"6.12.y min/median/spread"*"mainline-base min/median/spread"*"6.12.y ser/base" ]]
	[[ ${lines[0]} != *"mainline ser/base"* ]]
	read -r -a row <<<"${lines[1]}"
	# 6.12.y-base: min 99, median of (100 110 100) 100, spread 10%; 6.12.y:
	# 109, 111, 2/111; ratio 1.11 > 10%: a result.
	[ "${row[*]}" = "pte_fault ns 99.0 / 100.0 / 10.0% 109.0 / 111.0 / 1.8% 49.0 / 50.0 / 4.0% 1.11" ]
	[[ $output == *"6.12.y (6.12.117+series): 7-daxpage+, 1 MiB file, 1 MiB buffers, 5 repetitions per boot, 3 boot(s)"* ]]
	[[ $output == *"mainline-base (7.3.4): 7-daxpage+"* ]]
	[[ $output == *"  6.12.y, read_reflinked: 1 PMD faults served, 639 fell back to PTEs (boot 1)"* ]]
	[[ $output != *"not a result"* ]]
	# mainline back, 1 to 4% above its base: within the base's 4% spread.
	bench_boot mainline 1 52; bench_boot mainline 2 51; bench_boot mainline 3 51
	run -0 --separate-stderr bench_table
	read -r -a row <<<"${lines[1]}"
	[ "${row[-1]}" = "~1.02" ]
	[ "${row[-2]}" = "1.11" ]
	[[ $output == *"~: the medians differ by no more than the larger spread between boots: not a result"* ]]
	# A run made before LAB_BENCH_BOOTS (one pass directory "bench") still counts, as one boot.
	rm -r "$RESULTS/bench-mainline"/bench[0-9]
	mkdir -p "$RESULTS/bench-mainline/bench"
	printf '{"size_mib":1,"buffer_mib":1,"reps":5,"figures":[{"name":"pte_fault","unit":"ns","min":50,"median":51}]}\n' \
		>"$RESULTS/bench-mainline/bench/bench.json"
	run -0 --separate-stderr bench_table
	read -r -a row <<<"${lines[1]}"
	[ "${row[-1]}" = "1.02" ]
	[[ $output == *"mainline (7.3.4+series): 7-daxpage+, 1 MiB file, 1 MiB buffers, 5 repetitions per boot, 1 boot(s)"* ]]
}

@test "identity: every patch and cover letter from the project, every patch signed off; a wrapped or other From: is named" {
	local d=$BATS_TEST_TMPDIR/s
	mkdir -p "$d"
	printf 'From: %s\nSubject: [PATCH 0/1] x\n' "$PROJECT_ID" >"$d/0000-cover-letter.patch"
	printf 'From: %s\nSubject: [PATCH 1/1] y\n\nSigned-off-by: %s\n' "$PROJECT_ID" "$PROJECT_ID" >"$d/0001-y.patch"
	run -0 series_identity_problems "$d"
	[ -z "$output" ]
	printf 'From: Seed maintainers\n <m@example>\nSubject: [PATCH 0/1] x\n' >"$d/0000-cover-letter.patch"
	printf 'From: %s\nSubject: [PATCH 1/1] y\n\n' "$PROJECT_ID" >"$d/0001-y.patch"
	run -0 series_identity_problems "$d"
	[ "${#lines[@]}" -eq 2 ]
	[[ ${lines[0]} == "0000-cover-letter.patch: From: is \"Seed maintainers\", not $PROJECT_ID" ]]
	[[ ${lines[1]} == "0001-y.patch: no Signed-off-by: $PROJECT_ID" ]]
	run -0 series_identity_problems "$TOP/series/6.12.y"
	[ -z "$output" ]
	run -0 series_identity_problems "$TOP/series/mainline"
	[ -z "$output" ]
}
