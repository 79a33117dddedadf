package profile

import (
	"net"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// transport reads transport, doip and addressing: on CAN addressing is required and doip
// refused; over DoIP doip is required and addressing optional (the ECU's CAN side behind a
// gateway).
func (p *parser) transport(o *object, prof *Profile) error {
	t, err := o.enum("transport", string(TransportCAN), string(TransportCAN), string(TransportDoIP))
	if err != nil {
		return err
	}
	prof.Transport = Transport(t)
	if prof.Transport == TransportCAN {
		if err := o.forbid("on CAN (transport: doip reaches the ECU over DoIP)", "doip"); err != nil {
			return err
		}
		if err := o.require("addressing"); err != nil {
			return err
		}
	} else {
		if err := o.require("doip"); err != nil {
			return err
		}
		if prof.DoIP, err = p.doip(o.keys["doip"]); err != nil {
			return err
		}
	}
	if n, ok := o.keys["addressing"]; ok {
		if prof.Addressing, err = p.addressing(n); err != nil {
			return err
		}
		prof.HasAddressing = true
	}
	return nil
}

// DefaultTesterAddress is a DoIP profile's tester address unless it says otherwise.
const DefaultTesterAddress = 0x0E00

// doip reads the doip section: the ECU's logical address, the tester's and the entity.
func (p *parser) doip(n *yaml.Node) (DoIPAddressing, error) {
	var d DoIPAddressing
	o, err := p.object(n, "doip", "logical_address", "tester_address", "entity")
	if err != nil {
		return d, err
	}
	if err := o.require("logical_address"); err != nil {
		return d, err
	}
	const ecuRange = "0x0001..0x0DFF or 0x1000..0x7FFF (an ECU's physical address, ISO 13400-2)"
	a, err := o.uint("logical_address", 0, 0x0001, 0x7FFF, ecuRange)
	if err != nil {
		return d, err
	}
	if a >= 0x0E00 && a <= 0x0FFF {
		return d, p.errf(o.keys["logical_address"], "doip.logical_address", "%s is a tester's address: want %s", o.keys["logical_address"].Value, ecuRange)
	}
	d.LogicalAddress = uint16(a)
	t, err := o.uint("tester_address", DefaultTesterAddress, 0x0E00, 0x0FFF, "0x0E00..0x0FFF (external test equipment)")
	if err != nil {
		return d, err
	}
	d.TesterAddress = uint16(t)
	if d.Entity, err = o.str("entity", ""); err != nil {
		return d, err
	}
	if o.has("entity") {
		host, port, err := net.SplitHostPort(d.Entity)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || host == "" || n == 0 {
			return d, p.errf(o.keys["entity"], "doip.entity", "%q: want HOST:PORT, e.g. 192.0.2.10:13400", d.Entity)
		}
	}
	return d, nil
}
