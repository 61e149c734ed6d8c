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
		awk -v prog="$prog" -v pass="$pass" '
			/^ok [0-9]+ .*# SKIP/ { n=$3; print prog ":" n "\t" pass "\tskip"; next }
			/^ok [0-9]+ / { print prog ":" $3 "\t" pass "\tok"; next }
			/^not ok [0-9]+ / { print prog ":" $4 "\t" pass "\tfail"; next }
		' "$f"
	done
}

# report RUNDIR: write RUNDIR/results.tsv and RUNDIR/summary.txt; print the
# summary; return non-zero when any check failed or a splat was found.
report() {
	local dir=$1 pass verdict=PASS splats f nok nfail nskip
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
		echo "kernel:  $(<"$dir/kernelrelease")  ($(<"$dir/variant"))"
		echo "base:    $(<"$dir/base")"
		echo "series:  $(<"$dir/series")"
		echo "accel:   $(<"$dir/accel")   guest: ${LAB_GUEST_MEM} RAM, ${LAB_GUEST_CPUS} CPUs, memmap=${LAB_MEMMAP}, 2x ${LAB_NVDIMM_SIZE} NVDIMM"
		echo "stages:  $(tr '\n' ' ' <"$dir/stages")"
		echo
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
		echo
		for pass in "${PASSES[@]}"; do
			nok=$(awk -F'\t' -v p="$pass" '$2 == p && $3 == "ok"' "$dir/results.tsv" | wc -l)
			nfail=$(awk -F'\t' -v p="$pass" '$2 == p && $3 == "fail"' "$dir/results.tsv" | wc -l)
			nskip=$(awk -F'\t' -v p="$pass" '$2 == p && $3 == "skip"' "$dir/results.tsv" | wc -l)
			echo "pass $pass: $nok ok, $nfail failed, $nskip skipped"
		done
		if [[ -n $splats ]]; then
			echo "kernel log splats (full list: splats.txt):"
			head -n 10 "$dir/splats.txt" | sed 's/^/  /'
		else
			echo "kernel log splats: none"
		fi
		nsub=$(wc -l <"$dir/subtests.tsv")
		nsubfail=$(awk -F'\t' '$3 == "fail"' "$dir/subtests.tsv" | wc -l)
		echo "test cases inside the programs: $nsub, failed: $nsubfail"
	} >"$dir/summary.txt"
	if grep -qP '\tfail$' "$dir/results.tsv" || [[ -n $splats ]]; then
		verdict=FAIL
	fi
	echo "verdict: $verdict" >>"$dir/summary.txt"
	cat "$dir/summary.txt"
	[[ $verdict == PASS ]]
}
