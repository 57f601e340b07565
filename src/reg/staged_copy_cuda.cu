// Copies between the device and large pageable host memory through a small ring of page-locked
// staging buffers, the host side of each piece copied by all OpenMP threads while the link
// moves the next pieces.
//
// Why not the driver's own pageable path: it stages through its buffers on one thread, 9-15 GB/s
// (12 GB up 1.40 s, down 0.88 s; bench/gpu/NOTES.md run 201, H100). Why not page-lock the host
// side: locking and unlocking 12 GB took 0.29 + 0.22 s around a 0.23 s copy, and locking on a
// second thread stalled the device's queue about as long (run 199). Staged: 12 GB up 0.247 s,
// down 0.245 s (52 GB/s, against 55 GB/s into locked memory; run 201).
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "reg/reg_internal.h"

namespace {

constexpr int kRing = 4; /* pieces in flight or being copied */

// Bytes per piece: 16 MB (0.3 ms at the link's ~55 GB/s; 64 MB locked in all), or
// FFDP_STAGED_PIECE_MB (1-256) for comparisons.
size_t piece_bytes() {
  const char *e = getenv("FFDP_STAGED_PIECE_MB");
  const long mb = e ? strtol(e, nullptr, 10) : 16;
  return (size_t)(mb >= 1 && mb <= 256 ? mb : 16) << 20;
}

// Whether this host range is already page-locked (then the plain copy runs at the link's rate).
bool host_locked(const void *p) {
  cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

bool staged_wanted(size_t bytes, const void *host) {
  return bytes >= REG_STAGED_COPY_MIN && reg_staged_copy_on() && !host_locked(host);
}

struct ring {
  const size_t piece = piece_bytes();
  char *buf = nullptr;
  cudaEvent_t ev[kRing] = {};
  int nev = 0;
  // Mapped on huge pages where the kernel gives them, then registered: cudaMallocHost of the
  // ring took ~80 ms for 128 MB (run 200: the staged copy of 300 MB 91 ms against the driver's
  // 21), registering mapped memory runs at ~40 GB/s.
  bool open() {
    void *p = mmap(nullptr, piece * kRing, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    madvise(p, piece * kRing, MADV_HUGEPAGE);
    if (cudaHostRegister(p, piece * kRing, cudaHostRegisterDefault) != cudaSuccess) {
      (void)cudaGetLastError();
      munmap(p, piece * kRing);
      return false;
    }
    buf = (char *)p;
    for (; nev < kRing; nev++)
      if (cudaEventCreateWithFlags(&ev[nev], cudaEventDisableTiming) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
      }
    return true;
  }
  ~ring() {
    if (buf) cudaStreamSynchronize(nullptr); /* after an error, pieces may still be crossing */
    for (int k = 0; k < nev; k++) cudaEventDestroy(ev[k]);
    if (buf) cudaHostUnregister(buf), munmap(buf, piece * kRing);
  }
  char *slot(size_t i) { return buf + (i % kRing) * piece; }
  size_t len(size_t bytes, size_t i) const { return bytes - i * piece < piece ? bytes - i * piece : piece; }
};

// Device -> host: pieces i+1 .. i+kRing-1 cross the link while the threads copy piece i out.
int down(char *host, const char *dev, size_t bytes, ring &r) {
  const size_t np = (bytes + r.piece - 1) / r.piece;
  int rc = 0;
  auto issue = [&](size_t i) {
    rc = (int)cudaMemcpyAsync(r.slot(i), dev + i * r.piece, r.len(bytes, i), cudaMemcpyDeviceToHost, nullptr);
    if (!rc) rc = (int)cudaEventRecord(r.ev[i % kRing], nullptr);
  };
  for (size_t i = 0; i < np && i < (size_t)kRing && !rc; i++) issue(i);
  for (size_t i = 0; i < np && !rc; i++) {
    if ((rc = (int)cudaEventSynchronize(r.ev[i % kRing]))) break;
    reg_host_copy(host + i * r.piece, r.slot(i), r.len(bytes, i));
    if (i + kRing < np) issue(i + kRing);
  }
  return rc;
}

// Host -> device: the threads fill a slot once its last piece has crossed, then queue it.
int up(char *dev, const char *host, size_t bytes, ring &r) {
  const size_t np = (bytes + r.piece - 1) / r.piece;
  int rc = 0;
  for (size_t i = 0; i < np && !rc; i++) {
    if (i >= (size_t)kRing && (rc = (int)cudaEventSynchronize(r.ev[i % kRing]))) break;
    reg_host_copy(r.slot(i), host + i * r.piece, r.len(bytes, i));
    rc = (int)cudaMemcpyAsync(dev + i * r.piece, r.slot(i), r.len(bytes, i), cudaMemcpyHostToDevice, nullptr);
    if (!rc) rc = (int)cudaEventRecord(r.ev[i % kRing], nullptr);
  }
  if (!rc) rc = (int)cudaStreamSynchronize(nullptr); /* the ring goes with this call */
  return rc;
}

}  // namespace

extern "C" int reg_staged_copy_on(void) {
  const char *e = getenv("FFDP_STAGED_COPY"); /* "0": the driver's pageable copies (comparisons) */
  return !(e && e[0] == '0');
}

extern "C" int reg_cuda_copy_down(void *host, const void *dev, size_t bytes) {
  if (staged_wanted(bytes, host)) {
    ring r;
    if (r.open()) return down((char *)host, (const char *)dev, bytes, r);
  }
  return (int)cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost);
}

extern "C" int reg_cuda_copy_up(void *dev, const void *host, size_t bytes) {
  if (staged_wanted(bytes, host)) {
    ring r;
    if (r.open()) return up((char *)dev, (const char *)host, bytes, r);
  }
  return (int)cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice);
}
