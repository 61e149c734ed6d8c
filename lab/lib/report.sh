# shellcheck shell=bash
# Turn a run directory into results.tsv and a one-screen summary.

# tap_to_tsv PASS TAPFILE: "name<TAB>pass<TAB>ok|fail|skip" per TAP line.
tap_to_tsv() {
	local pass=$1 tap=$2
	awk -v pass="$pass" '
		/^ok [0-9]+ - .*# SKIP/ { sub(/^ok [0-9]+ - /, ""); sub(/ # SKIP.*/, ""); print $0 "\t" pass "\tskip"; next }
		/^ok [0-9]+ - / { sub(/^ok [0-9]+ - /, ""); print $0 "\t" pass "\tok"; next }
		/^not ok [0-9]+ - / { sub(/^not ok [0-9]+ - /, ""); sub(/ # .*/, ""); print $0 "\t" pass "\tfail"; next }
	' "$tap"
}

# subtests_to_tsv PASS DIR: the individual kselftest cases of every program,
# as "program:case<TAB>pass<TAB>status", for the comparison table.
subtests_to_tsv() {
	local pass=$1 dir=$2 f prog
	for f in "$dir"/*.tap; do
		[[ -e $f ]] || continue
		prog=$(basename "$f" .tap)
		# kselftest_harness.h names each case on its result line; the
		# selftests/mm programs print "# [RUN] <what>" before a result
		# line that only says "Should have worked": name those by <what>.
		awk -v prog="$prog" -v pass="$pass" '
			function emit(name, st) {
				if (run != "") name = run
				run = ""
				if (seen[name]++) name = name " #" seen[name]
				print prog ":" name "\t" pass "\t" st
			}
			/^# \[RUN\] / { run = substr($0, 9); gsub(/\t/, " ", run); next }
			/^ok [0-9]+ .*# SKIP/ { emit($3, "skip"); next }
			/^ok [0-9]+ / { emit($3, "ok"); next }
			/^not ok [0-9]+ / { emit($4, "fail"); next }
		' "$f"
	done
}

# expected_failures SUBTESTS.TSV: how many failed cases are the documented
# failures of lab/guest/expect/PROG.fsdax in a program named *-mm-PROG.
expected_failures() {
	local f prog n=0
	for f in "$LAB_DIR"/guest/expect/*.fsdax; do
		prog=$(basename "$f" .fsdax)
		n=$((n + $(awk -F'\t' -v prog="$prog" '
			FNR == NR { if ($0 !~ /^#/ && $0 != "") want[$0] = 1; next }
			$3 == "fail" {
				k = index($1, ":"); p = substr($1, 1, k - 1); d = substr($1, k + 1)
				if (p ~ ("-mm-" prog "$") && (d in want)) n++
			}
			END { print n + 0 }' "$f" "$1")))
	done
	echo "$n"
}

# report RUNDIR: write RUNDIR/results.tsv and RUNDIR/summary.txt; print the
# summary; return non-zero when any check failed or a splat was found.
report() {
	local dir=$1 pass verdict=PASS splats f nok nfail nskip nsub nsubfail nsubexp
	: >"$dir/results.tsv"
	: >"$dir/subtests.tsv"
	for pass in "${PASSES[@]}"; do
		if [[ -f $dir/$pass/suite.tap ]]; then
			tap_to_tsv "$pass" "$dir/$pass/suite.tap" >>"$dir/results.tsv"
			subtests_to_tsv "$pass" "$dir/$pass/tap" >>"$dir/subtests.tsv"
		else
			printf 'guest-ran-suite\t%s\tfail\n' "$pass" >>"$dir/results.tsv"
		fi
	done
	splats=""
	for pass in "${PASSES[@]}"; do
		for f in "$dir/$pass/dmesg.txt" "$dir/$pass-console.log"; do
			[[ -f $f ]] || continue
			if ! hits=$(scan_splats "$f"); then
				splats+="$pass: ${f##*/}:"$'\n'"$hits"$'\n'
			fi
		done
	done
	printf '%s' "$splats" >"$dir/splats.txt"
	{
		echo "daxpage lab: $(<"$dir/label")"
		echo "target:  series/$(<"$dir/target"), $(<"$dir/kind")"
		echo "kernel:  $(<"$dir/kernelrelease")"
		echo "base:    $(<"$dir/base")"
		echo "series:  $(<"$dir/series")"
		echo "accel:   $(<"$dir/accel")   guest: ${LAB_GUEST_MEM} RAM, ${GUEST_CPUS:-$LAB_GUEST_CPUS} CPUs${QEMU_EXTRA:+, $QEMU_EXTRA}, memmap=${LAB_MEMMAP} memmap=${LAB_NFIT_RESERVE}, 2x ${LAB_NVDIMM_SIZE} NVDIMM"
		echo "stages:  $(tr '\n' ' ' <"$dir/stages")"
		echo
		if [[ ${#PASSES[@]} -eq 0 ]]; then
			echo "module passes: none (--passes none; the external suites' lines follow the verdict)"
		else
			printf '%-44s' check
			for pass in "${PASSES[@]}"; do printf ' %-6s' "$pass"; done
			echo
			cut -f1 "$dir/results.tsv" | awk '!seen[$0]++' | while IFS= read -r name; do
				printf '%-44s' "$name"
				for pass in "${PASSES[@]}"; do
					st=$(awk -F'\t' -v n="$name" -v p="$pass" '$1 == n && $2 == p {print $3}' "$dir/results.tsv")
					printf ' %-6s' "${st:--}"
				done
				echo
			done
		fi
		echo
		for pass in "${PASSES[@]}"; do
			nok=$(awk -F'\t' -v p="$pass" '$2 == p && $3 == "ok"' "$dir/results.tsv" | wc -l)
			nfail=$(awk -F'\t' -v p="$pass" '$2 == p && $3 == "fail"' "$dir/results.tsv" | wc -l)
			nskip=$(awk -F'\t' -v p="$pass" '$2 == p && $3 == "skip"' "$dir/results.tsv" | wc -l)
			echo "pass $pass: $nok ok, $nfail failed, $nskip skipped"
		done
		if [[ ${#PASSES[@]} -eq 0 ]]; then
			:
		elif [[ -n $splats ]]; then
			echo "kernel log splats (full list: splats.txt):"
			head -n 10 "$dir/splats.txt" | sed 's/^/  /'
		else
			echo "kernel log splats: none"
		fi
		if [[ ${#PASSES[@]} -gt 0 ]]; then
			nsub=$(wc -l <"$dir/subtests.tsv")
			nsubfail=$(awk -F'\t' '$3 == "fail"' "$dir/subtests.tsv" | wc -l)
			nsubexp=$(expected_failures "$dir/subtests.tsv")
			echo "test cases inside the programs: $nsub, failed: $nsubfail" \
				"($nsubexp of them listed in lab/guest/expect/ and passed as expected)"
		fi
	} >"$dir/summary.txt"
	if grep -qP '\tfail$' "$dir/results.tsv" || [[ -n $splats ]]; then
		verdict=FAIL
	elif [[ ${#PASSES[@]} -eq 0 ]]; then
		verdict="none (no module pass)"
	fi
	echo "verdict: $verdict" >>"$dir/summary.txt"
	cat "$dir/summary.txt"
	[[ $verdict != FAIL ]]
}

# result_status DIR KEY: the status (ok, fail, skip) of KEY in the run
# directory DIR's results.tsv and subtests.tsv, KEY written as the compare
# table writes its rows: "check (pass)" or "program:case (pass)"; "missing"
# when neither file has it.
result_status() {
	local dir=$1 key=$2 st
	st=$(awk -F'\t' -v k="$key" '$1 " (" $2 ")" == k {print $3; exit}' \
		"$dir/results.tsv" "$dir/subtests.tsv" 2>/dev/null || true)
	printf '%s\n' "${st:-missing}"
}

# reproducers_eval FILE BASEDIR SERIESDIR VERSION: check a target's
# reproducers file against a run of its base (BASEDIR) and one of base +
# series (SERIESDIR). FILE has one line per reproducer,
# "KEY<TAB>BUG-ID<TAB>free text" (KEY as in result_status); blank lines
# and lines starting with # are comments. Prints one "ok<TAB>message" or
# "fail<TAB>message" line per reproducer: ok only when the base has KEY as
# fail and the series as ok. VERSION names the base in the messages.
reproducers_eval() {
	local file=$1 base=$2 series=$3 ver=$4 line key bug text b s n=0
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		[[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
		IFS=$'\t' read -r key bug text <<<"$line"
		if [[ $line != *$'\t'* || -z ${bug:-} || ! $key =~ ^[^[:space:]].*\ \([a-z]+\)$ ]]; then
			printf 'fail\treproducers line %d is not KEY<TAB>BUG-ID<TAB>text with KEY "check (pass)": %s\n' "$n" "$line"
			continue
		fi
		b=$(result_status "$base" "$key")
		s=$(result_status "$series" "$key")
		if [[ $b == fail && $s == ok ]]; then
			printf 'ok\treproducer %s (%s): fails on %s, passes with the series\n' "$key" "$bug" "$ver"
		else
			printf 'fail\treproducer %s (%s): should fail on %s and pass with the series; %s: %s, with the series: %s\n' \
				"$key" "$bug" "$ver" "$ver" "$b" "$s"
		fi
	done <"$file"
}
