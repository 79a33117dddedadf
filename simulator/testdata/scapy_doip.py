#!/usr/bin/python3
"""Provision simulated SHE ECUs behind a DoIP gateway with scapy's DoIP and UDS layers.

Usage: scapy_doip.py HOST PORT GATEWAY SECURITY_KEY ECU [ECU ...]
       scapy_doip.py --self-check SHE_REFERENCE_JSON

GATEWAY is the gateway's logical address in hex (e.g. 1000); each ECU is
LOGICAL,KEY_ID,AUTH_KEY,NEW_KEY,COUNTER in hex: what a tester knows, the key update being
authorized by MASTER_ECU_KEY (AuthID 1) with no flags. The steps: vehicle identification over UDP
in protocol version 0xFF (the gateway must answer with its address), routing activation from
tester 0x0E00, then for each ECU: extended session, SecurityAccess level 01/02 with key =
AES-CMAC(SECURITY_KEY, seed), the UID (DID FD00), M1-M3 derived here for that UID, LoadKey
(routine FD10) with M1|M2|M3, which must answer ERC 0 and the M4 and M5 derived here; last, a
diagnostic message to 0x2000, which must get NACK 0x03 and leave the socket open.

--self-check derives K1-K4, M1-M5 of every she_load_key vector, every she_kdf output and the
aes_mp_compress example of the SHE reference vectors with this script's own SHE functions, and
compares them with the file's values (no network, no scapy). The TCP stream is split by the header's payload length (scapy's DoIPSocket splits by
parsing, and loses an answer that arrives in the segment of its ACK); scapy's classes build and
parse every message. One line per step; exit status 0 when every step passed, 1 at the first
mismatch, 77 when scapy or the cryptography module is missing.
"""

import socket
import struct
import sys

import json

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.cmac import CMAC
except ImportError as e:
    print("missing Python module: %s" % e)
    sys.exit(77)

def import_scapy():
    """Import scapy's DoIP and UDS layers into the module (only the network steps need them)."""
    try:
        from scapy.contrib.automotive.doip import DoIP
        from scapy.contrib.automotive.uds import UDS, UDS_DSC, UDS_SA, UDS_RDBI, UDS_RC, UDS_TP
    except ImportError as e:
        print("missing Python module: %s" % e)
        sys.exit(77)
    globals().update(DoIP=DoIP, UDS=UDS, UDS_DSC=UDS_DSC, UDS_SA=UDS_SA, UDS_RDBI=UDS_RDBI, UDS_RC=UDS_RC, UDS_TP=UDS_TP)


TIMEOUT = 20  # seconds per read: a loaded machine
TESTER = 0x0E00


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def aes_cmac(key, msg):
    c = CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


# The SHE key derivation constants (SHE 1.1, AUTOSAR SWS Crypto Driver).
KEY_UPDATE_ENC_C = bytes.fromhex("010153484500800000000000000000b0")
KEY_UPDATE_MAC_C = bytes.fromhex("010253484500800000000000000000b0")
MASTER_ECU_KEY = 1


