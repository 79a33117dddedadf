// Package doip is Diagnostics over IP (ISO 13400-2:2012 and 2019, protocol versions 0x02 and
// 0x03): the messages and their codec. The entity (the server, on a vehicle's gateway or ECU) is
// in doip/entity and the tester (the client) in doip/tester.
//
// Every message starts with the generic header: the protocol version, its inverse, the payload
// type and the payload length. ParseHeader and CheckLength make the standard's checks in its
// order, each failure with its generic NACK code (NACKCodeOf): incorrect pattern (wrong inverse,
// a version other than 0x02 or 0x03, or 0xFF on anything but a vehicle identification request),
// unknown payload type, message too large, out of memory, invalid payload length. ReadMessage
// reads a TCP stream by the header's length, never by parsing, so that messages that arrive in
// one segment (an ACK and its answer) stay apart.
//
// Addresses: testers use logical addresses 0x0E00-0x0FFF (external test equipment); the
// simulated ECUs 0x1001 and up behind a gateway at 0x1000.
package doip
