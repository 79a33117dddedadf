#!/usr/bin/python3
"""Drive a simulated SHE ECU through a MasterECUKey update with scapy's UDS over the kernel's ISO-TP.

Usage: scapy_uds.py IFACE REQUEST_ID RESPONSE_ID SECURITY_KEY UID M1 M2 M3 M4 M5

IDs are hexadecimal CAN identifiers (e.g. 7E0), everything else hexadecimal bytes. The steps:
extended session, SecurityAccess level 01/02 with key = AES-CMAC(SECURITY_KEY, seed), read the UID
(DID FD00), LoadKey (routine FD10) with M1|M2|M3, which must answer ERC 0 and exactly M4 and M5.
One line per step; exit status 0 when every step passed, 1 at the first mismatch, 77 when scapy or
the cryptography module is missing.
"""

import sys

try:
    from scapy.config import conf

    conf.contribs["ISOTP"] = {"use-can-isotp-kernel-module": True}
    # A pending answer (NRC 0x78) is not the answer: sr1 keeps waiting for the final one.
    conf.contribs["UDS"] = {"treat-response-pending-as-answer": False}
    from scapy.contrib.isotp import ISOTPNativeSocket
    from scapy.contrib.automotive.uds import UDS, UDS_DSC, UDS_SA, UDS_RDBI, UDS_RC
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC
except ImportError as e:
    print("missing Python module: %s" % e)
    sys.exit(77)

TIMEOUT = 10  # seconds per request: Python is slow under emulation


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def request(sock, what, pkt):
    """Send pkt and return the final answer's bytes, failing on silence or a negative answer."""
    resp = sock.sr1(pkt, timeout=TIMEOUT, verbose=False)
    if resp is None:
        fail("%s: no answer within %d s" % (what, TIMEOUT))
    raw = bytes(resp)
    if raw[0] == 0x7F:
        fail("%s: negative response %s" % (what, raw.hex()))
    if raw[0] != bytes(pkt)[0] + 0x40:
        fail("%s: unexpected response %s" % (what, raw.hex()))
    return raw


def aes_cmac(key, msg):
    c = CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


def main(argv):
    if len(argv) != 11:
        print(__doc__)
        return 2
    iface = argv[1]
    req_id, resp_id = int(argv[2], 16), int(argv[3], 16)
    sec_key, uid, m1, m2, m3, m4, m5 = (bytes.fromhex(a) for a in argv[4:])

    # padding: frames padded to 8 bytes with the kernel's default 0xCC, as the ECU pads.
    sock = ISOTPNativeSocket(iface, tx_id=req_id, rx_id=resp_id, padding=True, basecls=UDS)
    try:
        raw = request(sock, "session", UDS() / UDS_DSC(diagnosticSessionType=0x03))
        if raw[1] != 0x03:
            fail("session: answered session %02x, want 03" % raw[1])
        print("session: extended, parameters %s" % raw[2:].hex())

        raw = request(sock, "seed", UDS() / UDS_SA(securityAccessType=0x01))
        if raw[1] != 0x01 or len(raw) != 2 + 16:
            fail("seed: answer %s, want 67 01 and a 16-byte seed" % raw.hex())
        seed = raw[2:]
        print("seed: %s" % seed.hex())

        key = aes_cmac(sec_key, seed)
        raw = request(sock, "key", UDS() / UDS_SA(securityAccessType=0x02, securityKey=key))
        if raw != b"\x67\x02":
            fail("key: answer %s, want 6702" % raw.hex())
        print("key: %s accepted" % key.hex())

        raw = request(sock, "uid", UDS() / UDS_RDBI(identifiers=[0xFD00]))
        if raw[1:3] != b"\xfd\x00":
            fail("uid: answer %s is not for DID FD00" % raw.hex())
        if raw[3:] != uid:
            fail("uid: %s, want %s" % (raw[3:].hex(), uid.hex()))
        print("uid: %s" % uid.hex())

        pkt = UDS() / UDS_RC(routineControlType=0x01, routineIdentifier=0xFD10) / (m1 + m2 + m3)
        raw = request(sock, "loadkey", pkt)
        if raw[1:4] != b"\x01\xfd\x10":
            fail("loadkey: answer %s is not for startRoutine FD10" % raw.hex())
        record = raw[4:]
        if len(record) < 1 or record[0] != 0:
            fail("loadkey: status record %s, want ERC 00" % record.hex())
        if len(record) != 1 + 32 + 16:
            fail("loadkey: status record of %d bytes, want 49" % len(record))
        if record[1:33] != m4:
            fail("loadkey: M4 %s, want %s" % (record[1:33].hex(), m4.hex()))
        if record[33:] != m5:
            fail("loadkey: M5 %s, want %s" % (record[33:].hex(), m5.hex()))
        print("loadkey: ERC 00, M4 %s, M5 %s" % (m4.hex(), m5.hex()))
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
