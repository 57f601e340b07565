#!/bin/sh
# CPU ranks on one machine: `mpirun -np N ffdp register --greedy` on the small pair with one
# thread per rank, N = 1 2 4 8; prints wall times and checks that every N gives the same result.
#   usage: sh bench/gpu/ranks_cpu.sh FFDP DATA_DIR OUT_DIR
set -u
ffdp=$1 data=$2 out=$3
for np in 1 2 4 8; do
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np $np -x OMP_NUM_THREADS=1 -x LD_LIBRARY_PATH \
    "$ffdp" register -f "$data/MNI152_T1_2mm.nii.gz" -m "$data/T1_head_2mm.nii.gz" -o /tmp/ranks_${np}_ --greedy \
    --json /tmp/ranks_np$np.json -q
  echo "np $np rc $?"
done
python3 - "$out" <<'PY'
import json, sys
rows = []
for np in (1, 2, 4, 8):
    d = json.load(open(f"/tmp/ranks_np{np}.json"))
    rows.append((np, d["registration_seconds"], d["global_ncc"], [s["final_loss"] for s in d["stages"]]))
base = rows[0][1]
with open(sys.argv[1] + "/ranks_cpu.txt", "w") as f:
    for np, t, ncc, losses in rows:
        line = f"np {np}: registration {t:.2f} s, speed-up {base / t:.2f}, NCC {ncc:.6f}, final losses {losses}"
        print(line)
        f.write(line + "\n")
PY
