#!/usr/bin/env python3
"""Seed corpora for the fuzz targets from real captures.

usage: fuzz/extract_corpus.py REAL_PCAP_DIR [OUT=fuzz/corpus]

decode/: one file per frame, first byte = link-type index (fuzz/src/targets.rs
LINKS), then the frame; round-robin over the captures (at most PER_FILE
distinct frames each, frames <= MAX_FRAME bytes) up to MAX_FILES files.
hints/: the TCP/UDP payloads of those frames that start like a TLS
ClientHello, an HTTP request or DNS (port 53).
pcapng files are converted with `editcap -F pcap` first (needs wireshark's editcap).
"""
import hashlib, os, struct, subprocess, sys, tempfile

LINKS = {1: 0, 0: 1, 108: 2, 12: 3, 14: 3, 101: 3, 228: 4, 229: 5, 113: 6, 276: 7,
         9: 8, 50: 8, 51: 9, 239: 10, 104: 11, 10: 12, 105: 13, 127: 14, 192: 15}
MAX_FILES, PER_FILE, MAX_FRAME = 200, 3, 1600


def frames(path):
    data = open(path, "rb").read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        with tempfile.NamedTemporaryFile(suffix=".pcap") as t:
            r = subprocess.run(["editcap", "-F", "pcap", path, t.name], capture_output=True)
            if r.returncode != 0:
                return None, []
            data = open(t.name, "rb").read()
    if len(data) < 24:
        return None, []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None, []
    dlt = struct.unpack(e + "I", data[20:24])[0] & 0xFFFF
    out, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        f = data[off + 16:off + 16 + caplen]
        if len(f) < caplen:
            break
        out.append(f)
        off += 16 + caplen
    return dlt, out


def payload(f):
    """Ethernet/IPv4 or IPv6 TCP/UDP payload and ports, or None."""
    if len(f) < 14:
        return None
    et, off = struct.unpack(">H", f[12:14])[0], 14
    while et == 0x8100 and len(f) >= off + 4:
        et, off = struct.unpack(">H", f[off + 2:off + 4])[0], off + 4
    if et == 0x0800 and len(f) >= off + 20:
        ihl, proto = (f[off] & 15) * 4, f[off + 9]
        off += ihl
    elif et == 0x86DD and len(f) >= off + 40:
        proto = f[off + 6]
        off += 40
    else:
        return None
    if proto == 6 and len(f) >= off + 20:
        sp, dp = struct.unpack(">HH", f[off:off + 4])
        return sp, dp, f[off + (f[off + 12] >> 4) * 4:]
    if proto == 17 and len(f) >= off + 8:
        sp, dp = struct.unpack(">HH", f[off:off + 4])
        return sp, dp, f[off + 8:]
    return None


def main():
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else "fuzz/corpus"
    pools = []
    for name in sorted(os.listdir(src)):
        if not name.endswith((".pcap", ".pcapng", ".cap")):
            continue
        dlt, fs = frames(os.path.join(src, name))
        if dlt not in LINKS:
            continue
        seen, pool = set(), []
        for f in fs:
            if len(f) > MAX_FRAME:
                continue
            # distinct shapes: link/IP header prefix and a length bucket
            key = (f[:24] if dlt != 1 else f[12:24], len(f) // 128)
            if key in seen:
                continue
            seen.add(key)
            pool.append(bytes([LINKS[dlt]]) + f)
            if len(pool) >= PER_FILE:
                break
        if pool:
            pools.append(pool)
    chosen, i = [], 0
    while len(chosen) < MAX_FILES and any(i < len(p) for p in pools):
        for p in pools:
            if i < len(p) and len(chosen) < MAX_FILES:
                chosen.append(p[i])
        i += 1
    os.makedirs(f"{out}/decode", exist_ok=True)
    os.makedirs(f"{out}/hints", exist_ok=True)
    for c in chosen:
        open(f"{out}/decode/{hashlib.sha1(c).hexdigest()[:16]}", "wb").write(c)
        if c[0] == 0:
            p = payload(c[1:])
            if p and p[2] and (p[2][:1] == b"\x16" or p[2][:4] in (b"GET ", b"POST", b"HEAD", b"PUT ") or 53 in p[:2]):
                open(f"{out}/hints/{hashlib.sha1(p[2]).hexdigest()[:16]}", "wb").write(p[2])
    print(f"{len(chosen)} frames from {len(pools)} captures")


main()
