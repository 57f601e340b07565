#!/usr/bin/env python3
"""Shared-memory bank conflicts of the blur and LNCC kernels, simulated from their index maps.

Each access of a warp (or, for 16-byte loads, of each eight-lane phase) is charged the largest
number of distinct addresses that fall into one bank (one 16-byte bank group): the wavefronts
it takes. The maps mirror src/ops/blur_split.cu (blur_xy3's x filter) and src/ops/lncc.cu (S2's
float4 loads, S3's loads and stores); DECISIONS.md quotes these numbers. Run: python3 banks.py
"""


def blur_xy(R, padded):
    """blur_xy3's x filter: items of XG outputs, eight lanes per (row, component)."""
    XTX, XTY, XG, XNT = 32, 32, 4, 384
    AW, AH, XW = (XTX + 2 * R) * 3, XTY + 2 * R, XTX * 3
    AS = AW + ((7 - AW % 4) % 4 if padded else 0)
    XS = XW + ((7 - XW % 4) % 4 if padded else 0)
    NG = XTX // XG
    items = AH * 3 * NG

    def at(e, stride, off):
        j = e // (3 * NG)
        rem = e - j * 3 * NG
        c = rem // NG
        q0 = (rem - c * NG) * XG
        return j * stride + q0 * 3 + c + off * 3

    loads = stores = warps = 0
    for w0 in range(0, items, 32):
        lanes = range(w0, min(w0 + 32, items))
        warps += 1
        loads += sum(worst([at(e, AS, d) for e in lanes], 1) for d in range(XG + 2 * R)) / (XG + 2 * R)
        stores += sum(worst([at(e, XS, q) for e in lanes], 1) for q in range(XG)) / XG
    return loads / warps, stores / warps


def worst(addrs, words):
    """Wavefronts of one access: distinct addresses in the busiest bank (words per bank unit)."""
    banks = {}
    for a in addrs:
        banks.setdefault((a // words) % (32 // words), set()).add(a)
    return max(len(v) for v in banks.values())


def lncc_lay(R, TY):
    TX = 32
    MW = TX + 2 * R
    MWP = (MW + 3) // 4 * 4
    SPAN = (4 + 2 * R + 3) // 4 * 4
    return MW, MWP, SPAN, MWP - 4 + SPAN, TY + 4 * R, TY + 2 * R


def lncc_s2(R, TY, remap):
    """S2: tasks of four outputs, SPAN floats read as float4 from row j, float k."""
    MW, MWP, SPAN, IWP, IH, MH = lncc_lay(R, TY)
    NT, Q = 32 * TY, MWP // 4
    Q8 = Q // 8 * 8

    def jk(t):
        if not remap:
            return t // Q, 4 * (t % Q)
        if t < IH * Q8:
            return t // Q8, 4 * (t % Q8)
        t2 = t - IH * Q8
        return t2 // (Q - Q8), 4 * (Q8 + t2 % (Q - Q8))

    total = phases = 0
    ntask = IH * Q
    for base in range(0, ntask, NT):
        for p0 in range(0, NT, 8):  # a 16-byte load is served eight lanes at a time
            ts = [base + p0 + l for l in range(8) if base + p0 + l < ntask]
            if not ts:
                continue
            phases += 1
            for off in range(0, SPAN, 4):
                total += worst([jk(t)[0] * IWP + jk(t)[1] + off for t in ts], 4) / (SPAN // 4)
    return total / phases


def lncc_s3(R, TY, BY, remap):
    """S3: one column of a BY-row group per thread, threads from the last one down."""
    MW, MWP, SPAN, IWP, IH, MH = lncc_lay(R, TY)
    NT, G = 32 * TY, MH // BY

    def m(t3):
        if not remap or MW <= 32:
            return t3 % MW, t3 // MW
        if t3 < 32 * G:
            return t3 % 32, t3 // 32
        t2 = t3 - 32 * G
        return 32 + t2 % (MW - 32), t2 // (MW - 32)

    total = warps = 0
    for w in range(NT // 32):
        act = [t for t in (NT - 1 - (32 * w + l) for l in range(32)) if m(t)[1] < G]
        if not act:
            continue
        warps += 1
        total += sum(worst([(BY * m(t)[1] + d) * MWP + m(t)[0] for t in act], 1)
                     for d in range(BY + 2 * R)) / (BY + 2 * R)
    return total / warps


if __name__ == "__main__":
    print("blur_xy3 x filter, wavefronts per load / store (1 = no conflict)")
    for R in (1, 2, 3, 4, 5, 8, 12, 16):
        print("  R=%-2d as is %.2f / %.2f   rows padded %.2f / %.2f" % ((R,) + blur_xy(R, False) + blur_xy(R, True)))
    print("LNCC S2 float4 loads, wavefronts per eight-lane phase; S3 loads per warp")
    for R, TY, BY in ((1, 14, 2), (2, 16, 2), (3, 14, 2), (3, 16, 2), (4, 8, 4), (4, 16, 2)):
        print("  R=%d TY=%-2d  S2 %.2f -> %.2f   S3 %.2f -> %.2f" %
              (R, TY, lncc_s2(R, TY, False), lncc_s2(R, TY, True), lncc_s3(R, TY, BY, False), lncc_s3(R, TY, BY, True)))