def aes_ecb(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def aes_cbc(key, data):
    e = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    return e.update(data) + e.finalize()


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def mp_compress(data):
    """Miyaguchi-Preneel compression over 16-byte blocks: H0 = 0, Hi = AES_{Hi-1}(xi) ^ xi ^ Hi-1."""
    h = bytes(16)
    for i in range(0, len(data), 16):
        x = data[i:i + 16]
        h = xor(xor(aes_ecb(h, x), x), h)
    return h


def kdf(key, constant):
    """SHE KDF: MP over key | constant (the constants carry the MP padding)."""
    return mp_compress(key + constant)


def key_update(uid, key_id, auth_id, auth_key, new_key, counter, flags):
    """M1-M5 of a SHE memory update (flags: 5 bits WP,BP,DP,KU,WC, most significant first)."""
    k1, k2 = kdf(auth_key, KEY_UPDATE_ENC_C), kdf(auth_key, KEY_UPDATE_MAC_C)
    k3, k4 = kdf(new_key, KEY_UPDATE_ENC_C), kdf(new_key, KEY_UPDATE_MAC_C)
    ids = bytes([(key_id << 4) | auth_id])
    m1 = uid + ids
    head = (counter << 4) | (flags >> 1)
    m2 = aes_cbc(k1, struct.pack("!I", head) + bytes([(flags & 1) << 7]) + bytes(11) + new_key)
    m3 = aes_cmac(k2, m1 + m2)
    m4 = uid + ids + aes_ecb(k3, struct.pack("!I", (counter << 4) | 0x8) + bytes(12))
    m5 = aes_cmac(k4, m4)
    return {"k1": k1, "k2": k2, "k3": k3, "k4": k4, "m1": m1, "m2": m2, "m3": m3, "m4": m4, "m5": m5}


def self_check(path):
    """Compare this script's SHE functions with the reference vectors; return the exit status."""
    with open(path) as f:
        vectors = json.load(f)["vectors"]
    checked, bad = 0, 0
    for v in vectors:
        got, want = {}, {}
        if v["type"] == "she_kdf":
            got["output"] = kdf(bytes.fromhex(v["key"]), bytes.fromhex(v["constant"]))
            want["output"] = v["output"]
        elif v["type"] == "aes_mp_compress":
            got["output"] = mp_compress(bytes.fromhex(v["padded_input"]))
            want["output"] = v["output"]
        elif v["type"] == "she_load_key":
            got = key_update(bytes.fromhex(v["uid"]), v["key_id"], v["auth_id"], bytes.fromhex(v["auth_key"]),
                             bytes.fromhex(v["new_key"]), v["counter"], v["flags_5bit"])
            want = {k: v[k] for k in got}
        else:
            continue
        checked += 1
        for k in sorted(want):
            if got[k].hex() != want[k]:
                bad += 1
                print("FAIL: %s: %s %s, want %s" % (v["id"], k, got[k].hex(), want[k]))
    print("self-check: %d vectors, %d mismatches" % (checked, bad))
    if checked == 0:
        print("FAIL: no she_kdf, aes_mp_compress or she_load_key vector in %s" % path)
        return 1
    return 1 if bad else 0


def read_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            fail("the entity closed the socket")
        buf += chunk
    return buf


def read_doip(sock):
    """Read one message by the header's length and parse it with scapy."""
    header = read_exactly(sock, 8)
    (length,) = struct.unpack("!I", header[4:8])
    return DoIP(header + read_exactly(sock, length))


def identify(host, port, gateway):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(TIMEOUT)
    u.sendto(bytes(DoIP(protocol_version=0xFF, inverse_version=0x00, payload_type=0x0001)), (host, port))
    data, _ = u.recvfrom(4096)
    u.close()
    ann = DoIP(data)
    if ann.payload_type != 0x0004 or ann.logical_address != gateway:
        fail("vehicle identification: answer %s" % data.hex())
    if ann.protocol_version != 0x02:
        fail("vehicle identification: answered in version %02x, want the entity's 02" % ann.protocol_version)
    print("identification: VIN %s, address %04x, EID %s" % (ann.vin.decode(), ann.logical_address, ann.eid.hex()))


def activate(sock, gateway):
    sock.sendall(bytes(DoIP(payload_type=0x0005, source_address=TESTER, activation_type=0)))
    resp = read_doip(sock)
    if resp.payload_type != 0x0006 or resp.routing_activation_response != 0x10:
        fail("routing activation: answer %s" % bytes(resp).hex())
    if resp.logical_address_tester != TESTER or resp.logical_address_doip_entity != gateway:
        fail("routing activation: addresses %04x/%04x" % (resp.logical_address_tester, resp.logical_address_doip_entity))
    print("routing activation: %04x active at %04x" % (TESTER, gateway))


def diag(sock, target, what, pkt):
    """Send a UDS request to target; return ("nack", code) or ("answer", final answer bytes)."""
    sock.sendall(bytes(DoIP(payload_type=0x8001, source_address=TESTER, target_address=target) / pkt))
    ack = read_doip(sock)
    if ack.payload_type == 0x8003:
        if ack.source_address != target or ack.target_address != TESTER:
            fail("%s: NACK addressed %04x->%04x" % (what, ack.source_address, ack.target_address))
        return "nack", ack.nack_code
    if ack.payload_type != 0x8002 or ack.ack_code != 0:
        fail("%s: %s instead of the ACK" % (what, bytes(ack).hex()))
    if ack.source_address != target or ack.target_address != TESTER:
        fail("%s: ACK addressed %04x->%04x, want %04x->%04x" % (what, ack.source_address, ack.target_address, target, TESTER))
    while True:
        msg = read_doip(sock)
        if msg.payload_type != 0x8001 or msg.source_address != target or msg.target_address != TESTER:
            fail("%s: unexpected message %s" % (what, bytes(msg).hex()))
        raw = bytes(msg[UDS])
        if raw[0] == 0x7F and raw[2] == 0x78:
            continue  # response pending: its own diagnostic message, no new ACK
        return "answer", raw


def request(sock, target, what, pkt):
    kind, raw = diag(sock, target, what, pkt)
    if kind == "nack":
        fail("%s: NACK %02x" % (what, raw))
    if raw[0] == 0x7F:
        fail("%s: negative response %s" % (what, raw.hex()))
    if raw[0] != bytes(pkt)[0] + 0x40:
        fail("%s: unexpected response %s" % (what, raw.hex()))
    return raw


def provision(sock, sec_key, ecu):
    fields = ecu.split(",")
    if len(fields) != 5:
        fail("ECU %r: want LOGICAL,KEY_ID,AUTH_KEY,NEW_KEY,COUNTER" % ecu)
    target, key_id = int(fields[0], 16), int(fields[1], 16)
    auth_key, new_key = bytes.fromhex(fields[2]), bytes.fromhex(fields[3])
    counter = int(fields[4], 16)
    raw = request(sock, target, "session", UDS() / UDS_DSC(diagnosticSessionType=0x03))
    if raw[1] != 0x03:
        fail("session: answered session %02x" % raw[1])
    raw = request(sock, target, "seed", UDS() / UDS_SA(securityAccessType=0x01))
    if raw[1] != 0x01 or len(raw) != 18:
        fail("seed: answer %s" % raw.hex())
    key = aes_cmac(sec_key, raw[2:])
    raw = request(sock, target, "key", UDS() / UDS_SA(securityAccessType=0x02, securityKey=key))
    if raw != b"\x67\x02":
        fail("key: answer %s" % raw.hex())
    raw = request(sock, target, "uid", UDS() / UDS_RDBI(identifiers=[0xFD00]))
    if raw[1:3] != b"\xfd\x00" or len(raw) != 18:
        fail("uid: answer %s, want DID FD00 and 15 bytes" % raw.hex())
    uid = raw[3:]
    m = key_update(uid, key_id, MASTER_ECU_KEY, auth_key, new_key, counter, 0)
    pkt = UDS() / UDS_RC(routineControlType=0x01, routineIdentifier=0xFD10) / (m["m1"] + m["m2"] + m["m3"])
    raw = request(sock, target, "loadkey", pkt)
    record = raw[4:]
    if raw[1:4] != b"\x01\xfd\x10" or len(record) != 49 or record[0] != 0:
        fail("loadkey: answer %s" % raw.hex())
    if record[1:33] != m["m4"]:
        fail("loadkey: M4 %s, want %s" % (record[1:33].hex(), m["m4"].hex()))
    if record[33:] != m["m5"]:
        fail("loadkey: M5 %s, want %s" % (record[33:].hex(), m["m5"].hex()))
    print("ecu %04x: unlocked, UID %s, LoadKey ERC 00 with the M4/M5 derived here" % (target, uid.hex()))


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-check":
        return self_check(argv[2])
    if len(argv) < 6:
        print(__doc__)
        return 2
    host, port, gateway = argv[1], int(argv[2]), int(argv[3], 16)
    sec_key = bytes.fromhex(argv[4])
    import_scapy()
    identify(host, port, gateway)
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        activate(sock, gateway)
        for ecu in argv[5:]:
            provision(sock, sec_key, ecu)
        kind, code = diag(sock, 0x2000, "unknown target", UDS() / UDS_TP(subFunction=0))
        if kind != "nack" or code != 0x03:
            fail("unknown target: %s %s, want NACK 03" % (kind, code))
        print("unknown target 2000: NACK 03")
        first = argv[5].split(",")[0]
        raw = request(sock, int(first, 16), "tester present after the NACK", UDS() / UDS_TP(subFunction=0))
        if raw != b"\x7e\x00":
            fail("tester present: answer %s" % raw.hex())
        print("socket still open after NACK 03")
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
