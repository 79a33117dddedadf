package ecu

import (
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// ercOnly is the result of a SHE command that failed.
func ercOnly(erc she.ERC) profile.Values { return profile.Values{"ERC": {byte(erc)}} }

// runOperation runs op's SHE command on the values the tester sent and returns what it brings
// back, ERC included (ERC alone when it is not ERC_NO_ERROR).
func (e *ECU) runOperation(op *profile.Operation, in profile.Values) profile.Values {
	switch op.Name {
	case profile.ReadUID:
		uid := e.engine.UID()
		return profile.Values{"ERC": {0}, "UID": uid[:], "SREG": {byte(e.engine.Status())}}
	case profile.LoadKey:
		return e.loadKey(in)
	case profile.GetID:
		uid, sreg, mac, erc := e.engine.GetID([16]byte(in["Challenge"]))
		if erc != she.NoError {
			return ercOnly(erc)
		}
		return profile.Values{"ERC": {0}, "UID": uid[:], "SREG": {byte(sreg)}, "MAC": mac[:]}
	case profile.VerifyMAC:
		return e.verifyMAC(in["KeyID"][0], in["Message"], in["MAC"])
	case profile.GenerateMAC:
		return e.generateMAC(in["KeyID"][0], in["Message"])
	}
	return e.keyCheck(op, in)
}

func (e *ECU) loadKey(in profile.Values) profile.Values {
	m4, m5, erc := e.engine.LoadKey([16]byte(in["M1"]), [32]byte(in["M2"]), [16]byte(in["M3"]))
	if erc != she.NoError {
		return ercOnly(erc)
	}
	if e.cfg.Faults.WrongProof {
		m5[15] ^= 0x01
	}
	return profile.Values{"ERC": {0}, "M4": m4[:], "M5": m5[:]}
}

// verifyMAC answers Status 00 when mac is the MAC of msg under slot id, 01 when it is not.
func (e *ECU) verifyMAC(id byte, msg, mac []byte) profile.Values {
	ok, erc := e.engine.VerifyMAC(she.KeyID(id), msg, mac, 0)
	if erc != she.NoError {
		return ercOnly(erc)
	}
	status := byte(0x01)
	if ok {
		status = 0x00
	}
	return profile.Values{"ERC": {0}, "Status": {status}}
}

func (e *ECU) generateMAC(id byte, msg []byte) profile.Values {
	mac, erc := e.engine.GenerateMAC(she.KeyID(id), msg)
	if erc != she.NoError {
		return ercOnly(erc)
	}
	return profile.Values{"ERC": {0}, "MAC": mac[:]}
}

// keyCheck proves a slot's key without changing it: it verifies the tester's MAC over the
// message (or challenge) when the operation brings a Status back, else it computes the MAC the
// tester compares with its own.
func (e *ECU) keyCheck(op *profile.Operation, in profile.Values) profile.Values {
	msg := in["Message"]
	if msg == nil {
		msg = in["Challenge"]
	}
	for _, st := range op.Steps {
		if hasField(st.Response, "Status") {
			return e.verifyMAC(in["KeyID"][0], msg, in["MAC"])
		}
	}
	return e.generateMAC(in["KeyID"][0], msg)
}
