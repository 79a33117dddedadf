#!/usr/bin/python3
"""Provision simulated SHE ECUs behind a DoIP gateway with scapy's DoIP and UDS layers.

Usage: scapy_doip.py HOST PORT GATEWAY SECURITY_KEY ECU [ECU ...]

GATEWAY is the gateway's logical address in hex (e.g. 1000); each ECU is
LOGICAL,UID,M1,M2,M3,M4,M5 in hex. The steps: vehicle identification over UDP in protocol
version 0xFF (the gateway must answer with its address), routing activation from tester 0x0E00,
then for each ECU: extended session, SecurityAccess level 01/02 with key = AES-CMAC(SECURITY_KEY,
seed), the UID (DID FD00), LoadKey (routine FD10) with M1|M2|M3, which must answer ERC 0 and
exactly M4 and M5; last, a diagnostic message to 0x2000, which must get NACK 0x03 and leave the
socket open. The TCP stream is split by the header's payload length (scapy's DoIPSocket splits by
parsing, and loses an answer that arrives in the segment of its ACK); scapy's classes build and
parse every message. One line per step; exit status 0 when every step passed, 1 at the first
mismatch, 77 when scapy or the cryptography module is missing.
"""

import socket
import struct
import sys

try:
    from scapy.contrib.automotive.doip import DoIP
    from scapy.contrib.automotive.uds import UDS, UDS_DSC, UDS_SA, UDS_RDBI, UDS_RC, UDS_TP
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC
except ImportError as e:
    print("missing Python module: %s" % e)
    sys.exit(77)

TIMEOUT = 20  # seconds per read: a loaded machine
TESTER = 0x0E00


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def aes_cmac(key, msg):
    c = CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


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
    target = int(fields[0], 16)
    uid, m1, m2, m3, m4, m5 = (bytes.fromhex(f) for f in fields[1:])
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
    if raw[1:3] != b"\xfd\x00" or raw[3:] != uid:
        fail("uid: answer %s, want UID %s" % (raw.hex(), uid.hex()))
    pkt = UDS() / UDS_RC(routineControlType=0x01, routineIdentifier=0xFD10) / (m1 + m2 + m3)
    raw = request(sock, target, "loadkey", pkt)
    record = raw[4:]
    if raw[1:4] != b"\x01\xfd\x10" or len(record) != 49 or record[0] != 0:
        fail("loadkey: answer %s" % raw.hex())
    if record[1:33] != m4 or record[33:] != m5:
        fail("loadkey: M4 %s M5 %s, want %s %s" % (record[1:33].hex(), record[33:].hex(), m4.hex(), m5.hex()))
    print("ecu %04x: unlocked, UID %s, LoadKey ERC 00 with the expected M4/M5" % (target, uid.hex()))


def main(argv):
    if len(argv) < 6:
        print(__doc__)
        return 2
    host, port, gateway = argv[1], int(argv[2]), int(argv[3], 16)
    sec_key = bytes.fromhex(argv[4])
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
