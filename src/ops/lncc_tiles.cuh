// Work maps shared by the two LNCC kernels (lncc.cu's march kernel and lncc_box.cu's): which
// shared-memory row and column a thread's task covers.
#pragma once

namespace ffdp_cuda {

// x-filter task `task` of a plane region of IH rows with Q four-output quads a row: row j,
// first float k. The first eight quads of every row come first and the rest of the rows' quads
// after, so a float4 phase of eight lanes reads eight 16-byte bank groups whatever the row
// stride (plain row order put 1.6-1.8 wavefronts a phase where IWP/4 = 10; this 1.1-1.2,
// simulated by bench/gpu/banks.py).
template <int IH, int Q>
__device__ __forceinline__ void quad_task(int task, int &j, int &k) {
  constexpr int Q8 = Q / 8 * 8, QR = Q - Q8 > 0 ? Q - Q8 : 1;
  j = task / Q, k = 4 * (task % Q);
  if (Q8 > 0) {
    if (task < IH * Q8) j = task / Q8, k = 4 * (task % Q8);
    else j = (task - IH * Q8) / QR, k = 4 * (Q8 + (task - IH * Q8) % QR);
  }
}

// y-filter task t3 over a moment region MW columns wide in G3 row groups: column i3, group jq3.
// The first 32 columns of each group go to one warp and the other MW - 32 columns of every group
// after them: consecutive columns of two groups share banks (1.6-1.8 wavefronts a load or store
// by plain order, 1.1-1.3 this way; H100 256^3 k = 5: 0.537 -> 0.502 ms, NOTES run 112).
template <int MW, int G3>
__device__ __forceinline__ void column_task(int t3, int &i3, int &jq3) {
  constexpr int MR = MW - 32 > 0 ? MW - 32 : 1;
  i3 = t3 % MW, jq3 = t3 / MW;
  if (MW > 32) {
    if (t3 < 32 * G3) i3 = t3 % 32, jq3 = t3 / 32;
    else i3 = 32 + (t3 - 32 * G3) % MR, jq3 = (t3 - 32 * G3) / MR;
  }
}

}  // namespace ffdp_cuda
