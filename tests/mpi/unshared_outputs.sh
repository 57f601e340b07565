#!/bin/sh
# A rank that cannot see the output directory rank 0 writes into (a rank on another host without
# a shared file system, simulated by a private tmpfs over the directory in that rank's mount
# namespace) stops the run before anything is loaded: every rank exits non-zero and the message
# names the rank and says what to do.
set -u
mpiexec=$1 ffdp=$2
fixed=$PWD/ranks_fixed.nii.gz moving=$PWD/ranks_moving.nii.gz # written by test_register_ranks (fixture)
out=$(mktemp -d) aux=$(mktemp -d)
trap 'rm -rf "$out" "$aux"' EXIT
unshare -m sh -c "mount -t tmpfs none '$out'" 2>/dev/null || { echo "no private mounts here (needs root); skipping"; exit 77; }
cat > "$aux/wrap.sh" <<'WRAP'
#!/bin/sh
# rank 1 runs with its own (empty) file system over $OUTDIR
if [ "${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then
  exec unshare -m sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$OUTDIR" "$@"
fi
exec "$@"
WRAP
timeout 120 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 -x OUTDIR="$out" -x OMP_NUM_THREADS=1 \
  sh "$aux/wrap.sh" "$ffdp" register -f "$fixed" -m "$moving" -o "$out/r_" --greedy > "$aux/log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { cat "$aux/log"; echo "FAIL: the run exited $rc"; exit 1; }
grep -q "rank 1: does not see" "$aux/log" || { cat "$aux/log"; echo "FAIL: no message naming rank 1"; exit 1; }
ls "$out" | grep -q . && { ls -a "$out"; echo "FAIL: files left in the output directory"; exit 1; }
echo "ok: a rank that cannot see the output directory stops the run with: $(grep -o 'rank 1: .*' "$aux/log" | head -1)"
